"""From a ``struct<uri, pts_ns>`` array to :class:`~hf_mediaref.MediaRef` values, each distinct URI resolved
once."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import pyarrow as pa

from ..core import MediaRef
from ..errors import describe_uri
from ._grouping import as_array, group_by_uri
from ._roots import resolve_uri

__all__ = ["RefArrays", "ref_arrays", "refs_from_storage"]


class RefArrays(NamedTuple):
    """The children of a media reference array, as returned by :func:`ref_arrays`. Null rows keep whatever
    placeholder values their children hold.

    Args:
        uri: the ``uri`` child (``string``).
        pts_ns: the ``pts_ns`` child (``int64``, null for images).
        valid: a boolean numpy mask of the non-null rows, or ``None`` when no row is null.
    """

    uri: pa.Array
    pts_ns: pa.Array
    valid: np.ndarray | None


def ref_arrays(array: pa.Array | pa.ChunkedArray) -> RefArrays:
    """Split a ``struct<uri, pts_ns>`` array into its children and validity.

    Args:
        array: an array of :data:`~hf_mediaref.arrow.STORAGE_TYPE` (chunks are combined).

    Returns:
        A :class:`RefArrays`.

    Example:
        ```python
        >>> import pyarrow as pa
        >>> from hf_mediaref.arrow import STORAGE_TYPE, ref_arrays
        >>> parts = ref_arrays(pa.array([{"uri": "a.mp4", "pts_ns": 5}, None], STORAGE_TYPE))
        >>> parts.uri.to_pylist()[0], parts.valid.tolist()
        ('a.mp4', [True, False])
        ```
    """
    arr = as_array(array)
    valid = arr.is_valid().to_numpy(zero_copy_only=False) if arr.null_count else None
    return RefArrays(arr.field("uri"), arr.field("pts_ns"), valid)


def refs_from_storage(
    array: pa.Array | pa.ChunkedArray, root: str | None
) -> tuple[list[MediaRef], np.ndarray]:
    """The media references of the non-null rows of ``array``, URIs resolved against ``root``.

    Rows are grouped by URI in Arrow, so each distinct URI is resolved once (the URI of a null row is never
    looked at); refs are built without re-validating their fields.

    Args:
        array: an array of :data:`~hf_mediaref.arrow.STORAGE_TYPE`.
        root: the media root (see :func:`~hf_mediaref.arrow.normalize_root`), or ``None``.

    Returns:
        ``(refs, valid)``: one ``MediaRef`` per non-null row, in row order, and the boolean numpy mask of
        those rows.

    Raises:
        UnresolvedPathError: a relative URI and no ``root``.
        PathEscapeError: a relative URI that leaves ``root``.
        ValueError: a negative ``pts_ns``.

    Example:
        ```python
        >>> import pyarrow as pa
        >>> from hf_mediaref.arrow import STORAGE_TYPE, refs_from_storage
        >>> column = pa.array([{"uri": "a.mp4", "pts_ns": 0}, None], STORAGE_TYPE)
        >>> refs_from_storage(column, "/data")
        ([MediaRef(uri='/data/a.mp4', pts_ns=0)], array([ True, False]))
        ```
    """
    uri, pts, valid = ref_arrays(array)
    groups = group_by_uri(uri)
    codes = groups.codes if valid is None else np.where(valid, groups.codes, -1)
    used = np.zeros(len(groups), dtype=bool)
    used[codes[codes >= 0]] = True
    resolved: list[str | None] = [None] * len(groups)
    for g in np.flatnonzero(used).tolist():
        resolved[g] = resolve_uri(groups.uris[g], root)
    construct = MediaRef.model_construct
    refs = []
    for code, pts_ns in zip(codes.tolist(), pts.to_pylist(), strict=True):
        if code >= 0:
            if pts_ns is not None and pts_ns < 0:
                raise ValueError(f"pts_ns must be >= 0, got {pts_ns} for {describe_uri(groups.uris[code])}")
            refs.append(construct(uri=resolved[code], pts_ns=pts_ns))
    return refs, codes >= 0
