"""Remote Matroska/WebM indexed from its Cues, block by block (no sidecar): over a loopback HTTP server, the
frames returned equal the full scan's (barcodes and pixels), "past the end" stays exact, one frame of a long
video reads a small part of it, a file without Cues is scanned, and lying Cues never give a wrong frame."""

from __future__ import annotations

import contextlib
import logging
import os
import random
from pathlib import Path

import numpy as np
import pytest

from hf_mediaref import MediaRef, batch_decode
from hf_mediaref.errors import FrameOutOfRangeError, MediaRefError
from hf_mediaref.testing import read_index, write_video
from hf_mediaref.testing.http_server import LoopbackFileServer
from hf_mediaref.video import PyAVVideoDecoder, _mkv, cleanup_cache
from hf_mediaref.video._indexes import load_index

from .conftest import SIZE
from .test_mkv import MKV_CASES, cue_fields, patch_uint
from .test_mp4 import assert_same_index, full_scan

#: Zoo videos with open GOPs (x265's default).
OPEN_GOP = {"hevc_mkv"}


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """A loopback server over a folder the tests put (links to) videos in."""
    root = tmp_path_factory.mktemp("served")
    with LoopbackFileServer(root) as server:
        yield root, server


def serve(served, path: Path, name: str | None = None) -> str:
    root, server = served
    name = name or path.name
    if not (root / name).exists():
        os.symlink(path.resolve(), root / name)
    return f"{server.url}/{name}"


def decode_all(url: str, times: list[int]) -> list[np.ndarray]:
    return list(batch_decode([MediaRef(url, t) for t in times], output="numpy", orientation="stored"))


@pytest.mark.parametrize("name", MKV_CASES)
def test_frames_equal_the_full_scan(name, build_case, served, fresh_cache):
    case = build_case(name)
    url = serve(served, case.path)
    assert load_index(url).progressive is not None  # indexed from the Cues
    pts = list(case.spec.pts_ns)
    rng = random.Random(name)
    picks = rng.sample(range(len(pts)), min(6, len(pts)))
    got = decode_all(url, [pts[i] for i in picks])  # a few blocks, then the rest in one batch
    assert [read_index(f) for f in got] == picks
    got = decode_all(url, pts)
    assert [read_index(f) for f in got] == list(range(len(pts)))
    local = decode_all(str(case.path), pts)  # the full scan's frames (a local file is scanned)
    for a, b in zip(got, local):
        np.testing.assert_array_equal(a, b)
    snapshot = load_index(url)
    # every block demuxed, still not a scan (x265 writes open GOPs: their leading frames show before the
    # keyframe after them, so the Cues do not bound the blocks, and the index falls back to the scan) ...
    assert (snapshot.progressive is None) == (name in OPEN_GOP)
    assert_same_index(snapshot, full_scan(str(case.path)))  # ... and exactly the full scan's index


def assert_exact_where_known(snapshot, scan) -> None:
    """Every frame a snapshot knows (not a placeholder) is the full scan's frame (pts, size, offset, keyframe
    flag), and the entry after it is the scan's next frame (so durations are exact)."""
    assert snapshot.progressive is not None and scan.progressive is None
    scan_keys, snap_keys = set(scan.keyframes()), set(snapshot.keyframes())
    known = np.flatnonzero(snapshot.packet_sizes > 0)
    assert known.size
    where = np.searchsorted(scan.pts, snapshot.pts[known])
    np.testing.assert_array_equal(scan.pts[where], snapshot.pts[known])
    np.testing.assert_array_equal(scan.packet_sizes[where], snapshot.packet_sizes[known])
    np.testing.assert_array_equal(scan.packet_offsets[where], snapshot.packet_offsets[known])
    assert [int(q) in scan_keys for q in where] == [int(p) in snap_keys for p in known]
    for p, q in zip(known.tolist(), where.tolist()):
        if p + 1 < snapshot.num_frames:
            assert snapshot.pts[p + 1] == scan.pts[q + 1]
        else:
            assert snapshot.end_pts == scan.end_pts


@pytest.mark.parametrize("name", [*MKV_CASES, "bframes3"])
def test_one_frame_at_a_time(name, build_case, cued_mkv, served, fresh_cache, tmp_path_factory):
    """Single-frame requests in random order (blocks demuxed in part, then further): each gives its frame, and
    what each snapshot knows is the full scan's."""
    if name == "bframes3":
        spec = write_video(
            tmp_path_factory.mktemp("bf3") / "bf3.mkv", 60, fps=30, gop=20, bframes=3, size=SIZE
        )
    else:
        spec = build_case(name).spec
    url = serve(served, spec.path)
    scan = full_scan(str(spec.path))
    order = list(range(spec.num_frames))
    random.Random(name).shuffle(order)
    for i in order[:24]:
        with PyAVVideoDecoder(url, dimension_order="NHWC") as dec:
            assert read_index(dec.get_frame_played_at(spec.pts_ns[i] / 1e9).data) == i
            snapshot = dec._snapshot
        if name in OPEN_GOP:
            assert snapshot.progressive is None
            continue
        assert_exact_where_known(snapshot, scan)


def test_past_the_end_and_the_last_frame(build_case, served, fresh_cache):
    case = build_case("h264_ntsc_mkv")
    url = serve(served, case.path)
    scan = full_scan(str(case.path))
    end = int(scan.end_ns)
    with pytest.raises(FrameOutOfRangeError) as info:
        batch_decode([MediaRef(url, end)])
    assert f"pts_ns={end}" in str(info.value) and info.value.uri == url
    assert load_index(url).progressive is not None  # decided from the last block alone
    (frame,) = decode_all(url, [end - 1])  # the last frame stays on screen until the end
    assert read_index(frame) == case.spec.num_frames - 1


def test_decoder_answers_by_time_and_completes_for_positions(build_case, served, fresh_cache):
    case = build_case("vp9_mkv")
    url = serve(served, case.path)
    with PyAVVideoDecoder(url, dimension_order="NHWC") as dec:
        assert "frames=?" in repr(dec)
        frame = dec.get_frame_played_at(case.spec.pts_ns[20] / 1e9)
        assert read_index(frame.data) == 20 and dec._snapshot.progressive is not None
        assert len(dec) == case.spec.num_frames  # the frame count needs every frame: a scan
        assert dec._snapshot.progressive is None
        assert read_index(dec.get_frame_at(7).data) == 7


@pytest.fixture(scope="module")
def long_mkv(tmp_path_factory):
    """50 s of H.264 with B-frames, a keyframe a second: 50 cue blocks."""
    d = tmp_path_factory.mktemp("long")
    return write_video(d / "long.mkv", 1200, fps=24, gop=24, bframes=2, size=SIZE, noise=0.3)


def test_one_frame_reads_a_small_part_of_a_long_video(long_mkv, served, fresh_cache):
    url = serve(served, long_mkv.path)
    size = long_mkv.path.stat().st_size
    _, server = served
    before = server.bytes_sent
    (frame,) = decode_all(url, [long_mkv.pts_ns[700]])
    assert read_index(frame) == 700
    assert server.bytes_sent - before < size / 10
    progressive = load_index(url).progressive
    assert progressive is not None
    (block,) = progressive._blocks.values()  # one block (of 24 frames) ...
    if progressive.lead_check < 24:  # ... demuxed only up to a few frames after frame 700 (PyAV >= 18)
        assert block.upto is not None and block.pts.size < 24


def test_the_decode_reads_the_demuxed_block_from_memory(long_mkv, served, fresh_cache):
    """The block demuxed for the index is not fetched again for the decode that follows."""
    url = serve(served, long_mkv.path, "long_again.mkv")
    _, server = served
    asked = len(server.log)
    (frame,) = decode_all(url, [long_mkv.pts_ns[900]])
    assert read_index(frame) == 900
    ranges = [r for method, path, r in server.log[asked:] if method == "GET" and path.endswith(".mkv")]
    starts = [int(r.split("=")[1].split("-")[0]) for r in ranges]
    assert len(starts) == len(set(starts))  # no range read twice


def test_a_file_without_cues_is_scanned(build_case, served, fresh_cache, caplog):
    case = build_case("nocues_mkv")
    url = serve(served, case.path)
    with caplog.at_level(logging.INFO, logger="hf_mediaref.video._progressive"):
        index = load_index(url)
    assert index.progressive is None and "no Cues" in caplog.text
    assert [read_index(f) for f in decode_all(url, list(case.spec.pts_ns))] == list(
        range(case.spec.num_frames)
    )


def test_local_files_are_scanned(build_case, fresh_cache):
    assert load_index(str(build_case("vp9_mkv").path)).progressive is None


@pytest.fixture(scope="module")
def cued_mkv(tmp_path_factory):
    """H.264 with B-frames, 8 cue blocks."""
    return write_video(tmp_path_factory.mktemp("cued") / "cued.mkv", 96, fps=24, gop=12, bframes=2, size=SIZE)


def _lying(tmp_path: Path, src: Path, cue: int, field: int, delta: int) -> Path:
    data = bytearray(src.read_bytes())
    span = cue_fields(bytes(data))[cue][field]
    patch_uint(data, span, int.from_bytes(data[span[0] : span[1]], "big") + delta)
    out = tmp_path / f"lying_{cue}_{field:x}_{delta}{src.suffix}"
    out.write_bytes(bytes(data))
    return out


@pytest.mark.parametrize(
    ("cue", "field", "delta"),
    [
        (2, _mkv._CUE_TIME, 1),  # a cue one tick after its keyframe
        (2, _mkv._CUE_TIME, -1),  # one tick before it
        (3, _mkv._CUE_TIME, 60),  # on a frame inside the block
        (1, _mkv._CUE_TIME, 1),  # the block before gets a wrong end
        (2, _mkv._CUE_CLUSTER_POSITION, 17),  # into the middle of a cluster
        (2, _mkv._CUE_CLUSTER_POSITION, -3),
        (-1, _mkv._CUE_TIME, -1),  # the last cue
    ],
)
def test_lying_cues_never_give_a_wrong_frame(cued_mkv, served, fresh_cache, tmp_path, cue, field, delta):
    path = _lying(tmp_path, cued_mkv.path, cue, field, delta)
    url = serve(served, path)
    pts = list(cued_mkv.pts_ns)
    for times in ([pts[i] for i in random.Random(cue).sample(range(len(pts)), 8)], pts):
        cleanup_cache()
        try:
            got = decode_all(url, times)
        except MediaRefError:  # a typed error is allowed; a wrong frame is not
            continue
        assert [read_index(f) for f in got] == [pts.index(t) for t in times]


def test_torchcodec_completes_the_index(build_case, served, fresh_cache):
    pytest.importorskip("torchcodec")
    case = build_case("h264_yuv444_mkv")
    url = serve(served, case.path)
    frames = batch_decode(
        [MediaRef(url, t) for t in case.spec.pts_ns[::4]], decoder="torchcodec", output="numpy"
    )
    assert [read_index(f) for f in frames] == list(range(0, case.spec.num_frames, 4))
    assert load_index(url).progressive is None


@pytest.mark.parametrize("name", ["h264_ntsc_mkv"])
def test_concurrent_batches_use_consistent_snapshots(name, build_case, served, fresh_cache):
    """Threads decoding different blocks of one video at once each get their own frames."""
    from concurrent.futures import ThreadPoolExecutor

    case = build_case(name)
    url = serve(served, case.path, "concurrent.mkv")
    pts = list(case.spec.pts_ns)

    def one(i: int) -> int:
        with contextlib.closing(PyAVVideoDecoder(url, dimension_order="NHWC")) as dec:
            return read_index(dec.get_frame_played_at(pts[i] / 1e9).data)

    order = list(range(len(pts)))
    random.Random(3).shuffle(order)
    with ThreadPoolExecutor(4) as pool:
        assert list(pool.map(one, order)) == order


def _decode_in_child(url: str, t: int, queue) -> None:
    (frame,) = decode_all(url, [t])
    queue.put(read_index(frame))


def test_a_forked_worker_goes_on_with_the_parents_index(cued_mkv, served, fresh_cache):
    """A DataLoader worker (forked) inherits a partial index and demuxes the blocks it needs on its own."""
    import multiprocessing

    url = serve(served, cued_mkv.path, "forked.mkv")
    (frame,) = decode_all(url, [cued_mkv.pts_ns[5]])
    assert read_index(frame) == 5 and load_index(url).progressive is not None
    ctx = multiprocessing.get_context("fork")
    queue = ctx.Queue()
    child = ctx.Process(target=_decode_in_child, args=(url, cued_mkv.pts_ns[80], queue))
    child.start()
    try:
        assert queue.get(timeout=60) == 80
    finally:
        child.join(timeout=60)
    assert child.exitcode == 0


def test_the_recording_view_keeps_the_head_and_the_last_block_only():
    """A source's recording view keeps what opening read and the last block demuxed (which the decode reads
    again), not every block demuxed over the life of the container."""
    import io

    from hf_mediaref.video._indexes import _RecordingFile

    data = bytes(range(256)) * 4096  # 1 MiB
    view = _RecordingFile(io.BytesIO(data))
    assert view.read(1000) == data[:1000]  # the head
    view.stop_recording()
    for start in (100_000, 300_000, 500_000):  # three blocks, one after the other
        view.record_next(1 << 20)
        view.seek(start)
        assert view.read(50_000) == data[start : start + 50_000]
        view.stop_recording()
    assert sorted(view._chunks) == [0, 500_000]
    view.seek(500_010)  # the decode that follows reads the last block from memory
    view._f = None  # any read of the file would fail
    assert view.read(100) == data[500_010:500_110]
