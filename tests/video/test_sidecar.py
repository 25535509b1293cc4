"""Index sidecars (``<media>.mrindex``): they equal the full scan, readers use them instead of scanning (a
fresh process reading one frame of a remote video reads a small part of it), and a stale or broken sidecar
is ignored, never trusted."""

from __future__ import annotations

import gzip
import hashlib
import json
import logging
import os
import shutil
from pathlib import Path

import numpy as np
import pytest

import hf_mediaref
from hf_mediaref import MediaRef, batch_decode
from hf_mediaref.testing import probe_pts_ns, read_index, write_video
from hf_mediaref.testing.http_server import LoopbackFileServer
from hf_mediaref.video import build_index_sidecars, index_sidecar_uri, write_index_sidecar
from hf_mediaref.video._indexes import load_index
from hf_mediaref.video._sidecar import SidecarMedia, content_matches, decode_sidecar

from .conftest import SIZE, ZOO, _remux, one_frame_in_a_new_process
from .test_mp4 import assert_same_index, full_scan

ROOT = Path(hf_mediaref.__file__).resolve().parents[1]
LOG = "hf_mediaref.video._indexes"


def _copy(case, folder: Path) -> Path:
    """A copy of a zoo video (sidecars are never written beside the shared zoo)."""
    dst = folder / case.path.name
    shutil.copyfile(case.path, dst)
    return dst


@pytest.mark.parametrize("name", ZOO)
def test_sidecar_equals_the_full_scan(name, build_case, tmp_path):
    path = _copy(build_case(name), tmp_path)
    sidecar = write_index_sidecar(path)
    assert sidecar == Path(str(path) + ".mrindex")
    media, index = decode_sidecar(sidecar.read_bytes())
    assert media.size == path.stat().st_size
    assert media.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    assert_same_index(index, full_scan(str(path)))


@pytest.mark.parametrize("name", ["h264_ntsc_mkv", "vp9_mkv", "nasty_hevc_mkv", "h264_ts", "vfr_mkv"])
def test_readers_use_the_sidecar_instead_of_scanning(name, build_case, tmp_path, fresh_cache, monkeypatch):
    case = build_case(name)
    path = _copy(case, tmp_path)
    reference = full_scan(str(path))
    write_index_sidecar(path)
    monkeypatch.setattr("hf_mediaref.video._indexes.scan_index", _refuse_scan)
    assert_same_index(load_index(str(path)), reference)
    picks = sorted({0, 1, len(case.spec.pts_ns) // 2, len(case.spec.pts_ns) - 1})
    frames = batch_decode([MediaRef(str(path), case.spec.pts_ns[i]) for i in picks])
    assert [read_index(f) for f in frames] == picks


def _refuse_scan(*args, **kwargs):
    raise AssertionError("load_index scanned the video")


def test_a_stale_sidecar_is_ignored(build_case, tmp_path, fresh_cache, caplog):
    """The sidecar of another content (the video was re-encoded after the sidecar was written) is ignored:
    the video is indexed by a scan and the right frames come back."""
    path = tmp_path / "clip.mkv"
    write_video(path, 48, fps=24, gop=12, bframes=2, size=SIZE)
    write_index_sidecar(path)
    new = write_video(tmp_path / "next.mkv", 60, fps=30, gop=20, size=SIZE, first_index=500)
    os.replace(new.path, path)
    with caplog.at_level(logging.WARNING, logger=LOG):
        index = load_index(str(path))
    assert "stale" in caplog.text
    assert_same_index(index, full_scan(str(path)))
    pts = probe_pts_ns(path)
    assert [read_index(f) for f in batch_decode([MediaRef(str(path), pts[i]) for i in (0, 33, 59)])] == [
        500,
        533,
        559,
    ]


def test_content_checks(tmp_path):
    path = tmp_path / "v.bin"
    data = bytes(range(256)) * 1000
    path.write_bytes(data)
    sha = hashlib.sha256(data).hexdigest()
    head = hashlib.sha256(data[:4096]).hexdigest()
    media = SidecarMedia(len(data), sha, 4096, head)
    assert content_matches(media, str(path))
    changed = bytearray(data)
    changed[100] ^= 1  # same size, another head
    path.write_bytes(bytes(changed))
    assert not content_matches(media, str(path))
    path.write_bytes(data + b"x")  # same head, another size
    assert not content_matches(media, str(path))

    class Remote:  # an fsspec file of the Hub: its details carry the LFS sha256
        def __init__(self, payload: bytes, lfs_sha: str):
            import io

            self._f = io.BytesIO(payload)
            self.details = {"size": len(payload), "lfs": {"sha256": lfs_sha}}

        def __getattr__(self, name):
            return getattr(self._f, name)

    assert content_matches(media, Remote(data, sha))
    assert not content_matches(media, Remote(data, "0" * 64))  # the remote's hash is authoritative


def test_broken_and_newer_sidecars_are_ignored(build_case, tmp_path, fresh_cache, caplog):
    path = _copy(build_case("vp9_mkv"), tmp_path)
    sidecar = write_index_sidecar(path)
    doc = json.loads(gzip.decompress(sidecar.read_bytes()))
    reference = full_scan(str(path))
    for content in (
        b"not gzip",
        gzip.compress(b"{}"),
        gzip.compress(json.dumps({**doc, "version": 99}).encode()),
        gzip.compress(json.dumps({**doc, "frames": {**doc["frames"], "size": [1]}}).encode()),
    ):
        sidecar.write_bytes(content)
        hf_mediaref.cleanup_cache()
        caplog.clear()
        with caplog.at_level(logging.WARNING, logger="hf_mediaref.video._sidecar"):
            assert_same_index(load_index(str(path)), reference)
        assert "ignoring the index sidecar" in caplog.text


def test_sidecar_uris():
    assert index_sidecar_uri("videos/a.mp4") == "videos/a.mp4.mrindex"
    assert index_sidecar_uri("hf://datasets/o/n@abc/a.mkv") == "hf://datasets/o/n@abc/a.mkv.mrindex"
    assert index_sidecar_uri("https://h/a.mp4?X-Sig=1#t") == "https://h/a.mp4.mrindex?X-Sig=1#t"
    assert index_sidecar_uri("data:video/mp4;base64,AAAA") is None


def test_build_index_sidecars_takes_videos_only(build_case, png_image, tmp_path, caplog):
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(b"\x00" * 100)
    files = {
        "v/a.mkv": str(build_case("vp9_mkv").path),
        "i/seven.png": str(png_image),
        "v/broken.mp4": str(broken),
    }
    with caplog.at_level(logging.WARNING):
        out = build_index_sidecars(files)
    assert list(out) == ["v/a.mkv.mrindex"]
    assert "broken.mp4" in caplog.text


# ------------------------------------------------------------------------------- a fresh process, remote
@pytest.fixture(scope="module")
def long_videos(tmp_path_factory):
    """A 100 s video (GOP 60, B-frames) as MP4 and as Matroska, ~7 MB each, served over loopback HTTP.
    (Opening the Matroska file with PyAV 15 reads its first ~230 KB to probe the stream.)"""
    folder = tmp_path_factory.mktemp("remote")
    spec = write_video(folder / "long.mp4", 3000, fps=30, gop=60, bframes=2, size=(96, 160), noise=0.08)
    _remux(spec.path, folder / "long.mkv")
    pts = {"long.mp4": list(spec.pts_ns), "long.mkv": full_scan(str(folder / "long.mkv")).frame_ns.tolist()}
    with LoopbackFileServer(folder) as server:
        yield folder, server, pts


@pytest.mark.parametrize("name", ["long.mp4", "long.mkv"])
def test_a_fresh_process_reads_a_small_part_of_a_remote_video(name, long_videos, tmp_path):
    """With a sidecar (and for MP4 from the moov tables alone), one frame of a remote video costs its header,
    the sidecar and one keyframe block: under a tenth of the file."""
    folder, server, times = long_videos
    path = folder / name
    pts = times[name]
    sidecar = Path(str(path) + ".mrindex")
    sidecar.unlink(missing_ok=True)
    if name.endswith(".mkv"):
        write_index_sidecar(path)  # Matroska has no complete index in its header
    try:
        for frame in (0, 2255):
            sent = server.bytes_sent
            assert (
                one_frame_in_a_new_process(f"{server.url}/{name}", pts[frame], tmp_path / f"cache{frame}")
                == frame
            )
            assert 0 < server.bytes_sent - sent < path.stat().st_size / 10
    finally:
        sidecar.unlink(missing_ok=True)


def test_a_stale_remote_sidecar_is_ignored(long_videos, tmp_path):
    """A sidecar of another content beside a remote video: the reader ignores it, indexes the video from its
    Matroska Cues (a block, not the whole file) and returns the right frame."""
    folder, server, times = long_videos
    other = write_video(tmp_path / "other.mkv", 30, fps=30, gop=10, size=(96, 160))
    (folder / "stale.mkv").write_bytes((folder / "long.mkv").read_bytes())
    write_index_sidecar(other.path, dest=folder / "stale.mkv.mrindex")
    try:
        pts = times["long.mkv"]  # a copy
        sent = server.bytes_sent
        assert one_frame_in_a_new_process(f"{server.url}/stale.mkv", pts[700], tmp_path / "cache") == 700
        assert server.bytes_sent - sent < (folder / "stale.mkv").stat().st_size / 2  # the Cues, not a scan
    finally:
        (folder / "stale.mkv.mrindex").unlink()


def test_the_sidecar_feeds_torchcodec(long_videos, tmp_path):
    """TorchCodec gets the sidecar's index as its frame mappings: no scan by TorchCodec either."""
    pytest.importorskip("torch")
    try:
        import torchcodec.decoders  # noqa: F401
    except (ImportError, OSError, RuntimeError) as exc:
        pytest.skip(f"torchcodec does not load: {exc}")
    folder, server, times = long_videos
    path = folder / "long.mkv"
    write_index_sidecar(path)
    try:
        pts = times["long.mkv"]
        sent = server.bytes_sent
        got = one_frame_in_a_new_process(
            f"{server.url}/long.mkv", pts[455], tmp_path / "cache", decoder="torchcodec"
        )
        assert got == 455
        # TorchCodec reads in 64 KiB blocks, and PyAV opened the header for the index and demuxed the span's
        # packets to check the sidecar (TorchCodec reads them from memory then): more than PyAV alone (under a
        # tenth), far from the whole file its own exact mode reads; under a twentieth (the check's packets
        # fetched twice, or with a read-ahead that doubles past them, come to more)
        assert 0 < server.bytes_sent - sent < path.stat().st_size / 20
    finally:
        Path(str(path) + ".mrindex").unlink()


def test_sidecar_arrays_roundtrip_exactly(build_case, tmp_path):
    path = _copy(build_case("h264_bframes_mp4"), tmp_path)
    _, index = decode_sidecar(write_index_sidecar(path).read_bytes())
    assert index.pts.dtype == np.int64 and index.packet_offsets is not None
    assert index.frame_mappings() == full_scan(str(path)).frame_mappings()  # what TorchCodec is given
