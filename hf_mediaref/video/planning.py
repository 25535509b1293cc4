"""Pure planning: which frame answers each requested time, and what to decode to get it.

Nothing here touches media. Inputs are a video's frame timestamps in presentation order and the positions
of the frames a decoder can start from (keyframes); outputs are plain data the decoders execute.

Frame selection (the *playback rule*): the frame returned for time ``t`` is the one on screen at ``t``,
i.e. the last frame whose pts <= ``t + tolerance``. The tolerance absorbs timestamp rounding by containers
(Matroska stores milliseconds, so ``int(i * 1e9 / fps)`` can sit up to 0.5 ms below frame ``i``'s stored
pts); see :func:`playback_tolerance_ns`. Times before the first frame select the first frame. Times at or
past the end of the video (last pts + last frame's duration, within the tolerance) select nothing (-1).

Decode plan: a :class:`Span` is one seek to a keyframe followed by a forward decode up to its last target.
Strategies differ only in how targets are grouped into spans:

* ``SEPARATE``: one span per unique frame (a seek per frame).
* ``SEQUENTIAL``: one span from the first target's keyframe to the last target (one seek, decode through).
* ``SEQUENTIAL_PER_KEYFRAME_BLOCK`` (default): one span per keyframe block that holds targets, decoded from
  its keyframe to its last target; adjacent blocks merge when decoding through the gap costs less than a seek.

Every strategy yields the same frames; independent spans can run on different cores
(:func:`choose_parallelism`).
"""

from __future__ import annotations

import dataclasses
import enum
import heapq
from fractions import Fraction
from typing import Iterable, Sequence

import numpy as np

__all__ = [
    "BatchDecodingStrategy",
    "Span",
    "DecodePlan",
    "playback_tolerance_ns",
    "frames_played_at",
    "block_starts",
    "plan_spans",
    "plan_decode",
    "span_cost",
    "choose_parallelism",
    "NO_FRAME",
    "DEFAULT_MERGE_GAP",
]

NO_FRAME = -1
_INT64_MAX = np.iinfo(np.int64).max
_MAX_TOLERANCE_NS = 1_000_000
_MIN_TOLERANCE_NS = 1_000

#: Decoding this many unwanted frames is about as costly as a seek (flush + demuxer reposition + reading
#: the keyframe's neighbourhood again); gaps up to this size between blocks are decoded through.
DEFAULT_MERGE_GAP = 2
#: Cost-model weights in "decoded frame" units: converting a frame to RGB and starting a span.
_CONVERT_COST = 0.5
_SEEK_COST = 1.0
#: Frame threading on ``n`` codec threads runs about ``1 + (n - 1) * 0.6`` times as fast as one thread
#: (measured 1.5x for 2 threads incl. RGB conversion); independent spans on separate threads scale ~linearly.
_FRAME_THREAD_GAIN = 0.6


class BatchDecodingStrategy(str, enum.Enum):
    """How requested frames of one video are grouped into seek + decode spans (all give the same frames)."""

    SEPARATE = "separate"
    SEQUENTIAL = "sequential"
    SEQUENTIAL_PER_KEYFRAME_BLOCK = "sequential_per_keyframe_block"


@dataclasses.dataclass(frozen=True)
class Span:
    """Seek to frame ``start`` (a keyframe), decode forward, return ``targets`` (sorted frame positions)."""

    start: int
    targets: tuple[int, ...]

    def __post_init__(self) -> None:
        if not self.targets or self.targets[0] < self.start or list(self.targets) != sorted(set(self.targets)):
            raise ValueError(f"invalid span: start={self.start}, targets={self.targets}")

    @property
    def stop(self) -> int:
        """Position of the last frame to decode."""
        return self.targets[-1]

    @property
    def decoded_frames(self) -> int:
        """Frames decoded from the keyframe to the last target (B-frame reordering aside)."""
        return self.stop - self.start + 1


@dataclasses.dataclass(frozen=True)
class DecodePlan:
    """``request_frames[i]`` is the frame position answering request ``i``; ``spans`` produce every such frame."""

    request_frames: tuple[int, ...]
    spans: tuple[Span, ...]

    @property
    def decoded_frames(self) -> int:
        return sum(span.decoded_frames for span in self.spans)

    @property
    def unique_frames(self) -> int:
        return len(set(self.request_frames))


def playback_tolerance_ns(time_base: Fraction) -> int:
    """Half a tick of ``time_base``, capped at 1 ms, and at least 1 microsecond."""
    half_tick = int(Fraction(time_base) * 1_000_000_000 / 2)
    return max(_MIN_TOLERANCE_NS, min(half_tick, _MAX_TOLERANCE_NS))


def frames_played_at(frame_ns: np.ndarray, end_ns: int, times_ns: Iterable[int], tolerance_ns: int) -> np.ndarray:
    """Frame position on screen at each time (playback rule), or :data:`NO_FRAME` at/after ``end_ns``.

    ``frame_ns`` are the frames' presentation times in ns, sorted ascending (floored to whole ns).
    """
    times = np.fromiter((int(t) for t in times_ns), dtype=np.int64)
    probe = np.minimum(times, _INT64_MAX - tolerance_ns) + tolerance_ns
    frames = np.searchsorted(frame_ns, probe, side="right").astype(np.int64) - 1
    np.maximum(frames, 0, out=frames)
    frames[probe >= end_ns] = NO_FRAME
    return frames


def block_starts(frames: np.ndarray, keyframes: Sequence[int]) -> np.ndarray:
    """For each frame position, the last keyframe position at or before it (position 0 always counts)."""
    keys = np.asarray(keyframes, dtype=np.int64)
    if keys.size == 0 or keys[0] != 0:
        keys = np.concatenate([[0], keys[keys > 0]])
    return keys[np.searchsorted(keys, np.asarray(frames, dtype=np.int64), side="right") - 1]


def plan_spans(
    frames: Iterable[int],
    keyframes: Sequence[int],
    strategy: BatchDecodingStrategy | str = BatchDecodingStrategy.SEQUENTIAL_PER_KEYFRAME_BLOCK,
    *,
    merge_gap: int = DEFAULT_MERGE_GAP,
) -> tuple[Span, ...]:
    """Spans that decode every frame in ``frames`` (positions; duplicates and any order allowed) once.

    ``keyframes`` are sorted positions a decode may start from. ``merge_gap`` (per-block strategy only):
    two blocks' spans merge when at most this many unwanted frames separate them.
    """
    strategy = BatchDecodingStrategy(strategy)
    wanted = np.unique(np.asarray(list(frames), dtype=np.int64))
    if wanted.size == 0:
        return ()
    if wanted[0] < 0:
        raise ValueError(f"frame positions must be >= 0, got {int(wanted[0])}")
    starts = block_starts(wanted, keyframes)
    if strategy is BatchDecodingStrategy.SEPARATE:
        return tuple(Span(int(s), (int(f),)) for s, f in zip(starts, wanted))
    if strategy is BatchDecodingStrategy.SEQUENTIAL:
        return (Span(int(starts[0]), tuple(int(f) for f in wanted)),)
    spans: list[Span] = []
    group_start, group = int(starts[0]), [int(wanted[0])]
    for start, frame in zip(starts[1:].tolist(), wanted[1:].tolist()):
        same_block = start == group_start
        cheap_gap = start - group[-1] - 1 <= merge_gap
        if same_block or cheap_gap:
            group.append(frame)
        else:
            spans.append(Span(group_start, tuple(group)))
            group_start, group = start, [frame]
    spans.append(Span(group_start, tuple(group)))
    return tuple(spans)


def plan_decode(
    request_frames: Sequence[int],
    keyframes: Sequence[int],
    strategy: BatchDecodingStrategy | str = BatchDecodingStrategy.SEQUENTIAL_PER_KEYFRAME_BLOCK,
    *,
    merge_gap: int = DEFAULT_MERGE_GAP,
) -> DecodePlan:
    """A :class:`DecodePlan` for frame positions requested in input order (see :func:`plan_spans`)."""
    requests = tuple(int(f) for f in request_frames)
    if any(f < 0 for f in requests):
        raise ValueError("request_frames must be valid frame positions (map out-of-range times first)")
    return DecodePlan(requests, plan_spans(requests, keyframes, strategy, merge_gap=merge_gap))


def span_cost(span: Span) -> float:
    """Estimated cost of a span in decoded-frame units (decode + RGB conversion + seek)."""
    return span.decoded_frames + _CONVERT_COST * len(span.targets) + _SEEK_COST


def _makespan(costs: Sequence[float], workers: int) -> float:
    """Finish time of greedy longest-first scheduling of ``costs`` on ``workers`` equal workers."""
    loads = [0.0] * workers
    for cost in sorted(costs, reverse=True):
        heapq.heappush(loads, heapq.heappop(loads) + cost)
    return max(loads)


def choose_parallelism(costs: Sequence[float], cores: int) -> tuple[int, int]:
    """``(workers, codec_threads)`` with ``workers * codec_threads <= cores`` that finishes ``costs`` soonest.

    Independent spans on single-threaded codecs scale almost linearly and have no frame-threading latency,
    so they win whenever there are enough spans to keep the cores busy; a lone long span gets frame threads.
    """
    cores = max(1, int(cores))
    if not costs or cores == 1:
        return 1, 1
    best: tuple[float, int, int] | None = None
    for workers in range(1, min(cores, len(costs)) + 1):
        threads = cores // workers
        speed = 1.0 + (threads - 1) * _FRAME_THREAD_GAIN
        finish = _makespan(costs, workers) / speed
        if best is None or finish < best[0] - 1e-9:
            best = (finish, workers, threads)
    assert best is not None
    return best[1], best[2]
