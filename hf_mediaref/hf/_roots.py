"""The media root of a ``datasets`` object: where its relative URIs point.

A dataset loaded from a repo folder or a Hub repo stores media paths relative to the repo root
(``videos/a.mp4``). The root is runtime state, not data: it is kept on the dataset's ``MediaRefFeature``
objects as a plain attribute (never a dataclass field, so it is not written to ``dataset_info.json``, the
README YAML or Parquet metadata, and it does not take part in feature equality). ``datasets`` carries the
feature objects through ``map`` / ``filter`` / ``select`` / ``shuffle`` / pickling, so the root follows the
dataset. Files written and read back (``save_to_disk``, ``to_parquet``) lose it: attach it again with
:func:`set_media_root`. Resolution itself is :func:`hf_mediaref.arrow.resolve_uri`.

The root is also a trust boundary (:class:`hf_mediaref.arrow.MediaRoot`, a ``str`` that carries its
allow-list and pickles with it): a dataset with a root comes from a repo or folder, so its refs may read only
inside the root and what ``allow_uris`` names; see :func:`hf_mediaref.arrow.media_root`.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from typing import Any, TypeVar

from ..arrow import media_root
from ._compat import dataset_features
from ._feature import media_features

__all__ = ["get_media_root", "set_media_root"]

D = TypeVar("D")


def _splits(dataset: Any) -> list:
    return list(dataset.values()) if isinstance(dataset, dict) else [dataset]


def set_media_root(
    dataset: D,
    root: str | os.PathLike[str] | None,
    *,
    allow_uris: str | os.PathLike[str] | Iterable[Any] | None = None,
) -> D:
    """Resolve ``dataset``'s relative media URIs against ``root`` from now on (``None`` detaches it).

    Sets the root on every ``MediaRefFeature`` of the dataset (whatever its ``decode``), in place. The root
    is a trust boundary: every ref of the dataset, relative or absolute, must then read inside ``root`` or
    under ``allow_uris`` (or ``HF_MEDIAREF_ALLOW_URIS``), else reading it raises
    :class:`~hf_mediaref.errors.UntrustedRefError` (see :func:`hf_mediaref.arrow.media_root`). Public
    ``http(s)`` URLs and ``data:`` URIs are always allowed.

    Args:
        dataset: a ``Dataset``, ``IterableDataset``, ``DatasetDict`` or ``IterableDatasetDict``.
        root: a local directory (made absolute) or a URL such as ``hf://datasets/org/name@<commit>/``, or
            ``None``.
        allow_uris: what refs may read beyond the root: URI prefixes, local folders, schemes, or ``"*"``
            to trust the dataset entirely (your own dataset); see
            :func:`hf_mediaref.arrow.parse_allow_uris`.

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
    value = None if root is None else media_root(root, allow_uris)
    for split in _splits(dataset):
        features = dataset_features(split)
        if features is None:
            continue
        for feature in media_features(features):
            feature._media_root = value  # type: ignore[misc]  # runtime state, per object
    return dataset


def get_media_root(dataset: Any) -> str | None:
    """The media root attached to ``dataset`` (to the first split of a dict), or ``None``.

    Args:
        dataset: a ``Dataset``, ``IterableDataset`` or a dict of them.

    Returns:
        The root as set by :func:`set_media_root` or :func:`hf_mediaref.load_dataset` (a
        :class:`~hf_mediaref.arrow.MediaRoot`, a ``str`` carrying its allow-list), or ``None``.

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
