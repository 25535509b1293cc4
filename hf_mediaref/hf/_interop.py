"""Plain ``datasets`` calls keep MediaRef columns and their media root, once hf_mediaref is imported.

A MediaRef column is serialized as the plain struct ``struct<uri: string, pts_ns: int64>`` (see
:class:`~hf_mediaref.hf.MediaRefFeature`), so ``datasets`` without hf_mediaref reads what hf_mediaref writes.
With hf_mediaref imported, :func:`install` wraps a few ``datasets`` functions (listed in
:data:`hf_mediaref.hf._compat.HOOK_TARGETS`) so that:

- features read back (card YAML, Parquet / Arrow schema metadata, ``dataset_info.json``) turn the marked
  struct, and the ``_type: MediaRef`` of files written by earlier versions, into ``MediaRefFeature``;
- ``datasets.load_dataset(repo_or_folder)`` (map-style and streaming) attaches the repo root as the media
  root: the absolute local folder, or ``hf://datasets/<org>/<name>@<commit>/`` for the commit the builder
  resolved; with the load's ``token`` for the media of private repos. ``load_dataset("parquet", ...)``
  attaches the root stored in the Parquet file by ``to_parquet``, else, when all its files are in one Hub
  repo, that repo's root;
- ``to_parquet`` stores the dataset's media root in the file's schema metadata (key ``hf_mediaref``;
  never for files pushed to the Hub, whose refs are relative to the repo); ``save_to_disk`` stores it in
  ``dataset_info.json`` (key ``hf_mediaref``, absolute and relative to the saved folder), and
  ``load_from_disk`` restores it (the relative root when that folder exists: data and media moved together;
  else the absolute one);
- ``concatenate_datasets`` / ``interleave_datasets`` of datasets whose media roots differ rewrite each
  dataset's relative URIs to absolute ones first (the result has no root); with one common root the result
  keeps it.
"""

from __future__ import annotations

import contextlib
import contextvars
import json
import logging
import os
import posixpath
import re
from collections.abc import Callable, Iterator
from typing import Any

from ..arrow import resolve_uri
from ..io import UriKind, classify_uri
from . import _compat
from ._feature import MediaRefFeature, has_media, media_features, upgrade_feature
from ._roots import get_media_root, get_media_token, set_media_root

__all__ = ["METADATA_KEY", "install", "not_for_the_hub"]

logger = logging.getLogger(__name__)

#: Our key in Parquet schema metadata and in ``dataset_info.json`` (``datasets`` ignores both).
METADATA_KEY = "hf_mediaref"

_HUB_ROOT = re.compile(r"^(hf://(?:datasets|buckets)/[^/@]+/[^/@]+@[^/]+)(?:/|$)")
_HUB_FILE = re.compile(r"^(hf://datasets/[^/@]+/[^/@]+(?:@[^/]+)?)/")
_for_the_hub: contextvars.ContextVar[bool] = contextvars.ContextVar("hf_mediaref_for_the_hub", default=False)

_Fn = Callable[..., Any]


@contextlib.contextmanager
def not_for_the_hub() -> Iterator[None]:
    """Within: files written carry no media root (their refs are relative to the repo they go to)."""
    token = _for_the_hub.set(True)
    try:
        yield
    finally:
        _for_the_hub.reset(token)


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


# --------------------------------------------------------------------------------------- Parquet metadata
def _arrow_schema(original: _Fn) -> _Fn:
    def arrow_schema(self: Any) -> Any:
        schema = original(self)
        if _for_the_hub.get():
            return schema
        root = next((f._media_root for f in media_features(self) if f._media_root is not None), None)
        if root is None:
            return schema
        value = json.dumps({"media_root": root})
        return schema.with_metadata({**(schema.metadata or {}), METADATA_KEY.encode(): value.encode()})

    return arrow_schema


def _push_to_hub(original: _Fn) -> _Fn:
    def push_to_hub(self: Any, *args: Any, **kwargs: Any) -> Any:
        with not_for_the_hub():
            return original(self, *args, **kwargs)

    return push_to_hub


def _parquet_root(builder: Any) -> str | None:
    """The media root stored by ``to_parquet`` in the first Parquet file a packaged builder reads."""
    if type(builder).__name__ != "Parquet":
        return None
    files = [f for split_files in (builder.config.data_files or {}).values() for f in split_files]
    if not files:
        return None
    import fsspec
    import pyarrow.parquet as pq

    try:
        with fsspec.open(str(files[0]), "rb", **(builder.storage_options or {})) as f:
            metadata = pq.read_schema(f).metadata or {}
        return json.loads(metadata[METADATA_KEY.encode()])["media_root"]
    except Exception:  # no metadata of ours, or unreadable here: datasets reports real read errors itself
        return None


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


def _builder_root(builder: Any) -> str | None:
    """The root of the repo or folder a builder loads: ``hf://...@<commit>/`` or an absolute folder; for a
    packaged builder, the root stored in its Parquet file, else the Hub repo its files are all in."""
    base = _compat.builder_base_path(builder)
    if base is None:
        return _parquet_root(builder) or _files_repo_root(builder)
    hub = _HUB_ROOT.match(base)
    if hub is not None:
        return hub.group(1) + "/"
    if classify_uri(base) is UriKind.LOCAL and os.path.isdir(base):
        return os.path.abspath(base)
    return None


def _attach(builder: Any, result: Any) -> Any:
    if _has_media(result) and get_media_root(result) is None:
        root = _builder_root(builder)
        if root is not None:
            set_media_root(result, root, token=getattr(builder, "token", None))
    return result


def _as_dataset(original: _Fn) -> _Fn:
    def as_dataset(self: Any, *args: Any, **kwargs: Any) -> Any:
        return _attach(self, original(self, *args, **kwargs))

    return as_dataset


# --------------------------------------------------------------------------------------- save / load disk
def _fs(path: str, storage_options: dict | None) -> tuple[Any, str]:
    import fsspec

    return fsspec.core.url_to_fs(path, **(storage_options or {}))


def _save_to_disk(original: _Fn) -> _Fn:
    def save_to_disk(self: Any, dataset_path: Any, *args: Any, **kwargs: Any) -> Any:
        result = original(self, dataset_path, *args, **kwargs)
        root = get_media_root(self)
        if root is not None:
            fs, path = _fs(os.fspath(dataset_path), kwargs.get("storage_options"))
            info_path = posixpath.join(path, _compat.config.DATASET_INFO_FILENAME)
            with fs.open(info_path, "r", encoding="utf-8") as f:
                info = json.load(f)
            entry: dict[str, str] = {"media_root": root}
            if classify_uri(root) is UriKind.LOCAL and classify_uri(os.fspath(dataset_path)) is UriKind.LOCAL:
                entry["media_root_relative"] = os.path.relpath(root, os.path.abspath(dataset_path))
            info[METADATA_KEY] = entry
            with fs.open(info_path, "w", encoding="utf-8") as f:
                json.dump(info, f, indent=2)
        return result

    return save_to_disk


def _stored_root(dataset_path: str, storage_options: dict | None) -> str | None:
    fs, path = _fs(dataset_path, storage_options)
    info_path = posixpath.join(path, _compat.config.DATASET_INFO_FILENAME)
    try:
        with fs.open(info_path, "r", encoding="utf-8") as f:
            entry = json.load(f).get(METADATA_KEY) or {}
    except (OSError, ValueError):
        return None
    relative = entry.get("media_root_relative")
    if relative is not None:
        moved = os.path.normpath(os.path.join(os.path.abspath(dataset_path), relative))
        if os.path.isdir(moved):
            return moved
    return entry.get("media_root")


def _load_from_disk(original: _Fn) -> _Fn:
    def load_from_disk(dataset_path: Any, *args: Any, **kwargs: Any) -> Any:
        dataset = original(dataset_path, *args, **kwargs)
        if _has_media(dataset) and get_media_root(dataset) is None:
            root = _stored_root(os.fspath(dataset_path), kwargs.get("storage_options"))
            if root is not None:
                set_media_root(dataset, root)
        return dataset

    return load_from_disk


# --------------------------------------------------------------------------------------- concatenation
def _absolutize(dataset: Any) -> Any:
    """``dataset`` with its relative URIs resolved against its media root, and no root."""
    from datasets import IterableDataset

    from ._hub import _rewrite_dataset, _stored_uris

    root = get_media_root(dataset)
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
    return set_media_root(out, None)


def _absolutize_iterable(dataset: Any, root: str | None) -> Any:
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
    return set_media_root(out, None)


def _combine(original: _Fn) -> _Fn:
    def combine(dsets: list, *args: Any, **kwargs: Any) -> Any:
        rooted = [d for d in dsets if _has_media(d)]
        roots = {get_media_root(d) for d in rooted}
        if len(roots) <= 1:
            result = original(dsets, *args, **kwargs)
            if roots and (root := roots.pop()) is not None:
                token = next((get_media_token(d) for d in rooted if get_media_token(d) is not None), None)
                set_media_root(result, root, token=token)
            return result
        logger.info(
            "combining datasets with different media roots %s: URIs made absolute", sorted(map(str, roots))
        )
        dsets = [_absolutize(d) if _has_media(d) and get_media_root(d) is not None else d for d in dsets]
        return original(dsets, *args, **kwargs)

    return combine


# --------------------------------------------------------------------------------------- install
def install() -> None:
    """Wrap the ``datasets`` functions (once; called by :func:`hf_mediaref.hf._registration.register`)."""
    _compat.wrap("generate_from_dict", _generate_from_dict)
    _compat.wrap("arrow_schema", _arrow_schema)
    _compat.wrap("as_dataset", _as_dataset)
    _compat.wrap("as_streaming_dataset", _as_dataset)
    _compat.wrap("save_to_disk", _save_to_disk)
    _compat.wrap("load_from_disk", _load_from_disk)
    for name in _compat.HOOK_TARGETS:
        if name.endswith("push_to_hub"):
            _compat.wrap(name, _push_to_hub)
    for name in (
        "concatenate_map_style",
        "concatenate_iterable",
        "interleave_map_style",
        "interleave_iterable",
    ):
        _compat.wrap(name, _combine)
