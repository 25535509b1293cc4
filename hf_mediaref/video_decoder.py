"""The single-video decoder surface under the name the original ``mediaref`` package uses.

The same objects as :mod:`hf_mediaref.video` (an alias module, kept for code written against ``mediaref``):
``PyAVVideoDecoder``, ``TorchCodecVideoDecoder``, ``BaseVideoDecoder``, ``BatchDecodingStrategy``,
``VideoStreamMetadata``, ``Frame``, ``FrameBatch``.
"""

from __future__ import annotations

from .video import (
    BaseVideoDecoder,
    BatchDecodingStrategy,
    Frame,
    FrameBatch,
    PyAVVideoDecoder,
    TorchCodecVideoDecoder,
    VideoStreamMetadata,
)

__all__ = [
    "BaseVideoDecoder",
    "BatchDecodingStrategy",
    "Frame",
    "FrameBatch",
    "PyAVVideoDecoder",
    "TorchCodecVideoDecoder",
    "VideoStreamMetadata",
]
