"""The keyframe index: built by demuxing, true to the decoder, cached per source, and self-correcting."""

from __future__ import annotations

import os

import numpy as np
import pytest

from hf_mediaref import MediaRef, batch_decode
from hf_mediaref.errors import MediaDecodeError
from hf_mediaref.testing import read_index, write_video
from hf_mediaref.video import _pyav as pyav_decoder
from hf_mediaref.video import collect_stats
from hf_mediaref.video._indexes import load_index

from .conftest import SIZE


def _real_keyframe_positions(case) -> list[int]:
    """Positions of the frames the decoder itself marks as keyframes (a full decode)."""
    import av

    with av.open(case.uri) as container:
        stream = container.streams.video[0]
        keys = sorted(f.pts for f in container.decode(stream) if f.key_frame)
    index = load_index(case.uri)
    return [int(np.searchsorted(index.pts, k)) for k in keys]


def test_frames_in_presentation_order_with_exact_times(case, fresh_cache):
    index = load_index(case.uri)
    assert index.num_frames == case.spec.num_frames
    assert np.all(np.diff(index.pts) > 0)  # sorted by pts even when decode order differs (B-frames)
    # frame times (ns, floored) agree with what a full decode reports, to the nanosecond
    assert index.frame_ns.tolist() == list(case.spec.pts_ns)
    assert index.begin_ns == case.spec.pts_ns[0]
    if case.fps is not None:  # constant frame rate: the end is one frame after the last pts
        last = case.spec.pts_ns[-1]
        assert abs(index.end_ns - (last + 1e9 / case.fps)) <= 1e6


def test_keyframes_are_real_decode_starts(case, fresh_cache):
    index = load_index(case.uri)
    real = _real_keyframe_positions(case)
    assert index.keyframes()[0] == 0
    assert set(index.keyframes()) <= set(real) | {0}
    # every zoo video has several GOPs, but the one-keyframe TS
    assert len(index.keyframes()) >= (1 if case.name == "h264_one_keyframe_ts" else 2)


def test_every_packet_flagged_keyframe_is_detected_and_verified(build_case, fresh_cache):
    case = build_case("nasty_hevc_mkv")
    import av

    with av.open(case.uri) as container:  # the trap: the demuxer reports every packet as a keyframe
        stream = container.streams.video[0]
        assert all(p.is_keyframe for p in container.demux(stream) if p.size)
    index = load_index(case.uri)
    assert index.keyframes_verified
    assert index.keyframes() == _real_keyframe_positions(case) == [0, 40, 80]


def test_matroska_without_cues(build_case, fresh_cache):
    case = build_case("nocues_mkv")
    index = load_index(case.uri)
    assert index.keyframes() == [0, 12, 24, 36]
    assert not index.keyframes_verified


def test_index_is_cached_per_source_and_rebuilt_when_the_file_changes(tmp_path, fresh_cache):
    path = tmp_path / "v.mp4"
    write_video(path, 20, fps=20, gop=5, size=SIZE)
    with collect_stats() as stats:
        first = load_index(str(path))
        assert load_index(str(path)) is first
        assert load_index(path.as_uri()) is first  # file:// and the plain path are the same source
    assert stats.index_scans == 1
    write_video(path, 30, fps=20, gop=5, size=SIZE)
    os.utime(path, ns=(1, 1))  # make sure the signature differs even on coarse clocks
    second = load_index(str(path))
    assert second is not first and second.num_frames == 30
    assert read_index(batch_decode([MediaRef(str(path), 1_450_000_000)])[0]) == 29


def test_fake_keyframes_are_backed_off_and_distrusted(build_case, fresh_cache):
    """Runtime safety net: if the index trusts packets that are not real keyframes (as an unverified index
    of the all-keyframe file would), a seek decodes nothing or lands late; the decoder backs off."""
    case = build_case("nasty_hevc_mkv")
    index = load_index(case.uri)
    index.keyframe_positions[:] = list(range(index.num_frames))  # pretend every packet is a keyframe
    picks = [1, 20, 39, 45, 70, 89]
    with collect_stats() as stats:
        out = batch_decode([MediaRef(case.uri, case.spec.pts_ns[i]) for i in picks], strategy="separate")
    assert [read_index(f) for f in out] == picks
    assert stats.seeks > len(picks)  # overshoots were retried from earlier keyframes
    for i in picks:
        if i not in (0, 40, 80):
            assert i not in index.keyframes()  # proven-fake start points are dropped


def test_losing_a_frame_while_skipping_nonref_frames_turns_skipping_off(build_case, fresh_cache, monkeypatch):
    """Safety net of the non-reference skip: AV1 (dav1d) is not on the allow-list because its packets do not
    map one-to-one to pictures; force it on and the decoder must notice and still return exact frames."""
    case = build_case("av1_mp4")
    index = load_index(case.uri)
    monkeypatch.setattr(pyav_decoder, "_NONREF_SKIP_CODECS", frozenset({index.codec}))
    monkeypatch.setattr(pyav_decoder, "_reorders", lambda video: True)  # AV1 here has no B-frames
    picks = [1, 3, 5, 13, 27]
    out = batch_decode([MediaRef(case.uri, case.spec.pts_ns[i]) for i in picks], strategy="separate")
    assert [read_index(f) for f in out] == picks
    assert index.nonref_skipping is False


def test_nonref_frames_are_skipped_on_h264_with_bframes(build_case, fresh_cache):
    case = build_case("h264_bframes_mp4")
    picks = [11, 23, 35]  # the last frame of each of the first three GOPs
    with collect_stats() as stats:
        out = batch_decode([MediaRef(case.uri, case.spec.pts_ns[i]) for i in picks])
    assert [read_index(f) for f in out] == picks
    assert stats.decoded_frames < 36  # fewer than every frame up to the targets
    assert stats.converted_frames == 3


def test_nothing_is_skipped_in_a_stream_without_bframes(build_case, fresh_cache, monkeypatch):
    """Without reordering, a packet whose (damaged) header reads "non-reference" must still be decoded, so
    that its damage is reported; with B-frames, non-reference frames are skipped."""
    skips = []
    real = pyav_decoder._SpanDecode

    def spy(video, index, start, targets, size, skip_nonref, **kw):
        skips.append(skip_nonref)
        return real(video, index, start, targets, size, skip_nonref, **kw)

    monkeypatch.setattr(pyav_decoder, "_SpanDecode", spy)
    for name, want in (("h264_mp4", False), ("h264_bframes_mp4", True)):
        case = build_case(name)
        skips.clear()
        picks = [9, 19]
        out = batch_decode([MediaRef(case.uri, case.spec.pts_ns[i]) for i in picks], strategy="separate")
        assert [read_index(f) for f in out] == picks
        assert skips and set(skips) == {want}, name


def test_file_that_is_not_a_video_raises_decode_error(tmp_path, fresh_cache):
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(b"\x00\x01 this is not a video" * 100)
    with pytest.raises(MediaDecodeError, match="junk.mp4"):
        load_index(str(junk))
