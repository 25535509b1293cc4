"""``video_shuffle``: a shuffle that keeps Ray Data blocks and batches within few videos.

``Dataset.random_shuffle()`` mixes every row of every video, so a 64-row batch touches ~64 videos and the
decoder seeks once per frame. This shuffle cuts each video (rows sorted by ``pts_ns``) into blocks of
``block_size`` consecutive refs, puts the blocks in a random order, then shuffles rows inside windows of
``window`` rows: a batch of ``B`` rows spans about ``B / block_size + 1`` videos. The new order is planned
on the driver from the URI and ``pts_ns`` columns (rows of refs are small), and applied with one
distributed ``Dataset.sort`` on a key column, the same cost as ``random_shuffle()``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from .._optional import require
from ..arrow import as_array, group_by_uri, ref_arrays, video_blocks
from ._read import _ref_columns

__all__ = ["video_shuffle"]

_KEY = "__hf_mediaref_shuffle_key"


def _positions(
    uri: pa.Array, pts: pa.Array, valid: np.ndarray | None, block_size: int, rng: np.random.Generator
) -> np.ndarray:
    """The new position of every row: videos' rows in ``pts_ns`` order cut into blocks (a video's remainder
    joins its last block), blocks in a random order. Null refs form one more video."""
    groups = group_by_uri(uri)
    codes = groups.codes.copy()
    if valid is not None:
        codes[~valid] = -1
    nulls = codes < 0
    if nulls.any():  # null refs (and null URIs): one more group, in row order
        codes[nulls] = len(groups)
    times = pc.fill_null(pts.cast(pa.int64()), np.iinfo(np.int64).max).to_numpy(zero_copy_only=False)
    order = np.lexsort((times, codes))
    counts = np.bincount(codes, minlength=int(codes.max()) + 1 if len(codes) else 0)
    offsets = np.concatenate([[0], np.cumsum(counts)])
    starts, sizes = video_blocks(offsets, block_size)
    perm = rng.permutation(len(starts))
    new_starts = np.empty(len(starts), dtype=np.int64)
    new_starts[perm] = np.concatenate([[0], np.cumsum(sizes[perm])])[:-1]
    # the i-th row of ``order`` is in block b = searchsorted(starts, i, "right") - 1
    sorted_pos = np.arange(len(order))
    block = np.searchsorted(starts, sorted_pos, side="right") - 1
    positions = np.empty(len(order), dtype=np.int64)
    positions[order] = new_starts[block] + (sorted_pos - starts[block])
    return positions


def _column(table: pa.Table, name: str) -> pa.ChunkedArray:
    return table.column(name)


def _with_key(table: pa.Table, keys: np.ndarray) -> pa.Table:
    return table.append_column(_KEY, pa.array(keys, pa.float64()))


def video_shuffle(
    dataset: Any,
    column: str | None = None,
    *,
    block_size: int = 16,
    window: int | None = None,
    seed: int | None = None,
) -> Any:
    """Shuffle a Ray Dataset of refs by blocks of video frames: random blocks, each ``block_size``
    consecutive refs of one video, rows shuffled inside windows of ``window`` rows.

    Call it on the refs, before decoding. The dataset is materialized once (its URI and ``pts_ns`` columns
    come to the driver to plan the order), then sorted on a key column in one distributed pass.

    Args:
        dataset: a ``ray.data.Dataset`` with a media column (``struct<uri, pts_ns>``) or a string column of
            URIs.
        column: the column to group by; default: the dataset's one media column.
        block_size: refs of one video kept together (in ``pts_ns`` order before the window shuffle); a
            video's last block also takes its remainder (``block_size`` to ``2 * block_size - 1`` rows).
        window: rows are shuffled inside consecutive windows of this many rows (default ``block_size``;
            ``1`` keeps each block in time order).
        seed: for a reproducible order; pass a different one each epoch (``seed=epoch``).

    Returns:
        A ``ray.data.Dataset`` with the same rows and columns in the new order. Iterate it in order
        (Ray's default ``preserve_order=False`` may interleave whole blocks, which keeps batches within few
        videos too).

    Raises:
        ValueError: ``block_size`` or ``window`` below 1, or no single media column and no ``column``.
        KeyError: ``column`` is not in the dataset.
        TypeError: ``column`` holds neither refs nor strings.

    Example:
        ```python
        >>> from hf_mediaref.ray import MediaDecoder, read_mediaref, video_shuffle
        >>> refs = video_shuffle(read_mediaref("/data/robot-frames"), block_size=16, seed=epoch)
        >>> for batch in refs.map_batches(MediaDecoder, batch_size=64).iter_batches(batch_size=64):
        ...     ...  # each batch spans about 64 / 16 + 1 videos
        ```
    """
    ray = require("ray", purpose="hf_mediaref.ray")
    if block_size < 1:
        raise ValueError(f"block_size must be >= 1, got {block_size}")
    window = block_size if window is None else window
    if window < 1:
        raise ValueError(f"window must be >= 1, got {window}")
    dataset = dataset.materialize()
    schema = dataset.schema().base_schema
    if column is None:
        candidates = _ref_columns(schema)
        if len(candidates) != 1:
            raise ValueError(f"pass column=...: found {len(candidates)} media columns {candidates}")
        column = candidates[0]
    if column not in schema.names:
        raise KeyError(f"column {column!r} is not in the dataset (columns: {schema.names})")
    block_refs = dataset.to_arrow_refs()
    get_column = ray.remote(_column)
    parts = ray.get([get_column.remote(ref, column) for ref in block_refs])
    values = as_array(pa.chunked_array([c for p in parts for c in p.chunks], schema.field(column).type))
    if pa.types.is_struct(values.type):
        uri, pts, valid = ref_arrays(values)
    elif pa.types.is_string(values.type) or pa.types.is_large_string(values.type):
        uri, pts, valid = values, pa.nulls(len(values), pa.int64()), None
    else:
        raise TypeError(f"column {column!r} must hold media references or URIs, got {values.type}")
    rng = np.random.default_rng(seed)
    positions = _positions(uri, pts, valid, block_size, rng)
    keys = (positions // window) + rng.random(len(positions))
    add_key = ray.remote(_with_key)
    keyed, start = [], 0
    for ref, part in zip(block_refs, parts):
        keyed.append(add_key.remote(ref, keys[start : start + len(part)]))
        start += len(part)
    return ray.data.from_arrow_refs(keyed).sort(_KEY).drop_columns([_KEY])
