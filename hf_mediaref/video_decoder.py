"""Public single-video decoder surface (TorchCodec-like): ``PyAVVideoDecoder``, ``TorchCodecVideoDecoder``,
``BatchDecodingStrategy``, ``VideoStreamMetadata``, ``FrameBatch``.

Importing this module does not import PyAV or TorchCodec; the decoder classes load on first access.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .video.planning import BatchDecodingStrategy
from .video.types import FrameBatch, VideoStreamMetadata

if TYPE_CHECKING:  # pragma: no cover
    from .video.pyav_decoder import PyAVVideoDecoder
    from .video.torchcodec_decoder import TorchCodecVideoDecoder

__all__ = ["BatchDecodingStrategy", "PyAVVideoDecoder", "TorchCodecVideoDecoder", "VideoStreamMetadata",
           "FrameBatch"]


def __getattr__(name: str) -> Any:
    if name in ("PyAVVideoDecoder", "TorchCodecVideoDecoder"):
        from . import video

        value = getattr(video, name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'hf_mediaref.video_decoder' has no attribute {name!r}")
