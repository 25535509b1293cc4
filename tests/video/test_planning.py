"""The planner is pure: these tests use no media."""

from __future__ import annotations

import subprocess
import sys
from fractions import Fraction

import numpy as np
import pytest

from hf_mediaref.video._planning import (
    NO_FRAME,
    BatchDecodingStrategy,
    Span,
    _block_start,
    frames_played_at,
    plan_spans,
    playback_tolerance_ns,
)

S = BatchDecodingStrategy


def test_planning_imports_no_media_library():
    code = "import sys, hf_mediaref.video._planning; print(sorted({'av', 'torch'} & set(sys.modules)))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"


class TestTolerance:
    def test_half_tick_capped_at_1ms_and_at_least_1us(self):
        assert playback_tolerance_ns(Fraction(1, 1000)) == 500_000  # Matroska: half a millisecond
        assert playback_tolerance_ns(Fraction(1, 10)) == 1_000_000  # coarse time base: capped at 1 ms
        assert playback_tolerance_ns(Fraction(1, 90000)) == 5_555
        assert playback_tolerance_ns(Fraction(1, 10**9)) == 1_000  # nanosecond ticks: 1 us floor


class TestFramesPlayedAt:
    # 4 frames at 0, 100, 200, 300 ms; the last lasts 100 ms -> end at 400 ms
    frame_ns = np.array([0, 100, 200, 300], dtype=np.int64) * 1_000_000
    end = 400_000_000
    tol = 500_000

    def frames(self, times):
        return frames_played_at(self.frame_ns, self.end, times, self.tol).tolist()

    def test_playback_rule(self):
        assert self.frames([0, 50_000_000, 99_000_000, 100_000_000, 250_000_000, 399_000_000]) == [
            0,
            0,
            0,
            1,
            2,
            3,
        ]

    def test_tolerance_below_a_frame_selects_it(self):
        assert self.frames([99_500_000, 99_499_999]) == [1, 0]

    def test_before_first_frame_is_first_frame(self):
        starts_late = self.frame_ns + 5_000_000_000
        assert frames_played_at(
            starts_late, self.end + 5_000_000_000, [0, 4_000_000_000], self.tol
        ).tolist() == [0, 0]

    def test_at_or_past_end_is_no_frame(self):
        assert self.frames([400_000_000, 400_000_001, 10**12, 2**63 - 1]) == [NO_FRAME] * 4

    def test_the_last_frame_stays_on_screen_until_the_end_without_tolerance(self):
        # inside the tolerance before the end, the last frame is still on screen (issue: this raised)
        assert self.frames([399_600_000, 399_999_999]) == [3, 3]

    def test_unsorted_and_duplicate_times(self):
        assert self.frames([300_000_000, 0, 300_000_000, 150_000_000]) == [3, 0, 3, 1]


class TestSpans:
    keyframes = [0, 10, 20, 30]  # 40 frames, a keyframe every 10

    def test_block_start(self):
        assert [_block_start(self.keyframes, f) for f in (0, 9, 10, 25, 39)] == [0, 0, 10, 20, 30]
        assert [_block_start([10], f) for f in (3, 12)] == [0, 10]  # frame 0 always counts as a start

    def test_per_block_decodes_each_block_once_to_its_last_target(self):
        spans = plan_spans([25, 3, 7, 3, 36], self.keyframes, S.SEQUENTIAL_PER_KEYFRAME_BLOCK)
        assert spans == (Span(0, (3, 7)), Span(20, (25,)), Span(30, (36,)))
        assert sum(s.decoded_frames for s in spans) == 8 + 6 + 7

    def test_per_block_merges_when_the_gap_is_cheaper_than_a_seek(self):
        # frame 9 ends block 0 and frame 11 is in block 10: 0 unwanted frames lie between 9 and 10
        spans = plan_spans([9, 11], self.keyframes, S.SEQUENTIAL_PER_KEYFRAME_BLOCK, merge_gap=2)
        assert spans == (Span(0, (9, 11)),)
        spans = plan_spans([5, 11], self.keyframes, S.SEQUENTIAL_PER_KEYFRAME_BLOCK, merge_gap=2)
        assert spans == (Span(0, (5,)), Span(10, (11,)))  # 4 frames (6..9) would be wasted: seek instead
        assert plan_spans([9, 11], self.keyframes, S.SEQUENTIAL_PER_KEYFRAME_BLOCK, merge_gap=-1) == (
            Span(0, (9,)),
            Span(10, (11,)),
        )

    def test_sequential_is_one_span(self):
        assert plan_spans([36, 3, 25], self.keyframes, S.SEQUENTIAL) == (Span(0, (3, 25, 36)),)
        assert plan_spans([12, 36], self.keyframes, "sequential") == (Span(10, (12, 36)),)

    def test_separate_is_one_span_per_unique_frame(self):
        assert plan_spans([25, 3, 3, 7], self.keyframes, S.SEPARATE) == (
            Span(0, (3,)),
            Span(0, (7,)),
            Span(20, (25,)),
        )

    def test_every_strategy_covers_every_frame(self):
        rng = np.random.default_rng(0)
        for _ in range(50):
            keys = sorted(set(rng.integers(1, 500, 8).tolist()) | {0})
            frames = rng.integers(0, 500, 30).tolist()
            for strategy in S:
                spans = plan_spans(frames, keys, strategy)
                covered = [t for s in spans for t in s.targets]
                assert sorted(set(covered)) == sorted(set(frames))
                assert len(covered) == len(set(covered))  # no frame is decoded for two spans
                for span in spans:
                    assert span.start in keys and span.start <= span.targets[0]
                    # the start is the last keyframe at or before the first target
                    assert not [k for k in keys if span.start < k <= span.targets[0]]

    def test_empty_and_invalid(self):
        assert plan_spans([], self.keyframes) == ()
        with pytest.raises(ValueError):
            plan_spans([-1], self.keyframes)
        with pytest.raises(ValueError):
            Span(5, (3,))
        with pytest.raises(ValueError):
            Span(0, (3, 3))
        with pytest.raises(ValueError):
            plan_spans([1], self.keyframes, "fastest")


def test_plan_decodes_each_requested_frame_once():
    spans = plan_spans([25, 3, 25, 7], [0, 10, 20])
    assert sorted(t for span in spans for t in span.targets) == [3, 7, 25]
    assert sum(span.decoded_frames for span in spans) == 8 + 6
    with pytest.raises(ValueError, match=">= 0"):
        plan_spans([NO_FRAME], [0])
