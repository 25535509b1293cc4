"""The trust boundary of datasets loaded from a folder or a Hub repo: a table holding refs that read outside
its root next to good ones. The good rows decode; the others raise UntrustedRefError through ``ds[i]``, the
mediaref format, ``decode_transform``, DataLoader workers and streaming; nothing outside the root is read
(Python's audit hook sees every file open; the loopback server logs every request). Widening works through
every door, and refs built in code keep working as before."""

from __future__ import annotations

import contextlib
import functools
import operator
import os
import shutil
import sys

import pytest
from datasets import Dataset, Features, Value

import hf_mediaref
from hf_mediaref import DataURI, MediaAccess, MediaRef
from hf_mediaref.errors import UntrustedRefError
from hf_mediaref.hf import (
    MediaRefFeature,
    decode_transform,
    get_media_access,
    get_media_root,
    set_media_root,
)
from hf_mediaref.testing import barcode_frame, write_image

# ------------------------------------------------------------------------------- every file opened
_watchers: list[list[str]] = []


def _audit(event: str, args: tuple) -> None:
    if event == "open" and _watchers and isinstance(args[0], (str, bytes, os.PathLike)):
        for seen in _watchers:
            seen.append(os.fsdecode(args[0]))


sys.addaudithook(_audit)


@contextlib.contextmanager
def opened_files():
    """The paths of every file opened in this process inside the block (Python's ``open`` audit event:
    builtins.open, io.open, os.open, and therefore Pillow and the io layer)."""
    seen: list[str] = []
    _watchers.append(seen)
    try:
        yield seen
    finally:
        _watchers.remove(seen)


# ------------------------------------------------------------------------------- a hostile folder
GOOD = {0: 3, 1: 7, 2: 9}  # row -> the barcode it shows


@pytest.fixture
def hostile(tmp_path, repo, http_server, png_image):
    """A dataset folder whose table holds good refs (rows 0-2) and refs reading outside it (rows 3-9)."""
    folder, outside = tmp_path / "hostile", tmp_path / "outside"
    shutil.copytree(repo.path, folder)
    outside.mkdir()
    secret = write_image(outside / "secret.png", 50, size=(64, 128))
    os.symlink(secret, folder / "images" / "escape.png")
    uris = [
        ("videos/a.mp4", repo.a.pts_ns[3]),
        ("images/seven.png", None),
        (DataURI.from_image(barcode_frame(9, 64, 128)).uri, None),
        (str(secret), None),  # absolute path
        (secret.as_uri(), None),  # file://
        ("~/secret.png", None),  # home
        ("images/escape.png", None),  # a symlink out of the folder
        ("../outside/secret.png", None),  # `..`
        (f"{http_server.url}/img7.png", None),  # loopback HTTP
        ("hf://datasets/victim/private@main/secret.png", None),  # another (private) repo
    ]
    rows = [{"frame": {"uri": u, "pts_ns": p}, "label": i} for i, (u, p) in enumerate(uris)]
    (folder / "data").mkdir()
    features = Features({"frame": MediaRefFeature(), "label": Value("int64")})
    Dataset.from_list(rows, features=features).to_parquet(
        str(folder / "data" / "train-00000-of-00001.parquet")
    )
    return folder, outside, secret


def _as_rows(rows):
    return rows


def _outcome(read):
    """``read()``'s barcode, or ``"untrusted"``, or ``"unresolved"`` (a relative URI with no root)."""
    from hf_mediaref.errors import UnresolvedPathError
    from hf_mediaref.testing import read_index

    try:
        frame = read()
    except UntrustedRefError as exc:
        assert exc.uri and "allow_uris=" in str(exc)
        return "untrusted"
    except UnresolvedPathError as exc:
        assert exc.uri and "hf_mediaref.load_dataset" in str(exc)
        return "unresolved"
    return read_index(frame)


def _expected(n=10, **extra):
    return [GOOD.get(i, extra.get(f"r{i}", "untrusted")) for i in range(n)]


def _nothing_outside(seen, outside, http_server, log_before):
    assert not [p for p in seen if os.path.realpath(p).startswith(str(outside))], "a file outside was opened"
    assert len(http_server.log) == log_before, "the loopback server was asked"


def test_good_rows_decode_and_the_others_raise_everywhere(hostile, http_server, tmp_path, monkeypatch):
    folder, outside, _ = hostile
    monkeypatch.chdir(tmp_path)
    ds = hf_mediaref.load_dataset(str(folder), split="train")
    assert get_media_root(ds) == str(folder)
    log_before = len(http_server.log)
    fmt = ds.with_format("mediaref")
    tfm = ds.with_transform(decode_transform(columns=["frame"]))
    with opened_files() as seen:
        assert [_outcome(lambda i=i: fmt[i]["frame"]) for i in range(10)] == _expected()
        assert [_outcome(lambda i=i: tfm[i]["frame"]) for i in range(10)] == _expected()
        assert [_outcome(lambda i=i: ds[i]["frame"].to_rgb_array()) for i in range(10)] == _expected()
        with pytest.raises(UntrustedRefError):
            fmt[:]  # a batch holding one bad ref decodes nothing
        with pytest.raises(UntrustedRefError):
            hf_mediaref.embed(ds.select([0, 6]))  # nothing outside is copied into the table either
        embedded = hf_mediaref.embed(ds.select([0, 1, 2]))
    _nothing_outside(seen, outside, http_server, log_before)
    assert [_outcome(lambda i=i: embedded.with_format("mediaref")[i]["frame"]) for i in range(3)] == [3, 7, 9]


def test_streaming_holds_the_boundary(hostile, http_server):
    folder, outside, _ = hostile
    ids = hf_mediaref.load_dataset(str(folder), split="train", streaming=True)
    log_before = len(http_server.log)
    transform = decode_transform(columns=["frame"])

    def formatted(i):
        return next(iter(ids.skip(i).take(1).with_format("mediaref")))["frame"]

    def mapped(i):
        return next(iter(ids.skip(i).take(1).map(transform, batched=True, batch_size=1)))["frame"]

    with opened_files() as seen:
        assert [_outcome(lambda i=i: formatted(i)) for i in range(10)] == _expected()
        assert [_outcome(lambda i=i: mapped(i)) for i in range(10)] == _expected()
    _nothing_outside(seen, outside, http_server, log_before)


def test_dataloader_workers_hold_the_boundary_and_its_allow_list(hostile, labels_of):
    torch = pytest.importorskip("torch")
    from torch.utils.data import DataLoader

    folder, outside, _ = hostile
    ds = hf_mediaref.load_dataset(str(folder), split="train")

    def loader(subset):
        return DataLoader(
            subset.with_format("mediaref", output="torch"),
            batch_size=2,
            num_workers=1,
            multiprocessing_context="spawn",
        )

    good = [labels_of(list(b["frame"].numpy())) for b in loader(ds.select([0, 1, 2]))]
    assert sorted(functools.reduce(operator.iadd, good, [])) == [3, 7, 9]
    with pytest.raises(UntrustedRefError) as info:
        list(loader(ds.select([0, 3])))
    assert "secret.png" in str(info.value)
    transformed = DataLoader(
        ds.select([0, 6]).with_transform(decode_transform(columns=["frame"])),
        batch_size=2,
        num_workers=1,
        multiprocessing_context="spawn",
        collate_fn=_as_rows,
    )
    with pytest.raises(UntrustedRefError, match="escape.png"):
        list(transformed)
    # the allow-list travels with the root into spawned workers
    wide = hf_mediaref.load_dataset(str(folder), split="train", allow_uris=[outside])
    frames = torch.cat([b["frame"] for b in loader(wide.select([3, 4, 6]))])
    assert labels_of(list(frames.numpy())) == [50, 50, 50]


def test_widening_through_every_door(hostile, http_server, monkeypatch):
    folder, outside, _secret = hostile
    ds = hf_mediaref.load_dataset(str(folder), split="train")
    base = f"{http_server.url}/"
    wide = {"r3": 50, "r4": 50, "r6": 50, "r7": 50, "r8": 7}  # `..` to an allowed folder too
    # on the loader
    loaded = hf_mediaref.load_dataset(str(folder), split="train", allow_uris=[outside, base])
    fmt = loaded.with_format("mediaref")
    assert [_outcome(lambda i=i: fmt[i]["frame"]) for i in range(10)] == _expected(**wide)
    # on set_media_root, on the format, in the environment
    set_media_root(ds, folder, allow_uris=f"{outside} {base}")
    assert [_outcome(lambda i=i: ds.with_format("mediaref")[i]["frame"]) for i in (3, 8)] == [50, 7]
    set_media_root(ds, folder)
    assert _outcome(lambda: ds.with_format("mediaref")[3]["frame"]) == "untrusted"
    fmt = ds.with_format("mediaref", access=get_media_access(ds).allowing([outside]))
    assert [_outcome(lambda i=i: fmt[i]["frame"]) for i in (3, 8)] == [50, "untrusted"]
    # the format's allow_uris= is ignored: format kwargs come back from a saved state.json (data)
    assert _outcome(lambda: ds.with_format("mediaref", allow_uris="*")[3]["frame"]) == "untrusted"
    # no environment variable widens an access (no process-wide state)
    monkeypatch.setenv("HF_MEDIAREF_ALLOW_URIS", base)
    assert _outcome(lambda: ds.with_format("mediaref")[8]["frame"]) == "untrusted"
    monkeypatch.delenv("HF_MEDIAREF_ALLOW_URIS")
    # "*" trusts a dataset entirely (your own)
    trusted = set_media_root(ds, folder, allow_uris="*").with_format("mediaref")
    assert [_outcome(lambda i=i: trusted[i]["frame"]) for i in (3, 6, 8)] == [50, 50, 7]
    set_media_root(ds, folder)
    # decode_transform: its root is a boundary for the raw structs it resolves (decode=False columns)
    raw = ds.cast_column("frame", MediaRefFeature(decode=False))
    batch = raw[:4]
    with pytest.raises(UntrustedRefError):
        decode_transform(root=folder)(batch)
    out = decode_transform(root=folder, allow_uris=[outside])(batch)
    from hf_mediaref.testing import read_index

    assert [read_index(f) for f in out["frame"]] == [3, 7, 9, 50]


def test_refs_built_in_code_keep_working(hostile, http_server, labels_of):
    _, _, secret = hostile
    refs = [MediaRef(str(secret)), MediaRef(secret.as_uri()), MediaRef(f"{http_server.url}/img7.png")]
    assert labels_of(hf_mediaref.batch_decode(refs)) == [50, 50, 7]
    table = Dataset.from_list([{"frame": r} for r in refs], features=Features({"frame": MediaRefFeature()}))
    assert get_media_root(table) is None
    assert labels_of(table.with_format("mediaref")[:]["frame"]) == [50, 50, 7]
    assert labels_of(table.with_transform(decode_transform())[:]["frame"]) == [50, 50, 7]


def test_a_host_name_that_resolves_to_loopback_is_refused_when_connecting(
    hostile, http_server, fake_dns, fast_http
):
    folder, _, _ = hostile
    port = http_server.url.rsplit(":", 1)[1]
    rows = [{"frame": {"uri": "images/seven.png"}}, {"frame": {"uri": f"http://rebind.test:{port}/img7.png"}}]
    ds = set_media_root(Dataset.from_list(rows, features=Features({"frame": MediaRefFeature()})), folder)
    log_before = len(http_server.log)
    fmt = ds.with_format("mediaref")
    assert _outcome(lambda: fmt[0]["frame"]) == 7
    with pytest.raises(UntrustedRefError, match="non-public address 127.0.0.1"):
        fmt[1]
    assert len(http_server.log) == log_before
    allowed = ds.with_format("mediaref", access=get_media_access(ds).allowing(f"http://rebind.test:{port}/"))
    assert _outcome(lambda: allowed[1]["frame"]) == 7 and len(http_server.log) > log_before


def _victim_and_evil(fake_hub, repo):
    """On the fake Hub: ``victim/private`` holding ``secret.png`` (barcode 60), and ``evil/ds``, a copy of the
    test repo; their folders."""
    from huggingface_hub import HfApi

    api = HfApi()
    api.create_repo("victim/private", repo_type="dataset")
    victim = fake_hub.repo_dir("victim/private")
    write_image(victim / "secret.png", 60, size=(64, 128))
    api.create_repo("evil/ds", repo_type="dataset")
    evil = fake_hub.repo_dir("evil/ds")
    shutil.copytree(repo.path, evil, dirs_exist_ok=True)
    return victim, evil


def test_a_hub_dataset_stays_in_its_repo_and_revision(fake_hub, repo, tmp_path, labels_of):
    victim, evil = _victim_and_evil(fake_hub, repo)
    uris = [
        ("videos/a.mp4", repo.a.pts_ns[3]),
        ("images/seven.png", None),
        (DataURI.from_image(barcode_frame(9, 64, 128)).uri, None),
        (str(victim / "secret.png"), None),
        ("hf://datasets/victim/private@main/secret.png", None),
        ("hf://datasets/evil/ds@main/images/seven.png", None),  # same repo, another revision
    ]
    rows = [{"frame": {"uri": u, "pts_ns": p}} for u, p in uris]
    (evil / "data").mkdir()
    features = Features({"frame": MediaRefFeature()})
    Dataset.from_list(rows, features=features).to_parquet(str(evil / "data" / "train-00000-of-00001.parquet"))
    fake_hub._commit("evil/ds")
    ds = hf_mediaref.load_dataset("evil/ds", split="train", cache_dir=str(tmp_path / "cache"))
    fmt = ds.with_format("mediaref")
    with opened_files() as seen:
        assert [_outcome(lambda i=i: fmt[i]["frame"]) for i in range(6)] == [3, 7, 9] + ["untrusted"] * 3
    assert not [p for p in seen if str(victim) in os.path.realpath(p)]
    allowed = ds.with_format("mediaref", access=get_media_access(ds).allowing("hf://datasets/victim/private"))
    assert _outcome(lambda: allowed[4]["frame"]) == 60


# ------------------------------------------------------------------------------- data never sets its trust
_CARRIED_ROOTS = {
    "local": "/",
    "home": "~",
    "loopback": None,  # filled with the test server's URL
    "other_repo": "hf://datasets/victim/private@main/",
}


def _with_metadata(path, entry: dict) -> None:
    """Rewrite the Parquet file at ``path`` with ``entry`` in its schema metadata under the old key."""
    import json

    import pyarrow.parquet as pq

    table = pq.read_table(path)
    metadata = {**(table.schema.metadata or {}), b"hf_mediaref": json.dumps(entry).encode()}
    pq.write_table(table.replace_schema_metadata(metadata), path)


@pytest.mark.parametrize("kind", sorted(_CARRIED_ROOTS))
def test_a_root_carried_in_parquet_metadata_is_ignored(kind, hostile, http_server, tmp_path):
    """A Parquet file whose schema metadata names a root (``/``, ``~``, a loopback URL, another private
    repo) reads inside its own folder, through plain ``datasets`` and ``hf_mediaref.load_dataset``."""
    folder, _outside, secret = hostile
    root = _CARRIED_ROOTS[kind] or f"{http_server.url}/"
    rows = [{"frame": {"uri": "images/seven.png"}}, {"frame": {"uri": str(secret)}}]
    path = str(folder / "evil.parquet")
    Dataset.from_list(rows, features=Features({"frame": MediaRefFeature()})).to_parquet(path)
    _with_metadata(path, {"media_root": root})
    log_before = len(http_server.log)
    loaders = {  # hf_mediaref's reads inside the folder; plain datasets' has no root at all
        hf_mediaref.load_dataset: (os.path.realpath(folder), [7, "untrusted"]),
        __import__("datasets").load_dataset: (None, ["unresolved", "untrusted"]),
    }
    for load, (expected_root, outcomes) in loaders.items():
        ds = load("parquet", data_files=path, split="train", cache_dir=str(tmp_path / "cache"))
        assert get_media_root(ds) == expected_root
        fmt = ds.with_format("mediaref")
        with opened_files() as seen:
            assert [_outcome(lambda i=i, fmt=fmt: fmt[i]["frame"]) for i in range(2)] == outcomes
        assert str(secret) not in [os.path.realpath(p) for p in seen]
    assert len(http_server.log) == log_before


def test_load_from_disk_ignores_what_the_saved_files_say(hostile, tmp_path):
    """``dataset_info.json`` naming a root (``media_root_relative`` climbing to ``/``) and ``state.json``'s
    format kwargs naming an access and an allow-list are data: the folder loaded stays the boundary."""
    import json

    import datasets

    folder, _outside, secret = hostile
    rows = [{"frame": {"uri": "images/seven.png"}}, {"frame": {"uri": str(secret)}}]
    table = Dataset.from_list(rows, features=Features({"frame": MediaRefFeature()}))
    saved = folder / "saved"
    table.with_format("mediaref", access=MediaAccess(folder, allow_uris="*")).save_to_disk(str(saved))
    state = json.loads((saved / "state.json").read_text())
    assert state["_format_kwargs"]["access"] == {"root": str(folder), "allow_uris": ["*"]}  # no credentials
    info = json.loads((saved / "dataset_info.json").read_text())
    info["hf_mediaref"] = {"media_root": "/", "media_root_relative": "../../../../../.."}
    (saved / "dataset_info.json").write_text(json.dumps(info))
    state["_format_kwargs"]["allow_uris"] = ["*"]
    state["_format_kwargs"]["storage_options"] = {"hf": {"endpoint": "https://elsewhere.example"}}
    (saved / "state.json").write_text(json.dumps(state))
    for back, root in (
        (datasets.load_from_disk(str(saved)), None),  # plain datasets: no root
        (hf_mediaref.load_from_disk(str(saved)), os.path.realpath(saved)),
    ):
        assert get_media_root(back) == root
        assert back.format["type"] == "mediaref"  # restored, but its access is a plain dict: ignored
        with opened_files() as seen:
            assert _outcome(lambda back=back: back[1]["frame"]) == "untrusted"
        assert str(secret) not in [os.path.realpath(p) for p in seen]
    # hf_mediaref's loader also drops where a saved format would send reads (storage_options)
    assert "storage_options" not in back.format["format_kwargs"]
    moved = hf_mediaref.load_from_disk(str(saved), access=MediaAccess(folder))  # the media live beside it
    assert "storage_options" not in moved.format["format_kwargs"]
    assert _outcome(lambda: moved[0]["frame"]) == 7


def test_an_allowance_given_to_one_dataset_does_not_reach_another(hostile, http_server, fake_dns, fast_http):
    """Dataset A allows a host; dataset B's refs to that host are still held to public addresses."""
    folder, _, _ = hostile
    port = http_server.url.rsplit(":", 1)[1]
    url = f"http://rebind.test:{port}/img7.png"
    features = Features({"frame": MediaRefFeature()})
    a = set_media_root(Dataset.from_list([{"frame": url}], features=features), folder)
    b = set_media_root(Dataset.from_list([{"frame": url}], features=features), folder)
    allowed = a.with_format("mediaref", access=get_media_access(a).allowing(f"http://rebind.test:{port}/"))
    assert _outcome(lambda: allowed[0]["frame"]) == 7
    with pytest.raises(UntrustedRefError, match="non-public address"):
        b.with_format("mediaref")[0]


def test_a_video_opened_under_one_datasets_allowance_is_not_reused_by_another(
    h264_video, http_server, fake_dns, fast_http, tmp_path
):
    """Dataset A allows a host whose name resolves to loopback and decodes a frame of a video there; dataset
    B names the same video and holds the host to public addresses: B's read does not take A's open
    container (with its bytes) from the cache, it opens its own, which is refused when it connects."""
    from hf_mediaref.testing import read_index

    port = http_server.url.rsplit(":", 1)[1]
    url = f"http://rebind.test:{port}/{h264_video.path.name}"
    rows = [{"frame": {"uri": url, "pts_ns": h264_video.pts_ns[i]}} for i in (3, 4)]
    features = Features({"frame": MediaRefFeature()})
    a = set_media_root(Dataset.from_list(rows, features=features), tmp_path)
    b = set_media_root(Dataset.from_list(rows, features=features), tmp_path)
    allowed = a.with_format("mediaref", access=get_media_access(a).allowing(f"http://rebind.test:{port}/"))
    assert read_index(allowed[0]["frame"]) == 3
    log_before = len(http_server.log)
    with pytest.raises(UntrustedRefError, match="non-public address"):
        b.with_format("mediaref")[1]
    assert len(http_server.log) == log_before
    assert read_index(allowed[1]["frame"]) == 4  # A's own reads go on


def test_decode_stream_reads_under_its_datasets_access(hostile, http_server, fake_dns, fast_http):
    """A streaming dataset's refs to a host name that resolves to loopback are refused when connecting
    (``decode_stream`` takes the dataset's access and its public-address rule), unless that access allows
    the host."""
    folder, _, _ = hostile
    port = http_server.url.rsplit(":", 1)[1]
    rows = [{"frame": {"uri": f"http://rebind.test:{port}/img7.png"}}]
    table = Dataset.from_list(rows, features=Features({"frame": MediaRefFeature()}))
    ids = set_media_root(table.to_iterable_dataset(), folder)
    log_before = len(http_server.log)
    with pytest.raises(UntrustedRefError, match="non-public address"):
        next(iter(hf_mediaref.hf.decode_stream(ids, batch_size=1)))
    assert len(http_server.log) == log_before
    allowed = get_media_access(ids).allowing(f"http://rebind.test:{port}/")
    frame = next(iter(hf_mediaref.hf.decode_stream(ids, batch_size=1, access=allowed)))["frame"]
    from hf_mediaref.testing import read_index

    assert read_index(frame) == 7


def test_decode_transform_refuses_arguments_it_would_drop(tmp_path):
    """root=, allow_uris= and access= make one access, as for Ray's decoder: a root beside an access, or an
    allowance that widens nothing, raises instead of being dropped silently."""
    access = MediaAccess(str(tmp_path))
    with pytest.raises(ValueError, match="not both"):
        decode_transform(root=str(tmp_path), access=access)
    with pytest.raises(ValueError, match="allow_uris"):
        decode_transform(allow_uris=["https://media.example/"])
    with pytest.raises(TypeError, match="MediaAccess"):
        decode_transform(access=str(tmp_path))
    widened = decode_transform(access=access, allow_uris=["https://media.example/"]).access
    assert widened == access.allowing(["https://media.example/"])
    assert decode_transform(root=access).access == access


@pytest.mark.parametrize("kind", sorted(_CARRIED_ROOTS))
def test_a_hub_repo_whose_parquet_metadata_and_card_name_a_root_reads_inside_it(
    kind, fake_hub, repo, http_server, tmp_path
):
    """The Hub half of the finding: a repo whose Parquet schema metadata and card both claim a root (``/``,
    ``~``, a loopback URL, another private repo), read by every loader (``hf_mediaref.load_dataset`` of the
    repo, ``load_dataset("parquet", data_files="hf://datasets/evil/ds/...")`` plain and ours, plain
    ``load_dataset`` of the repo): its refs read inside the repo (hf_mediaref's loaders) or nowhere beyond
    public URLs (plain ones); the local file, the loopback server and the other repo are never read."""
    import datasets

    root = _CARRIED_ROOTS[kind] or f"{http_server.url}/"
    victim, evil = _victim_and_evil(fake_hub, repo)
    secret = tmp_path / "secret.png"
    write_image(secret, 50, size=(64, 128))
    uris = [
        "images/seven.png",
        str(secret),
        f"{http_server.url}/img7.png",
        "hf://datasets/victim/private@main/secret.png",
    ]
    (evil / "data").mkdir()
    shard = evil / "data" / "train-00000-of-00001.parquet"
    table = Dataset.from_list(
        [{"frame": {"uri": u}} for u in uris], features=Features({"frame": MediaRefFeature()})
    )
    table.to_parquet(str(shard))
    _with_metadata(str(shard), {"media_root": root, "media_root_relative": "../../../.."})
    (evil / "README.md").write_text(f"---\nhf_mediaref:\n  media_root: {root}\n---\n# evil\n")
    fake_hub._commit("evil/ds")
    files = "hf://datasets/evil/ds/data/*.parquet"
    cache = str(tmp_path / "cache")
    loads = {  # loader -> (root, outcomes of the four refs)
        "ours": (
            lambda: hf_mediaref.load_dataset("evil/ds", split="train", cache_dir=cache),
            f"hf://datasets/evil/ds@{fake_hub.sha('evil/ds')}/",
            [7, "untrusted", "untrusted", "untrusted"],
        ),
        "ours parquet": (
            lambda: hf_mediaref.load_dataset("parquet", data_files=files, split="train", cache_dir=cache),
            "hf://datasets/evil/ds/",
            [7, "untrusted", "untrusted", "untrusted"],
        ),
        "plain": (
            lambda: datasets.load_dataset("evil/ds", split="train", cache_dir=cache),
            None,
            ["unresolved", "untrusted", "untrusted", "untrusted"],
        ),
        "plain parquet": (
            lambda: datasets.load_dataset("parquet", data_files=files, split="train", cache_dir=cache),
            None,
            ["unresolved", "untrusted", "untrusted", "untrusted"],
        ),
    }
    log_before = len(http_server.log)
    for name, (load, expected_root, outcomes) in loads.items():
        ds = load()
        assert get_media_root(ds) == expected_root, name
        fmt = ds.with_format("mediaref")
        with opened_files() as seen:
            assert [_outcome(lambda i=i, fmt=fmt: fmt[i]["frame"]) for i in range(4)] == outcomes, name
        assert not [p for p in seen if os.path.realpath(p) in (str(secret), str(victim / "secret.png"))], name
    assert len(http_server.log) == log_before


def test_the_sampler_and_decode_ahead_hold_the_boundary_of_the_format(hostile, http_server):
    """``VideoBlockBatchSampler`` reads no media (it groups rows by their stored URI); ``DecodeAhead`` decodes
    its batches ahead through the dataset's ``"mediaref"`` format, so under the format's access: a batch
    holding a ref outside the folder raises at that batch and nothing outside is read; the format's
    ``access=`` widens it."""
    pytest.importorskip("torch")
    from torch.utils.data import DataLoader

    from hf_mediaref.hf import DecodeAhead, VideoBlockBatchSampler
    from hf_mediaref.testing import read_index

    folder, outside, _ = hostile
    ds = hf_mediaref.load_dataset(str(folder), split="train")
    log_before = len(http_server.log)

    def batches(frames, rows):
        subset = frames.select(rows)
        sampler = VideoBlockBatchSampler(subset, 1, column="frame", shuffle=False)
        loader = DataLoader(DecodeAhead(subset, sampler, lanes=2), batch_sampler=sampler, collate_fn=_as_rows)
        return sorted(read_index(row["frame"]) for batch in loader for row in batch)

    frames = ds.with_format("mediaref")
    with opened_files() as seen:
        assert batches(frames, [0, 1, 2]) == [3, 7, 9]
        with pytest.raises(UntrustedRefError):
            batches(frames, [0, 1, 3])
        with pytest.raises(UntrustedRefError):
            batches(frames, [0, 6])
    _nothing_outside(seen, outside, http_server, log_before)
    wide = ds.with_format("mediaref", access=get_media_access(ds).allowing([outside]))
    assert batches(wide, [0, 3, 6]) == [3, 50, 50]


@pytest.mark.parametrize(
    "derive",
    [
        lambda ds: ds.rename_column("label", "number"),
        lambda ds: ds.select_columns(["frame"]),
        lambda ds: ds.select([0, 3]),
        lambda ds: ds.with_format("mediaref"),
    ],
    ids=["rename_column", "select_columns", "select", "with_format"],
)
def test_widening_a_derived_dataset_leaves_its_parent_as_it_was(derive, hostile):
    """``datasets`` builds some derived datasets (``rename_column``, ``select_columns``) around the parent's
    feature objects: giving the child another access must not give it to the parent."""
    folder, outside, _ = hostile
    parent = hf_mediaref.load_dataset(str(folder), split="train")
    access = get_media_access(parent)
    child = derive(parent)
    hf_mediaref.hf.set_media_access(child, access.allowing([outside]))
    assert get_media_access(parent) == access
    assert _outcome(lambda: parent.with_format("mediaref")[3]["frame"]) == "untrusted"
    assert _outcome(lambda: child.with_format("mediaref")[3 if len(child) > 3 else 1]["frame"]) == 50
    hf_mediaref.hf.set_media_access(child, None)
    assert get_media_access(parent) == access


def test_save_to_disk_writes_no_credentials_of_the_formats_access(tmp_path):
    """A format's ``access=`` is written into ``state.json`` as its JSON form: root and allow-list, never its
    token or storage options (a saved folder is shared and pushed)."""
    table = Dataset.from_list([{"frame": {"uri": "x.png"}}], features=Features({"frame": MediaRefFeature()}))
    access = MediaAccess(tmp_path, token="hf_token_secret", storage_options={"s3": {"secret": "s3_secret"}})
    table.with_format("mediaref", access=access).save_to_disk(str(tmp_path / "saved"))
    written = "".join(p.read_text(errors="replace") for p in (tmp_path / "saved").iterdir() if p.is_file())
    assert "state.json" in {p.name for p in (tmp_path / "saved").iterdir()}
    assert "hf_token_secret" not in written and "s3_secret" not in written
    assert str(tmp_path) in written  # the root is there: the test reads what was written


# ------------------------------------------------------------------------------- refs taken out of a dataset
@pytest.fixture
def rebound(tmp_path, repo, http_server, h264_video, png_image, fake_dns, fast_http):
    """A dataset folder (loaded with ``hf_mediaref.load_dataset``) whose table holds a good ref (row 0), an
    image (row 1) and two video frames (rows 2, 3) on a host name that resolves to loopback."""
    folder = tmp_path / "rebound"
    shutil.copytree(repo.path, folder)
    port = http_server.url.rsplit(":", 1)[1]
    base = f"http://rebind.test:{port}/"
    rows = [
        {"frame": {"uri": "images/seven.png", "pts_ns": None}},
        {"frame": {"uri": f"{base}img7.png", "pts_ns": None}},
        {"frame": {"uri": f"{base}{h264_video.path.name}", "pts_ns": h264_video.pts_ns[3]}},
        {"frame": {"uri": f"{base}{h264_video.path.name}", "pts_ns": h264_video.pts_ns[4]}},
    ]
    (folder / "data").mkdir()
    features = Features({"frame": MediaRefFeature()})
    Dataset.from_list(rows, features=features).to_parquet(
        str(folder / "data" / "train-00000-of-00001.parquet")
    )
    return folder, base


def _refused(read, http_server):
    """``read()`` raises the format road's error for a host name resolving to loopback, asking nothing."""
    log_before = len(http_server.log)
    with pytest.raises(UntrustedRefError, match="non-public address 127.0.0.1") as info:
        read()
    assert info.value.uri and "rebind.test" in info.value.uri
    assert len(http_server.log) == log_before, "the loopback server was asked"


@pytest.mark.parametrize("loader", ["load_dataset", "set_media_access"])
def test_refs_taken_out_of_a_dataset_read_under_its_access(loader, rebound, http_server, labels_of):
    """A ref a dataset resolved (``ds[i]["frame"]``) carries the access that checked it: decoding it without
    ``access=`` (``to_rgb_array``, ``to_pil_image``, ``batch_decode``, ``decode_transform()``) follows that
    access's connect-time rule, as the ``"mediaref"`` format does (the audit's gap G1)."""
    folder, base = rebound
    if loader == "load_dataset":
        ds = hf_mediaref.load_dataset(str(folder), split="train")
    else:
        import datasets

        plain = datasets.load_dataset(str(folder), split="train")
        ds = hf_mediaref.hf.set_media_access(plain, MediaAccess(str(folder)))
    _refused(lambda: ds.with_format("mediaref")[1], http_server)  # the format road, for reference
    assert labels_of([ds[0]["frame"].to_rgb_array()]) == [7]
    for row in (1, 2):
        _refused(lambda row=row: ds[row]["frame"].to_rgb_array(), http_server)
        _refused(lambda row=row: ds[row]["frame"].to_pil_image(), http_server)
        _refused(lambda row=row: hf_mediaref.batch_decode([ds[row]["frame"]]), http_server)
    _refused(lambda: hf_mediaref.batch_decode(ds[:]["frame"]), http_server)
    _refused(lambda: hf_mediaref.batch_decode(ds[2:4]["frame"], size=(32, 32)), http_server)
    _refused(lambda: ds[1]["frame"].validate_uri(), http_server)  # a HEAD request is a connection too
    tfm = ds.with_transform(decode_transform())
    assert labels_of([tfm[0]["frame"]]) == [7]
    for index in (1, 2, slice(None)):
        _refused(lambda index=index: tfm[index], http_server)
    # the dataset's allowance travels with its refs (set_media_access works in place: on a copy)
    allowed = hf_mediaref.hf.set_media_access(ds.select(range(4)), get_media_access(ds).allowing(base))
    assert labels_of([allowed[1]["frame"].to_rgb_array(), allowed[2]["frame"].to_rgb_array()]) == [7, 3]
    assert labels_of(hf_mediaref.batch_decode(allowed[:]["frame"])) == [7, 7, 3, 4]
    assert allowed[1]["frame"].validate_uri()
    assert labels_of(allowed.with_transform(decode_transform())[:]["frame"]) == [7, 7, 3, 4]
    # an explicit access= still wins, both ways
    held = ds[:]["frame"]
    assert labels_of(hf_mediaref.batch_decode(held, access=get_media_access(allowed))) == [7, 7, 3, 4]
    _refused(
        lambda: hf_mediaref.batch_decode(allowed[1:2]["frame"], access=get_media_access(ds)), http_server
    )
    # a ref built in code from the same URI reads as refs built in code always did
    assert labels_of([MediaRef(ds[1]["frame"].uri).to_rgb_array()]) == [7]


def test_refs_of_two_datasets_decode_each_under_its_own_access(rebound, http_server, labels_of):
    """``batch_decode`` of refs taken out of two datasets: each group reads under the rule of its own
    dataset's access, the frames come back in order; refs built in code keep no rule."""
    folder, base = rebound
    held = hf_mediaref.load_dataset(str(folder), split="train")
    allowed = hf_mediaref.load_dataset(str(folder), split="train", allow_uris=[base])
    a, h = allowed[:]["frame"], held[:]["frame"]
    code = MediaRef(a[1].uri)
    assert labels_of(hf_mediaref.batch_decode([a[2], h[0], code, a[1], h[0], a[3]])) == [3, 7, 7, 7, 7, 4]
    _refused(lambda: hf_mediaref.batch_decode([a[2], h[1], a[3]]), http_server)
    _refused(lambda: hf_mediaref.batch_decode([h[2], a[0]]), http_server)


def test_a_ref_carries_its_access_outside_its_value(rebound):
    """The access a dataset's ref carries is no part of its value: equality, hash, order, repr, dumps and
    what a table stores are those of the ref built in code; pickling (DataLoader workers) keeps it."""
    import pickle

    folder, _ = rebound
    ds = hf_mediaref.load_dataset(str(folder), split="train")
    ref = ds[2]["frame"]
    code = MediaRef(ref.uri, ref.pts_ns)
    assert ref._access == get_media_access(ds) and code._access is None
    assert ref == code and hash(ref) == hash(code) and len({ref, code}) == 1
    assert not (ref < code or ref > code) and ref <= code and ref >= code
    assert repr(ref) == repr(code) and str(ref) == str(code)
    assert ref.model_dump() == code.model_dump() == {"uri": ref.uri, "pts_ns": ref.pts_ns}
    assert ref.model_dump_json() == code.model_dump_json()
    assert ref != MediaRef(ref.uri, ref.pts_ns + 1)
    stored = Dataset.from_list([{"frame": ref}], features=Features({"frame": MediaRefFeature()}))
    assert stored.data.column("frame").to_pylist() == [{"uri": ref.uri, "pts_ns": ref.pts_ns}]
    again = pickle.loads(pickle.dumps(ref))
    assert again == ref and again._access == ref._access
    with pytest.raises(hf_mediaref.errors.InvalidRefError):  # data cannot give a ref an access
        MediaRef.model_validate({"uri": ref.uri, "_access": get_media_access(ds)})
    assert MediaRef.model_validate({"uri": ref.uri, "pts_ns": ref.pts_ns})._access is None


def test_window_frames_read_under_the_access_of_their_ref(rebound, http_server, labels_of):
    """Windows (without episode ranges: the video's bounds come from its index) read under the access of
    the ref they are around, on the format road and through ``decode_transform()`` without ``access=``."""
    folder, base = rebound
    ds = hf_mediaref.load_dataset(str(folder), split="train").select([2, 3])
    windows = {"frame": [-0.1, 0.0]}
    _refused(lambda: ds.with_format("mediaref", windows=windows)[0], http_server)
    _refused(lambda: ds.with_transform(decode_transform(windows=windows))[0], http_server)
    allowed = hf_mediaref.hf.set_media_access(ds.select([0, 1]), get_media_access(ds).allowing(base))
    stacks = allowed.with_transform(decode_transform(windows=windows))[:]["frame"]
    assert [labels_of(list(stack)) for stack in stacks] == [[0, 3], [1, 4]]
    stacks = allowed.with_format("mediaref", windows=windows)[:]["frame"]
    assert [labels_of(list(stack)) for stack in stacks] == [[0, 3], [1, 4]]


def test_refs_from_dataloader_workers_keep_their_access(rebound, http_server, labels_of):
    """Refs a DataLoader worker read (python format, rows collated as they are) come back to the main
    process with the access that checked them: decoded there without ``access=``, they are still held."""
    pytest.importorskip("torch")
    from torch.utils.data import DataLoader

    folder, _ = rebound
    ds = hf_mediaref.load_dataset(str(folder), split="train")
    loader = DataLoader(ds, batch_size=4, num_workers=1, multiprocessing_context="spawn", collate_fn=_as_rows)
    refs = [row["frame"] for batch in loader for row in batch]
    assert refs == ds[:]["frame"] and all(ref._access == get_media_access(ds) for ref in refs)
    assert labels_of([refs[0].to_rgb_array()]) == [7]
    _refused(lambda: hf_mediaref.batch_decode(refs), http_server)


def test_a_column_the_data_marks_decode_false_is_held_by_decode_transform(hostile, http_server):
    """The ``decode=False`` marker is stored in the data (the ``uri`` sub-feature's ``id``). Read back, the
    column decodes anyway: rows as plain ``{"uri", "pts_ns"}`` dicts would carry no access, and
    ``decode_transform()`` without ``access=`` decodes such dicts as refs built in code (a file outside the
    dataset's folder was read). Its rows are refs that carry the dataset's access, refused outside it."""
    folder, outside, secret = hostile
    loose = folder.parent / "loose"
    shutil.copytree(folder, loose, ignore=shutil.ignore_patterns("data"))
    (loose / "data").mkdir()
    rows = [{"frame": {"uri": str(secret), "pts_ns": None}}]
    features = Features({"frame": MediaRefFeature(decode=False)})
    Dataset.from_list(rows, features=features).to_parquet(
        str(loose / "data" / "train-00000-of-00001.parquet")
    )
    ds = hf_mediaref.load_dataset(str(loose), split="train")
    with opened_files() as seen, pytest.raises(UntrustedRefError):
        ds.with_transform(decode_transform())[0]
    _nothing_outside(seen, outside, http_server, len(http_server.log))
