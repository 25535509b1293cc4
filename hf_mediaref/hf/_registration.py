"""Teach ``datasets`` about MediaRef: the feature type, the ``"mediaref"`` format, how its writer turns
``MediaRef`` / ``DataURI`` objects into Arrow-ready values, and the hooks of :mod:`._interop` (MediaRef
columns and media roots through plain ``load_dataset`` / ``load_from_disk`` / ``to_parquet`` /
``concatenate_datasets``).

Called by :mod:`hf_mediaref._datasets_hook` as soon as ``datasets`` is imported (and by ``hf_mediaref.hf``
itself); idempotent.
"""

from __future__ import annotations

import threading
from typing import Any

from . import _compat, _interop

__all__ = ["register"]

_lock = threading.Lock()
_registered = False


def _register_feature() -> None:
    from ._feature import MediaRefFeature

    if _compat.feature_type("MediaRef") is not MediaRefFeature:
        _compat.register_feature_type(MediaRefFeature, "MediaRef")


def _register_formatter() -> None:
    from ._formatter import FORMAT_TYPE, MediaRefFormatter

    if _compat.format_type(FORMAT_TYPE) is not MediaRefFormatter:
        _compat.register_format(MediaRefFormatter, FORMAT_TYPE, aliases=["media_ref"])


def _register_object_conversion() -> None:
    """Let datasets' writer serialize ``MediaRef`` and ``DataURI`` objects.

    ``Dataset.map`` (and ``from_dict`` without ``features=``) hand Python values to
    ``datasets.features.features.cast_to_python_objects``, which converts tensors, PIL images, mappings... but
    not pydantic models, so a kept decoded MediaRef column would fail with ``ArrowInvalid: Could not
    convert``. Its recursive helper is looked up by module global at each call, so wrapping it once adds
    MediaRef (to its ``{"uri", "pts_ns"}`` dict) and DataURI (to its URI string) everywhere the writer
    converts values.
    """
    from ..core import DataURI, MediaRef

    original = _compat.get_cast_to_python_objects()
    if getattr(original, "__hf_mediaref__", False):
        return

    def _cast_to_python_objects(obj: Any, only_1d_for_numpy: bool, optimize_list_casting: bool) -> Any:
        cls = obj.__class__
        if cls is MediaRef or isinstance(obj, MediaRef):
            return {"uri": obj.uri, "pts_ns": obj.pts_ns}, True
        if cls is DataURI:
            return {"uri": obj.uri, "pts_ns": None}, True
        return original(obj, only_1d_for_numpy, optimize_list_casting)

    _cast_to_python_objects.__hf_mediaref__ = True  # type: ignore[attr-defined]
    _cast_to_python_objects.__wrapped__ = original  # type: ignore[attr-defined]
    _compat.set_cast_to_python_objects(_cast_to_python_objects)


def register() -> None:
    """Register the feature, the formatter and the object conversion with ``datasets`` (once).

    Example:
        ```python
        >>> from hf_mediaref.hf import _registration
        >>> _registration.register()  # done for you when datasets is imported
        ```
    """
    global _registered
    with _lock:
        if _registered:
            return
        _register_feature()
        _register_formatter()
        _register_object_conversion()
        _interop.install()
        _registered = True
