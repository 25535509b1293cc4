"""Decoding on instead of seeking again: a span that starts where the cached container's last decode left
the codec continues from there (``_pyav._ResumePoint``). Every frame is identified by its barcode."""

from __future__ import annotations

import dataclasses
import random

import pytest

from hf_mediaref import MediaRef, batch_decode
from hf_mediaref.testing import read_index, write_video
from hf_mediaref.video import cleanup_cache, collect_stats
from hf_mediaref.video._cache import decoder_cache
from hf_mediaref.video._container import lease_video
from hf_mediaref.video._identity import source_key
from hf_mediaref.video._indexes import load_index
from hf_mediaref.video._planning import Span
from hf_mediaref.video._pyav import _ResumePoint

from .conftest import SIZE


@pytest.fixture(scope="module", params=[("h264_bframes.mp4", 3), ("h264.mkv", 0)])
def video(request, tmp_path_factory):
    name, bframes = request.param
    path = tmp_path_factory.mktemp("resume") / name
    return write_video(path, 240, fps=20, gop=80, bframes=bframes, size=SIZE)


def _decode(spec, positions, **kw):
    frames = batch_decode([MediaRef(str(spec.path), spec.pts_ns[p]) for p in positions], **kw)
    return [read_index(f) for f in frames]


def _points(spec) -> list[_ResumePoint]:
    """The resume points of the idle containers of ``spec`` in the decoder cache."""
    key = source_key(str(spec.path))
    with decoder_cache._lock:
        return [
            obj.resume_point
            for slot, obj in decoder_cache._idle.items()
            if slot[0][:2] == ("pyav", key) and obj.resume_point is not None
        ]


@pytest.mark.parametrize("workers", [1, 2])
def test_consecutive_batches_decode_on_and_return_the_right_frames(video, workers):
    cleanup_cache()
    picks = sorted(random.Random(workers).sample(range(video.num_frames), 96))
    batches = [picks[i : i + 12] for i in range(0, len(picks), 12)]
    with collect_stats() as stats:
        for batch in batches:
            assert _decode(video, batch, max_workers=workers) == batch
    assert stats.seeks < len(batches)  # at least one batch decoded on instead of seeking


def test_a_decode_elsewhere_in_between_leaves_the_point_to_the_call_that_continues(video):
    """The point at a call's last target is kept: a decode that cannot use it opens another container
    instead of taking it, for the newest two points of the video."""
    cleanup_cache()
    assert _decode(video, [5, 10, 12], max_workers=1) == [5, 10, 12]
    with collect_stats() as stats:
        assert _decode(video, [200, 230], max_workers=1) == [200, 230]
    assert stats.containers_opened == 1  # the kept point's container was left alone
    with collect_stats() as stats:
        assert _decode(video, [13, 14, 40], max_workers=1) == [13, 14, 40]
    assert stats.seeks == 0  # decoded on from frame 12
    with collect_stats() as stats:  # and that decode left a point for the next frames
        assert _decode(video, [41, 60], max_workers=1) == [41, 60]
    assert stats.seeks == 0
    with collect_stats() as stats:  # two newer points are kept (60, 230): the third decode takes the oldest
        assert _decode(video, [100, 120], max_workers=1) == [100, 120]
        assert _decode(video, [161, 170], max_workers=1) == [161, 170]
    assert stats.containers_opened <= 1 and stats.seeks == 2


def test_earlier_frames_of_the_block_seek(video):
    cleanup_cache()
    assert _decode(video, [30, 31], max_workers=1) == [30, 31]
    with collect_stats() as stats:
        assert _decode(video, [31, 35], max_workers=1) == [31, 35]  # frame 31 is out already
        assert _decode(video, [20], max_workers=1) == [20]
    assert stats.seeks == 2


def test_a_failed_decode_leaves_no_resume_point(video, monkeypatch):
    import hf_mediaref.video._pyav as pyav

    cleanup_cache()
    assert _decode(video, [3, 7], max_workers=1) == [3, 7]
    assert len(_points(video)) == 1
    calls = []

    def failing(*args, **kwargs):
        calls.append(1)
        raise RuntimeError("conversion failed midway")

    monkeypatch.setattr(pyav, "_to_rgb", failing)
    with pytest.raises(RuntimeError):
        _decode(video, [9, 11], max_workers=1)
    assert calls and _points(video) == []  # the container was closed: its codec state is unknown
    monkeypatch.undo()
    with collect_stats() as stats:
        assert _decode(video, [9, 11], max_workers=1) == [9, 11]
    assert stats.seeks == 1


def test_a_resume_that_loses_a_frame_falls_back_to_a_seek(video):
    """A wrong resume point (frames up to 20 out, it claims up to 10) must never give a wrong frame: the
    frame that does not come out sends the span back to its keyframe."""
    cleanup_cache()
    assert _decode(video, [15, 20], max_workers=1) == [15, 20]
    key = source_key(str(video.path))
    with decoder_cache._lock:
        (obj,) = [o for slot, o in decoder_cache._idle.items() if slot[0][:2] == ("pyav", key)]
        point = obj.resume_point
        obj.resume_point = dataclasses.replace(point, last_pts=int(point.index.pts[10]), last_position=10)
    with collect_stats() as stats:
        assert _decode(video, [12, 16, 25], max_workers=1) == [12, 16, 25]
    assert stats.seeks == 1


def test_another_lease_clears_the_resume_point(video):
    cleanup_cache()
    assert _decode(video, [3, 7], max_workers=1) == [3, 7]
    key = source_key(str(video.path))
    for threads in (1, 2):  # a lease that cannot use the kept point opens another container
        with lease_video(str(video.path), key=key, threads=threads) as (opened, point):
            assert point is None and opened.resume_point is None
    assert len(_points(video)) == 1
    with lease_video(str(video.path), key=key, prefer=lambda _: True) as (opened, point):
        assert point is not None and opened.resume_point is None  # taken: cleared for the lease
        opened.container.seek(int(point.index.pts[160]), stream=opened.stream)
    assert _points(video) == []
    with collect_stats() as stats:
        assert _decode(video, [8], max_workers=1) == [8]
    assert stats.seeks == 1


def test_resume_point_serves_only_later_unskipped_targets_near_its_block(video):
    index = load_index(str(video.path))
    pts = index.pts
    point = _ResumePoint(index, int(pts[20]), 20, frozenset({int(pts[22])}))
    assert point.serves(index, Span(0, (21, 30)))
    assert not point.serves(index, Span(0, (20, 30)))  # frame 20 is out already
    assert not point.serves(index, Span(0, (21, 22)))  # frame 22's packet was skipped
    assert not point.serves(index, Span(160, (170,)))  # a seek skips the frames between
    other = dataclasses.replace(index)
    assert not point.serves(other, Span(0, (21,)))  # another index (the file was rebuilt)


def test_consecutive_batches_of_a_remote_matroska_indexed_from_its_cues(tmp_path, fresh_cache):
    """The progressive index demuxes blocks on containers that decodes gave back: it clears their resume
    points (a container whose demuxer moved cannot decode on), and its snapshots are other indexes."""
    from hf_mediaref.testing.http_server import LoopbackFileServer

    spec = write_video(tmp_path / "cued.mkv", 160, fps=20, gop=20, bframes=2, size=SIZE)
    with LoopbackFileServer(tmp_path) as server:
        url = f"{server.url}/cued.mkv"
        progressive = load_index(url).progressive
        assert progressive is not None  # indexed from the Cues, block by block
        picks = list(range(0, 160, 3))
        for k in range(0, len(picks), 6):
            batch = picks[k : k + 6]
            frames = batch_decode([MediaRef(url, spec.pts_ns[p]) for p in batch], max_workers=1)
            assert [read_index(f) for f in frames] == batch
        key = source_key(url)
        with decoder_cache._lock:
            idle = [o for slot, o in decoder_cache._idle.items() if slot[0][:2] == ("pyav", key)]
        assert idle
        for video in idle:
            video.resume_point = "a stale point"
            progressive._checked(video)
            assert video.resume_point is None


def test_a_local_video_seeks_over_a_gap_between_blocks_rather_than_decode_through_it(tmp_path):
    """Keyframe every 2 frames (LeRobot's AV1 default): frames 1 and 4 lie in blocks 0-1 and 4-5. Decoding
    through frames 2 and 3 costs two decoded frames; a seek in a local file reads nothing again."""
    cleanup_cache()
    spec = write_video(tmp_path / "gop2.mp4", 40, fps=10, gop=2, size=SIZE)
    with collect_stats() as stats:
        assert _decode(spec, [1, 4, 9], max_workers=1) == [1, 4, 9]
    assert stats.decoded_frames == 2 + 1 + 2 and stats.seeks == 3
