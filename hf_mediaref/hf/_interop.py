"""Plain ``datasets`` calls keep MediaRef columns and read them with the access of where they were loaded
from, once hf_mediaref is imported.

A MediaRef column is serialized as the plain struct ``struct<uri: string, pts_ns: int64>`` (see
:class:`~hf_mediaref.hf.MediaRefFeature`), so ``datasets`` without hf_mediaref reads what hf_mediaref writes.
With hf_mediaref imported, :func:`install` wraps a few ``datasets`` functions (listed in
:data:`hf_mediaref.hf._compat.HOOK_TARGETS`) so that:

- features read back (card YAML, Parquet / Arrow schema metadata, ``dataset_info.json``) turn the marked
  struct, and the ``_type: MediaRef`` of files written by earlier versions, into ``MediaRefFeature``;
- ``datasets.load_dataset`` (map-style and streaming) and ``load_from_disk`` attach a
  :class:`~hf_mediaref.MediaAccess` made from **where the loader read the data, never from the data**: a local
  repo folder (after following symlinks), a Hub repo at the commit its builder resolved (with the load's
  ``token``), the folder of local data files (``load_dataset("parquet", data_files=...)``), the Hub repo all
  the data files are in, or the folder ``load_from_disk`` read. Nothing in the data (Parquet metadata,
  ``dataset_info.json``, ``state.json``, the card) widens it;
- ``concatenate_datasets`` / ``interleave_datasets`` of datasets whose accesses differ rewrite each
  dataset's relative URIs to absolute ones first (checked against its access; the result has no access); with
  one common access the result keeps it.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Callable
from typing import Any

from ..arrow import resolve_uri
from ..io import MediaAccess, UriKind, classify_uri, local_path
from . import _compat
from ._feature import MediaRefFeature, has_media, upgrade_feature
from ._roots import get_media_access, set_media_access

__all__ = ["install"]

logger = logging.getLogger(__name__)

_HUB_ROOT = re.compile(r"^(hf://(?:datasets|buckets)/[^/@]+/[^/@]+@[^/]+)(?:/|$)")
_HUB_FILE = re.compile(r"^(hf://datasets/[^/@]+/[^/@]+(?:@[^/]+)?)/")

_Fn = Callable[..., Any]


def _splits(dataset: Any) -> list:
    return list(dataset.values()) if isinstance(dataset, dict) else [dataset]


def _has_media(dataset: Any) -> bool:
    return any(has_media(_compat.dataset_features(s) or {}) for s in _splits(dataset))


# --------------------------------------------------------------------------------------- reading features
def _generate_from_dict(original: _Fn) -> _Fn:
    def generate_from_dict(obj: Any) -> Any:
        if isinstance(obj, dict) and obj.get("_type") == "MediaRef":  # written by hf_mediaref <= 0.x
            return MediaRefFeature(decode=obj.get("decode", True))
        return upgrade_feature(original(obj))

    return generate_from_dict


# --------------------------------------------------------------------------------------- load_dataset
def _files_repo_root(builder: Any) -> str | None:
    """``hf://datasets/<org>/<name>[@<revision>]/`` when every data file of a packaged builder is in that one
    repo (``load_dataset("parquet", data_files="hf://datasets/org/name/data/*.parquet")``): pinned only when
    the file paths are (``datasets`` resolves such patterns without a revision: the table is not pinned
    either)."""
    files = [str(f) for split_files in (builder.config.data_files or {}).values() for f in split_files]
    roots = {m.group(1) if (m := _HUB_FILE.match(f)) else None for f in files}
    root = roots.pop() if len(roots) == 1 else None
    return None if root is None else root + "/"


def _files_folder(builder: Any) -> str | None:
    """The deepest local folder holding every data file of a packaged builder (``None`` for remote files)."""
    files = [str(f) for split_files in (builder.config.data_files or {}).values() for f in split_files]
    if not files or any(classify_uri(f) is not UriKind.LOCAL for f in files):
        return None
    return os.path.commonpath([os.path.dirname(os.path.realpath(f)) for f in files])


def _builder_root(builder: Any) -> str | None:
    """Where a builder read its data: ``hf://...@<commit>/`` or an absolute folder; for a packaged builder,
    the Hub repo its files are all in, or the folder its local files are all in."""
    base = _compat.builder_base_path(builder)
    if base is None:
        return _files_repo_root(builder) or _files_folder(builder)
    hub = _HUB_ROOT.match(base)
    if hub is not None:
        return hub.group(1) + "/"
    if classify_uri(base) is UriKind.LOCAL and os.path.isdir(base):
        return os.path.realpath(base)
    return None


def _attach(builder: Any, result: Any) -> Any:
    if _has_media(result) and get_media_access(result) is None:
        root = _builder_root(builder)
        if root is not None:
            set_media_access(result, MediaAccess(root, token=getattr(builder, "token", None)))
    return result


def _as_dataset(original: _Fn) -> _Fn:
    def as_dataset(self: Any, *args: Any, **kwargs: Any) -> Any:
        return _attach(self, original(self, *args, **kwargs))

    return as_dataset


# --------------------------------------------------------------------------------------- load_from_disk
def _load_from_disk(original: _Fn) -> _Fn:
    def load_from_disk(dataset_path: Any, *args: Any, **kwargs: Any) -> Any:
        dataset = original(dataset_path, *args, **kwargs)
        path = os.fspath(dataset_path)  # DatasetDict.load_from_disk passes its splits' file:// URLs
        local = classify_uri(path) in (UriKind.LOCAL, UriKind.FILE)
        if _has_media(dataset) and get_media_access(dataset) is None and local:
            set_media_access(dataset, MediaAccess(os.path.realpath(local_path(path))))
        return dataset

    return load_from_disk


# --------------------------------------------------------------------------------------- concatenation
def _absolutize(dataset: Any) -> Any:
    """``dataset`` with its relative URIs resolved against its media root, and no root."""
    from datasets import IterableDataset

    from ._hub import _rewrite_dataset, _stored_uris

    root = get_media_access(dataset)
    features = _compat.dataset_features(dataset)
    if isinstance(dataset, IterableDataset):  # rewritten batch by batch
        return _absolutize_iterable(dataset, root)
    table = dataset.with_format("arrow")[:]
    mapping: dict[str, str] = {}
    for name, feature in features.items():
        if has_media(feature):
            for uri in _stored_uris(table[name], feature):
                resolved = resolve_uri(uri, root)
                if resolved != uri:
                    mapping[uri] = resolved
    out = _rewrite_dataset(dataset, mapping) if mapping else dataset.select(range(len(dataset)))
    return set_media_access(out, None)


def _absolutize_iterable(dataset: Any, root: MediaAccess | None) -> Any:
    from ._hub import _RewriteTable, _stored_uris

    features = _compat.dataset_features(dataset)

    def rewrite(table: Any) -> Any:
        mapping = {
            uri: resolve_uri(uri, root)
            for name, feature in features.items()
            if has_media(feature)
            for uri in _stored_uris(table[name], feature)
        }
        return _RewriteTable(features, mapping)(table)

    # cast, not map(features=): datasets takes mapped examples with given features as decoded already
    out = dataset.with_format("arrow").map(rewrite, batched=True).with_format(None).cast(features)
    return set_media_access(out, None)


def _combine(original: _Fn) -> _Fn:
    def combine(dsets: list, *args: Any, **kwargs: Any) -> Any:
        rooted = [d for d in dsets if _has_media(d)]
        accesses = {get_media_access(d) for d in rooted}
        if len(accesses) <= 1:
            result = original(dsets, *args, **kwargs)
            if accesses and (access := accesses.pop()) is not None:
                set_media_access(result, access)
            return result
        logger.info(
            "combining datasets with different media accesses %s: URIs made absolute",
            sorted(map(repr, accesses)),
        )
        dsets = [_absolutize(d) if _has_media(d) and get_media_access(d) is not None else d for d in dsets]
        return original(dsets, *args, **kwargs)

    return combine


# --------------------------------------------------------------------------------------- install
def install() -> None:
    """Wrap the ``datasets`` functions (once; called by :func:`hf_mediaref.hf._registration.register`)."""
    _compat.wrap("generate_from_dict", _generate_from_dict)
    _compat.wrap("as_dataset", _as_dataset)
    _compat.wrap("as_streaming_dataset", _as_dataset)
    _compat.wrap("load_from_disk", _load_from_disk)
    for name in (
        "concatenate_map_style",
        "concatenate_iterable",
        "interleave_map_style",
        "interleave_iterable",
    ):
        _compat.wrap(name, _combine)
