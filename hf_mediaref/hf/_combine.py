"""``concatenate_datasets`` / ``interleave_datasets`` for datasets whose refs read with different accesses.

``datasets``' own functions align the datasets' features; two MediaRef columns that read with different
:class:`~hf_mediaref.MediaAccess` values are different columns (``MediaRefFeature`` equality includes the
access), so ``datasets.concatenate_datasets`` refuses them instead of reading one dataset's relative URIs
against the other's root. These two functions first rewrite each such dataset's relative URIs to absolute ones
(each checked against its own access), then call ``datasets``' and give the result an access with no root
that allows each dataset's root and allow-list; with one common access the result keeps it.
"""

from __future__ import annotations

import logging
from typing import Any

from ..arrow import resolve_uri
from ..io import MediaAccess
from . import _compat
from ._feature import has_media
from ._roots import get_media_access, set_media_access

__all__ = ["concatenate_datasets", "interleave_datasets"]

logger = logging.getLogger(__name__)


def _has_media(dataset: Any) -> bool:
    return has_media(_compat.dataset_features(dataset) or {})


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


def _aligned(dsets: list) -> tuple[list, MediaAccess | None]:
    """``dsets`` ready for ``datasets``' function, and the access of the result: their one common access; or,
    when they differ, each dataset with absolute URIs (each checked against its own access) and an access
    with no root that allows what each allowed and each root (the tightest one access for them all; the
    token when they share one)."""
    accesses = list(dict.fromkeys(get_media_access(d) for d in dsets if _has_media(d)))
    if len(accesses) <= 1:
        return list(dsets), accesses[0] if accesses else None
    logger.info("combining datasets with different media accesses %s: URIs made absolute", accesses)
    allowed: list[Any] = []
    for access in accesses:
        if access is not None:
            allowed += [access.root] if access.root is not None else []
            allowed += list(access.allow_uris)
    tokens = {None if a is None else a.token for a in accesses}
    union = MediaAccess(None, allowed, token=tokens.pop() if len(tokens) == 1 else None)
    return [_absolutize(d) if _has_media(d) else d for d in dsets], union


def _combined(result: Any, access: MediaAccess | None) -> Any:
    return result if access is None else set_media_access(result, access)


def concatenate_datasets(dsets: list, *args: Any, **kwargs: Any) -> Any:
    """:func:`datasets.concatenate_datasets` for datasets whose refs read with different accesses.

    With one common :class:`~hf_mediaref.MediaAccess` (or none) this is ``datasets.concatenate_datasets``
    and the result keeps it. Otherwise each dataset's relative URIs are first resolved against its own root
    and checked against its own access (a ref it may not read raises here), and the result, with absolute
    URIs, reads with an access that has no root and allows each dataset's root and allow-list.
    Plain ``datasets.concatenate_datasets`` refuses such datasets (``ValueError``: the features cannot be
    aligned).

    Args:
        dsets: ``Dataset`` or ``IterableDataset`` objects, as ``datasets.concatenate_datasets`` takes.
        *args, **kwargs: the other arguments of ``datasets.concatenate_datasets`` (``info``, ``split``,
            ``axis``).

    Returns:
        The concatenated dataset.

    Example:
        ```python
        >>> import hf_mediaref
        >>> both = hf_mediaref.hf.concatenate_datasets([
        ...     hf_mediaref.load_dataset("org/robot-a", split="train"),
        ...     hf_mediaref.load_dataset("org/robot-b", split="train"),
        ... ])
        ```
    """
    import datasets

    aligned, access = _aligned(dsets)
    return _combined(datasets.concatenate_datasets(aligned, *args, **kwargs), access)


def interleave_datasets(dsets: list, *args: Any, **kwargs: Any) -> Any:
    """:func:`datasets.interleave_datasets` for datasets whose refs read with different accesses (see
    :func:`concatenate_datasets`).

    Args:
        dsets: ``Dataset`` or ``IterableDataset`` objects, as ``datasets.interleave_datasets`` takes.
        *args, **kwargs: the other arguments of ``datasets.interleave_datasets`` (``probabilities``,
            ``seed``, ``stopping_strategy``...).

    Returns:
        The interleaved dataset.

    Example:
        ```python
        >>> import hf_mediaref
        >>> mixed = hf_mediaref.hf.interleave_datasets([ds_a, ds_b], probabilities=[0.7, 0.3], seed=0)
        ```
    """
    import datasets

    aligned, access = _aligned(dsets)
    return _combined(datasets.interleave_datasets(aligned, *args, **kwargs), access)
