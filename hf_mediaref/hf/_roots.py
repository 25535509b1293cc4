"""The media access of a ``datasets`` object: where its relative URIs point, and what its refs may read.

A dataset loaded from a repo folder or a Hub repo stores media paths relative to the repo root
(``videos/a.mp4``). Where they resolve, and what the dataset's refs may read at all, is a
:class:`~hf_mediaref.MediaAccess` that the loader makes from where it read the data (the folder, or the Hub
repo at the commit it resolved) and the user widens (``allow_uris``); nothing stored in the data sets it. It
is runtime state kept on the dataset's ``MediaRefFeature`` objects as a plain attribute (never a dataclass
field, so never serialized; part of feature equality); ``datasets`` carries the feature objects through
``map`` / ``filter`` / ``select`` / ``shuffle`` / pickling. Setting it gives the dataset new feature objects:
some derived datasets share their parent's, which keep their access. Resolution itself is
:meth:`hf_mediaref.MediaAccess.resolve`.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from typing import Any, TypeVar

from ..decode import DecodeOptions
from ..io import MediaAccess, make_access, require_access
from ._compat import dataset_features
from ._feature import has_media, media_features, with_access

__all__ = [
    "get_media_access",
    "get_media_root",
    "get_media_token",
    "set_media_access",
    "set_media_root",
    "with_hub_token",
]

D = TypeVar("D")


def _splits(dataset: Any) -> list:
    return list(dataset.values()) if isinstance(dataset, dict) else [dataset]


def set_media_root(
    dataset: D,
    root: str | os.PathLike[str] | MediaAccess | None,
    *,
    token: Any = None,
    allow_uris: str | os.PathLike[str] | Iterable[Any] | None = None,
) -> D:
    """Resolve ``dataset``'s relative media URIs against ``root`` from now on (``None`` detaches it).

    Sets the root on every ``MediaRefFeature`` of the dataset (whatever its ``decode``), in place. It
    overrides the root ``load_dataset`` / ``load_from_disk`` attached: use it when the media moved. The root
    is a trust boundary: every ref of the dataset, relative or absolute, must then read inside ``root`` or
    under ``allow_uris``, else reading it raises :class:`~hf_mediaref.errors.UntrustedRefError` (see
    :class:`hf_mediaref.MediaAccess`). Public ``http(s)`` URLs and ``data:`` URIs are always allowed. The
    same as ``set_media_access(dataset, MediaAccess(root, allow_uris, token=token))``.

    Args:
        dataset: a ``Dataset``, ``IterableDataset``, ``DatasetDict`` or ``IterableDatasetDict``.
        root: a local directory (made absolute) or a URL such as ``hf://datasets/org/name@<commit>/``, or
            ``None``.
        token: the Hub token for ``hf://`` media (a private repo), as ``datasets``' ``token`` (a string, or
            ``True`` for the saved login); ``None``: the ambient token. Runtime state like the root: never
            written to files.
        allow_uris: what refs may read beyond the root: URI prefixes, local folders, schemes, or ``"*"``
            to trust the dataset entirely (your own dataset); see :func:`hf_mediaref.parse_allow_uris`.

    Returns:
        ``dataset`` itself.

    Raises:
        ValueError: ``root`` is a ``data:`` URI, or an ``allow_uris`` entry is malformed.

    Example:
        ```python
        >>> from datasets import load_from_disk
        >>> from hf_mediaref.hf import set_media_root
        >>> ds = set_media_root(load_from_disk("saved"), "/data/robot-frames", allow_uris=["/mnt/shared/"])
        >>> ds[0]["frame"]
        MediaRef(uri='/data/robot-frames/videos/ep0.mp4', pts_ns=0)
        ```
    """
    if root is None:
        return set_media_access(dataset, None)
    access = make_access(root, allow_uris, None)
    assert access is not None
    return set_media_access(dataset, access if token is None else access.replace(token=token))


def set_media_access(dataset: D, access: MediaAccess | None) -> D:
    """Read ``dataset``'s refs with ``access`` from now on (``None`` detaches it), in place: relative URIs
    resolve against its root, and every ref must read inside it or what it allows. The marked plain structs
    a plain ``datasets.load_dataset`` / ``load_from_disk`` reads a MediaRef column as become
    ``MediaRefFeature`` columns (same storage), so rows read as :class:`~hf_mediaref.MediaRef`.

    Args:
        dataset: a ``Dataset``, ``IterableDataset``, ``DatasetDict`` or ``IterableDatasetDict``.
        access: a :class:`~hf_mediaref.MediaAccess`, or ``None``.

    Returns:
        ``dataset`` itself.

    Example:
        ```python
        >>> from hf_mediaref import MediaAccess
        >>> from hf_mediaref.hf import set_media_access
        >>> ds = set_media_access(ds, MediaAccess("/data/robot-frames", allow_uris=["/mnt/shared/"]))
        ```
    """
    return attach_access(dataset, access)


def attach_access(dataset: D, access: MediaAccess | None, *, loaded: bool = False) -> D:
    """:func:`set_media_access`; ``loaded``: by a loader, of data read from files, whose media columns then
    all read as refs (``decode=True``) whatever the data marks: rows of a ``decode=False`` column are plain
    dicts, which carry no access (a transform without ``access=`` would read them as refs built in code)."""
    if access is not None:
        require_access(access)
    for split in _splits(dataset):
        features = dataset_features(split)
        if features is None:
            continue
        # New feature objects (a plain load's marked structs become MediaRef columns): the old ones may be
        # shared with the dataset this one was derived from (rename_column, select_columns): it keeps its own.
        for name, feature in list(features.items()):
            if has_media(feature):
                features[name] = with_access(feature, access, True if loaded else None)
    return dataset


def get_media_access(dataset: Any) -> MediaAccess | None:
    """The :class:`~hf_mediaref.MediaAccess` attached to ``dataset`` (to the first split of a dict), or
    ``None``.

    Args:
        dataset: a ``Dataset``, ``IterableDataset`` or a dict of them.

    Returns:
        The access its refs are read with, or ``None`` (a table built in code).

    Example:
        ```python
        >>> import hf_mediaref
        >>> from hf_mediaref.hf import get_media_access
        >>> get_media_access(hf_mediaref.load_dataset("org/robot-frames", split="train")).root
        'hf://datasets/org/robot-frames@<commit sha>/'
        ```
    """
    for split in _splits(dataset):
        for feature in media_features(dataset_features(split) or {}):
            return feature._media_access
    return None


def get_media_root(dataset: Any) -> str | None:
    """The media root attached to ``dataset`` (to the first split of a dict), or ``None``.

    Args:
        dataset: a ``Dataset``, ``IterableDataset`` or a dict of them.

    Returns:
        The root of the dataset's :class:`~hf_mediaref.MediaAccess` (see :func:`get_media_access`), or
        ``None``.

    Example:
        ```python
        >>> import hf_mediaref
        >>> from hf_mediaref.hf import get_media_root
        >>> get_media_root(hf_mediaref.load_dataset("org/robot-frames", split="train"))
        'hf://datasets/org/robot-frames@<commit sha>/'
        ```
    """
    access = get_media_access(dataset)
    return None if access is None else access.root


def get_media_token(dataset: Any) -> Any:
    """The Hub token attached with the media root (see :func:`set_media_root`), or ``None``.

    Args:
        dataset: a ``Dataset``, ``IterableDataset`` or a dict of them.

    Returns:
        The token, or ``None`` (the ambient token is used).

    Example:
        ```python
        >>> from hf_mediaref.hf import get_media_token
        >>> get_media_token(hf_mediaref.load_dataset("org/private-frames", token="hf_...", split="train"))
        'hf_...'
        ```
    """
    access = get_media_access(dataset)
    return None if access is None else access.token


def with_hub_token(
    options: DecodeOptions, features: Any, token_per_repo_id: dict[str, Any] | None = None
) -> DecodeOptions:
    """``options`` with the Hub token for ``hf://`` media: the token attached with the media root (see
    :func:`set_media_root`), else the one ``datasets`` passes for the root's repo (``token_per_repo_id``,
    as for its own media features). Given ``storage_options`` win; ``None``: the ambient token.

    The token goes to fsspec as ``{"hf": {"token": ...}}``, so only ``hf://`` filesystems receive it.
    """
    if options.storage_options is not None:
        return options
    for feature in media_features(features):
        access = feature._media_access
        if access is None:
            continue
        creds = access.engine_storage_options()
        if creds is None and token_per_repo_id and (repo := access.hub_repo()) is not None:
            token = token_per_repo_id.get(repo)
            creds = None if token is None else {"hf": {"token": token}}
        if creds is not None:
            return options.replace(storage_options=creds)
    return options
