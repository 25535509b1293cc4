"""hf_mediaref: video frames and images as first-class, lazily loaded values in HuggingFace ``datasets``.

Public surface (each name has one import path):

* ``hf_mediaref``: :class:`MediaRef`, :class:`DataURI`, :class:`MediaAccess` (who may read what),
  :func:`image_grid` (decoded frames as one labelled picture),
  :func:`batch_decode`, :class:`DecodeOptions`,
  :func:`cleanup_cache`, ``errors``, and the ``datasets`` integration (loaded on first use):
  ``MediaRefFeature``, ``decode_transform``, ``load_dataset``, ``embed``, ``push_to_hub``, ``set_media_root``,
  ``get_media_root``, ``VideoBlockBatchSampler``, ``decode_stream``, ``from_lerobot`` (a LeRobot dataset as
  frame refs), ``from_videos`` (a Video-column dataset as frame refs),
  ``contact_sheet`` (sampled frames of a dataset as one picture).
* :mod:`hf_mediaref.video`: single-video decoders (``PyAVVideoDecoder``, ``TorchCodecVideoDecoder``),
  ``Frame``/``FrameBatch``, ``VideoStreamMetadata``, ``BatchDecodingStrategy``, ``collect_stats``
  (also importable as :mod:`hf_mediaref.video_decoder`, the original ``mediaref`` name).
* :mod:`hf_mediaref.arrow`: the Arrow layer (storage type, grouping, root resolution) without ``datasets``.
* :mod:`hf_mediaref.hf`: everything above plus the ``datasets`` internals it needs.
* :mod:`hf_mediaref.testing`: self-identifying test media, a loopback HTTP server, an offline fake Hub.
* ``hf-mediaref`` (``python -m hf_mediaref``): the command line (:mod:`hf_mediaref.cli`).

``import hf_mediaref`` is light: PyAV, torch and ``datasets`` load only when first needed. The ``datasets``
Feature and formatter register themselves as soon as ``datasets`` is imported (before or after this package).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from . import errors
from ._version import __version__
from .core import DataURI, MediaRef
from .decode import DecodeOptions, batch_decode
from .io import MediaAccess, image_grid, parse_allow_uris
from .video import cleanup_cache

if TYPE_CHECKING:  # pragma: no cover
    from .hf import (
        FrameWindows,
        MediaRefFeature,
        VideoBlockBatchSampler,
        contact_sheet,
        decode_stream,
        decode_transform,
        embed,
        from_lerobot,
        from_videos,
        get_media_access,
        get_media_root,
        load_dataset,
        load_from_disk,
        push_to_hub,
        set_media_access,
        set_media_root,
    )

# The one list of public names. Those not imported above (the ``datasets`` integration) load from
# hf_mediaref.hf on first use, so ``import hf_mediaref`` never imports ``datasets``; the TYPE_CHECKING imports
# above only give type checkers their signatures (tests/test_architecture.py checks both agree).
__all__ = [
    "DataURI",
    "DecodeOptions",
    "FrameWindows",
    "MediaAccess",
    "MediaRef",
    "MediaRefFeature",
    "VideoBlockBatchSampler",
    "__version__",
    "batch_decode",
    "cleanup_cache",
    "contact_sheet",
    "decode_stream",
    "decode_transform",
    "embed",
    "errors",
    "from_lerobot",
    "from_videos",
    "get_media_access",
    "get_media_root",
    "image_grid",
    "load_dataset",
    "load_from_disk",
    "parse_allow_uris",
    "push_to_hub",
    "set_media_access",
    "set_media_root",
]


def __getattr__(name: str) -> Any:
    if name == "video_decoder":
        return importlib.import_module("hf_mediaref.video_decoder")
    if name not in __all__:
        raise AttributeError(f"module 'hf_mediaref' has no attribute {name!r}")
    value = getattr(importlib.import_module("hf_mediaref.hf"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


from ._datasets_hook import install as _install_datasets_hook  # noqa: E402

_install_datasets_hook()
