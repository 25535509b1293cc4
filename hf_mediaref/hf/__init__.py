"""HuggingFace ``datasets`` integration: the ``MediaRef`` feature, the ``"mediaref"`` batched-decoding format,
repo-relative media roots, embedding, Hub push and a video-aware batch sampler.

Importing this package imports ``datasets`` (and registers the feature and format with it). The Arrow pieces
that do not need ``datasets`` (storage type, grouping, root resolution) are in :mod:`hf_mediaref.arrow`; the
decode options in :class:`hf_mediaref.DecodeOptions`. Modules (private): ``_feature`` (the feature and the
walker over nested features and their Arrow data), ``_formatter``, ``_transform``, ``_embedding``, ``_roots``,
``_loading``, ``_combine``, ``_hub``, ``_card``, ``_sampler``, ``_ahead`` (decode-ahead for in-process
loaders), ``_streaming``, ``_sharding``, ``_windows`` (temporal windows), ``_registration`` and ``_compat``
(every ``datasets`` internal used, in one place); ``_lerobot`` (``from_lerobot``), ``_videos``
(``from_videos``: a Video-column dataset as frames), ``_preview`` (contact sheets, thumbnail tables).
"""

from __future__ import annotations

import datasets  # noqa: F401  (first: the import hook registers the integration once datasets is loaded)

from . import _registration
from ._ahead import DecodeAhead, PlannedBatches
from ._card import apply_card_fields as apply_card_fields
from ._card import dataset_card as dataset_card
from ._combine import concatenate_datasets, interleave_datasets
from ._embedding import embed
from ._feature import MediaRefFeature
from ._feature import ref_columns as ref_columns
from ._formatter import MediaRefFormatter
from ._hub import push_to_hub
from ._lerobot import from_lerobot
from ._loading import load_dataset, load_from_disk
from ._preview import contact_sheet, preview_dataset
from ._preview import preview_files as preview_files
from ._roots import get_media_access, get_media_root, set_media_access, set_media_root
from ._sampler import VideoBlockBatchSampler
from ._streaming import StreamDecodeTransform, decode_stream, split_by_node
from ._transform import MediaDecodeTransform, decode_transform
from ._videos import from_videos
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
    "concatenate_datasets",
    "contact_sheet",
    "decode_stream",
    "decode_transform",
    "embed",
    "from_lerobot",
    "from_videos",
    "get_media_access",
    "get_media_root",
    "interleave_datasets",
    "load_dataset",
    "load_from_disk",
    "preview_dataset",
    "push_to_hub",
    "set_media_access",
    "set_media_root",
    "split_by_node",
]
