"""Group the rows of a media reference column by URI, in Arrow and numpy (no Python loop per row).

Used to resolve each distinct URI once (:func:`~hf_mediaref.arrow.refs_from_storage`) and by batch samplers
that keep a batch within few videos.
"""

from __future__ import annotations

import functools

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

__all__ = ["UriGroups", "as_array", "group_by_uri", "video_blocks"]


def as_array(values: pa.Array | pa.ChunkedArray) -> pa.Array:
    """One contiguous ``pa.Array`` (a chunked array's chunks combined; its only chunk as it is)."""
    if isinstance(values, pa.ChunkedArray):
        return values.combine_chunks() if values.num_chunks != 1 else values.chunk(0)
    return values


class UriGroups:
    """Rows grouped by URI, as returned by :func:`group_by_uri`.

    Attributes:
        uris: the distinct URIs, in order of first appearance (``uris[g]`` names group ``g``).
        codes: ``codes[i]`` is the group of row ``i``, -1 for a null row (``int32`` numpy array).
        order: the non-null rows group by group (by ``pts_ns`` inside a group when timestamps were given, else
            in row order); group ``g`` is ``order[offsets[g]:offsets[g + 1]]``.
        offsets: where each group starts in ``order`` (``len(uris) + 1`` values).
    """

    def __init__(self, uris: list[str], codes: np.ndarray, pts_ns: np.ndarray | None = None):
        self.uris = uris
        self.codes = codes
        self._pts_ns = pts_ns

    def __repr__(self) -> str:
        shown = ", ".join(repr(uri) for uri in self.uris[:3]) + (", ..." if len(self.uris) > 3 else "")
        return f"UriGroups({len(self.uris)} URIs over {len(self.codes)} rows: {shown})"

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


def group_by_uri(
    uris: pa.Array | pa.ChunkedArray, pts_ns: pa.Array | pa.ChunkedArray | None = None
) -> UriGroups:
    """Group rows by URI with Arrow's ``dictionary_encode`` (about 0.1 s for a million rows).

    Args:
        uris: a ``string`` / ``large_string`` array (nulls allowed), chunked or not.
        pts_ns: timestamps (integer array, nulls sort last); when given, rows inside a group are ordered by
            them.

    Returns:
        A :class:`UriGroups`.

    Raises:
        TypeError: ``uris`` is not a string array.

    Example:
        ```python
        >>> import pyarrow as pa
        >>> from hf_mediaref.arrow import group_by_uri
        >>> groups = group_by_uri(pa.array(["b", "a", "b"]), pa.array([20, 0, 10]))
        >>> groups.uris, groups.rows(0).tolist()
        (['b', 'a'], [2, 0])
        ```
    """
    arr = as_array(uris)
    if not (pa.types.is_string(arr.type) or pa.types.is_large_string(arr.type)):
        raise TypeError(f"expected a string array of URIs, got {arr.type}")
    encoded = arr.dictionary_encode()
    indices = encoded.indices
    if indices.null_count:
        indices = pc.fill_null(indices, -1)
    codes = indices.to_numpy(zero_copy_only=False).astype(np.int32, copy=False)
    pts = None
    if pts_ns is not None:
        pts_arr = as_array(pts_ns).cast(pa.int64())
        pts = pc.fill_null(pts_arr, np.iinfo(np.int64).max).to_numpy(zero_copy_only=False)
    return UriGroups(encoded.dictionary.to_pylist(), codes, pts)


def video_blocks(offsets: np.ndarray, block_size: int) -> tuple[np.ndarray, np.ndarray]:
    """Cut rows grouped by video into blocks of consecutive frames of one video (what a video-local sampler
    or shuffle moves around): a video's remainder joins its last block, so every block of a video with at
    least ``block_size`` frames has ``block_size`` to ``2 * block_size - 1`` frames.

    Args:
        offsets: ``(videos + 1,)`` int array; video ``v`` is rows ``offsets[v]:offsets[v + 1]``.
        block_size: frames per block.

    Returns:
        ``(starts, lengths)``: int arrays, one entry per block, in row order; videos without rows have none.

    Example:
        ```python
        >>> video_blocks(np.array([0, 5, 5, 12]), 3)
        (array([0, 5, 8]), array([5, 3, 4]))
        ```
    """
    counts = np.diff(offsets)
    blocks_per_video = np.maximum(1, counts // block_size)
    video_of_block = np.repeat(np.arange(len(counts)), blocks_per_video)
    first_block = np.cumsum(blocks_per_video) - blocks_per_video
    k = np.arange(len(video_of_block)) - first_block[video_of_block]
    starts = offsets[video_of_block] + k * block_size
    last = k == blocks_per_video[video_of_block] - 1
    ends = np.where(last, offsets[video_of_block + 1], starts + block_size)
    keep = ends > starts  # a video with no rows (a rank's empty part) has no block
    return starts[keep], (ends - starts)[keep]
