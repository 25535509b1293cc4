"""HuggingFace ``datasets`` integration: the ``MediaRef`` feature, the ``"mediaref"`` batched-decoding format,
repo-relative media roots, embedding, Hub push and a video-aware batch sampler.

Importing this package imports ``datasets`` (and registers the feature and format with it).
"""

from __future__ import annotations

import datasets  # noqa: F401  (first: the import hook registers the integration once datasets is loaded)

from . import _registration
from .embedding import embed
from .feature import MediaRefFeature
from .formatter import MediaRefFormatter
from .grouping import UriGroups, group_by_uri
from .hub import push_to_hub
from .loading import load_dataset
from .roots import get_media_root, set_media_root
from .sampler import VideoBlockBatchSampler
from .transform import decode_transform

_registration.register()

__all__ = [
    "MediaRefFeature",
    "MediaRefFormatter",
    "decode_transform",
    "load_dataset",
    "embed",
    "push_to_hub",
    "VideoBlockBatchSampler",
    "set_media_root",
    "get_media_root",
    "group_by_uri",
    "UriGroups",
]
