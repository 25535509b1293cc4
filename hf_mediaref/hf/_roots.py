"""The media root of a ``datasets`` object: where its relative URIs point.

A dataset loaded from a repo folder or a Hub repo stores media paths relative to the repo root
(``videos/a.mp4``). The root is runtime state, not data: it is kept on the dataset's ``MediaRefFeature``
objects as a plain attribute (never a dataclass field, so it is not part of the serialized features, and it
does not take part in feature equality), with the Hub token for its media. ``datasets`` carries the feature
objects through ``map`` / ``filter`` / ``select`` / ``shuffle`` / pickling, so the root follows the dataset;
:mod:`hf_mediaref.hf._interop` keeps it through ``save_to_disk`` / ``load_from_disk``, ``to_parquet`` /
``load_dataset("parquet")`` and ``concatenate_datasets``, and attaches it in ``datasets.load_dataset``.
Resolution itself is :func:`hf_mediaref.arrow.resolve_uri`.
"""

from __future__ import annotations

import os
import re
from typing import Any, TypeVar

from ..arrow import normalize_root
from ..decode import DecodeOptions
from ._compat import dataset_features
from ._feature import media_features

__all__ = ["get_media_root", "get_media_token", "set_media_root", "with_hub_token"]

D = TypeVar("D")


def _splits(dataset: Any) -> list:
    return list(dataset.values()) if isinstance(dataset, dict) else [dataset]


def set_media_root(dataset: D, root: str | os.PathLike[str] | None, *, token: Any = None) -> D:
    """Resolve ``dataset``'s relative media URIs against ``root`` from now on (``None`` detaches it).

    Sets the root on every ``MediaRefFeature`` of the dataset (whatever its ``decode``), in place. It
    overrides the root ``load_dataset`` / ``load_from_disk`` attached: use it when the media moved.

    Args:
        dataset: a ``Dataset``, ``IterableDataset``, ``DatasetDict`` or ``IterableDatasetDict``.
        root: a local directory (made absolute) or a URL such as ``hf://datasets/org/name@<commit>/``, or
            ``None``.
        token: the Hub token for ``hf://`` media (a private repo), as ``datasets``' ``token`` (a string, or
            ``True`` for the saved login); ``None``: the ambient token. Runtime state like the root: never
            written to files.

    Returns:
        ``dataset`` itself.

    Raises:
        ValueError: ``root`` is a ``data:`` URI.

    Example:
        ```python
        >>> from datasets import load_from_disk
        >>> from hf_mediaref.hf import set_media_root
        >>> ds = set_media_root(load_from_disk("saved"), "/data/robot-frames")
        >>> ds[0]["frame"]
        MediaRef(uri='/data/robot-frames/videos/ep0.mp4', pts_ns=0)
        ```
    """
    value = None if root is None else normalize_root(root)
    for split in _splits(dataset):
        features = dataset_features(split)
        if features is None:
            continue
        for feature in media_features(features):
            feature._media_root = value  # type: ignore[misc]  # runtime state, per object
            feature._media_token = token  # type: ignore[misc]
    return dataset


def get_media_root(dataset: Any) -> str | None:
    """The media root attached to ``dataset`` (to the first split of a dict), or ``None``.

    Args:
        dataset: a ``Dataset``, ``IterableDataset`` or a dict of them.

    Returns:
        The root as set by :func:`set_media_root` or :func:`hf_mediaref.load_dataset`, or ``None``.

    Example:
        ```python
        >>> import hf_mediaref
        >>> from hf_mediaref.hf import get_media_root
        >>> get_media_root(hf_mediaref.load_dataset("org/robot-frames", split="train"))
        'hf://datasets/org/robot-frames@<commit sha>/'
        ```
    """
    for split in _splits(dataset):
        for feature in media_features(dataset_features(split) or {}):
            return feature._media_root
    return None


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
    for split in _splits(dataset):
        for feature in media_features(dataset_features(split) or {}):
            return feature._media_token
    return None


_HUB_REPO = re.compile(r"^hf://(?:datasets|buckets)/([^/@]+/[^/@]+)")


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
        token = feature._media_token
        root = feature._media_root or ""
        match = _HUB_REPO.match(root)
        if token is None and match is not None and token_per_repo_id:
            token = token_per_repo_id.get(match.group(1))
        if token is not None:
            return options.replace(storage_options={"hf": {"token": token}})
    return options
