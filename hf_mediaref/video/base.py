"""What every decoder backend shares: the keyframe index, frame selection, planning and the
TorchCodec-like single-video surface. Backends only execute :class:`~.planning.Span` s."""

from __future__ import annotations

import abc
import os
from typing import Any, Iterable, Literal, Sequence

import numpy as np

from ..errors import FrameOutOfRangeError, describe_uri
from .container import decode_errors, load_index
from .cache import source_key
from .executor import Task, core_budget, run_tasks
from .index import VideoIndex
from .planning import NO_FRAME, BatchDecodingStrategy, Span, plan_spans, span_cost
from .types import FrameBatch, VideoStreamMetadata

__all__ = ["BaseVideoDecoder", "as_source_uri", "DimensionOrder"]

DimensionOrder = Literal["NCHW", "NHWC"]
_NS = 1_000_000_000


def as_source_uri(source: Any) -> str:
    """The URI of a decoder source: a str URI/path, an ``os.PathLike`` or a ``MediaRef``."""
    uri = getattr(source, "uri", source)
    if isinstance(uri, os.PathLike):
        uri = os.fspath(uri)
    if not isinstance(uri, str) or not uri:
        raise TypeError(f"video source must be a URI string, a path or a MediaRef, got {type(source).__name__}")
    return uri


class BaseVideoDecoder(abc.ABC):
    """Decode frames of one video. Frames are chosen by the playback rule of :mod:`.planning`.

    Cheap to create once the video's index is cached; open containers come from a shared cache, so a
    decoder may be used from several threads. Works as a context manager.
    """

    def __init__(self, source: Any, *, storage_options: dict | None = None,
                 dimension_order: DimensionOrder = "NCHW"):
        if dimension_order not in ("NCHW", "NHWC"):
            raise ValueError(f"dimension_order must be 'NCHW' or 'NHWC', got {dimension_order!r}")
        self.uri = as_source_uri(source)
        self.storage_options = storage_options
        self.dimension_order = dimension_order
        self._key = source_key(self.uri, storage_options)
        self.index: VideoIndex = load_index(self.uri, storage_options=storage_options, key=self._key)
        self._closed = False

    # ------------------------------------------------------------------ backend interface
    @abc.abstractmethod
    def decode_span(self, span: Span, *, size: tuple[int, int] | None = None, threads: int = 1) -> dict[int, Any]:
        """Decode ``span`` and return {frame position: (H, W, 3) uint8 frame} for its targets."""

    @abc.abstractmethod
    def _stack(self, frames: Sequence[Any]) -> Any:
        """Stack (H, W, 3) frames into one NHWC batch of the backend's array type."""

    # ------------------------------------------------------------------ frame selection and planning
    @property
    def metadata(self) -> VideoStreamMetadata:
        idx = self.index
        duration = idx.duration_ns / _NS
        return VideoStreamMetadata(
            num_frames=idx.num_frames,
            duration_seconds=duration,
            average_fps=idx.num_frames / duration if duration > 0 else 0.0,
            width=idx.width,
            height=idx.height,
            begin_stream_seconds=idx.begin_ns / _NS,
            end_stream_seconds=idx.end_ns / _NS,
            keyframe_seconds=tuple(float(idx.frame_ns[k]) / _NS for k in idx.keyframes()),
            codec=idx.codec,
            pixel_format=idx.pixel_format,
        )

    def frames_at(self, times_ns: Sequence[int], *, refs: Sequence[Any] | None = None) -> np.ndarray:
        """Frame positions on screen at ``times_ns``; FrameOutOfRangeError (naming the ref) past the end."""
        frames = self.index.frames_at(times_ns)
        bad = np.flatnonzero(frames == NO_FRAME)
        if bad.size:
            t_ns = int(list(times_ns)[int(bad[0])])
            what = repr(refs[int(bad[0])]) if refs is not None else describe_uri(self.uri)
            idx = self.index
            raise FrameOutOfRangeError(
                f"{what}: time {t_ns / _NS:.6f} s ({t_ns} ns) is at or past the end of video "
                f"{describe_uri(self.uri)} (frames cover {idx.begin_ns / _NS:.6f} s to {idx.end_ns / _NS:.6f} s, "
                f"duration {idx.duration_ns / _NS:.6f} s, {idx.num_frames} frames)", uri=self.uri)
        return frames

    def plan(self, frames: Iterable[int], strategy: BatchDecodingStrategy | str | None = None) -> tuple[Span, ...]:
        """Spans decoding ``frames`` (positions) with ``strategy`` (default: per keyframe block)."""
        strategy = BatchDecodingStrategy(strategy or BatchDecodingStrategy.SEQUENTIAL_PER_KEYFRAME_BLOCK)
        return plan_spans(frames, self.index.keyframes(), strategy)

    def span_tasks(self, spans: Iterable[Span], *, size: tuple[int, int] | None = None) -> list[Task]:
        """One executor task per span; each returns {position: frame}."""
        def task(span: Span) -> Task:
            def run(threads: int) -> dict[int, Any]:
                with decode_errors(self.uri):
                    return self.decode_span(span, size=size, threads=threads)
            return Task(span_cost(span), run)
        return [task(span) for span in spans]

    # ------------------------------------------------------------------ TorchCodec-like surface
    def get_frames_at(self, indices: Sequence[int], *, strategy: BatchDecodingStrategy | str | None = None,
                      max_workers: int | None = None) -> FrameBatch:
        """Frames at positions ``indices`` (negative counts from the end), in the given order."""
        self._check_open()
        n = self.index.num_frames
        positions = [int(i) + n if int(i) < 0 else int(i) for i in indices]
        for given, pos in zip(indices, positions):
            if not 0 <= pos < n:
                raise IndexError(f"frame index {given} out of range for {describe_uri(self.uri)} ({n} frames)")
        return self._batch(positions, strategy, max_workers)

    def get_frames_played_at(self, seconds: Sequence[float], *,
                             strategy: BatchDecodingStrategy | str | None = None,
                             max_workers: int | None = None) -> FrameBatch:
        """The frames on screen at ``seconds`` (see :mod:`.planning` for the rule and its tolerance)."""
        self._check_open()
        times = [int(round(float(s) * _NS)) for s in seconds]
        if any(t < 0 for t in times):
            raise ValueError(f"times must be >= 0 seconds, got {min(seconds)}")
        return self._batch(self.frames_at(times).tolist(), strategy, max_workers)

    def get_frame_played_at(self, seconds: float) -> Any:
        """The single frame on screen at ``seconds``, in the decoder's dimension order."""
        return self.get_frames_played_at([seconds]).data[0]

    def __len__(self) -> int:
        return self.index.num_frames

    def __getitem__(self, index: int) -> Any:
        if not isinstance(index, (int, np.integer)):
            raise TypeError(f"decoder indices must be integers, got {type(index).__name__}")
        return self.get_frames_at([int(index)]).data[0]

    def _batch(self, positions: list[int], strategy: BatchDecodingStrategy | str | None,
               max_workers: int | None) -> FrameBatch:
        idx = self.index
        tasks = self.span_tasks(self.plan(positions, strategy))
        decoded: dict[int, Any] = {}
        for part in run_tasks(tasks, core_budget(max_workers)):
            decoded.update(part)
        if positions:
            data = self._stack([decoded[p] for p in positions])
            if self.dimension_order == "NCHW":
                data = data.permute(0, 3, 1, 2) if hasattr(data, "permute") else data.transpose(0, 3, 1, 2)
        else:
            data = self._stack([])
        pts = np.array([float(idx.to_seconds(idx.pts[p])) for p in positions], dtype=np.float64)
        durations = np.array([float(idx.to_seconds(idx.frame_duration_ticks(p))) for p in positions],
                             dtype=np.float64)
        return FrameBatch(data, pts, durations)

    # ------------------------------------------------------------------ lifetime
    def _check_open(self) -> None:
        if self._closed:
            raise RuntimeError(f"decoder for {describe_uri(self.uri)} is closed")

    def close(self) -> None:
        """Mark the decoder closed (open containers stay in the shared cache; see ``cleanup_cache``)."""
        self._closed = True

    def __enter__(self) -> "BaseVideoDecoder":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({describe_uri(self.uri)}, frames={self.index.num_frames})"
