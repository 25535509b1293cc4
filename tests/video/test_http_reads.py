"""What a decode reads over HTTP (issue 11: the first frame of an unseen remote video in <= 1.2x the bytes it
needs). The decode announces its span's byte range from the index (keyframe packet to the last target packet)
and drains the decoder there, so it fetches that range in one request and nothing past it; the head of the
file is read small; an MP4 open reads the first packet it probes in one request of its size. Bytes are
counted by the loopback server (deterministic); frames are checked by their barcodes and against local
decodes."""

from __future__ import annotations

import random
import struct
from pathlib import Path

import numpy as np
import pytest

import hf_mediaref
from hf_mediaref import MediaRef, batch_decode
from hf_mediaref.testing import read_index, write_video
from hf_mediaref.testing.http_server import LoopbackFileServer
from hf_mediaref.video import PyAVVideoDecoder, write_index_sidecar
from hf_mediaref.video._indexes import load_index
from hf_mediaref.video._planning import Span

from .conftest import _remux, one_frame_in_a_new_process

ROOT = Path(hf_mediaref.__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """A 30 s video (GOP 300, 3 B-frames, moov at the end) as MP4 and a Matroska remux of the same packets,
    served over loopback HTTP."""
    folder = tmp_path_factory.mktemp("bytes")
    spec = write_video(folder / "long.mp4", 900, fps=30, gop=300, bframes=3, size=(96, 160), noise=0.08)
    _remux(spec.path, folder / "long.mkv")
    with LoopbackFileServer(folder) as server:
        yield folder, server


def _mp4_index_bytes(path: Path) -> int:
    """The top-level boxes other than ``mdat`` (ftyp, moov...): what any reader of the MP4 needs."""
    data, total, pos = path.read_bytes(), 0, 0
    while pos < len(data):
        size, kind = struct.unpack_from(">I4s", data, pos)
        total += 0 if kind == b"mdat" else size
        pos += size
    return total


def _needed(path: Path, frame: int, sidecar_bytes: int = 0) -> int:
    """As ``scripts/bench_first_frame.py`` defines it: the index (MP4: its boxes other than ``mdat``;
    Matroska: the sidecar and the header before the first packet) and the packets of the keyframe block from
    its keyframe to the frame."""
    index = load_index(str(path))
    key = max(k for k in index.keyframes() if k <= frame)
    block = int(index.packet_sizes[key : frame + 1].sum())
    if path.suffix == ".mp4":
        return _mp4_index_bytes(path) + block
    assert index.packet_offsets is not None
    # a sidecar is a hint: the decode goes on to the frame after the target (which ends the target's time on
    # screen) to check it, so the block runs in file order to the later of their packets
    offsets, end = index.packet_offsets, int(_checked_end(index, frame))
    block = int(index.packet_sizes[(offsets >= offsets[key]) & (offsets + index.packet_sizes <= end)].sum())
    return sidecar_bytes + int(index.packet_offsets.min()) + block


def _checked_end(index, frame: int) -> int:
    """The file offset where the packets of ``frame`` and of the frame after it end."""
    last = min(frame + 1, index.num_frames - 1)
    ends = index.packet_offsets[[frame, last]] + index.packet_sizes[[frame, last]]
    return int(ends.max())


@pytest.mark.parametrize("frame", [0, 310, 897])
def test_one_frame_of_an_unseen_mp4_reads_at_most_1_2x_what_it_needs(served, frame, tmp_path):
    """A fresh process (nothing cached in memory or on disk) decodes one frame: the head, the moov, the
    first packet the open probes, and the keyframe block up to the frame's packet; not FFmpeg's 32 KiB
    reads past them. Frame 0, a B-frame 10 frames into a GOP, and one near the end."""
    folder, server = served
    path = folder / "long.mp4"
    pts = load_index(str(path)).frame_ns
    sent = server.bytes_sent
    assert one_frame_in_a_new_process(f"{server.url}/long.mp4", int(pts[frame]), tmp_path) == frame
    got, needed = server.bytes_sent - sent, _needed(path, frame)
    assert needed <= got <= 1.2 * needed, (got, needed)


@pytest.mark.parametrize("frame", [0, 310])
def test_one_frame_of_an_unseen_matroska_with_a_sidecar(served, frame, tmp_path):
    """Matroska with an index sidecar: the head, the sidecar, the first packet (which FFmpeg's open decodes
    to learn the pixel format, announced from the sidecar: one request of its size, no packet after it),
    and the keyframe block, announced and read in one request up to the frame's packet (or the packet of the
    frame after it, which checks the sidecar's frame list: see video/_truth)."""
    folder, server = served
    path = folder / "long.mkv"
    sidecar = write_index_sidecar(path)
    try:
        index = load_index(str(path))
        assert index.packet_offsets is not None
        sent, asked = server.bytes_sent, len(server.log)
        uri = f"{server.url}/long.mkv"
        assert one_frame_in_a_new_process(uri, int(index.frame_ns[frame]), tmp_path) == frame
        got, needed = server.bytes_sent - sent, _needed(path, frame, sidecar.stat().st_size)
        probed = int(index.packet_sizes[0]) if frame else 0  # the open's first packet, not the frame's
        assert needed <= got <= 1.2 * (needed + probed), (got, needed, probed)
        if frame:
            key_offset = int(index.packet_offsets[300])
            gets = [r for m, p, r in server.log[asked:] if p == "/long.mkv" and m == "GET" and r]
            gets = [tuple(map(int, r[len("bytes=") :].split("-"))) for r in gets]
            (start, end), *more = [(a, b) for a, b in gets if a <= key_offset <= b]  # the block's request
            assert not more, gets
            assert key_offset - 64 <= start <= key_offset  # the block, from its cluster's header
            assert end < _checked_end(index, frame) + 128  # to the frame (and the one after it)
    finally:
        sidecar.unlink()


def test_random_refs_over_http_are_the_local_frames(served, fresh_cache):
    """Announced ranges and drained decodes change what is fetched, never what is decoded: random refs of
    both files over HTTP give exactly the local frames, in one batch and one by one."""
    folder, server = served
    rng = random.Random(11)
    for name in ("long.mp4", "long.mkv"):
        pts = load_index(str(folder / name)).frame_ns
        frames = [*rng.sample(range(len(pts)), 24), 0, 299, 300, 301, len(pts) - 1]
        local = batch_decode([MediaRef(str(folder / name), int(pts[i])) for i in frames], output="numpy")
        remote = batch_decode([MediaRef(f"{server.url}/{name}", int(pts[i])) for i in frames], output="numpy")
        assert [read_index(f) for f in remote] == frames
        assert all(np.array_equal(a, b) for a, b in zip(local, remote))
        for i in frames[:6]:
            (one,) = batch_decode([MediaRef(f"{server.url}/{name}", int(pts[i]))], output="numpy")
            assert read_index(one) == i


@pytest.mark.parametrize("threads", [1, 3])
def test_draining_gives_the_frames_decoding_on_gives(served, fresh_cache, threads):
    """Draining the decoder once every target's packet is in it gives the very frames that feeding it more
    packets gives (B-frame reordering, frame threads)."""
    _, server = served  # decodes drain only where reads are announced (HTTP)
    spans = [Span(0, (5, 6, 7, 298)), Span(300, (302, 450, 451)), Span(600, (899,))]
    results = []
    for drain in (True, False):
        with PyAVVideoDecoder(f"{server.url}/long.mp4", dimension_order="NHWC") as dec:
            dec._index.decoder_draining = drain
            got = {}
            for span in spans:
                got.update(dec._decode_span(span, threads=threads))
            assert dec._index.decoder_draining is drain
        results.append(got)
    wanted = [t for span in spans for t in span.targets]
    assert sorted(results[0]) == sorted(results[1]) == wanted
    assert all(read_index(results[0][t]) == t for t in wanted)
    assert all(np.array_equal(results[0][t], results[1][t]) for t in wanted)


def test_interlaced_video_is_decoded_without_draining(tmp_path, fresh_cache):
    """Field-coded pictures: a frame's second field may lie in a later packet, so a drained decode is not
    trusted; the span is decoded again by feeding packets, and the video stops draining."""
    spec = write_video(
        tmp_path / "interlaced.mp4",
        60,
        fps=30,
        gop=30,
        bframes=2,
        codec_options={"x264-params": "keyint=30:min-keyint=30:scenecut=0:bframes=2:interlaced=1:tff=1"},
    )
    with LoopbackFileServer(tmp_path) as server:  # decodes drain only where reads are announced (HTTP)
        url = f"{server.url}/{spec.path.name}"
        with PyAVVideoDecoder(url, dimension_order="NHWC") as dec:
            wanted = [5, 40, 3, 59]
            assert [read_index(dec.get_frame_played_at(spec.pts_ns[i] / 1e9).data) for i in wanted] == wanted
            assert dec._index.decoder_draining is False


@pytest.fixture(scope="module")
def zoo_server(zoo_dir):
    with LoopbackFileServer(zoo_dir) as server:
        yield server


def test_every_zoo_video_over_http_gives_the_local_frames(case, zoo_server, fresh_cache):
    """Every codec and container of the zoo: random refs over HTTP (announced ranges, drained decodes, a
    small head) return exactly the frames a local decode returns."""
    if case.name == "animated_gif":
        pytest.skip("not a video stream")
    times = case.spec.pts_ns
    rng = random.Random(case.name)
    frames = sorted({0, len(times) - 1, *rng.sample(range(len(times)), min(8, len(times)))})
    uri = f"{zoo_server.url}/{case.path.relative_to(zoo_server.root)}"
    local = batch_decode([MediaRef(case.uri, times[i]) for i in frames], output="numpy")
    remote = batch_decode([MediaRef(uri, times[i]) for i in frames], output="numpy")
    if not case.rotation:  # a rotated picture's barcode does not read; its frames are compared
        assert [read_index(f) - case.first_barcode for f in remote] == frames
    assert all(np.array_equal(a, b) for a, b in zip(local, remote))
