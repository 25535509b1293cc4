"""Result types of the single-video decoder surface, modelled on TorchCodec's ``Frame``, ``FrameBatch`` and
``VideoStreamMetadata``."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from typing import Any

import numpy as np

__all__ = ["Frame", "FrameBatch", "VideoStreamMetadata"]


@dataclasses.dataclass(frozen=True)
class VideoStreamMetadata:
    """Facts about a video stream, from its keyframe index (exact, not the container header).

    Frames are on screen on ``[begin_stream_seconds, end_stream_seconds)``; ``end_stream_seconds`` is the last
    frame's pts plus its duration.

    Attributes:
        num_frames: frames in the stream.
        duration_seconds: ``end_stream_seconds - begin_stream_seconds``.
        average_fps: ``num_frames / duration_seconds``.
        width, height: coded frame size in pixels.
        begin_stream_seconds: the first frame's pts.
        end_stream_seconds: the end of the last frame.
        keyframe_seconds: pts of the frames a decode can start from.
        codec: FFmpeg codec name (``"h264"``, ``"hevc"``, ``"vp9"``...).
        pixel_format: FFmpeg pixel format (``"yuv420p"``...), when known.
    """

    num_frames: int
    duration_seconds: float
    average_fps: float
    width: int
    height: int
    begin_stream_seconds: float
    end_stream_seconds: float
    keyframe_seconds: tuple[float, ...]
    codec: str
    pixel_format: str | None


@dataclasses.dataclass
class Frame:
    """One decoded frame.

    Attributes:
        data: ``(C, H, W)`` or ``(H, W, C)`` uint8 (numpy array from PyAV, torch tensor from TorchCodec).
        pts_seconds: when the frame appears.
        duration_seconds: how long it stays on screen.
    """

    data: Any
    pts_seconds: float
    duration_seconds: float

    def __iter__(self) -> Iterator[Any]:
        """Unpack as ``data, pts_seconds, duration_seconds`` (as TorchCodec's ``Frame``)."""
        return iter((self.data, self.pts_seconds, self.duration_seconds))

    def __repr__(self) -> str:
        shape = tuple(getattr(self.data, "shape", ()))
        return (
            f"Frame(data.shape={shape}, pts_seconds={self.pts_seconds}, "
            f"duration_seconds={self.duration_seconds})"
        )


@dataclasses.dataclass
class FrameBatch:
    """Decoded frames with each frame's pts and duration.

    Indexing with an int gives a :class:`Frame`; with a slice (or a sequence of ints) a ``FrameBatch``.

    Attributes:
        data: ``(N, C, H, W)`` or ``(N, H, W, C)`` uint8 (numpy array or torch tensor).
        pts_seconds: ``(N,)`` float64.
        duration_seconds: ``(N,)`` float64.
    """

    data: Any
    pts_seconds: np.ndarray
    duration_seconds: np.ndarray

    def __len__(self) -> int:
        return len(self.pts_seconds)

    def __getitem__(self, key: Any) -> Frame | FrameBatch:
        if isinstance(key, (int, np.integer)):
            return Frame(self.data[key], float(self.pts_seconds[key]), float(self.duration_seconds[key]))
        if not isinstance(key, slice):
            key = list(key)
        return FrameBatch(self.data[key], self.pts_seconds[key], self.duration_seconds[key])

    def __iter__(self) -> Iterator[Frame]:
        for i in range(len(self)):
            yield Frame(self.data[i], float(self.pts_seconds[i]), float(self.duration_seconds[i]))

    def __repr__(self) -> str:
        shape = tuple(getattr(self.data, "shape", ()))
        return f"FrameBatch(data.shape={shape}, pts_seconds={self.pts_seconds!r})"
