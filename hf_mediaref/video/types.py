"""Result types of the single-video decoder surface (modelled on TorchCodec's)."""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

__all__ = ["VideoStreamMetadata", "FrameBatch"]


@dataclasses.dataclass(frozen=True)
class VideoStreamMetadata:
    """Facts about a video stream, from its keyframe index (exact, not the container header).

    ``end_stream_seconds`` is the last frame's pts plus its duration; frames are on screen on
    ``[begin_stream_seconds, end_stream_seconds)``.
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
class FrameBatch:
    """Decoded frames: ``data`` (N, C, H, W) or (N, H, W, C) uint8, with each frame's pts and duration."""

    data: Any  # numpy.ndarray (PyAV) or torch.Tensor (TorchCodec)
    pts_seconds: np.ndarray
    duration_seconds: np.ndarray

    def __len__(self) -> int:
        return len(self.pts_seconds)

    def __repr__(self) -> str:
        shape = tuple(getattr(self.data, "shape", ()))
        return f"FrameBatch(data.shape={shape}, pts_seconds={self.pts_seconds!r})"
