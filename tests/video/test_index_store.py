"""Keyframe indexes of remote videos are kept on disk: a new process (a DataLoader worker, a new run) does not
download a video again just to index it, and a changed video is indexed again."""

from __future__ import annotations

import os
from types import SimpleNamespace

import fsspec
import numpy as np
import pytest

from hf_mediaref import MediaRef, batch_decode, cleanup_cache
from hf_mediaref.io import open_media, source_version
from hf_mediaref.testing import read_index, write_video
from hf_mediaref.video import PyAVVideoDecoder
from hf_mediaref.video._index_store import load_stored_index, store_dir, store_index
from hf_mediaref.video._indexes import load_index

from .conftest import SIZE


@pytest.fixture
def store(tmp_path, monkeypatch, fresh_cache):
    monkeypatch.setenv("HF_MEDIAREF_CACHE_DIR", str(tmp_path / "cache"))
    return store_dir()


def _frames(out):
    return [read_index(f) for f in out]


def test_a_new_process_reads_the_stored_index_instead_of_the_whole_video(media_dir, http_server, store):
    # Matroska (no moov tables): once its index is complete (a scan), a new process reads it from the store
    spec = write_video(media_dir / "stored_long.mkv", 900, fps=30, gop=30, size=SIZE, noise=0.05, bframes=2)
    uri, size = f"{http_server.url}/{spec.path.name}", spec.path.stat().st_size

    sent = http_server.bytes_sent
    assert _frames(batch_decode([MediaRef(uri, spec.pts_ns[850])])) == [850]  # from the Cues: not stored
    with PyAVVideoDecoder(uri) as dec:
        assert len(dec) == 900  # the whole index: the scan reads the whole file
    assert http_server.bytes_sent - sent >= size
    assert len(list(store.glob("*.npz"))) == 1

    cleanup_cache()  # what a new process starts with
    sent = http_server.bytes_sent
    assert _frames(batch_decode([MediaRef(uri, spec.pts_ns[i]) for i in (40, 41, 850)])) == [40, 41, 850]
    assert 0 < http_server.bytes_sent - sent < size / 3  # opening two containers and reading two blocks


def test_an_index_from_cues_is_stored_once_complete(media_dir, http_server, store):
    """A partial index (Matroska Cues, some blocks demuxed) is never stored; the complete one is."""
    spec = write_video(media_dir / "stored_cues.mkv", 90, fps=30, gop=15, size=SIZE, bframes=2)
    uri = f"{http_server.url}/{spec.path.name}"
    assert _frames(batch_decode([MediaRef(uri, spec.pts_ns[50])])) == [50]
    assert load_index(uri).progressive is not None
    assert not list(store.glob("*.npz"))
    with PyAVVideoDecoder(uri) as dec:
        assert len(dec) == 90  # completes it: the scan
    (stored,) = store.glob("*.npz")
    assert np.load(stored)["pts"].size == 90
    cleanup_cache()
    assert load_index(uri).progressive is None  # a new process reads the stored, complete index


def test_a_changed_remote_video_is_indexed_again(media_dir, http_server, store):
    path = media_dir / "stored_changing.mp4"
    spec = write_video(path, 60, fps=30, gop=10, size=SIZE)
    uri = f"{http_server.url}/{path.name}"
    assert _frames(batch_decode([MediaRef(uri, spec.pts_ns[50])])) == [50]
    cleanup_cache()
    spec = write_video(path, 90, fps=30, gop=10, size=SIZE, first_index=1000)  # new content and length
    os.utime(path, ns=(path.stat().st_atime_ns, path.stat().st_mtime_ns + 10**9))
    assert _frames(batch_decode([MediaRef(uri, spec.pts_ns[80])])) == [1080]
    assert load_index(uri).num_frames == 90
    assert len(list(store.glob("*.npz"))) == 2


def test_an_unreadable_stored_index_is_ignored_and_rewritten(media_dir, http_server, store):
    spec = write_video(media_dir / "stored_corrupt.mp4", 30, fps=30, gop=10, size=SIZE)
    uri = f"{http_server.url}/{spec.path.name}"
    batch_decode([MediaRef(uri, spec.pts_ns[0])])
    (stored,) = store.glob("*.npz")
    stored.write_bytes(b"not an npz file")
    cleanup_cache()
    assert _frames(batch_decode([MediaRef(uri, spec.pts_ns[i]) for i in (29, 3)])) == [29, 3]
    assert np.load(stored)["pts"].size == 30  # scanned again and stored again


def test_store_can_be_turned_off_and_local_files_are_never_stored(media_dir, http_server, store, monkeypatch):
    spec = write_video(media_dir / "stored_off.mp4", 30, fps=30, gop=10, size=SIZE)
    batch_decode([MediaRef(str(spec.path), spec.pts_ns[5])])
    assert not store.exists()
    monkeypatch.setenv("HF_MEDIAREF_INDEX_STORE", "0")
    assert _frames(batch_decode([MediaRef(f"{http_server.url}/{spec.path.name}", spec.pts_ns[5])])) == [5]
    assert not store.exists()


def test_round_trip_keeps_every_field(media_dir, store):
    spec = write_video(media_dir / "stored_bframes.mp4", 40, fps=24, gop=12, bframes=2, size=SIZE)
    index = load_index(str(spec.path))
    key = ("some-uri", "opts")
    assert load_stored_index(key, "v1") is None
    store_index(key, "v1", index)
    back = load_stored_index(key, "v1")
    assert back is not None and load_stored_index(key, "v2") is None
    assert np.array_equal(back.pts, index.pts) and np.array_equal(back.packet_sizes, index.packet_sizes)
    assert back.keyframes() == index.keyframes() and back.end_pts == index.end_pts
    assert (back.time_base, back.width, back.height, back.codec, back.pixel_format, back.stream_index) == (
        index.time_base,
        index.width,
        index.height,
        index.codec,
        index.pixel_format,
        index.stream_index,
    )


def test_source_version(media_dir, http_server):
    path = media_dir / "version.bin"
    path.write_bytes(b"x" * 100)
    with open_media(f"{http_server.url}/version.bin") as f:
        first = source_version(f)
    assert first and first.endswith("; 100")
    os.utime(path, ns=(path.stat().st_atime_ns, path.stat().st_mtime_ns + 10**9))
    with open_media(f"{http_server.url}/version.bin") as f:
        assert source_version(f) not in (None, first)
    assert source_version(str(path)) is None
    with open_media("data:application/octet-stream;base64,AAAA") as f:
        assert source_version(f) is None
    fsspec.filesystem("memory").pipe("/version.bin", b"xx")
    with open_media("memory://version.bin") as f:
        assert source_version(f) is None  # in-memory: nothing to version, nothing worth storing
    # fsspec's buffered files (s3, gcs, hf, ...) carry the object's info() as ``details``
    details = {"name": "x.mp4", "size": 5, "blob_id": "abc", "lfs": {"sha256": "f00"}}
    hf_file = SimpleNamespace(details=details)
    assert source_version(hf_file) == source_version(hf_file) and "f00" in source_version(hf_file)
    assert source_version(SimpleNamespace(details={"name": "x.mp4", "size": 5})) is None


def test_stored_indexes_keep_packet_offsets(build_case, store):
    index = load_index(build_case("h264_bframes_mp4").uri)
    assert index.packet_offsets is not None
    store_index(("k",), "v1", index)
    back = load_stored_index(("k",), "v1")
    assert back is not None and back.packet_offsets is not None
    np.testing.assert_array_equal(back.packet_offsets, index.packet_offsets)


def _scans(uris_times) -> tuple[list[int], int]:
    from hf_mediaref.video import collect_stats

    with collect_stats() as stats:
        frames = _frames(batch_decode([MediaRef(u, t) for u, t in uris_times]))
    return frames, stats.index_scans


def test_a_local_video_that_needed_a_scan_is_stored_and_a_new_process_does_not_scan_it(tmp_path, store):
    spec = write_video(tmp_path / "local.mkv", 120, fps=30, gop=30, size=SIZE, bframes=2)
    uri = str(spec.path)
    assert _scans([(uri, spec.pts_ns[100])]) == ([100], 1)
    assert len(list(store.glob("*.npz"))) == 1
    cleanup_cache()  # what a new process (a DataLoader or Ray worker) starts with
    assert _scans([(uri, spec.pts_ns[i]) for i in (3, 100)]) == ([3, 100], 0)
    assert load_index(uri).version is None  # a local file has no remote version to check against
    mp4 = write_video(tmp_path / "local.mp4", 30, fps=30, gop=10, size=SIZE)
    assert _frames(batch_decode([MediaRef(str(mp4.path), mp4.pts_ns[20])])) == [20]
    assert len(list(store.glob("*.npz"))) == 1  # moov tables are read again, not stored


def test_a_rewritten_local_video_is_scanned_again(tmp_path, store):
    path = tmp_path / "rewritten.mkv"
    spec = write_video(path, 60, fps=30, gop=30, size=SIZE)
    assert _scans([(str(path), spec.pts_ns[50])]) == ([50], 1)
    cleanup_cache()
    spec = write_video(path, 90, fps=30, gop=30, size=SIZE, first_index=1000)  # new content and length
    assert _scans([(str(path), spec.pts_ns[80])]) == ([1080], 1)
    assert load_index(str(path)).num_frames == 90


def test_a_local_video_rewritten_with_its_mtime_size_and_inode_kept_is_scanned_again(tmp_path, store):
    """``cp -p``, ``rsync -t`` and tar restore the mtime; the inode's ctime still changes."""
    path = tmp_path / "same_stat.mkv"
    spec = write_video(path, 60, fps=30, gop=30, size=SIZE)
    data, st = path.read_bytes(), path.stat()
    assert _scans([(str(path), spec.pts_ns[50])]) == ([50], 1)
    cleanup_cache()
    with open(path, "r+b") as f:  # in place: same inode, same size
        f.write(data)
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert path.stat().st_ino == st.st_ino and path.stat().st_mtime_ns == st.st_mtime_ns
    assert _scans([(str(path), spec.pts_ns[50])]) == ([50], 1)  # the stored index is not trusted


def test_local_store_off(tmp_path, store, monkeypatch):
    monkeypatch.setenv("HF_MEDIAREF_INDEX_STORE", "0")
    spec = write_video(tmp_path / "off.mkv", 30, fps=30, gop=10, size=SIZE)
    assert _frames(batch_decode([MediaRef(str(spec.path), spec.pts_ns[20])])) == [20]
    assert list(store.glob("*.npz")) == []


def test_an_oversized_stored_index_is_ignored_before_it_is_read(tmp_path, store, monkeypatch, caplog):
    """Reads of the store are capped: a file larger than an index can be, or one whose arrays declare more,
    is ignored (logged), and the video is indexed without it."""
    import logging
    import zipfile

    import hf_mediaref.video._index_store as index_store
    from hf_mediaref.video._identity import source_key
    from hf_mediaref.video._index_store import _path, local_store_version

    spec = write_video(tmp_path / "capped.mkv", 24, fps=24, gop=12, size=SIZE)
    uri = str(spec.path)
    key = source_key(uri, None)
    version = local_store_version(uri, key)
    assert version is not None
    store_index(key, version, load_index(uri))
    assert load_stored_index(key, version) is not None
    monkeypatch.setattr(index_store, "_MAX_BYTES", 64)  # smaller than the file
    with caplog.at_level(logging.WARNING, logger="hf_mediaref.video._index_store"):
        assert load_stored_index(key, version) is None
    assert "more than the 64" in caplog.text
    # a small file whose member declares a huge (compressed) array: refused by the declared size
    monkeypatch.setattr(index_store, "_MAX_BYTES", 1 << 20)
    with zipfile.ZipFile(_path(key, version), "w", compression=zipfile.ZIP_DEFLATED) as bomb:
        bomb.writestr("pts.npy", b"\x00" * (2 << 20))
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="hf_mediaref.video._index_store"):
        assert load_stored_index(key, version) is None
    assert "its arrays hold" in caplog.text
    cleanup_cache()
    assert _frames(batch_decode([MediaRef(uri, spec.pts_ns[i]) for i in (0, 13, 23)])) == [0, 13, 23]
