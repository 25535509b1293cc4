"""The media root: where a dataset's relative URIs point.

A dataset loaded from a repo folder or a Hub repo stores media paths relative to the repo root (e.g.
``videos/a.mp4``). The root is runtime state, not data: it is kept on the dataset's ``MediaRefFeature``
objects as a plain attribute (never a dataclass field, so it is not written to ``dataset_info.json``, the
README YAML or Parquet metadata, and it does not take part in feature equality). ``datasets`` carries the
feature objects through ``map``/``filter``/``select``/``shuffle``/pickling, so the root follows the dataset.
Files written and read back (``save_to_disk``, ``to_parquet``) lose it: attach it again with
:func:`set_media_root`.
"""

from __future__ import annotations

import functools
import os
from typing import Any, Iterator, Optional

from ..errors import UnresolvedPathError, describe_uri
from ..io import UriKind, classify_uri, is_absolute_uri, join_uri

__all__ = [
    "set_media_root",
    "get_media_root",
    "resolve_uri",
    "unresolved_error",
    "require_resolved",
    "iter_media_features",
    "normalize_root",
]


def normalize_root(root: str | os.PathLike) -> str:
    """Absolutize a local root; URL roots (``hf://datasets/org/name@rev/``, ``https://...``) are kept as
    given."""
    root = os.fspath(root)
    if classify_uri(root) is UriKind.LOCAL:
        return os.path.abspath(os.path.expanduser(root))
    if classify_uri(root) is UriKind.DATA:
        raise ValueError("a data: URI cannot be a media root")
    return root


def iter_media_features(feature: Any) -> Iterator[Any]:
    """Yield every ``MediaRefFeature`` inside a (nested) feature or ``Features`` mapping."""
    from datasets import LargeList, List

    from .feature import MediaRefFeature

    if isinstance(feature, MediaRefFeature):
        yield feature
    elif isinstance(feature, dict):
        for sub in feature.values():
            yield from iter_media_features(sub)
    elif isinstance(feature, (list, tuple)):
        for sub in feature:
            yield from iter_media_features(sub)
    elif isinstance(feature, (List, LargeList)):
        yield from iter_media_features(feature.feature)


def _splits(dataset: Any) -> list:
    return list(dataset.values()) if isinstance(dataset, dict) else [dataset]


def set_media_root(dataset: Any, root: Optional[str | os.PathLike]) -> Any:
    """Resolve ``dataset``'s relative media URIs against ``root`` from now on (``None`` detaches it).

    Works on ``Dataset``, ``IterableDataset`` and their dicts; changes the dataset in place and returns it.
    ``root`` is a local directory (absolutized) or a URL such as ``hf://datasets/org/name@<commit>/``.
    """
    value = None if root is None else normalize_root(root)
    for split in _splits(dataset):
        features = split._info.features
        if features is None:
            continue
        for feature in iter_media_features(features):
            feature._media_root = value
    return dataset


def get_media_root(dataset: Any) -> Optional[str]:
    """The media root attached to ``dataset`` (the first split of a dict), or None."""
    for split in _splits(dataset):
        for feature in iter_media_features(split._info.features or {}):
            return feature._media_root
    return None


@functools.lru_cache(maxsize=65536)
def _join(root: str, uri: str) -> str:
    return join_uri(root, uri)


def resolve_uri(uri: str, root: Optional[str]) -> str:
    """``uri`` joined onto ``root`` when it is a relative path (the same object otherwise).

    Raises :class:`~hf_mediaref.errors.PathEscapeError` for a path that leaves ``root`` with ``..``.
    """
    if root is None or is_absolute_uri(uri):
        return uri
    return _join(root, uri)


def unresolved_error(uri: str) -> UnresolvedPathError:
    """The error for a relative URI that must be read but has no root to resolve against."""
    return UnresolvedPathError(
        f"relative media path {describe_uri(uri)} has no root to resolve against. Load the dataset with "
        "hf_mediaref.load_dataset(...) (which attaches the repo root), attach one with "
        "hf_mediaref.hf.set_media_root(ds, root), or resolve refs yourself with "
        "ref.resolve_relative_path(root)",
        uri=uri,
    )


def require_resolved(ref: Any) -> Any:
    """``ref`` itself, or :func:`unresolved_error` when its URI is a relative path (nothing to read it
    against)."""
    if not is_absolute_uri(ref.uri):
        raise unresolved_error(ref.uri)
    return ref
