"""The video engine: plan first (keyframe index + pure planner), decode second (PyAV or TorchCodec).

Importing this package does not import PyAV, torch or TorchCodec; they load when first used.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .batch import batch_decode
from .cache import cleanup_cache
from .planning import BatchDecodingStrategy
from .stats import DecodeStats, collect_stats
from .types import FrameBatch, VideoStreamMetadata

if TYPE_CHECKING:  # pragma: no cover
    from .pyav_decoder import PyAVVideoDecoder
    from .torchcodec_decoder import TorchCodecVideoDecoder

__all__ = [
    "batch_decode",
    "cleanup_cache",
    "collect_stats",
    "DecodeStats",
    "BatchDecodingStrategy",
    "PyAVVideoDecoder",
    "TorchCodecVideoDecoder",
    "VideoStreamMetadata",
    "FrameBatch",
]

_LAZY = {
    "PyAVVideoDecoder": "hf_mediaref.video.pyav_decoder",
    "TorchCodecVideoDecoder": "hf_mediaref.video.torchcodec_decoder",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'hf_mediaref.video' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value
