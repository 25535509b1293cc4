"""Which frames of a video become rows: :class:`FrameSampling` (every frame, every K-th, keyframes only, or
the frames on screen N times a second) and :func:`sample_video`, which reads a video's index (a demux scan,
nothing decoded) and returns the rows' presentation times and frame positions.

One place for ``hf-mediaref build`` and :func:`~hf_mediaref.hf.from_videos`. The times are those of the video
engine's index, which are the times a plain front-to-back PyAV decode shows (floored to whole nanoseconds);
``fps`` sampling stores the sampled time itself, and the frame on screen then (the playback rule) is the row's
``frame_index``.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

__all__ = ["FrameSampling", "SampledVideo", "sample_video"]


@dataclasses.dataclass(frozen=True)
class FrameSampling:
    """Which frames of a video become rows: at most one of ``fps``, ``keyframes`` and ``every``; none of them
    means every frame.

    Args:
        fps: the frames on screen ``fps`` times a second, from the first frame's time (the playback rule:
            the last frame shown at or before each time); the rows store the sampled times.
        keyframes: keyframes only (the rows store their exact times).
        every: every K-th frame in presentation order (0, K, 2K, ...).

    Raises:
        ValueError: ``fps`` not > 0, ``every`` < 1, or more than one way chosen.
    """

    fps: float | None = None
    keyframes: bool = False
    every: int | None = None

    def __post_init__(self) -> None:
        if self.fps is not None and not self.fps > 0:
            raise ValueError(f"fps must be > 0, got {self.fps}")
        if self.every is not None and self.every < 1:
            raise ValueError(f"every must be >= 1, got {self.every}")
        if sum((self.fps is not None, bool(self.keyframes), self.every is not None)) > 1:
            raise ValueError("choose at most one of fps, keyframes and every")

    def describe(self) -> str:
        """A short description (``"every frame"``, ``"2 fps"``, ``"keyframes"``, ``"every 5th frame"``)."""
        if self.fps is not None:
            return f"{self.fps:g} fps (the frame on screen at each time)"
        if self.keyframes:
            return "keyframes only"
        if self.every not in (None, 1):
            return f"every {self.every}th frame"
        return "every frame"


@dataclasses.dataclass
class SampledVideo:
    """The rows one video contributes and its facts."""

    pts_ns: np.ndarray  #: int64: the ref's time per row (a frame's exact time, or the sampled time)
    frame_index: np.ndarray  #: int64: the position of the frame shown then
    codec: str | None
    width: int
    height: int
    fps: float | None
    duration: float | None


def sample_video(path: str, sampling: FrameSampling, *, storage_options: dict | None = None) -> SampledVideo:
    """The rows of the video at ``path`` (already resolved and checked by the caller's access).

    Raises:
        MediaDecodeError, MediaNotFoundError: the video cannot be opened or indexed.
    """
    from ._pyav import PyAVVideoDecoder

    with PyAVVideoDecoder(path, storage_options=storage_options) as decoder:
        meta = decoder.metadata
        pts = np.asarray(decoder.frame_pts_ns)
        positions: Any
        if sampling.fps is not None:
            end_ns = int(meta.end_stream_seconds * 1e9) - 1  # float seconds: stay clear of the exact end
            step = 1e9 / sampling.fps
            count = int(np.ceil((end_ns - int(pts[0])) / step))
            times = [t for t in (int(pts[0]) + round(k * step) for k in range(max(count, 1))) if t < end_ns]
            times = times or [int(pts[0])]
            positions = decoder.frame_indices_played_at(times)
            stored = np.asarray(times, dtype=np.int64)
        else:
            if sampling.keyframes:
                positions = decoder.frame_indices_played_at([round(s * 1e9) for s in meta.keyframe_seconds])
                positions = np.unique(positions)
            else:
                positions = np.arange(0, len(pts), sampling.every or 1)
            stored = pts[positions]
    return SampledVideo(
        pts_ns=np.asarray(stored, dtype=np.int64),
        frame_index=np.asarray(positions, dtype=np.int64),
        codec=meta.codec,
        width=meta.width,
        height=meta.height,
        fps=meta.average_fps,
        duration=meta.duration_seconds,
    )
