"""Group the rows of a MediaRef column by media URI, in Arrow and numpy (no Python loop per row).

Used by the ``"mediaref"`` formatter (resolve each distinct URI once, hand the engine one batch) and by
:class:`~hf_mediaref.hf.sampler.VideoBlockBatchSampler` (keep a DataLoader batch within few videos).
"""

from __future__ import annotations

import functools
from typing import Optional, Union

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

__all__ = ["UriGroups", "group_by_uri", "media_columns_arrays"]

ArrowArray = Union[pa.Array, pa.ChunkedArray]


class UriGroups:
    """Rows grouped by URI.

    ``uris[g]`` is the g-th distinct URI (in order of first appearance), ``codes[i]`` the group of row ``i``
    (-1 for a null row). ``order`` lists the non-null rows group by group (by ``pts_ns`` inside a group when
    timestamps were given, else in row order) and group ``g`` is ``order[offsets[g]:offsets[g + 1]]``.
    """

    def __init__(self, uris: list[str], codes: np.ndarray, pts_ns: Optional[np.ndarray] = None):
        self.uris = uris
        self.codes = codes
        self._pts_ns = pts_ns

    def __len__(self) -> int:
        return len(self.uris)

    @functools.cached_property
    def order(self) -> np.ndarray:
        valid = np.flatnonzero(self.codes >= 0)
        codes = self.codes[valid]
        if self._pts_ns is None:
            return valid[np.argsort(codes, kind="stable")]
        return valid[np.lexsort((self._pts_ns[valid], codes))]

    @functools.cached_property
    def offsets(self) -> np.ndarray:
        counts = np.bincount(self.codes[self.codes >= 0], minlength=len(self.uris))
        return np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)

    def rows(self, group: int) -> np.ndarray:
        """Row indices of ``group`` (see ``order``)."""
        return self.order[self.offsets[group] : self.offsets[group + 1]]


def _as_array(values: ArrowArray) -> pa.Array:
    if isinstance(values, pa.ChunkedArray):
        return values.combine_chunks() if values.num_chunks != 1 else values.chunk(0)
    return values


def group_by_uri(uris: ArrowArray, pts_ns: Optional[ArrowArray] = None) -> UriGroups:
    """Group rows by URI with Arrow's ``dictionary_encode``.

    ``uris`` is a string array (nulls allowed); with ``pts_ns`` (int64, nulls sort last) rows inside a group
    are ordered by timestamp. Takes about 0.1 s for a million rows.
    """
    arr = _as_array(uris)
    if not (pa.types.is_string(arr.type) or pa.types.is_large_string(arr.type)):
        raise TypeError(f"expected a string array of URIs, got {arr.type}")
    encoded = arr.dictionary_encode()
    indices = encoded.indices
    if indices.null_count:
        indices = pc.fill_null(indices, -1)
    codes = indices.to_numpy(zero_copy_only=False).astype(np.int32, copy=False)
    pts = None
    if pts_ns is not None:
        pts_arr = _as_array(pts_ns).cast(pa.int64())
        pts = pc.fill_null(pts_arr, np.iinfo(np.int64).max).to_numpy(zero_copy_only=False)
    return UriGroups(encoded.dictionary.to_pylist(), codes, pts)


def media_columns_arrays(column: ArrowArray) -> tuple[pa.Array, pa.Array, Optional[np.ndarray]]:
    """Split a ``struct<uri, pts_ns>`` column into its ``uri`` and ``pts_ns`` arrays plus a validity mask
    (None when no row is null). Null rows keep whatever placeholder values their children hold."""
    arr = _as_array(column)
    valid = None
    if arr.null_count:
        valid = arr.is_valid().to_numpy(zero_copy_only=False)
    return arr.field("uri"), arr.field("pts_ns"), valid
