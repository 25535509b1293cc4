"""What every decoder backend shares: the keyframe index, frame selection, planning and the TorchCodec-like
single-video surface. Backends only execute :class:`~._planning.Span` s (``_decode_span``) and stack
frames."""

from __future__ import annotations

import abc
import contextlib
import functools
import os
from collections.abc import Iterable, Sequence
from typing import Any, Literal

import numpy as np

from .._executor import Task, check_deadline, core_budget, run_tasks
from .._fields import NS_PER_SECOND, describe_ref
from ..errors import FrameOutOfRangeError, MediaDecodeError, describe_uri
from ..io import UriKind, check_pixel_limit, classify_uri
from ._errors import decode_errors
from ._identity import source_key
from ._index import VideoIndex
from ._indexes import confirm_version, load_index
from ._planning import (
    DEFAULT_MERGE_GAP,
    LOCAL_MERGE_GAP,
    NO_FRAME,
    BatchDecodingStrategy,
    Span,
    plan_spans,
    span_cost,
)
from ._truth import IndexMismatch, Stale, is_replaced, replacement, rescan_index
from ._types import Frame, FrameBatch, VideoStreamMetadata

__all__ = ["BaseVideoDecoder", "DimensionOrder", "Orientation", "as_source_uri", "quarter_turns"]

DimensionOrder = Literal["NCHW", "NHWC"]
Orientation = Literal["display", "stored"]


def as_source_uri(source: Any) -> str:
    """The URI of a decoder source: a str URI/path, an ``os.PathLike`` or a ``MediaRef`` (its ``uri``)."""
    uri = getattr(source, "uri", source)
    if isinstance(uri, os.PathLike):
        uri = os.fspath(uri)
    if not isinstance(uri, str) or not uri:
        raise TypeError(
            f"video source must be a URI string, a path or a MediaRef, got {type(source).__name__}"
        )
    return uri


def quarter_turns(rotation: float | None) -> int:
    """Counter-clockwise quarter turns (0..3) of a display rotation in degrees (``None``: 0); rotations
    between quarter turns round to the nearest one."""
    return round(float(rotation or 0) / 90) % 4


class BaseVideoDecoder(abc.ABC):
    """Decode frames of one video; frames are chosen by the playback rule (the frame on screen at a time).

    Cheap to create once the video's index is cached; open containers come from a shared cache, so a decoder
    may be used from several threads. Works as a context manager. The getters mirror TorchCodec's
    ``VideoDecoder``: ``get_frame_at`` / ``get_frames_at`` / ``get_frames_in_range`` by position,
    ``get_frame_played_at`` / ``get_frames_played_at`` / ``get_frames_played_in_range`` by time,
    ``decoder[i]`` and ``decoder[a:b]`` for the data alone.

    Args:
        source: a URI or path of any kind hf_mediaref reads (local, ``file://``, ``http(s)://``,
            ``data:``, fsspec URLs), or a ``MediaRef`` (its ``uri``).
        storage_options: fsspec options for remote URIs.
        dimension_order: ``"NCHW"`` (default, as TorchCodec) or ``"NHWC"``.
        orientation: ``"display"`` (default, as TorchCodec: a rotation display matrix is applied) or
            ``"stored"`` (the pixels as encoded). :attr:`metadata` gives the stored size.

    Raises:
        MediaNotFoundError, MediaDecodeError, UnsupportedURIError, RemoteAccessError: when the video cannot be
            opened or indexed.
    """

    def __init__(
        self,
        source: Any,
        *,
        storage_options: dict | None = None,
        dimension_order: DimensionOrder = "NCHW",
        orientation: Orientation = "display",
    ):
        if dimension_order not in ("NCHW", "NHWC"):
            raise ValueError(f"dimension_order must be 'NCHW' or 'NHWC', got {dimension_order!r}")
        if orientation not in ("display", "stored"):
            raise ValueError(f"orientation must be 'display' or 'stored', got {orientation!r}")
        self.orientation = orientation
        self.uri = as_source_uri(source)
        self.storage_options = storage_options
        self.dimension_order = dimension_order
        self._key = source_key(self.uri, storage_options)
        #: unwanted frames between two keyframe blocks decoded through rather than seek (see _planning)
        self._merge_gap = (
            LOCAL_MERGE_GAP
            if classify_uri(self.uri) in (UriKind.LOCAL, UriKind.FILE, UriKind.DATA)
            else DEFAULT_MERGE_GAP
        )
        # the index as loaded: complete, or a snapshot of a progressive one (Matroska Cues, see _progressive)
        self._snapshot: VideoIndex = load_index(self.uri, storage_options=storage_options, key=self._key)
        check_pixel_limit(
            self._snapshot.width, self._snapshot.height, self.uri, "video"
        )  # stored indexes too
        self._closed = False

    def _current(self) -> VideoIndex:
        """The index as loaded, or the scanned index that replaced it."""
        newer = replacement(self._snapshot)
        if newer is not None:
            self._snapshot = newer
        return self._snapshot

    #: Whether time lookups may use a progressive index's snapshot (False: the backend needs every frame).
    _uses_snapshots = True

    @property
    def _index(self) -> VideoIndex:
        """The complete index (a progressive one is completed first: a full scan); the scanned one where a
        decode discarded it (by any decoder of the video: see :mod:`._truth`)."""
        idx = self._current()
        if idx.progressive is not None:
            idx = self._snapshot = idx.progressive.complete()
        return idx

    def _index_for(self, times_ns: Sequence[int]) -> VideoIndex:
        """An index whose frames at ``times_ns`` are exact: a snapshot of a progressive index with the
        blocks holding them demuxed, else the complete index. Positions from it are valid in it only: the
        plan and the decode of a batch use the same one."""
        idx = self._current()
        if idx.progressive is None or not self._uses_snapshots:
            return self._index
        idx = self._snapshot = idx.progressive.snapshot_for(times_ns)
        return idx

    # ------------------------------------------------------------------ backend interface
    @abc.abstractmethod
    def _decode_span(
        self,
        span: Span,
        *,
        size: tuple[int, int] | None = None,
        threads: int = 1,
        index: VideoIndex | None = None,
        last: bool = False,
        held: Any = None,
    ) -> dict[int, Any]:
        """Decode ``span`` (positions in ``index``, default the complete index) and return {frame position:
        (H, W, 3) uint8 frame} for its targets. ``last``: the span holds the call's last target of this
        video, where the next call may continue. ``held``: what :meth:`_holding` keeps for a chain of spans
        (None: the span is decoded on its own)."""

    #: The most consecutive spans of a video one :meth:`_decode_spans` call decodes (see :meth:`_span_tasks`).
    _spans_per_call = 1

    def _decode_spans(
        self,
        spans: Sequence[Span],
        *,
        size: tuple[int, int] | None = None,
        threads: int = 1,
        index: VideoIndex | None = None,
        last: bool = False,
        held: Any = None,
    ) -> dict[int, Any]:
        """Decode consecutive ``spans`` (at most :attr:`_spans_per_call`) as :meth:`_decode_span`
        decodes each; a backend whose decoder answers many spans in one call decodes them together."""
        out: dict[int, Any] = {}
        for k, span in enumerate(spans):
            out.update(
                self._decode_span(
                    span,
                    size=size,
                    threads=threads,
                    index=index,
                    last=last and k == len(spans) - 1,
                    held=held,
                )
            )
        return out

    def _planned_reads(self, spans: Sequence[Span], index: VideoIndex) -> list[tuple[int, int]]:
        """The ``[start, end)`` byte ranges decoding ``spans`` (positions in ``index``) reads, as far as the
        index tells (fetched ahead for remote sources: :mod:`hf_mediaref.io._ranges`); none by default."""
        return []

    @abc.abstractmethod
    def _stack(self, frames: Sequence[Any]) -> Any:
        """Stack (H, W, 3) frames into one NHWC batch of the backend's array type."""

    # ------------------------------------------------------------------ engine hooks (for the batch engine)
    def _frames_at(self, times_ns: Sequence[int], index: VideoIndex | None = None) -> np.ndarray:
        """Frame positions in ``index`` (default: the complete index) on screen at ``times_ns`` (an index from
        :meth:`_index_for` them); FrameOutOfRangeError (naming the ref) past the end."""
        idx = self._index if index is None else index
        frames = idx.frames_at(times_ns)
        bad = np.flatnonzero(frames == NO_FRAME)
        if bad.size:
            confirm_version(idx, self.uri, self.storage_options)  # a stale index is no proof
            t_ns = int(list(times_ns)[int(bad[0])])
            what = describe_ref(self.uri, t_ns)  # the ref asking for it
            count = "" if idx.progressive is not None else f" {idx.num_frames}"  # partial: not counted
            raise FrameOutOfRangeError(
                f"{what}: time {t_ns / NS_PER_SECOND:.9f} s ({t_ns} ns) is at or past the end of video "
                f"{describe_uri(self.uri)}: its{count} frames are on screen from "
                f"{idx.begin_ns / NS_PER_SECOND:.9f} s ({idx.begin_ns} ns) until "
                f"{idx.end_ns / NS_PER_SECOND:.9f} s ({idx.end_ns} ns), duration "
                f"{idx.duration_ns / NS_PER_SECOND:.6f} s",
                uri=self.uri,
            )
        return frames

    def _plan(
        self,
        frames: Iterable[int],
        strategy: BatchDecodingStrategy | str | None = None,
        index: VideoIndex | None = None,
    ) -> tuple[Span, ...]:
        """Spans decoding ``frames`` (positions in ``index``, default the complete index) with ``strategy``
        (default: per keyframe block)."""
        strategy = BatchDecodingStrategy(strategy or BatchDecodingStrategy.SEQUENTIAL_PER_KEYFRAME_BLOCK)
        keyframes = (self._index if index is None else index).keyframes()
        return plan_spans(frames, keyframes, strategy, merge_gap=self._merge_gap)

    def _span_tasks(
        self,
        spans: Iterable[Span],
        *,
        size: tuple[int, int] | None = None,
        index: VideoIndex | None = None,
        budget: int | None = None,
    ) -> list[Task]:
        """One executor task per span (positions in ``index``, default the complete index); each returns
        {position: frame}, or a :class:`~._truth.Stale` result when a decode showed that ``index`` (a hint)
        is wrong: the video was indexed again, and :meth:`_decode_again` answers the request.

        ``budget``: the cores the tasks will run on. On one core (a chain: one after another on one thread)
        one task decodes every span in order instead, on what :meth:`_holding` keeps for the run (a container
        leased once, not once per span), up to :attr:`_spans_per_call` consecutive spans in one
        :meth:`_decode_spans`. On more, a backend that decodes several spans in one call gets tasks of
        consecutive spans, as few as its :attr:`_spans_per_call` allows but no fewer than ``budget`` (the
        spans of one video still run on every core)."""

        spans = list(spans)
        final = max((max(s.targets) for s in spans if len(s.targets)), default=None)
        planned = self._index if index is None else index

        def decode(group: Sequence[Span], threads: int, held: Any) -> dict[int, Any] | Stale:
            if is_replaced(planned):  # another span of this request showed the index wrong
                return Stale()
            last = final is not None and any(len(s.targets) and max(s.targets) == final for s in group)
            try:
                with decode_errors(self.uri):
                    if len(group) == 1:
                        return self._decode_span(
                            group[0], size=size, threads=threads, index=planned, last=last, held=held
                        )
                    return self._decode_spans(
                        group, size=size, threads=threads, index=planned, last=last, held=held
                    )
            except IndexMismatch as exc:
                self._rescan(exc)
                return Stale()

        step = max(1, self._spans_per_call)
        if budget == 1 and len(spans) > 1:
            groups = [spans[k : k + step] for k in range(0, len(spans), step)]

            def run_all(threads: int) -> dict[int, Any] | Stale:
                out: dict[int, Any] = {}
                with self._holding() as held:
                    for k, group in enumerate(groups):
                        if k:  # each group of spans, as each task, starts only before the deadline
                            check_deadline()
                        part = decode(group, threads, held)
                        if isinstance(part, Stale):
                            return part
                        out.update(part)
                return out

            return [Task(sum(span_cost(span) for span in spans), run_all)]
        n = len(spans)
        count = n if step == 1 or budget is None else max(min(n, budget), -(-n // step))
        groups = [spans[n * k // count : n * (k + 1) // count] for k in range(count)]
        return [
            Task(sum(span_cost(span) for span in group), functools.partial(decode, group, held=None))
            for group in groups
        ]

    def _holding(self) -> contextlib.AbstractContextManager[Any]:
        """What a chain of spans decoded one after another on one thread keeps between them (handed to each
        :meth:`_decode_span` as ``held``); nothing by default."""
        return contextlib.nullcontext()

    def _rescan(self, mismatch: IndexMismatch) -> VideoIndex:
        """Discard the index a decode contradicted and index the video by a demux scan (once per index)."""
        with decode_errors(self.uri, "index"):
            index = rescan_index(self.uri, self.storage_options, self._key, mismatch.index, mismatch.why)
        self._snapshot = index
        return index

    def _decode_again(
        self,
        *,
        times_ns: Sequence[int] | None,
        positions: Sequence[int],
        strategy: BatchDecodingStrategy | str | None,
        size: tuple[int, int] | None,
        budget: int,
    ) -> tuple[list[int], dict[int, Any], VideoIndex]:
        """Answer a request again with the rescanned index, after a span showed its hinted index wrong: the
        frames on screen at ``times_ns`` (or, without times, the frames at ``positions``). Returns the
        positions answering each request, {position: frame} and the index they are positions in.

        Raises:
            MediaDecodeError: the rescanned index disagrees with the decode too.
            FrameOutOfRangeError, IndexError: a time or position past the rescanned video's end.
        """
        idx = self._index  # the rescanned index (a scan is never rescanned)
        if times_ns is not None:
            again = self._frames_at(times_ns, idx).tolist()
        else:
            again = [int(p) for p in positions]
            bad = [p for p in again if not 0 <= p < idx.num_frames]
            if bad:
                raise IndexError(
                    f"frame index {bad[0]} out of range for {describe_uri(self.uri)} ({idx.num_frames} "
                    "frames, by a scan: its index listed others)"
                )
        tasks = self._span_tasks(self._plan(again, strategy, idx), size=size, index=idx, budget=budget)
        decoded: dict[int, Any] = {}
        for part in run_tasks(tasks, budget):
            if isinstance(part, Stale):
                raise MediaDecodeError(
                    f"video {describe_uri(self.uri)}: decoding disagrees with its index even after a rescan",
                    uri=self.uri,
                )
            decoded.update(part)
        return again, decoded, idx

    # ------------------------------------------------------------------ facts
    @property
    def metadata(self) -> VideoStreamMetadata:
        """Facts about the stream, exact (from the keyframe index, not the container header)."""
        idx = self._index
        duration = idx.duration_ns / NS_PER_SECOND
        return VideoStreamMetadata(
            num_frames=idx.num_frames,
            duration_seconds=duration,
            average_fps=idx.num_frames / duration if duration > 0 else 0.0,
            width=idx.width,
            height=idx.height,
            begin_stream_seconds=idx.begin_ns / NS_PER_SECOND,
            end_stream_seconds=idx.end_ns / NS_PER_SECOND,
            keyframe_seconds=tuple(float(idx.frame_ns[k]) / NS_PER_SECOND for k in idx.keyframes()),
            codec=idx.codec,
            pixel_format=idx.pixel_format,
        )

    def __len__(self) -> int:
        return self._index.num_frames

    @property
    def frame_pts_ns(self) -> np.ndarray:
        """Presentation time of every frame in nanoseconds (floored), in presentation order: a read-only int64
        array. A ref ``MediaRef(uri, pts_ns=decoder.frame_pts_ns[i])`` decodes frame ``i``."""
        view = self._index.frame_ns.view()
        view.flags.writeable = False
        return view

    def frame_indices_played_at(self, times_ns: Sequence[int]) -> np.ndarray:
        """Positions of the frames on screen at ``times_ns`` (the playback rule of
        :meth:`get_frames_played_at`), without decoding anything.

        Raises:
            FrameOutOfRangeError: for a time at or past the end of the video.
        """
        return self._frames_at(times_ns)

    # ------------------------------------------------------------------ getters by position
    def get_frame_at(self, index: int) -> Frame:
        """The frame at position ``index`` (negative counts from the end).

        Raises:
            IndexError: when ``index`` is out of range.
        """
        frame = self.get_frames_at([index])[0]
        assert isinstance(frame, Frame)
        return frame

    def get_frames_at(
        self,
        indices: Sequence[int],
        *,
        strategy: BatchDecodingStrategy | str | None = None,
        max_workers: int | None = None,
    ) -> FrameBatch:
        """Frames at positions ``indices`` (negative counts from the end), in the given order.

        Raises:
            IndexError: when an index is out of range.
        """
        self._check_open()
        n = self._index.num_frames
        positions = [int(i) + n if int(i) < 0 else int(i) for i in indices]
        for given, pos in zip(indices, positions):
            if not 0 <= pos < n:
                raise IndexError(
                    f"frame index {given} out of range for {describe_uri(self.uri)} ({n} frames)"
                )
        return self._batch(positions, strategy, max_workers)

    def get_frames_in_range(self, start: int, stop: int, step: int = 1) -> FrameBatch:
        """Frames at positions ``range(start, stop, step)`` (Python slice rules for negative or large
        bounds)."""
        if step < 1:
            raise ValueError(f"step must be >= 1, got {step}")
        return self.get_frames_at(list(range(*slice(start, stop, step).indices(len(self)))))

    def __getitem__(self, key: int | slice) -> Any:
        """``decoder[i]``: the data of frame ``i``; ``decoder[a:b:c]``: the stacked data of those frames."""
        if isinstance(key, slice):
            return self.get_frames_at(list(range(*key.indices(len(self))))).data
        if not isinstance(key, (int, np.integer)):
            raise TypeError(f"decoder indices must be integers or slices, got {type(key).__name__}")
        return self.get_frames_at([int(key)]).data[0]

    # ------------------------------------------------------------------ getters by time
    def get_frame_played_at(self, seconds: float) -> Frame:
        """The frame on screen at ``seconds``.

        Raises:
            FrameOutOfRangeError: at or past the end of the video.
        """
        frame = self.get_frames_played_at([seconds])[0]
        assert isinstance(frame, Frame)
        return frame

    def get_frames_played_at(
        self,
        seconds: Sequence[float],
        *,
        strategy: BatchDecodingStrategy | str | None = None,
        max_workers: int | None = None,
    ) -> FrameBatch:
        """The frames on screen at ``seconds`` (the last frame whose pts is at or before each time, within a
        tolerance of half a time-base tick, at most 1 ms and at least 1 µs; the first frame before it starts).

        Raises:
            FrameOutOfRangeError: for a time at or past the end of the video.
            ValueError: for a negative time.
        """
        self._check_open()
        times = [round(float(s) * NS_PER_SECOND) for s in seconds]
        if any(t < 0 for t in times):
            raise ValueError(f"times must be >= 0 seconds, got {min(seconds)}")
        index = self._index_for(times)
        return self._batch(self._frames_at(times, index).tolist(), strategy, max_workers, index, times)

    def get_frames_played_in_range(self, start_seconds: float, stop_seconds: float) -> FrameBatch:
        """Every frame on screen during ``[start_seconds, stop_seconds)``: the one playing at
        ``start_seconds`` and each frame whose pts is before ``stop_seconds``. Empty when ``start_seconds ==
        stop_seconds``.

        Raises:
            ValueError: when ``stop_seconds < start_seconds`` or a time is negative.
            FrameOutOfRangeError: when ``start_seconds`` is at or past the end.
        """
        if stop_seconds < start_seconds or start_seconds < 0:
            raise ValueError(f"need 0 <= start_seconds <= stop_seconds, got {start_seconds}, {stop_seconds}")
        if stop_seconds == start_seconds:
            return self.get_frames_at([])
        first = int(self._frames_at([round(start_seconds * NS_PER_SECOND)])[0])
        stop_ns = round(stop_seconds * NS_PER_SECOND)
        last = int(np.searchsorted(self._index.frame_ns, stop_ns, side="left"))  # frames with pts < stop
        return self.get_frames_at(list(range(first, max(first + 1, last))))

    # ------------------------------------------------------------------ assembly
    def _batch(
        self,
        positions: list[int],
        strategy: BatchDecodingStrategy | str | None,
        max_workers: int | None,
        index: VideoIndex | None = None,
        times_ns: Sequence[int] | None = None,
    ) -> FrameBatch:
        idx = self._index if index is None else index
        budget = core_budget(max_workers)
        tasks = self._span_tasks(self._plan(positions, strategy, idx), index=idx, budget=budget)
        decoded: dict[int, Any] = {}
        parts = run_tasks(tasks, budget)
        if any(isinstance(part, Stale) for part in parts):  # the index was wrong: ask the rescanned one
            positions, decoded, idx = self._decode_again(
                times_ns=times_ns,
                positions=positions,
                strategy=strategy,
                size=None,
                budget=budget,
            )
            parts = []
        for part in parts:
            decoded.update(part)
        data = self._stack([decoded[p] for p in positions])
        if self.dimension_order == "NCHW":
            data = data.permute(0, 3, 1, 2) if hasattr(data, "permute") else data.transpose(0, 3, 1, 2)
        pts = np.array([float(idx.to_seconds(idx.pts[p])) for p in positions], dtype=np.float64)
        durations = np.array(
            [float(idx.to_seconds(idx.frame_duration_ticks(p))) for p in positions], dtype=np.float64
        )
        return FrameBatch(data, pts, durations)

    # ------------------------------------------------------------------ lifetime
    def _check_open(self) -> None:
        if self._closed:
            raise RuntimeError(f"decoder for {describe_uri(self.uri)} is closed")

    def close(self) -> None:
        """Mark the decoder closed (open containers stay in the shared cache; see ``cleanup_cache``)."""
        self._closed = True

    def __enter__(self) -> BaseVideoDecoder:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        idx = self._snapshot  # never completes a progressive index
        frames = "?" if idx.progressive is not None else idx.num_frames
        return f"{type(self).__name__}({describe_uri(self.uri)}, frames={frames})"
