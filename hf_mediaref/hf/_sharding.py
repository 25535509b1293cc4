"""Shard planning for ``push_to_hub``: enough Parquet shards for streaming workers, each of whole videos.

A streaming ``DataLoader`` gives each worker whole shards, and ``split_by_node`` gives each rank whole
shards, so a repo needs at least as many shards as workers (times ranks), and a video should sit in one
shard so that one worker decodes it. ``datasets``' ``push_to_hub`` cuts a table into ``num_shards``
contiguous parts of equal size (the first ``len % num_shards`` one row longer); this module reorders the rows
so that those parts hold whole videos: rows are grouped by the video of the first top-level MediaRef column
(videos in order of first appearance, each video's rows by time; null refs form one group), and the groups
are packed into the parts, first-fit by decreasing size, or laid out in order and cut at the part
boundaries, whichever splits fewer videos. A video larger than a part is split into consecutive time ranges.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ..arrow import ref_arrays
from ._feature import ref_columns

__all__ = ["DEFAULT_NUM_SHARDS", "plan_shards", "shard_for_streaming"]

logger = logging.getLogger(__name__)

#: Shards ``push_to_hub`` writes at least (fewer only for fewer rows) unless told ``num_shards`` or
#: ``max_shard_size``: enough for 8 streaming DataLoader workers, or 2 ranks x 4 workers.
DEFAULT_NUM_SHARDS = 8

_DEFAULT_MAX_SHARD_BYTES = 500 * 2**20  # datasets' default max_shard_size


def _part_sizes(n: int, num_shards: int) -> list[int]:
    """Rows of each contiguous part, as ``Dataset.shard(num_shards, i, contiguous=True)`` cuts them."""
    div, mod = divmod(n, num_shards)
    return [div + (1 if i < mod else 0) for i in range(num_shards)]


def _fill(
    order: list[int], sizes: list[int], capacities: list[int]
) -> tuple[list[list[tuple[int, int]]], int]:
    """Lay the groups of ``order`` into the parts' remaining ``capacities`` in sequence; returns, per part,
    the ``(group, rows)`` pieces added, and how many groups were split."""
    parts: list[list[tuple[int, int]]] = [[] for _ in capacities]
    caps = list(capacities)
    split = 0
    p = 0
    for g in order:
        left, pieces = sizes[g], 0
        while left:
            while caps[p] == 0:
                p += 1
            take = min(left, caps[p])
            parts[p].append((g, take))
            caps[p] -= take
            left -= take
            pieces += 1
        split += pieces > 1
    return parts, split


def plan_shards(sizes: list[int], num_shards: int) -> tuple[list[list[tuple[int, int]]], int]:
    """Which rows of which groups go to each of ``num_shards`` equal contiguous parts.

    Args:
        sizes: rows of each group (a video), in their order of appearance.
        num_shards: the number of parts (``>= 1``).

    Returns:
        ``(parts, split)``: for each part the ``(group, rows)`` pieces it holds, in order (a group's pieces
        take its rows in order), and how many groups span more than one part.
    """
    capacities = _part_sizes(sum(sizes), num_shards)
    in_order = _fill(list(range(len(sizes))), sizes, capacities)
    # first fit by decreasing size into what is left of each part; the groups that fit nowhere fill the gaps
    caps = list(capacities)
    packed: list[list[tuple[int, int]]] = [[] for _ in caps]
    leftover = []
    for g in sorted(range(len(sizes)), key=lambda g: (-sizes[g], g)):
        p = next((p for p in range(len(caps)) if caps[p] >= sizes[g] > 0), None)
        if p is None:
            leftover.append(g)
            continue
        packed[p].append((g, sizes[g]))
        caps[p] -= sizes[g]
    rest, split = _fill(sorted(leftover), sizes, caps)
    for p, pieces in enumerate(rest):
        packed[p] = sorted(packed[p]) + pieces  # whole groups in order of appearance, then the pieces
    return min(in_order, (packed, split), key=lambda plan: plan[1])


def _video_groups(dataset: Any) -> tuple[np.ndarray, np.ndarray] | None:
    """``(order, offsets)``: row indices grouped by the video of the first top-level MediaRef column (groups
    in order of first appearance, rows of a group by time, stable), ``None`` when there is no such column."""
    column = next(iter(ref_columns(dataset.features)), None)
    if column is None or len(dataset) == 0:
        return None
    refs = dataset.select_columns([column]).with_format("arrow")[:][column]
    uris, pts, valid = ref_arrays(refs)
    if valid is not None:
        uris = pc.if_else(pa.array(valid), uris, pa.scalar(None, pa.string()))
    encoded = pc.dictionary_encode(uris)
    codes = encoded.indices.fill_null(len(encoded.dictionary)).to_numpy(zero_copy_only=False)
    _, first = np.unique(codes, return_index=True)
    rank = np.empty(int(codes.max()) + 1, dtype=np.int64)
    rank[codes[np.sort(first)]] = np.arange(len(first))  # groups numbered by first appearance
    group = rank[codes]
    times = pc.fill_null(pts, 0).to_numpy(zero_copy_only=False) if pts is not None else np.zeros(len(group))
    order = np.lexsort((np.arange(len(group)), times, group))
    offsets = np.concatenate([[0], np.cumsum(np.bincount(group, minlength=len(first)))])
    return order, offsets


def _default_num_shards(dataset: Any) -> int:
    by_size = int(dataset.data.nbytes / _DEFAULT_MAX_SHARD_BYTES) + 1
    return max(by_size, min(DEFAULT_NUM_SHARDS, len(dataset)), 1)


def _plan_split(dataset: Any, num_shards: int | None, group_by_video: bool) -> tuple[Any, int | None]:
    """``dataset`` reordered for ``num_shards`` parts (``None``: the default) and that number."""
    if num_shards is None:
        num_shards = _default_num_shards(dataset)
    groups = _video_groups(dataset) if group_by_video else None
    if groups is None:
        return dataset, num_shards
    order, offsets = groups
    sizes = np.diff(offsets).tolist()
    parts, split = plan_shards(sizes, num_shards)
    taken = offsets[:-1].copy()
    rows = []
    for pieces in parts:
        for g, n in pieces:
            rows.append(order[taken[g] : taken[g] + n])
            taken[g] += n
    indices = np.concatenate(rows) if rows else order
    logger.info(
        "push_to_hub: %d rows of %d videos in %d shards (%d video(s) split between shards)",
        len(indices),
        len(sizes),
        num_shards,
        split,
    )
    if np.array_equal(indices, np.arange(len(indices))):
        return dataset, num_shards
    return dataset.select(indices), num_shards


def shard_for_streaming(dataset: Any, push_kwargs: dict[str, Any]) -> tuple[Any, dict[str, Any]]:
    """Reorder ``dataset`` (a ``Dataset`` or ``DatasetDict``) and set ``num_shards`` in ``push_kwargs`` (the
    keyword arguments for ``datasets``' ``push_to_hub``) so each Parquet shard holds whole videos.

    ``push_kwargs`` may hold ``num_shards`` (an int, or per split a dict) and ``group_by_video`` (default
    ``True``; ``False`` keeps the row order and only sets the shard count). With ``max_shard_size`` given,
    ``datasets`` picks the shard count by size and the rows keep their order.

    Returns:
        ``(dataset, push_kwargs)`` to push.
    """
    kwargs = dict(push_kwargs)
    group_by_video = bool(kwargs.pop("group_by_video", True))
    by_size = kwargs.get("max_shard_size") is not None
    if isinstance(dataset, dict):
        given = kwargs.get("num_shards") or {}
        out, shards = {}, {}
        for name, split in dataset.items():
            out[name], shards[name] = _plan_split(split, given.get(name), group_by_video and not by_size)
        if not by_size:
            kwargs["num_shards"] = shards
        return type(dataset)(out), kwargs
    if by_size:
        return dataset, kwargs
    out, kwargs["num_shards"] = _plan_split(dataset, kwargs.get("num_shards"), group_by_video)
    return out, kwargs
