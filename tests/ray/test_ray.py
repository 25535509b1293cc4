"""hf_mediaref.ray on a real local Ray runtime (ray.init(num_cpus=2)), started once for this module.

Ray starts in seconds and each Dataset run costs a few more on a small machine, so Ray runs are few; what
does not need the runtime (batch kinds, errors, the shuffle's plan) is checked by calling the same code
directly."""

from __future__ import annotations

import functools
import json
import os
import pickle
import types

import numpy as np
import pytest

ray = pytest.importorskip("ray")
pa = pytest.importorskip("pyarrow")
pq = pytest.importorskip("pyarrow.parquet")

from hf_mediaref import MediaAccess, MediaRef, parse_allow_uris  # noqa: E402
from hf_mediaref.arrow import STORAGE_TYPE  # noqa: E402
from hf_mediaref.errors import InvalidRefError, PathEscapeError, UnresolvedPathError, UntrustedRefError  # noqa: E402
from hf_mediaref.ray import MediaDecoder, _read, decode_batch, read_mediaref, resolve_roots, video_shuffle  # noqa: E402
from hf_mediaref.ray._decode import MEDIA_ROOTS_KEY  # noqa: E402
from hf_mediaref.testing import read_index, write_image, write_video  # noqa: E402

pytestmark = pytest.mark.timeout(600)


@pytest.fixture(scope="module")
def runtime():
    """A local Ray runtime with 2 CPUs, shut down after this module."""
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level="ERROR")
    context = ray.data.DataContext.get_current()
    context.enable_progress_bars = False
    context.execution_options.preserve_order = True
    yield ray
    ray.shutdown()


@pytest.fixture(scope="module")
def repo(tmp_path_factory):
    """A repo folder: ``videos/a.mp4`` (frames 0..29, 10 fps, keyframe every 10), ``videos/b.mp4`` (frames
    100..119), ``images/seven.png``; ``data/train-*.parquet`` with relative refs (a null row last) and
    ``data/test-*.parquet``."""
    root = tmp_path_factory.mktemp("ray-repo")
    for sub in ("videos", "images", "data"):
        (root / sub).mkdir()
    a = write_video(root / "videos" / "a.mp4", 30, fps=10, gop=10, size=(64, 128))
    b = write_video(root / "videos" / "b.mp4", 20, fps=10, gop=10, size=(64, 128), first_index=100)
    write_image(root / "images" / "seven.png", 7, size=(64, 128))
    refs = [{"uri": "videos/a.mp4", "pts_ns": a.pts_ns[i]} for i in range(0, 30, 3)]
    refs += [{"uri": "videos/b.mp4", "pts_ns": b.pts_ns[i]} for i in range(0, 20, 5)]
    refs += [{"uri": "images/seven.png", "pts_ns": None}, None]
    labels = [*range(0, 30, 3), 100, 105, 110, 115, 7, -1]
    table = pa.table({"frame": pa.array(refs, STORAGE_TYPE), "label": labels})
    pq.write_table(table, root / "data" / "train-00000-of-00001.parquet")
    pq.write_table(table.slice(0, 2), root / "data" / "test-00000-of-00001.parquet")
    return types.SimpleNamespace(path=root, a=a, b=b, table=table, labels=labels)


@pytest.fixture(scope="module")
def hostile(tmp_path_factory, media_dir, http_server):
    """A dataset folder whose ``data/train-*.parquet`` holds a ref inside it (row 0: ``videos/a.mp4``, frame
    4) and refs reading outside it: (1) an absolute path, (2) a ``file://`` URI and (3) a ``../`` escape to
    ``outside/far.mp4`` (frames 200..), (4) a loopback ``http://127.0.0.1`` URL of ``ray-far.mp4`` (frames
    300.., served by the test server); with each outside ref, the ``allow_uris`` entry that allows it."""
    base = tmp_path_factory.mktemp("ray-hostile")
    folder, outside = base / "folder", base / "outside"
    for sub in (folder / "videos", folder / "data", outside):
        sub.mkdir(parents=True)
    a = write_video(folder / "videos" / "a.mp4", 10, fps=10, gop=5, size=(64, 128))
    far = write_video(outside / "far.mp4", 10, fps=10, gop=5, size=(64, 128), first_index=200)
    web = write_video(media_dir / "ray-far.mp4", 10, fps=10, gop=5, size=(64, 128), first_index=300)
    cases = [
        ("videos/a.mp4", a.pts_ns[4], 4, None),
        (str(outside / "far.mp4"), far.pts_ns[1], 201, str(outside)),  # (b) absolute path
        ((outside / "far.mp4").as_uri(), far.pts_ns[2], 202, outside.as_uri()),  # (c) file://
        ("../outside/far.mp4", far.pts_ns[3], 203, f"{outside}/"),  # (d) `..`
        (f"{http_server.url}/ray-far.mp4", web.pts_ns[5], 305, f"{http_server.url}/"),  # (e) loopback HTTP
    ]
    table = pa.table(
        {
            "frame": pa.array([{"uri": u, "pts_ns": p} for u, p, _, _ in cases], STORAGE_TYPE),
            "label": [label for _, _, label, _ in cases],
        }
    )
    pq.write_table(table, folder / "data" / "train-00000-of-00001.parquet")
    return types.SimpleNamespace(
        folder=folder,
        table=table,
        uris=[c[0] for c in cases],
        labels=[c[2] for c in cases],
        allow=[c[3] for c in cases],
        file=str(folder / "data" / "train-00000-of-00001.parquet"),
    )


@pytest.fixture(scope="module")
def claims(tmp_path_factory, hostile):
    """Data that claims a wider root: ``claims/data.parquet`` whose schema metadata says
    ``{"hf_mediaref": "{\\"media_root\\": \\"/\\"}"}`` (the key earlier versions read a root from), with a
    ref inside its folder (``videos/a.mp4``, frame 4) and the absolute path of ``outside/far.mp4`` (which
    that root would reach); a ``save_to_disk`` folder of the same rows whose ``state.json`` format kwargs and
    ``dataset_info.json`` claim the same; and ``web/data.parquet`` with one loopback URL ref (frame 305)."""
    datasets = pytest.importorskip("datasets")
    base = tmp_path_factory.mktemp("ray-claims")
    folder, web = base / "claims", base / "web"
    (folder / "videos").mkdir(parents=True)
    web.mkdir()
    a = write_video(folder / "videos" / "a.mp4", 10, fps=10, gop=5, size=(64, 128))
    refs = [{"uri": "videos/a.mp4", "pts_ns": a.pts_ns[4]}, {"uri": hostile.uris[1], "pts_ns": 100_000_000}]
    claim = {b"hf_mediaref": json.dumps({"media_root": "/"}).encode()}
    table = pa.table({"frame": pa.array(refs, STORAGE_TYPE), "label": [4, 201]})
    table = table.replace_schema_metadata(claim)
    pq.write_table(table, folder / "data.parquet")
    assert pq.read_schema(folder / "data.parquet").metadata[b"hf_mediaref"] == claim[b"hf_mediaref"]
    saved = base / "saved"
    datasets.Dataset(table).save_to_disk(str(saved))
    state = json.loads((saved / "state.json").read_text())
    state["_format_kwargs"] = {"access": {"root": "/", "allow_uris": ["*"]}, "media_root": "/"}
    (saved / "state.json").write_text(json.dumps(state))
    info = json.loads((saved / "dataset_info.json").read_text())
    (saved / "dataset_info.json").write_text(json.dumps({**info, "hf_mediaref": {"media_root": "/"}}))
    loopback = [{"uri": hostile.uris[4], "pts_ns": 500_000_000}]
    web_table = pa.table({"frame": pa.array(loopback, STORAGE_TYPE), "label": [305]})
    pq.write_table(web_table, web / "data.parquet")
    return types.SimpleNamespace(
        folder=folder, file=str(folder / "data.parquet"), saved=saved, web=web, outside=hostile.uris[1]
    )


def _labels(frames) -> list:
    """The barcode of every frame; None for an empty frame (a null ref)."""
    return [None if np.asarray(f).size == 0 else read_index(np.asarray(f)) for f in frames]


def _counting_decoder():
    """A MediaDecoder that also returns, per row, the engine calls and refs of its batch and the decoder
    threads it used, counted inside the Ray worker (defined here so Ray ships it by value)."""
    from hf_mediaref.ray import _decode

    class CountingDecoder(MediaDecoder):
        def __call__(self, batch):
            from hf_mediaref.video import collect_stats

            with collect_stats() as stats:
                out = super().__call__(batch)
            n = len(out["label"])
            out["calls"] = np.full(n, stats.calls)
            out["refs"] = np.full(n, stats.requested_refs)
            out["threads"] = np.full(n, _decode._worker_options(self.options).max_workers)
            return out

    return CountingDecoder


def _roots_reporting_decoder():
    """A MediaDecoder that also returns, per row, the accesses (``root|allow,...``) it finds in the
    DataContext Ray runs it with (defined here so Ray ships it by value)."""

    class RootsDecoder(MediaDecoder):
        def __call__(self, batch):
            from hf_mediaref.ray import _decode

            out = super().__call__(batch)
            roots = ";".join(f"{r.root}|{','.join(r.allow_uris)}" for r in _decode._context_roots())
            out["roots"] = np.array([roots] * len(out["label"]))
            return out

    return RootsDecoder


# --------------------------------------------------------------------------------------- on Ray


def test_read_and_decode_in_tasks_and_actors(runtime, repo):
    """A repo folder's refs come back resolved against it; tasks (numpy batches) and an actor (Arrow
    batches) return the right frames, one engine call per batch, one decoder thread per granted CPU."""
    ds = read_mediaref(repo.path, split="train").materialize()  # the 2-CPU actor leaves no CPU to a read
    rows = ds.take_all()
    assert [r["label"] for r in rows] == repo.labels
    assert rows[0]["frame"] == {"uri": str(repo.path / "videos" / "a.mp4"), "pts_ns": 0}
    assert rows[14]["frame"]["uri"] == str(repo.path / "images" / "seven.png")
    assert rows[-1]["frame"] is None
    assert read_mediaref(repo.path, split="test").count() == 2

    counting = _counting_decoder()
    tasks = ds.map_batches(counting(), batch_size=8).take_all()
    actors = ds.map_batches(
        counting,
        batch_size=8,
        batch_format="pyarrow",
        num_cpus=2,
        compute=ray.data.ActorPoolStrategy(size=1),
    ).take_all()
    for out, threads in ((tasks, 1), (actors, 2)):
        assert [r["label"] for r in out] == repo.labels
        assert _labels([r["frame"] for r in out]) == [*repo.labels[:-1], None]
        assert [r["calls"] for r in out] == [1] * 16  # one engine call per 8-row batch
        assert [r["refs"] for r in out] == [8] * 8 + [7] * 8  # the null row is no ref
        assert {r["threads"] for r in out} == {threads}


def test_an_actor_running_two_calls_at_once_returns_every_frame(runtime, repo, http_server, media_dir):
    """The remote road of docs/guides/ray.md: an actor that runs two calls of the decoder at once (one
    decoding while the other's reads wait on the network) returns every batch's own frames, from local files
    and from a loopback HTTP server (batches of 2 rows over 2 videos, in order)."""
    try:
        compute = ray.data.ActorPoolStrategy(
            size=1, max_concurrent_calls_per_actor=2, enable_true_multi_threading=True
        )
    except TypeError:
        pytest.skip("this Ray's ActorPoolStrategy runs one call per actor at a time")
    web = write_video(media_dir / "ray-two-calls.mp4", 20, fps=10, gop=5, size=(64, 128), first_index=400)
    rows = [
        {"uri": str(repo.path / "videos" / "a.mp4"), "pts_ns": repo.a.pts_ns[i]} for i in range(0, 30, 2)
    ] + [{"uri": f"{http_server.url}/ray-two-calls.mp4", "pts_ns": web.pts_ns[i]} for i in range(0, 20, 2)]
    labels = [*range(0, 30, 2), *range(400, 420, 2)]
    access = MediaAccess(repo.path, allow_uris=[http_server.url])
    ds = ray.data.from_arrow(pa.table({"frame": pa.array(rows, STORAGE_TYPE), "label": labels}))
    out = ds.map_batches(
        MediaDecoder, fn_constructor_kwargs={"access": access}, batch_size=2, compute=compute
    ).take_all()
    assert [r["label"] for r in out] == labels
    assert _labels([r["frame"] for r in out]) == labels


def test_read_parquet_files_save_to_disk_and_hub(runtime, repo, tmp_path):
    """Parquet files resolve against the folder they are in, a save_to_disk folder against itself, unless
    given a root or an access; a Hub repo's files are listed at its commit, refs resolved to
    hf://datasets/org/name@<commit>/."""
    datasets = pytest.importorskip("datasets")
    from hf_mediaref.testing.fake_hub import FakeHub

    train = str(repo.path / "data" / "train-00000-of-00001.parquet")
    assert read_mediaref(train).take(1)[0]["frame"]["uri"] == str(repo.path / "data" / "videos" / "a.mp4")
    frames = read_mediaref([train], root=repo.path).map_batches(decode_batch, batch_size=16).take(2)
    assert _labels([r["frame"] for r in frames]) == [0, 3]

    saved = tmp_path / "saved"
    datasets.Dataset(repo.table).save_to_disk(str(saved))
    in_saved = os.path.join(os.path.realpath(saved), "videos", "a.mp4")
    assert read_mediaref(saved).take(1)[0]["frame"]["uri"] == in_saved
    ds = read_mediaref(saved, access=MediaAccess(repo.path, token="hf_secret"))
    assert ds.take(2)[1]["frame"] == {"uri": str(repo.path / "videos" / "a.mp4"), "pts_ns": repo.a.pts_ns[3]}
    [kept] = ds.context.get_config(MEDIA_ROOTS_KEY)
    assert kept.root == str(repo.path) and kept.token == "hf_secret"

    with FakeHub(tmp_path / "hub") as hub:
        api = hub.api_class()()
        api.create_repo("org/frames", repo_type="dataset")
        from huggingface_hub import CommitOperationAdd

        adds = [CommitOperationAdd(f"data/{s}-00000-of-00001.parquet", train) for s in ("train", "test")]
        api.create_commit("org/frames", adds, repo_type="dataset")
        sha = hub.sha("org/frames")
        # the fake Hub's filesystem lives in this process only, so Ray's workers read the listed file locally
        for args in (("org/frames", None, ""), ("org/frames", "main", "data")):
            files, _, root = _read._hub_source(*args, "train", {})
            assert files == [f"datasets/org/frames@{sha}/data/train-00000-of-00001.parquet"]
            assert root == f"hf://datasets/org/frames@{sha}/"
        rows = resolve_roots(ray.data.read_parquet(train), root).take(1)
        assert rows[0]["frame"] == {"uri": f"hf://datasets/org/frames@{sha}/videos/a.mp4", "pts_ns": 0}


def test_video_shuffle_keeps_batches_within_few_videos(runtime):
    """32 videos x 32 refs in random row order: after video_shuffle(block_size=16) every 64-row batch spans
    at most 64 / 16 + 1 videos, each video's rows stay in blocks of 16 consecutive frames, no row is lost."""
    rng = np.random.default_rng(0)
    rows = [(f"/v/{v}.mp4", t * 50_000_000) for v in range(32) for t in range(32)]
    order = rng.permutation(len(rows))
    table = pa.table(
        {
            "frame": pa.array([{"uri": rows[i][0], "pts_ns": rows[i][1]} for i in order], STORAGE_TYPE),
            "row": order,
        }
    )
    ds = ray.data.from_arrow([table.slice(0, 500), table.slice(500)])
    shuffled = video_shuffle(ds, block_size=16, window=16, seed=3)
    batches = list(shuffled.iter_batches(batch_size=64, batch_format="pyarrow"))
    assert sorted(i for b in batches for i in b["row"].to_pylist()) == list(range(len(rows)))
    videos = [len(set(b["frame"].combine_chunks().field("uri").to_pylist())) for b in batches]
    assert max(videos) <= 5 and np.mean(videos) <= 5
    # blocks of 16: every aligned 16-row window is one video, its frames one block of consecutive frames
    flat = [rows[i] for b in batches for i in b["row"].to_pylist()]
    for start in range(0, len(flat), 16):
        window = flat[start : start + 16]
        assert len({uri for uri, _ in window}) == 1
        times = sorted(t for _, t in window)
        assert times[-1] - times[0] == 15 * 50_000_000 and times[0] % (16 * 50_000_000) == 0


def test_ray_holds_the_trust_boundary_of_the_root(runtime, hostile, http_server):
    """On Ray workers the root is a boundary with its allow-list: read_mediaref refuses the first ref that
    reads outside its folder (Ray's error names the UntrustedRefError and the ref); allowed, every ref
    decodes its own frame in an actor whose decoder keeps the root and allow-list, and finds the dataset's
    root and allow-list in its DataContext (not in the driver's); resolve_roots on Ray's own reader refuses
    too, as an UntrustedRefError with Ray's raise_original_map_exception."""
    log_before = len(http_server.log)
    with pytest.raises(ray.exceptions.RayTaskError) as info:
        read_mediaref(hostile.folder).take_all()
    message = str(info.value)
    assert "UntrustedRefError" in message and f"{hostile.uris[1]!r} points outside the media root" in message
    assert "allow_uris=" in message

    raw = ray.data.read_parquet(hostile.file)
    resolved = resolve_roots(raw, hostile.folder).map_batches(MediaDecoder(), batch_size=8)
    resolved.context.raise_original_map_exception = (
        True  # Ray raises the cause's class, not UserCodeException
    )
    with pytest.raises(UntrustedRefError) as info:
        resolved.take_all()
    assert isinstance(info.value, ray.exceptions.RayTaskError) and info.value.uri == hostile.uris[1]
    assert len(http_server.log) == log_before  # nothing was fetched

    allow = hostile.allow[1:]
    wide = read_mediaref(hostile.folder, allow_uris=allow).map_batches(
        _roots_reporting_decoder(),
        fn_constructor_kwargs={"root": hostile.folder, "allow_uris": allow},  # checked again in the actor
        batch_size=8,
        num_cpus=1,
        compute=ray.data.ActorPoolStrategy(size=1),
    )
    rows = wide.take_all()
    assert [r["label"] for r in rows] == hostile.labels
    assert _labels([r["frame"] for r in rows]) == hostile.labels
    assert rows[3]["frame"].shape == (64, 128, 3) and len(http_server.log) > log_before
    real = os.path.realpath(hostile.folder)
    assert {r["roots"] for r in rows} == {f"{real}|{','.join(parse_allow_uris(allow))}"}
    assert ray.data.DataContext.get_current().get_config(MEDIA_ROOTS_KEY) is None


def test_roots_come_from_where_the_data_was_read_never_from_the_data(runtime, claims):
    """A Parquet file whose schema metadata claims the root "/" (and a save_to_disk folder whose state.json
    and dataset_info.json claim it) read through read_mediaref: the root is the folder the data was read
    from, so the absolute ref that root would reach is refused, named in Ray's error; with allow_uris the
    same rows decode."""
    real = os.path.realpath(claims.folder)
    for path in (claims.file, [claims.file], claims.folder):
        assert read_mediaref(path).context.get_config(MEDIA_ROOTS_KEY) == (MediaAccess(real),)
    saved = read_mediaref(claims.saved)
    assert saved.context.get_config(MEDIA_ROOTS_KEY) == (MediaAccess(os.path.realpath(claims.saved)),)
    for ds in (read_mediaref(claims.file), saved):
        with pytest.raises(ray.exceptions.RayTaskError) as info:
            ds.take_all()
        message = str(info.value)
        assert "UntrustedRefError" in message
        assert f"{claims.outside!r} points outside the media root" in message
    allow = os.path.dirname(claims.outside)
    rows = read_mediaref(claims.file, allow_uris=[allow]).map_batches(MediaDecoder(), batch_size=8).take_all()
    assert _labels([r["frame"] for r in rows]) == [4, 201]


def test_an_allow_list_stays_with_its_dataset(runtime, claims, http_server):
    """Two datasets of the same loopback URL ref in one process: the one given allow_uris decodes it (in a
    task and an actor), the other, read after it, refuses it before any request: allow-lists travel with
    their dataset (its map, its own DataContext), never through the process or the Ray workers."""
    allow = f"{http_server.url}/"
    wide = read_mediaref(claims.web, allow_uris=[allow])
    narrow = read_mediaref(claims.web)
    assert wide.context.get_config(MEDIA_ROOTS_KEY)[0].allow_uris == (allow,)
    assert narrow.context.get_config(MEDIA_ROOTS_KEY)[0].allow_uris == ()
    for compute in (None, ray.data.ActorPoolStrategy(size=1)):
        decoder = MediaDecoder if compute is not None else MediaDecoder()
        rows = wide.map_batches(decoder, batch_size=8, compute=compute).take_all()
        assert _labels([r["frame"] for r in rows]) == [305]
    log_before = len(http_server.log)
    with pytest.raises(ray.exceptions.RayTaskError) as info:
        narrow.map_batches(MediaDecoder(), batch_size=8).take_all()
    message = str(info.value)
    assert "UntrustedRefError" in message and "non-public address '127.0.0.1'" in message
    assert http_server.url in message and len(http_server.log) == log_before
    assert ray.data.DataContext.get_current().get_config(MEDIA_ROOTS_KEY) is None


# --------------------------------------------------------------------------------------- without Ray


def test_each_ref_outside_the_root_is_refused_until_allowed(hostile, http_server):
    """What the Ray road runs in its workers, called directly for each outside ref (with the ref inside):
    resolve_roots' map and the decoder with a root or an access refuse it, naming it, before anything is
    read; its allow_uris entry (on the access, on the decoder) lets it decode its own frame; a MediaDecoder
    keeps its access, credentials included, through pickling."""
    log_before = len(http_server.log)
    for row in range(1, 5):
        table = hostile.table.take([0, row])
        uri, label, allow = hostile.uris[row], hostile.labels[row], hostile.allow[row]
        expected_error = PathEscapeError if uri.startswith("..") else UntrustedRefError
        other = hostile.allow[4] if row < 4 else hostile.allow[1]  # allows another ref, not this one
        for refuse in (
            _read._ResolveRoots(["frame"], MediaAccess(hostile.folder)),
            functools.partial(decode_batch, root=hostile.folder),
            functools.partial(decode_batch, access=MediaAccess(hostile.folder, other)),
            MediaDecoder(root=hostile.folder, allow_uris=other),
        ):
            with pytest.raises(expected_error) as info:
                refuse(table)
            assert info.value.uri == uri and f"{uri!r}" in str(info.value), uri
        assert len(http_server.log) == log_before, uri  # refused before any request

        resolved = _read._ResolveRoots(["frame"], MediaAccess(hostile.folder, allow))(table)
        assert _labels(decode_batch(resolved)["frame"]) == [4, label], uri
        access = MediaAccess(hostile.folder, [allow], token="hf_secret")
        decoder = pickle.loads(pickle.dumps(MediaDecoder(access=access)))
        assert decoder.access == access and decoder.access.token == "hf_secret", uri
        assert "hf_secret" not in repr(decoder) and "hf_secret" not in json.dumps(decoder.access)
        assert _labels(decoder(table)["frame"]) == [4, label], uri
        widened = MediaDecoder(root=MediaAccess(hostile.folder), allow_uris=allow)
        assert _labels(widened(table)["frame"]) == [4, label], uri
    trusted = decode_batch(hostile.table, root=hostile.folder, allow_uris="*")
    assert _labels(trusted["frame"]) == hostile.labels
    # absolute refs and no access (a table built in code): nothing is checked
    assert _labels(decode_batch(hostile.table.take([1, 2, 4]))["frame"]) == [201, 202, 305]


def test_access_arguments(hostile):
    """root= and allow_uris= build a MediaAccess; access= is one (widened by allow_uris); root= with access=,
    allow_uris= alone and a non-MediaAccess access= are refused when built."""
    assert MediaDecoder(root=hostile.folder, allow_uris="s3").access == MediaAccess(hostile.folder, "s3")
    assert MediaDecoder(access=MediaAccess(hostile.folder), allow_uris="s3").access.allow_uris == ("s3:",)
    assert MediaDecoder().access is None
    with pytest.raises(ValueError, match="not both"):
        MediaDecoder(root=hostile.folder, access=MediaAccess(hostile.folder))
    with pytest.raises(ValueError, match="allow_uris= widens a root"):
        MediaDecoder(allow_uris="*")
    with pytest.raises(TypeError, match="MediaAccess"):
        MediaDecoder(access={"root": "/", "allow_uris": ["*"]})  # a dict read back from data is not an access
    with pytest.raises(TypeError, match="MediaAccess"):
        _read._ResolveRoots(["frame"], "/")
    with pytest.raises(ValueError, match="root= or access="):
        resolve_roots(object(), allow_uris="*")


def test_files_root_is_where_the_files_are(tmp_path):
    """The root of Parquet files read by path: the deepest folder holding them all (after symlinks); URLs of
    one scheme and host: their common folder; else none."""
    (tmp_path / "real" / "a").mkdir(parents=True)
    (tmp_path / "real" / "b").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "real")
    real = os.path.realpath(tmp_path / "real")
    assert _read._files_root([str(tmp_path / "link" / "a" / "x.parquet")]) == os.path.join(real, "a")
    files = [str(tmp_path / "real" / "a" / "x.parquet"), str(tmp_path / "link" / "b" / "y.parquet")]
    assert _read._files_root(files) == real
    assert _read._files_root(["s3://b/d/x.parquet", "s3://b/d/e/y.parquet"]) == "s3://b/d/"
    assert _read._files_root(["s3://a/x.parquet", "s3://b/x.parquet"]) is None
    assert _read._files_root(["s3://a/x.parquet", "gs://a/x.parquet"]) is None
    assert _read._files_root(["s3://a/x.parquet", str(tmp_path / "x.parquet")]) is None


def test_decoders_in_other_workers_hold_host_names_to_public_addresses(
    hostile, http_server, fake_dns, fast_http
):
    """A host name in an http ref passes the read (it may be public); a decoder, in whatever worker, reads
    it under the access it was checked against and refuses the connection to the loopback address the name
    resolves to, nothing fetched: given the access, or finding the dataset's accesses in the DataContext Ray
    runs it with (several: any that holds it to public addresses holds it). An access allowing the host
    lets it through; a decoder with no access and no context reads refs built in code as they are."""
    prefix = f"http://rebind.test:{http_server.url.rsplit(':', 1)[1]}/"
    table = pa.table({"frame": pa.array([{"uri": prefix + "ray-far.mp4", "pts_ns": 0}], STORAGE_TYPE)})
    resolved = _read._ResolveRoots(["frame"], MediaAccess(hostile.folder))(table)
    assert resolved["frame"].to_pylist() == table["frame"].to_pylist()
    log_before = len(http_server.log)
    context = ray.data.DataContext.get_current()
    allowing = MediaAccess("/x", allow_uris=prefix)
    for decoder, roots in (
        (MediaDecoder(root=hostile.folder), None),
        (MediaDecoder(), (MediaAccess(hostile.folder),)),
        (MediaDecoder(), (MediaAccess("/elsewhere"), MediaAccess(hostile.folder))),
        (MediaDecoder(), (MediaAccess(hostile.folder), allowing)),  # kept accesses only narrow
    ):
        if roots is not None:
            context.set_config(MEDIA_ROOTS_KEY, roots)
        try:
            with pytest.raises(UntrustedRefError, match="non-public address 127.0.0.1"):
                decoder(resolved)
        finally:
            context.remove_config(MEDIA_ROOTS_KEY)
    assert len(http_server.log) == log_before
    assert _labels(MediaDecoder(access=allowing)(resolved)["frame"]) == [300]
    context.set_config(MEDIA_ROOTS_KEY, (allowing,))
    try:
        assert _labels(MediaDecoder()(resolved)["frame"]) == [300]
    finally:
        context.remove_config(MEDIA_ROOTS_KEY)
    assert _labels(MediaDecoder()(resolved)["frame"]) == [300]  # refs built in code: no rule


def test_decoder_takes_every_batch_kind(repo):
    """The decoder Ray calls: Arrow tables, numpy batches (an object array of ref dicts or MediaRefs) and
    pandas frames give the same frames; other columns come through; frames of one shape stack."""
    pd = pytest.importorskip("pandas")
    table = repo.table.slice(0, 15)  # no null row: frames stack into one array
    decoder = MediaDecoder(root=repo.path)
    numpy_batch = {"frame": np.array(table["frame"].to_pylist(), dtype=object), "label": np.arange(15)}
    refs = [MediaRef(r["uri"], r["pts_ns"]) for r in table["frame"].to_pylist()]
    batches = [table, numpy_batch, pd.DataFrame({"frame": table["frame"].to_pylist(), "label": range(15)})]
    batches.append({"frame": np.array([*refs, None], dtype=object)[:-1], "label": np.arange(15)})
    for batch in batches:
        out = decoder(batch)
        assert out["frame"].shape == (15, 64, 128, 3) and out["frame"].dtype == np.uint8
        assert _labels(out["frame"]) == repo.labels[:15]
        assert list(out["label"]) == list(np.asarray(batch["label"]))
    small = decode_batch(repo.table, ["frame"], root=repo.path, size=(32, 64), max_workers=1)
    assert small["frame"].dtype == object and small["frame"][15].shape == (0, 0, 3)
    assert small["frame"][0].shape == (32, 64, 3)
    pil = decode_batch(repo.table, root=repo.path, output="pil")["frame"]
    assert pil[15] is None and _labels(pil[:15]) == repo.labels[:15]


def test_decoder_errors_name_the_batch_row(repo):
    decoder = MediaDecoder(root=repo.path)
    with pytest.raises(TypeError, match="Ray Data batch"):
        decoder([{"uri": "videos/a.mp4", "pts_ns": 0}])
    with pytest.raises(KeyError, match="'image'"):
        MediaDecoder(["image"])(repo.table)
    with pytest.raises(UnresolvedPathError, match="videos/a.mp4"):
        MediaDecoder()(repo.table)
    bad = {"frame": np.array([{"uri": "videos/a.mp4", "pts_ns": 0}, {"uri": "", "pts_ns": 0}], dtype=object)}
    with pytest.raises(InvalidRefError, match="column 'frame', row 1 of the batch"):
        decoder(bad)
    with pytest.raises(ValueError, match="output"):
        MediaDecoder(output="jpeg")


def test_resolve_roots_refuses_a_dataset_without_refs(runtime):
    with pytest.raises(ValueError, match="no column holds media references"):
        resolve_roots(ray.data.from_items([{"x": 1}]), "/data")


def test_decoded_batches_of_a_built_dataset_go_through_iter_torch_batches(runtime, repo, tmp_path):
    """What ``hf-mediaref build`` writes (strings: video_id, codec) read, decoded and iterated as torch
    batches: Ray's default collate cannot make tensors of strings; torch_collate keeps them as lists, frames
    as uint8 tensors; selecting the tensor columns works with the default collate."""
    torch = pytest.importorskip("torch")
    from hf_mediaref.cli import main
    from hf_mediaref.ray import torch_collate

    out = tmp_path / "built"
    assert main(["build", str(repo.path / "videos"), "-o", str(out), "--every", "4"]) == 0
    refs = read_mediaref(out, split="train").materialize()
    assert {"video_id", "codec", "frame_index"} <= set(refs.schema().names)
    frames = refs.map_batches(MediaDecoder(size=(64, 128)), batch_size=4).materialize()
    with pytest.raises(TypeError, match="str"):  # Ray's own collate: why torch_collate exists
        next(iter(frames.iter_torch_batches(batch_size=4)))
    seen = []
    for batch in frames.iter_torch_batches(batch_size=4, collate_fn=torch_collate()):
        assert batch["frame"].dtype == torch.uint8 and batch["frame"].shape[1:] == (64, 128, 3)
        assert isinstance(batch["video_id"], list) and isinstance(batch["codec"][0], str)
        assert batch["frame_index"].dtype == torch.int64
        first = {"a.mp4": 0, "b.mp4": 100}
        for frame, video, index in zip(batch["frame"], batch["video_id"], batch["frame_index"].tolist()):
            assert read_index(frame.numpy()) == first[video.rsplit("/", 1)[-1]] + index
            seen.append((video, index))
    assert len(seen) == refs.count() == 8 + 5  # every 4th frame of 30 and of 20
    tensors_only = frames.select_columns(["frame", "frame_index"]).iter_torch_batches(batch_size=4)
    assert sum(len(b["frame_index"]) for b in tensors_only) == len(seen)
    assert pickle.loads(pickle.dumps(torch_collate("cpu"))).device == "cpu"


def test_torch_collate_takes_frames_of_several_shapes_and_null_refs(repo):
    """A null ref's empty frame (and frames of other sizes) come as a list of tensors; no runtime needed."""
    torch = pytest.importorskip("torch")
    from hf_mediaref.ray import torch_collate

    rows = repo.table.slice(13, 3).to_pydict()  # b.mp4, the image, a null ref: a numpy batch, as Ray's
    refs = np.empty(3, dtype=object)
    refs[:] = rows["frame"]
    batch = decode_batch({"frame": refs, "label": np.asarray(rows["label"])}, root=repo.path)
    collated = torch_collate()(batch)
    assert isinstance(collated["frame"], list) and [tuple(t.shape) for t in collated["frame"]] == [
        (64, 128, 3),
        (64, 128, 3),
        (0, 0, 3),
    ]
    assert collated["label"].tolist() == [115, 7, -1] and isinstance(collated["label"], torch.Tensor)


def test_torch_collate_takes_read_only_arrays_without_a_warning():
    """Batches from Ray's object store are read-only arrays: the tensors share them (no copy) without torch's
    'not writable' UserWarning on every run, as Ray's own collate does. Torch warns once per process, so a
    fresh one is asked."""
    import subprocess
    import sys

    pytest.importorskip("torch")
    code = (
        "import warnings, numpy as np; warnings.simplefilter('error'); "
        "from hf_mediaref.ray import torch_collate; "
        "a = np.zeros((2, 4, 4, 3), np.uint8); a.flags.writeable = False; "
        "f = np.empty(2, dtype=object); f[:] = [a[0], a[1]]; "
        "b = torch_collate()({'frame': f, 'i': np.arange(2)[::1].copy(), 'n': a[:, 0, 0, 0]}); "
        "print(tuple(b['frame'].shape), b['n'].tolist())"
    )
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    env = {**os.environ, "PYTHONPATH": root + os.pathsep + os.environ.get("PYTHONPATH", "")}
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 0 and "not writable" not in proc.stderr, proc.stderr
    assert proc.stdout.split() == ["(2,", "4,", "4,", "3)", "[0,", "0]"]


@pytest.fixture
def stacks_made(monkeypatch):
    """Every ``decode.FrameStack`` made (a spy: each is made as before)."""
    from hf_mediaref import decode

    made: list = []
    original = decode.FrameStack.__init__

    def spy(self, count):
        original(self, count)
        made.append(self)

    monkeypatch.setattr(decode.FrameStack, "__init__", spy)
    return made


CHW = {"output": "torch", "channels_first": True}


@pytest.mark.parametrize("workers", [1, None])
@pytest.mark.parametrize("layout", [{}, CHW], ids=["hwc", "torch-chw"])
def test_a_column_of_frames_is_decoded_into_its_array(repo, stacks_made, workers, layout):
    """Frames of one shape are written into their column's one array by the decode, not stacked afterwards;
    frames two requests share (a repeated ref, the other column's) are copied into their rows."""
    from hf_mediaref import batch_decode

    rows = repo.table.slice(0, 15)["frame"].to_pylist()
    others = [{"uri": "videos/a.mp4", "pts_ns": repo.a.pts_ns[i]} for i in (1, 2, 4, 29)]
    batch = {
        "frame": np.array(rows + rows[:3], dtype=object),
        "again": np.array(others + rows[4:7] + others[:1], dtype=object),  # frames of its own, and shared
    }
    out = decode_batch(batch, ["frame", "again"], root=repo.path, max_workers=workers, **layout)
    for name, stack in zip(("frame", "again"), stacks_made):
        assert out[name] is stack.array  # the decode's own array: nothing stacked after it
        refs = [MediaRef(str(repo.path / r["uri"]), r["pts_ns"]) for r in batch[name]]
        expected = np.stack([np.asarray(f) for f in batch_decode(refs, max_workers=1, **layout)])
        np.testing.assert_array_equal(out[name], expected)
    assert _labels(out["frame"] if not layout else out["frame"].transpose(0, 2, 3, 1)) == [
        *repo.labels[:15],
        *repo.labels[:3],
    ]


@pytest.mark.torchcodec
def test_frames_torchcodec_decodes_are_stacked_into_their_column(repo, stacks_made):
    rows = repo.table.slice(0, 15)["frame"].to_pylist()
    out = decode_batch({"frame": np.array(rows, dtype=object)}, root=repo.path, decoder="torchcodec")
    assert out["frame"].shape == (15, 64, 128, 3) and stacks_made[0].array is not out["frame"]
    assert _labels(out["frame"]) == repo.labels[:15]
