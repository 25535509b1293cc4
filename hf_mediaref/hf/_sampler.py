"""A batch sampler that keeps each DataLoader batch within few videos, shuffling at the block level.

Grouped decoding only pays when a batch shares videos: with random indices every frame costs a seek. Rows are
grouped by video and sorted by timestamp, each video is cut into blocks of consecutive frames, the blocks are
shuffled, and batches are cut from the shuffled sequence, so a batch spans at most
``ceil(batch_size / block_size) + 1`` videos (more only when videos are shorter than a block).

With several ranks (``world_size > 1``, DDP), each epoch lays the videos out in a shuffled order, cuts
that sequence into ``world_size`` contiguous equal parts (so at most ``world_size - 1`` videos are split
between two ranks and every other video is decoded by one rank only), then shuffles blocks within each part;
parts are padded with their own rows (as ``DistributedSampler`` pads) so every rank yields the same number
of batches.

With ``num_workers`` (the DataLoader's), the same batches are dealt so that a run of batches that continue
one another (a block longer than a batch: the next batch starts with the row after the last row of the
previous one, in the same video) goes to one worker: the DataLoader hands batch ``i`` to worker
``i % num_workers``, so consecutive batches of a block would otherwise land on different workers, and each
would decode the block's keyframe stretch from its keyframe again. In one worker, the next batch decodes on
from where the last one stopped. Runs go to the worker with the fewest batches so far; batches are
interleaved round-robin in that order.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from typing import Any

import numpy as np
import pyarrow as pa
from datasets import Value

from .._torch_job import distributed_rank
from ..arrow import group_by_uri, ref_arrays, video_blocks
from ._ahead import DecodeAhead, EpochPlan, hinted
from ._feature import MediaRefFeature, ref_columns

__all__ = ["VideoBlockBatchSampler"]


def _key_column(dataset: Any, column: str | None) -> tuple[pa.Array, pa.Array | None]:
    """The URI (and pts) array of ``column`` as the dataset presents it (after select/shuffle/filter)."""
    features = dataset.features
    if column is None:
        candidates = ref_columns(features)
        if len(candidates) != 1:
            raise ValueError(f"pass column=...: found {len(candidates)} MediaRef columns {candidates}")
        column = candidates[0]
    if column not in features:
        raise KeyError(f"column {column!r} is not in the dataset (columns: {list(features)})")
    feature = features[column]
    table = dataset.select_columns([column]).with_format("arrow")[:]
    if isinstance(feature, MediaRefFeature):
        uri, pts, _ = ref_arrays(table[column])
        return uri, pts
    if isinstance(feature, Value) and feature.dtype in ("string", "large_string"):
        return table[column].combine_chunks(), None
    raise TypeError(f"column {column!r} must be a MediaRef or string column, got {feature}")


def _gather(starts: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """The positions ``starts[0]:starts[0]+lengths[0]``, then the next run, ... in one array."""
    out_starts = np.cumsum(lengths) - lengths
    return np.arange(int(lengths.sum())) - np.repeat(out_starts, lengths) + np.repeat(starts, lengths)


class VideoBlockBatchSampler:
    """Yields lists of dataset indices for ``DataLoader(ds, batch_sampler=...)``.

    Args:
        dataset: a ``datasets.Dataset`` (indices refer to it as it is, after any select/shuffle).
        batch_size: rows per batch.
        column: the MediaRef column (or a string column naming the video) to group by; default: the only
            MediaRef column.
        block_size: consecutive frames of one video kept together (default ``batch_size``).
        shuffle: shuffle blocks (and so batches) every epoch; without it rows come video by video in
            time order.
        seed: base seed; the epoch (see :meth:`set_epoch`) is added to it.
        drop_last: drop the last, incomplete batch (with several ranks: every rank yields only full
            batches, the same number, and no row is repeated).
        rank: this process's rank (default: ``torch.distributed.get_rank()`` when torch.distributed is
            initialized, else the ``RANK`` environment variable, else 0 in a single process).
        world_size: the number of ranks (default: ``torch.distributed.get_world_size()`` when initialized,
            else ``WORLD_SIZE``, else 1). Each rank gets a disjoint part of the rows (plus repeats of its own
            rows to even out counts unless ``drop_last``) and the same number of batches; use the same
            ``seed`` on every rank.
        num_workers: the DataLoader's ``num_workers``: batches that continue one another (blocks longer than a
            batch) are dealt to the same worker, so it decodes on instead of seeking again (0 or 1: the
            batches in order). The batches are the same, in another order.

    Raises:
        ValueError: ``batch_size`` or ``block_size`` below 1, ``num_workers`` below 0, ``rank`` outside
            ``[0, world_size)``, a world of several ranks whose rank is known from nowhere (``world_size``
            given, no process group, no ``RANK``), or no single MediaRef column to default to.
        KeyError: ``column`` is not in the dataset.
        TypeError: ``column`` is neither a MediaRef nor a string column.

    Example:
        ```python
        >>> from torch.utils.data import DataLoader
        >>> from hf_mediaref.hf import VideoBlockBatchSampler
        >>> sampler = VideoBlockBatchSampler(ds, batch_size=32, block_size=16, seed=0)
        >>> frames = ds.with_format("mediaref", output="torch")
        >>> loader = DataLoader(frames, batch_sampler=sampler, num_workers=4)
        >>> for epoch in range(10):
        ...     sampler.set_epoch(epoch)
        ...     for batch in loader:
        ...         ...
        >>> # DDP: each rank reads its own videos, every rank the same number of batches
        >>> sampler = VideoBlockBatchSampler(ds, 32, rank=dist.get_rank(), world_size=dist.get_world_size())
        >>> # blocks of 4 batches, each block's batches decoded by one of the 4 workers
        >>> sampler = VideoBlockBatchSampler(ds, 32, block_size=128, num_workers=4)
        >>> loader = DataLoader(frames, batch_sampler=sampler, num_workers=4)
        ```
    """

    def __init__(
        self,
        dataset: Any,
        batch_size: int,
        *,
        column: str | None = None,
        block_size: int | None = None,
        shuffle: bool = True,
        seed: int = 0,
        drop_last: bool = False,
        rank: int | None = None,
        world_size: int | None = None,
        num_workers: int = 0,
    ):
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        if num_workers < 0:
            raise ValueError(f"num_workers must be >= 0, got {num_workers}")
        self.num_workers = num_workers
        block_size = batch_size if block_size is None else block_size
        if block_size < 1:
            raise ValueError(f"block_size must be >= 1, got {block_size}")
        self.batch_size, self.block_size = batch_size, block_size
        self.shuffle, self.seed, self.drop_last = shuffle, seed, drop_last
        self.epoch = 0
        self.rank, self.world_size = distributed_rank(rank, world_size)
        uris, pts = _key_column(dataset, column)
        groups = group_by_uri(uris, pts)
        self._order = groups.order  # rows video by video, by time; null refs are never sampled
        self._offsets = np.asarray(groups.offsets)
        self._block_starts, self._block_lengths = video_blocks(self._offsets, block_size)
        self.num_videos = len(groups)

    def __repr__(self) -> str:
        rows = len(self._order)
        return (
            f"VideoBlockBatchSampler(batch_size={self.batch_size}, block_size={self.block_size}, "
            f"rows={rows}, videos={self.num_videos}, batches={len(self)}, shuffle={self.shuffle}, "
            f"seed={self.seed}, drop_last={self.drop_last}, rank={self.rank}, world_size={self.world_size}, "
            f"num_workers={self.num_workers}, epoch={self.epoch})"
        )

    def set_epoch(self, epoch: int) -> None:
        """Reshuffle for ``epoch`` (call it at the start of each epoch, like ``DistributedSampler``)."""
        self.epoch = epoch

    def _ordered_rows(self) -> np.ndarray:
        if self.world_size > 1:
            return self._rank_rows()
        if not self.shuffle:
            return self._order
        perm = np.random.default_rng(self.seed + self.epoch).permutation(len(self._block_starts))
        return self._order[_gather(self._block_starts[perm], self._block_lengths[perm])]

    def _rank_rows(self) -> np.ndarray:
        """This rank's rows for the epoch: its contiguous part of the videos (in a per-epoch order), blocks
        shuffled within the part, padded with its own rows to the common length."""
        counts = np.diff(self._offsets)
        videos = np.arange(len(counts))
        if self.shuffle:
            videos = np.random.default_rng(self.seed + self.epoch).permutation(len(counts))
        laid_out = _gather(self._offsets[videos], counts[videos])  # positions in self._order
        n, ws = len(laid_out), self.world_size
        start = self.rank * (n // ws) + min(self.rank, n % ws)
        stop = start + n // ws + (self.rank < n % ws)
        # the part's videos: where the laid-out sequence changes video, clipped to [start, stop)
        bounds = np.concatenate([[0], np.cumsum(counts[videos])])
        inner = bounds[(bounds > start) & (bounds < stop)]
        offsets = np.concatenate([[start], inner, [stop]]) - start
        starts, lengths = video_blocks(offsets, self.block_size)
        if self.shuffle:
            rng = np.random.default_rng([self.seed + self.epoch, self.rank])
            perm = rng.permutation(len(starts))
            starts, lengths = starts[perm], lengths[perm]
        rows = self._order[laid_out[start:stop][_gather(starts, lengths)]]
        size = self._rows_per_rank()
        if len(rows) >= size:
            return rows[:size]
        pad = rows if len(rows) else self._order[laid_out]
        return np.concatenate([rows, np.resize(pad, size - len(rows))])

    def _rows_per_rank(self) -> int:
        n = len(self._order)
        if self.drop_last:
            per = n // self.world_size
            return per - per % self.batch_size
        return -(-n // self.world_size)

    def __iter__(self) -> Iterator[list[int]]:
        rows = self._ordered_rows()
        stop = len(rows) - len(rows) % self.batch_size if self.drop_last else len(rows)
        starts = list(range(0, stop, self.batch_size))
        if self.num_workers > 1:
            starts = self._dealt(rows, starts)
        batches = [rows[start : start + self.batch_size].tolist() for start in starts]
        self.plan = EpochPlan(batches, self._continuing(rows, starts))
        yield from hinted(batches)

    def decode_ahead(
        self, dataset: Any, *, lanes: int | None = None, depth: int | None = None, group: int = 1
    ) -> DecodeAhead:
        """``dataset`` wrapped for a DataLoader that runs in this process (``num_workers=0``): the batches
        this sampler yields next are decoded ahead on ``lanes`` threads, batches that continue one another on
        one lane (so they decode on), while the current one is used.

        Args:
            dataset: the dataset the DataLoader reads (``ds.with_format("mediaref", ...)``).
            lanes, depth, group: see :class:`~hf_mediaref.hf.DecodeAhead`.

        Returns:
            A :class:`~hf_mediaref.hf.DecodeAhead` to give the DataLoader with ``batch_sampler=self``.

        Example:
            ```python
            >>> sampler = VideoBlockBatchSampler(ds, 32, seed=0)
            >>> loader = DataLoader(sampler.decode_ahead(ds.with_format("mediaref")), batch_sampler=sampler)
            ```
        """
        return DecodeAhead(dataset, self, lanes=lanes, depth=depth, group=group)

    @functools.cached_property
    def _ranks(self) -> tuple[np.ndarray, np.ndarray]:
        """``(place, video)``: a row's rank (video by video, by time) by row index, and the video of each
        rank; the same every epoch."""
        place = np.empty(int(self._order.max()) + 1, dtype=np.int64)
        place[self._order] = np.arange(len(self._order))
        video = np.searchsorted(self._offsets, np.arange(len(self._order)), side="right") - 1
        return place, video

    def _continuing(self, rows: np.ndarray, starts: list[int]) -> list[int]:
        """For each batch (at ``starts`` of ``rows``, in that order): the position in ``starts`` of the batch
        it continues (it starts with the row after that batch's last row, in the same video: a block longer
        than a batch), or -1."""
        if not starts:
            return []
        place, video = self._ranks
        ending: dict[int, int] = {}  # rank of a batch's last row -> that batch's position
        out = []
        for position, start in enumerate(starts):
            first = int(place[rows[start]])
            before = ending.get(first - 1, -1)
            out.append(before if before >= 0 and video[first] == video[first - 1] else -1)
            ending[int(place[rows[min(start + self.batch_size, len(rows)) - 1]])] = position
        return out

    def _dealt(self, rows: np.ndarray, starts: list[int]) -> list[int]:
        """``starts`` (of batches of ``rows``) reordered so that runs of batches continuing one another go
        to one DataLoader worker (batch ``i`` goes to worker ``i % num_workers``)."""
        if len(starts) < 2:
            return starts
        runs: list[list[int]] = []
        for position, (start, before) in enumerate(zip(starts, self._continuing(rows, starts))):
            if before == position - 1 and runs:
                runs[-1].append(start)  # starts with the row after the previous batch's last one
            else:
                runs.append([start])
        queues: list[list[int]] = [[] for _ in range(self.num_workers)]
        for run in runs:
            min(queues, key=len).extend(run)  # the first of the least loaded workers
        longest = max(len(q) for q in queues)
        return [q[j] for j in range(longest) for q in queues if j < len(q)]

    def __len__(self) -> int:
        n = len(self._order) if self.world_size == 1 else self._rows_per_rank()
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)
