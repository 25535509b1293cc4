"""From a ``struct<uri, pts_ns>`` array to :class:`~hf_mediaref.MediaRef` values, each distinct URI resolved
once."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from .._fields import coerce_ref
from ..core import MediaRef
from ..io import MediaAccess
from ._grouping import UriGroups, as_array, group_by_uri
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

    def __repr__(self) -> str:
        rows = len(self.uri)
        valid = np.ones(rows, bool) if self.valid is None else self.valid
        shown = [repr(u) if ok else "None" for u, ok in zip(self.uri[:3].to_pylist(), valid[:3].tolist())]
        more = ", ..." if rows > 3 else ""
        return f"RefArrays({rows} rows, {rows - int(np.count_nonzero(valid))} null: {', '.join(shown)}{more})"


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


def _first_invalid(uri: pa.Array, pts: pa.Array, valid: np.ndarray | None, groups: UriGroups) -> int | None:
    """The first non-null row whose stored fields no ref can have (null, empty or NUL-holding ``uri``,
    negative ``pts_ns``), or ``None``. ``groups``: the rows grouped by ``uri``; each distinct URI is checked
    once, the times in numpy (a null time, an image's, is never negative)."""
    times = pc.fill_null(pts, 0) if pts.null_count else pts
    flags = (times.to_numpy(zero_copy_only=False) < 0) | (groups.codes < 0)  # code -1: a null URI
    wrong = [g for g, text in enumerate(groups.uris) if not text or "\x00" in text]
    if wrong:
        flags |= np.isin(groups.codes, wrong)
    if valid is not None:
        flags &= valid
    found = np.flatnonzero(flags)
    return int(found[0]) if len(found) else None


def refs_from_storage(
    array: pa.Array | pa.ChunkedArray, access: MediaAccess | str | None, *, where: str = "row {}"
) -> tuple[list[MediaRef], np.ndarray]:
    """The media references of the non-null rows of ``array``, URIs resolved and checked against ``access``.

    Rows are grouped by URI in Arrow, so each distinct URI is resolved once (the URI of a null row is never
    looked at); the fields are checked in Arrow (a non-null row with a null, empty or NUL-holding ``uri`` or
    a negative ``pts_ns`` raises), and refs are built without validating them again one by one.

    Args:
        array: an array of :data:`~hf_mediaref.arrow.STORAGE_TYPE`.
        access: a :class:`~hf_mediaref.MediaAccess`, a root string given in code, or ``None`` (see
            :func:`~hf_mediaref.arrow.resolve_uri`).
        where: how errors name a row, a format string given the row's index in ``array``
            (``"column 'frame', row {} of the batch"``).

    Returns:
        ``(refs, valid)``: one ``MediaRef`` per non-null row, in row order, and the boolean numpy mask of
        those rows.

    Raises:
        InvalidRefError: a non-null row with a null, empty or NUL-holding ``uri`` or a negative ``pts_ns``
            (including the values :func:`~hf_mediaref.arrow.cast_to_storage` stores for a ``pts_ns`` that was
            a bool, a string or a fraction); the message names the first such row (``where``) and its value.
        UnresolvedPathError: a relative URI and no root.
        PathEscapeError: a relative URI that leaves the root.
        UntrustedRefError: a URI outside ``access``.

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
    bad = _first_invalid(uri, pts, valid, groups)
    if bad is not None:
        coerce_ref(uri[bad].as_py(), pts[bad].as_py(), where=where.format(bad))  # raises InvalidRefError
    codes = groups.codes if valid is None else np.where(valid, groups.codes, -1)
    used = np.zeros(len(groups), dtype=bool)
    used[codes[codes >= 0]] = True
    resolved: list[str | None] = [None] * len(groups)
    for g in np.flatnonzero(used).tolist():
        resolved[g] = resolve_uri(groups.uris[g], access)
    construct = MediaRef.model_construct
    refs = []
    for code, pts_ns in zip(codes.tolist(), pts.to_pylist(), strict=True):
        if code >= 0:
            refs.append(construct(uri=resolved[code], pts_ns=pts_ns))
    return refs, codes >= 0
