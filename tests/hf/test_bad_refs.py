"""Bad refs in Parquet files written by another tool (pyarrow directly), next to good rows.

The good rows load and decode; each bad row raises a typed :mod:`hf_mediaref.errors` error when it is read,
of the same type through ``ds[i]``, the ``"mediaref"`` format, ``decode_transform`` and a 2-worker
DataLoader. Malformed stored values raise ``InvalidRefError`` naming the row and the value; media that cannot
be read raise the error of what is wrong with them, with ``.uri`` the ref's URI (also in the main process of a
DataLoader).
"""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from datasets import Dataset, Features, Value

from hf_mediaref.errors import (
    InvalidRefError,
    MediaNotFoundError,
    MediaRefError,
    RemoteAccessError,
    UnreadableMediaError,
    UnsupportedURIError,
)
from hf_mediaref.hf import MediaRefFeature, decode_transform, get_media_root, set_media_root
from hf_mediaref.testing import read_index, write_image, write_video

FEATURES = Features({"frame": MediaRefFeature(), "label": Value("int64")})


@pytest.fixture(scope="module")
def media(tmp_path_factory):
    """A video (frame i shows i), an image (shows 7), a directory, a FIFO, a socket and a closed port."""
    root = tmp_path_factory.mktemp("bad_refs")
    video = write_video(root / "v.mp4", 10, fps=10, gop=5, size=(64, 128))
    image = write_image(root / "seven.png", 7, size=(64, 128))
    (root / "dir.mp4").mkdir()
    os.mkfifo(root / "fifo.mp4")
    sock = socket.socket(socket.AF_UNIX)
    sock.bind(str(root / "sock.mp4"))
    with socket.socket() as probe:  # a port nothing listens on: ftp:// is refused at once
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    yield {"root": root, "video": str(video.path), "pts": video.pts_ns, "image": str(image), "port": port}
    sock.close()


def _write(tmp_path, name: str, frame: pa.Array) -> str:
    """A Parquet file as another tool writes it: pyarrow, no ``datasets`` metadata."""
    path = str(tmp_path / f"{name}.parquet")
    pq.write_table(pa.table({"frame": frame, "label": list(range(len(frame)))}), path)
    return path


def _load(path: str, tmp_path, features: Features | None = FEATURES) -> Dataset:
    cache = tmp_path / ("cache" if features is not None else "cache_raw")
    ds = Dataset.from_parquet(path, features=features, cache_dir=str(cache))
    # a Parquet file reads inside its folder only; these refs point at the test's media elsewhere: trust them
    return set_media_root(ds, get_media_root(ds), allow_uris="*") if features is not None else ds


def _video(media, i: int) -> dict:
    return {"uri": media["video"], "pts_ns": media["pts"][i]}


def _index(frame) -> int:
    return read_index(frame)


# ------------------------------------------------------------------------------ malformed stored values
def _stored_cases(media) -> dict:
    """name: (struct type, rows, the bad row, what its error says). Good rows are frames 2 and 5 of the
    video, or the image where the stored type leaves no room for a good video row."""
    v, image = media["video"], media["image"]
    ref = pa.struct({"uri": pa.string(), "pts_ns": pa.int64()})
    img = {"uri": image, "pts_ns": None}
    return {
        "negative_pts": (
            ref,
            [_video(media, 2), {"uri": v, "pts_ns": -5}, _video(media, 5)],
            "pts_ns must be >= 0",
        ),
        "bool_pts": (
            pa.struct({"uri": pa.string(), "pts_ns": pa.bool_()}),
            [img, {"uri": v, "pts_ns": True}, img],
            "bool",
        ),
        "null_uri": (ref, [_video(media, 2), {"uri": None, "pts_ns": 0}, _video(media, 5)], "uri is missing"),
        "empty_uri": (
            ref,
            [_video(media, 2), {"uri": "", "pts_ns": 0}, _video(media, 5)],
            "must not be empty",
        ),
        "nul_in_uri": (
            ref,
            [_video(media, 2), {"uri": v + "\x00.mp4", "pts_ns": 0}, _video(media, 5)],
            "NUL",
        ),
        "string_pts": (
            pa.struct({"uri": pa.string(), "pts_ns": pa.string()}),
            [img, {"uri": v, "pts_ns": "100000000"}, img],
            "str",
        ),
        "float_pts": (
            pa.struct({"uri": pa.string(), "pts_ns": pa.float64()}),
            [
                {"uri": v, "pts_ns": float(media["pts"][2])},  # integral floats are fine (pandas writes them)
                {"uri": v, "pts_ns": 1.5},
                {"uri": v, "pts_ns": float(media["pts"][5])},
            ],
            "whole number",
        ),
        "extra_fields": (
            pa.struct({"uri": pa.string(), "pts_ns": pa.int64(), "fps": pa.float64()}),
            [
                {**_video(media, 2), "fps": None},
                {**_video(media, 1), "fps": 30.0},
                {**_video(media, 5), "fps": None},
            ],
            "fields other than|unexpected",
        ),
    }


STORED = [
    "negative_pts",
    "bool_pts",
    "null_uri",
    "empty_uri",
    "nul_in_uri",
    "string_pts",
    "float_pts",
    "extra_fields",
]


def _expected_good(rows, i) -> int:
    return 7 if rows[i]["pts_ns"] is None else 2 if i == 0 else 5


@pytest.mark.parametrize("case", STORED)
def test_stored_value_fails_its_row_only(case, media, tmp_path):
    struct, rows, match = _stored_cases(media)[case]
    ds = _load(_write(tmp_path, case, pa.array(rows, struct)), tmp_path)
    bad_uri = rows[1]["uri"]

    # ds[i]: the good rows read as refs, the bad one raises when it is read
    assert ds[0]["frame"].uri in (media["video"], media["image"]) and ds[2]["label"] == 2
    with pytest.raises(InvalidRefError, match=match) as info:
        ds[1]
    assert info.value.uri == bad_uri

    # the format: good rows decode; a batch holding the bad row names it (its row in the batch)
    fmt = ds.with_format("mediaref")
    assert [_index(fmt[i]["frame"]) for i in (0, 2)] == [_expected_good(rows, 0), _expected_good(rows, 2)]
    with pytest.raises(InvalidRefError, match=match) as info:
        fmt[0:3]
    assert "column 'frame', row 1 of the batch" in str(info.value) and info.value.uri == bad_uri

    # decode_transform: the same type, raised where the rows are read
    tds = ds.with_transform(decode_transform())
    assert [_index(tds[i : i + 1]["frame"][0]) for i in (0, 2)] == [
        _expected_good(rows, 0),
        _expected_good(rows, 2),
    ]
    with pytest.raises(InvalidRefError, match=match):
        tds[0:3]


@pytest.mark.parametrize("case", STORED)
def test_stored_value_read_as_plain_dicts_fails_its_row_in_decode_transform(case, media, tmp_path):
    """Loaded without features, the column is a plain struct; decode_transform finds the refs in its dicts
    and names the bad one's column and row."""
    struct, rows, match = _stored_cases(media)[case]
    raw = _load(_write(tmp_path, case, pa.array(rows, struct)), tmp_path, features=None)
    transform = decode_transform(columns=["frame"])
    good = raw.with_transform(transform)
    assert _index(good[0:1]["frame"][0]) == _expected_good(rows, 0)
    with pytest.raises(InvalidRefError, match=match) as info:
        raw.with_transform(transform)[0:3]
    assert "column 'frame', row 1 of the batch" in str(info.value)


# ------------------------------------------------------------------------------ media that cannot be read
def _unreadable_cases(media) -> dict:
    root = media["root"]
    return {
        "missing": (str(root / "missing.mp4"), MediaNotFoundError),
        "directory": (str(root / "dir.mp4"), UnreadableMediaError),
        "fifo": (str(root / "fifo.mp4"), UnreadableMediaError),
        "socket": (str(root / "sock.mp4"), UnreadableMediaError),
        "char_device": ("/dev/null", UnreadableMediaError),
        "ftp_refused": (f"ftp://127.0.0.1:{media['port']}/v.mp4", RemoteAccessError),
        "gopher": ("gopher://127.0.0.1/v.mp4", UnsupportedURIError),
        "unknown_protocol": ("nosuchproto://bucket/v.mp4", UnsupportedURIError),
    }


UNREADABLE = [
    "missing",
    "directory",
    "fifo",
    "socket",
    "char_device",
    "ftp_refused",
    "gopher",
    "unknown_protocol",
]


@pytest.mark.parametrize("case", UNREADABLE)
def test_unreadable_media_fail_their_row_with_the_same_type_everywhere(case, media, tmp_path):
    bad_uri, error = _unreadable_cases(media)[case]
    rows = [_video(media, 2), {"uri": bad_uri, "pts_ns": 0}, _video(media, 5)]
    ds = _load(_write(tmp_path, case, pa.array(rows)), tmp_path)

    ref = ds[1]["frame"]  # reading the row reads no media
    assert ref.uri == bad_uri
    with pytest.raises(error) as info:
        ref.to_rgb_array()
    assert isinstance(info.value, MediaRefError) and info.value.uri == bad_uri

    fmt = ds.with_format("mediaref")
    assert [_index(fmt[i]["frame"]) for i in (0, 2)] == [2, 5]
    with pytest.raises(error) as info:
        fmt[0:3]
    assert info.value.uri == bad_uri

    tds = ds.with_transform(decode_transform())
    assert _index(tds[2:3]["frame"][0]) == 5
    with pytest.raises(error) as info:
        tds[0:3]
    assert info.value.uri == bad_uri


def test_file_without_read_permission(media, tmp_path):
    path = tmp_path / "secret.mp4"
    path.write_bytes(Path(media["video"]).read_bytes())
    path.chmod(0)
    try:
        if os.access(path, os.R_OK):
            pytest.skip("this user (root) reads files without read permission")
        ds = _load(
            _write(tmp_path, "perm", pa.array([_video(media, 2), {"uri": str(path), "pts_ns": 0}])), tmp_path
        )
        with pytest.raises(UnreadableMediaError, match="permission") as info:
            ds.with_format("mediaref")[0:2]
        assert info.value.uri == str(path)
    finally:
        path.chmod(0o644)


# ------------------------------------------------------------------------------ DataLoader workers
torch = pytest.importorskip("torch")


def _rows(rows):
    return rows


@pytest.mark.parametrize(
    "case, read",
    [
        ("missing", "format"),
        ("missing", "transform"),
        ("fifo", "format"),
        ("ftp_refused", "transform"),
        ("negative_pts", "format"),
        ("string_pts", "transform"),
        ("null_uri", "format"),
    ],
)
def test_dataloader_workers_reraise_the_typed_error_with_its_uri(case, read, media, tmp_path):
    """torch re-raises a worker's error as ``type(message)``; the type and ``.uri`` survive."""
    from torch.utils.data import DataLoader

    if case in UNREADABLE:
        bad_uri, error = _unreadable_cases(media)[case]
        struct, bad = None, {"uri": bad_uri, "pts_ns": 0}
    else:
        struct, rows, _ = _stored_cases(media)[case]
        bad, error = rows[1], InvalidRefError
        bad_uri = bad["uri"]
    good = [{"uri": media["image"], "pts_ns": None}] * 5
    rows = [*good[:4], bad, good[4]]
    ds = _load(_write(tmp_path, case, pa.array(rows, struct)), tmp_path)
    ds = ds.with_format("mediaref") if read == "format" else ds.with_transform(decode_transform())
    loader = DataLoader(ds, batch_size=2, num_workers=2, collate_fn=_rows, multiprocessing_context="fork")
    batches = iter(loader)
    try:
        with pytest.raises(error) as info:
            for _ in batches:
                pass
    finally:
        batches._shutdown_workers()  # now, not when the traceback that holds the iterator is collected
    assert "DataLoader worker" in str(info.value)  # re-raised in this process, from the worker's text
    assert info.value.uri == bad_uri
