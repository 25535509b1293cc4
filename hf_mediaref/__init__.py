"""hf_mediaref: video frames and images as first-class, lazily loaded values in HuggingFace ``datasets``.

``import hf_mediaref`` is light: PyAV, torch and ``datasets`` load only when first needed. The
``datasets`` Feature and formatter register themselves as soon as ``datasets`` is imported (before or
after this package).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from . import errors
from ._version import __version__
from .core.data_uri import DataURI
from .core.media_ref import MediaRef

if TYPE_CHECKING:  # pragma: no cover
    from .hf import MediaRefFeature, decode_transform, embed, load_dataset, push_to_hub, set_media_root
    from .hf.sampler import VideoBlockBatchSampler
    from .video import batch_decode, cleanup_cache

_LAZY = {
    "batch_decode": "hf_mediaref.video",
    "cleanup_cache": "hf_mediaref.video",
    "video_decoder": "hf_mediaref.video_decoder",
    "MediaRefFeature": "hf_mediaref.hf",
    "decode_transform": "hf_mediaref.hf",
    "load_dataset": "hf_mediaref.hf",
    "embed": "hf_mediaref.hf",
    "push_to_hub": "hf_mediaref.hf",
    "VideoBlockBatchSampler": "hf_mediaref.hf",
    "set_media_root": "hf_mediaref.hf",
}

__all__ = ["MediaRef", "DataURI", "errors", "__version__", *_LAZY]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'hf_mediaref' has no attribute {name!r}")
    mod = importlib.import_module(module)
    value = mod if module.endswith(name) else getattr(mod, name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))


from ._datasets_hook import install as _install_datasets_hook  # noqa: E402

_install_datasets_hook()
