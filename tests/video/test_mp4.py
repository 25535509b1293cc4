"""Indexes from the MP4/MOV ``moov`` sample tables equal the full demux scan (pts, keyframes, offsets, sizes,
end), give the same frames, and are read with Range requests instead of downloading the video; what the
tables do not describe exactly falls back to the scan."""

from __future__ import annotations

import contextlib
import logging

import numpy as np
import pytest

from hf_mediaref import MediaRef, batch_decode
from hf_mediaref.testing import probe_pts_ns, read_index
from hf_mediaref.video import _indexes
from hf_mediaref.video._container import OpenedVideo
from hf_mediaref.video._index import VideoIndex, scan_index
from hf_mediaref.video._indexes import load_index
from hf_mediaref.video._mp4 import Unsupported, find_moov, parse_moov

from .conftest import ZOO, _remux

MP4_CASES = [name for name in ZOO if name.endswith(("_mp4", "_mov"))]


def full_scan(uri: str) -> VideoIndex:
    with contextlib.closing(OpenedVideo(uri)) as video:
        return scan_index(video.container, video.stream)


def assert_same_index(got: VideoIndex, want: VideoIndex) -> None:
    assert got.time_base == want.time_base
    np.testing.assert_array_equal(got.pts, want.pts)
    assert got.keyframes() == want.keyframes()
    np.testing.assert_array_equal(got.packet_sizes, want.packet_sizes)
    assert got.packet_offsets is not None and want.packet_offsets is not None
    np.testing.assert_array_equal(got.packet_offsets, want.packet_offsets)
    assert got.end_pts == want.end_pts
    assert (got.width, got.height, got.codec, got.pixel_format, got.stream_index) == (
        want.width,
        want.height,
        want.codec,
        want.pixel_format,
        want.stream_index,
    )
    assert got.keyframes_verified == want.keyframes_verified


@pytest.fixture
def no_scan(monkeypatch):
    """Make any demux scan through load_index fail: the index must come from elsewhere."""

    def refuse(*args, **kwargs):
        raise AssertionError("load_index scanned the video")

    monkeypatch.setattr(_indexes, "scan_index", refuse)


@pytest.mark.parametrize("name", MP4_CASES)
def test_moov_index_equals_the_full_scan(name, build_case, fresh_cache, no_scan):
    case = build_case(name)
    assert_same_index(load_index(case.uri), full_scan(case.uri))


@pytest.mark.parametrize("name", MP4_CASES)
def test_moov_index_returns_every_frame(name, build_case, fresh_cache, no_scan):
    case = build_case(name)
    frames = batch_decode([MediaRef(case.uri, t) for t in case.spec.pts_ns], orientation="stored")
    assert [read_index(f) - case.first_barcode for f in frames] == list(range(len(case.spec.pts_ns)))


def test_tables_of_every_mp4_track(build_case):
    """Non-video tracks come back without frames; the video track is at FFmpeg's stream index."""
    case = build_case("offset_audio_mp4")
    data = case.path.read_bytes()
    tracks = parse_moov(find_moov(lambda offset, size: data[offset : offset + size], len(data)))
    assert [t.handler for t in tracks if t is not None] == ["vide", "soun"]
    assert tracks[0] is not None and tracks[0].codec_tag == "avc1" and tracks[0].pts[0] > 0  # empty edit


def test_moov_at_the_start(build_case, tmp_path, fresh_cache, no_scan):
    src = build_case("h264_bframes_mp4")
    dst = tmp_path / "faststart.mp4"
    _remux(src.path, dst, options={"movflags": "faststart"})
    assert dst.read_bytes().find(b"moov") < dst.read_bytes().find(b"mdat")
    index = load_index(str(dst))
    with contextlib.closing(OpenedVideo(str(dst))) as video:
        assert_same_index(index, scan_index(video.container, video.stream))
    frames = batch_decode([MediaRef(str(dst), t) for t in src.spec.pts_ns[::5]])
    assert [read_index(f) for f in frames] == list(range(0, len(src.spec.pts_ns), 5))


def test_fragmented_mp4_falls_back_to_the_scan(build_case, tmp_path, fresh_cache, caplog):
    src = build_case("h264_bframes_mp4")
    dst = tmp_path / "fragmented.mp4"
    _remux(src.path, dst, options={"movflags": "frag_keyframe+empty_moov"})
    with caplog.at_level(logging.INFO, logger="hf_mediaref.video._indexes"):
        index = load_index(str(dst))
    assert "fragmented" in caplog.text and "by a scan" in caplog.text
    assert_same_index(index, full_scan(str(dst)))
    pts_ns = probe_pts_ns(dst)  # without an edit list, B-frame delay shifts the pts
    frames = batch_decode([MediaRef(str(dst), t) for t in pts_ns])
    assert [read_index(f) for f in frames] == list(range(len(pts_ns)))


def test_what_is_not_mp4_is_refused(build_case):
    data = build_case("h264_ntsc_mkv").path.read_bytes()
    with pytest.raises(Unsupported):
        find_moov(lambda offset, size: data[offset : offset + size], len(data))
    mp4 = build_case("h264_mp4").path.read_bytes()
    moov = find_moov(lambda offset, size: mp4[offset : offset + size], len(mp4))
    with pytest.raises(Unsupported):
        parse_moov(moov[: len(moov) // 2])  # truncated
    with pytest.raises(Unsupported):
        parse_moov(b"\x00\x00\x00\x08free")


def _box(kind: bytes, payload: bytes) -> bytes:
    import struct

    return struct.pack(">I4s", 8 + len(payload), kind) + payload


def _trak_with_edits(*entries: tuple[int, int, int]) -> bytes:
    import struct

    body = struct.pack(">I", len(entries)) + b"".join(struct.pack(">IihH", d, t, r, 0) for d, t, r in entries)
    return _box(b"trak", _box(b"edts", _box(b"elst", b"\0\0\0\0" + body)))


@pytest.mark.parametrize(
    ("entries", "expected"),
    [
        ([(1000, 0, 1)], (0, 0, 12800)),  # one media edit over 1 s (movie scale 1000, media scale 12800)
        ([(0, 1024, 1)], (0, 1024, 0)),  # a media edit of duration 0: FFmpeg shows no frame of it
        ([(533, -1, 1), (1000, 0, 1)], (6822, 0, 12800)),  # 533 ms: 6822.4 ticks, rounded as FFmpeg does
        ([(1, -1, 1), (1, -1, 1), (1000, 0, 1)], (26, 0, 12800)),  # each empty edit rounded (12.8 -> 13)
        ([(500, -1, 1), (1000, 0, 1)], (6400, 0, 12800)),  # an empty edit delays the track by 0.5 s
        ([(1000, 0, 1), (1000, 512, 1)], None),  # two media edits: refused
        ([(1000, 0, 2)], None),  # another rate: refused
        ([(1000, 0, 1), (500, -1, 1)], None),  # an empty edit after media: refused
    ],
)
def test_edit_lists(entries, expected):
    from hf_mediaref.video._mp4 import _edit

    trak = _trak_with_edits(*entries)
    if expected is None:
        with pytest.raises(Unsupported):
            _edit(trak, (8, len(trak)), 1000, 12800)
    else:
        assert _edit(trak, (8, len(trak)), 1000, 12800) == expected


def _plain_decode(path) -> list[tuple[int, int]]:
    """``(pts_ns, barcode)`` of every frame a plain front-to-back PyAV decode shows, in output order."""
    import av

    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        tb = stream.time_base
        return [
            (
                int(f.pts * tb.numerator * 1_000_000_000 // tb.denominator),
                read_index(f.to_ndarray(format="rgb24")),
            )
            for f in container.decode(stream)
        ]


EDITS = {
    "media_from_0": [(2000, 0)],  # starts before the first frame's pts (B-frame delay): FFmpeg moves it to 0
    "tail_cut": [(1000, 1024)],  # ends mid-stream
    "mid_sample_tail_cut": [(1010, 1024 + 3 * 512 + 1)],
    "two_empty_edits_non_keyframe": [(333, -1), (200, -1), (1500, 1024 + 13 * 512)],
}


@pytest.mark.parametrize("decoder", ["pyav", pytest.param("torchcodec", marks=pytest.mark.torchcodec)])
@pytest.mark.parametrize("edits", list(EDITS.values()), ids=list(EDITS))
def test_edit_lists_show_what_a_plain_decode_shows(
    build_case, tmp_path, edits, decoder, fresh_cache, no_scan
):
    """Frame by frame against a plain decode, every strategy; the moov tables give the index (no scan)."""
    from hf_mediaref.testing import set_mp4_edit_list
    from hf_mediaref.video import BatchDecodingStrategy

    path = tmp_path / "edited.mp4"
    path.write_bytes(build_case("h264_bframes_mp4").path.read_bytes())
    set_mp4_edit_list(path, edits)
    shown = _plain_decode(path)
    assert shown and sorted(shown) == shown
    np.testing.assert_array_equal(load_index(str(path)).frame_ns, [t for t, _ in shown])
    for strategy in BatchDecodingStrategy:
        frames = batch_decode([MediaRef(str(path), t) for t, _ in shown], strategy=strategy, decoder=decoder)
        assert [read_index(f) for f in frames] == [b for _, b in shown], strategy


def test_a_media_edit_of_duration_zero_shows_no_frame(build_case, tmp_path, fresh_cache):
    """FFmpeg drops every frame of a zero-length media edit: the moov tables say so, and a decode raises."""
    from hf_mediaref.errors import MediaDecodeError
    from hf_mediaref.testing import set_mp4_edit_list

    path = tmp_path / "empty.mp4"
    path.write_bytes(build_case("h264_bframes_mp4").path.read_bytes())
    set_mp4_edit_list(path, [(0, 1024)])
    assert _plain_decode(path) == []
    data = path.read_bytes()
    with pytest.raises(Unsupported, match="no frames"):
        parse_moov(find_moov(lambda offset, size: data[offset : offset + size], len(data)))
    with pytest.raises(MediaDecodeError):
        batch_decode([MediaRef(str(path), 0)])


@pytest.mark.parametrize("decoder", ["pyav", pytest.param("torchcodec", marks=pytest.mark.torchcodec)])
def test_several_media_edits_are_scanned_and_show_what_a_plain_decode_shows(
    build_case, tmp_path, decoder, fresh_cache, caplog
):
    """Two media edits (frames 0-11, then 20-31): the tables are not used (logged), the demux scan lists
    what the demuxer outputs, and every frame is the plain decode's."""
    from hf_mediaref.testing import set_mp4_edit_list
    from hf_mediaref.video import BatchDecodingStrategy

    path = tmp_path / "two_edits.mp4"
    path.write_bytes(build_case("h264_bframes_mp4").path.read_bytes())
    set_mp4_edit_list(path, [(500, 1024), (500, 1024 + 20 * 512)])
    shown = _plain_decode(path)
    assert [b for _, b in shown] == [*range(12), *range(20, 32)]
    with caplog.at_level(logging.INFO, logger="hf_mediaref.video._indexes"):
        load_index(str(path))
    assert "2 media edits" in caplog.text
    for strategy in BatchDecodingStrategy:
        frames = batch_decode([MediaRef(str(path), t) for t, _ in shown], strategy=strategy, decoder=decoder)
        assert [read_index(f) for f in frames] == [b for _, b in shown], strategy
