"""The video engine: plan first (keyframe index + pure planner), decode second (PyAV or TorchCodec).

Public surface: the single-video decoders (TorchCodec-like getters returning :class:`Frame` /
:class:`FrameBatch`), :class:`BatchDecodingStrategy`, :class:`VideoStreamMetadata`, :func:`cleanup_cache` and
the decode counters (:func:`collect_stats`). Many refs at once: :func:`hf_mediaref.batch_decode`.

Importing this package does not import PyAV, torch or TorchCodec; they load when a decoder is first built.

Modules (private): ``_planning`` (pure: playback rule, spans, strategies), ``_index`` (the keyframe index and
its demux scan), ``_index_store`` (indexes of remote videos on disk), ``_indexes`` (memory -> disk -> scan),
``_identity`` (source cache keys), ``_mp4`` (pure: MP4/MOV ``moov`` sample tables), ``_sidecar`` (index
sidecars shipped beside the media), ``_cache`` (open-decoder leases, index LRU), ``_container`` (PyAV
containers), ``_errors`` (typed error mapping), ``_base`` / ``_pyav`` / ``_torchcodec`` (decoders), ``_batch``
(many videos in one pass), ``_types``, ``_stats``."""

from __future__ import annotations

from ._base import BaseVideoDecoder
from ._batch import plan_videos as plan_videos
from ._cache import cleanup_cache
from ._indexes import forget_source as forget_source
from ._planning import BatchDecodingStrategy
from ._pyav import ChannelsFirst as ChannelsFirst
from ._pyav import PyAVVideoDecoder
from ._pyav import decoding_channels_first as decoding_channels_first
from ._pyav import writing_frames_into as writing_frames_into
from ._sampling import FrameSampling as FrameSampling
from ._sampling import sample_video as sample_video
from ._sidecar import build_index_sidecars, index_sidecar_uri, write_index_sidecar
from ._stats import DecodeStats, collect_stats
from ._stats import record as record_stats  # noqa: F401
from ._torchcodec import TorchCodecVideoDecoder
from ._torchcodec import check_device as check_device
from ._types import Frame, FrameBatch, VideoStreamMetadata

# Package-level internal API (plan_videos, forget_source, record_stats, check_device, writing_frames_into):
# the layers above import it from here, never from a private module (the import-linter contract "Private
# modules stay inside their package"); not in __all__.
__all__ = [
    "BaseVideoDecoder",
    "BatchDecodingStrategy",
    "DecodeStats",
    "Frame",
    "FrameBatch",
    "PyAVVideoDecoder",
    "TorchCodecVideoDecoder",
    "VideoStreamMetadata",
    "build_index_sidecars",
    "cleanup_cache",
    "collect_stats",
    "index_sidecar_uri",
    "write_index_sidecar",
]
