"""HuggingFace ``datasets`` integration: the ``MediaRef`` feature, the ``"mediaref"`` batched-decoding format,
repo-relative media roots, embedding, Hub push and a video-aware batch sampler.

Importing this package imports ``datasets`` (and registers the feature and format with it). The Arrow pieces
that do not need ``datasets`` (storage type, grouping, root resolution) are in :mod:`hf_mediaref.arrow`; the
decode options in :class:`hf_mediaref.DecodeOptions`. Modules (private): ``_feature`` (the feature and the
walker over nested features and their Arrow data), ``_formatter``, ``_transform``, ``_embedding``, ``_roots``,
``_loading``, ``_hub``, ``_card``, ``_interop``, ``_sampler``, ``_ahead`` (decode-ahead for in-process
loaders), ``_streaming``, ``_sharding``, ``_windows`` (temporal windows), ``_registration`` and ``_compat``
(every ``datasets`` internal used, in one place); ``_lerobot`` (``from_lerobot``).
"""

from __future__ import annotations

import datasets  # noqa: F401  (first: the import hook registers the integration once datasets is loaded)

from . import _registration
from ._ahead import DecodeAhead, PlannedBatches
from ._embedding import embed
from ._feature import MediaRefFeature
from ._formatter import MediaRefFormatter
from ._hub import push_to_hub
from ._lerobot import from_lerobot
from ._loading import load_dataset, load_from_disk
from ._roots import get_media_access, get_media_root, set_media_access, set_media_root
from ._sampler import VideoBlockBatchSampler
from ._streaming import StreamDecodeTransform, decode_stream, split_by_node
from ._transform import MediaDecodeTransform, decode_transform
from ._windows import FrameWindows

_registration.register()

__all__ = [
    "DecodeAhead",
    "FrameWindows",
    "MediaDecodeTransform",
    "MediaRefFeature",
    "MediaRefFormatter",
    "PlannedBatches",
    "StreamDecodeTransform",
    "VideoBlockBatchSampler",
    "decode_stream",
    "decode_transform",
    "embed",
    "from_lerobot",
    "get_media_access",
    "get_media_root",
    "load_dataset",
    "load_from_disk",
    "push_to_hub",
    "set_media_access",
    "set_media_root",
    "split_by_node",
]
