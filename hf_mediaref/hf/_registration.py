"""Teach ``datasets`` about MediaRef: the feature type and the ``"mediaref"`` format (its registries), and
the one hook: how features read back from files become ``MediaRefFeature`` again.

Called by :mod:`hf_mediaref._datasets_hook` as soon as ``datasets`` is imported (and by ``hf_mediaref.hf``
itself); idempotent. Nothing else of ``datasets`` is wrapped or replaced: plain ``load_dataset`` /
``load_from_disk`` / ``concatenate_datasets`` attach no access (see :mod:`hf_mediaref.hf._loading` and
:mod:`hf_mediaref.hf._combine`), and ``datasets``' writer stores ``MediaRef`` objects through their
``__array__`` (see :meth:`hf_mediaref.MediaRef.__array__`).

**The hook** (the only one): a MediaRef column is written as a marked plain struct (see
:data:`hf_mediaref.hf._feature.MEDIA_REF_ID`) so that ``datasets`` without hf_mediaref, and the Hub's viewer,
read it. ``datasets`` rebuilds features from that JSON form (``Features.from_dict``) whenever it reads files
(card YAML, ``dataset_info.json``, Parquet / Arrow schema metadata) and whenever it casts or flattens a table
(``cast_column``, ``cast``, ``flatten`` go through ``Features.from_arrow_schema``). Its registry maps a
``_type`` name to a class, and a plain struct has none, so the hook replaces the module function
``datasets.features.features.generate_from_dict`` (looked up as a module global by ``Features.from_dict`` and
by its own recursion) by one that returns a :class:`~hf_mediaref.hf.MediaRefFeature` for the marked struct
(and for the ``_type: MediaRef`` files of hf_mediaref 0.1) and hands everything else to the original,
unchanged. It attaches no root: a column read back reads with :data:`~hf_mediaref.hf._feature.READ_BACK` (no
root, public URLs only), since only the loader knows where the data came from. A plain
``datasets.load_dataset`` gives ``MediaRef`` rows with the URIs as stored; the ``"mediaref"`` format raises
:class:`~hf_mediaref.errors.UnresolvedPathError` on a relative one and
:class:`~hf_mediaref.errors.UntrustedRefError` on a local file or another Hub repo, each naming the fix.

Off switch: set ``HF_MEDIAREF_DATASETS_HOOK=0`` before ``datasets`` is imported, or call
:func:`remove_hook`; then plain loads read the column as ``{"uri", "pts_ns"}`` dicts, hf_mediaref's loaders
and :func:`~hf_mediaref.hf.set_media_access` still make it a ``MediaRefFeature``, the ``"mediaref"`` format
still decodes it, and ``cast_column(..., MediaRefFeature())`` from strings is no longer possible.
"""

from __future__ import annotations

import os
import threading
from typing import Any

from . import _compat

__all__ = ["HOOK_ENV", "register", "remove_hook"]

#: The environment variable that turns the hook off (``"0"``, ``"false"``, ``"no"``, ``"off"``).
HOOK_ENV = "HF_MEDIAREF_DATASETS_HOOK"

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


def _hook_enabled() -> bool:
    return os.environ.get(HOOK_ENV, "1").strip().lower() not in ("0", "false", "no", "off")


def _install_hook() -> None:
    """Replace ``generate_from_dict`` (once) by one that reads the marked struct back as a MediaRefFeature."""
    from ._feature import READ_BACK, MediaRefFeature, upgrade_feature

    original = _compat.get_generate_from_dict()
    if getattr(original, "__hf_mediaref__", False):
        return

    def generate_from_dict(obj: Any) -> Any:
        if isinstance(obj, dict) and obj.get("_type") == "MediaRef":  # written by hf_mediaref 0.1
            return MediaRefFeature(decode=obj.get("decode", True), access=READ_BACK)
        return upgrade_feature(original(obj))

    generate_from_dict.__hf_mediaref__ = True  # type: ignore[attr-defined]
    generate_from_dict.__wrapped__ = original  # type: ignore[attr-defined]
    _compat.set_generate_from_dict(generate_from_dict)


def remove_hook() -> None:
    """Give ``datasets`` back its own ``generate_from_dict`` (the hook's off switch; see
    :mod:`hf_mediaref.hf._registration`).

    Example:
        ```python
        >>> from hf_mediaref.hf._registration import remove_hook
        >>> remove_hook()
        ```
    """
    current = _compat.get_generate_from_dict()
    if getattr(current, "__hf_mediaref__", False):
        _compat.set_generate_from_dict(current.__wrapped__)  # type: ignore[attr-defined]


def register() -> None:
    """Register the feature and the formatter with ``datasets``, and the hook unless it is switched off
    (once).

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
        if _hook_enabled():
            _install_hook()
        _registered = True
