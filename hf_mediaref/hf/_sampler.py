"""A batch sampler that keeps each DataLoader batch within few videos, shuffling at the block level.

Grouped decoding only pays when a batch shares videos: with random indices every frame costs a seek. Rows are
grouped by video and sorted by timestamp, each video is cut into blocks of consecutive frames, the blocks are
shuffled, and batches are cut from the shuffled sequence, so a batch spans at most
``ceil(batch_size / block_size) + 1`` videos (more only when videos are shorter than a block).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import pyarrow as pa
from datasets import Value

from ..arrow import UriGroups, group_by_uri, ref_arrays
from ._feature import MediaRefFeature

__all__ = ["VideoBlockBatchSampler"]


def _key_column(dataset: Any, column: str | None) -> tuple[pa.Array, pa.Array | None]:
    """The URI (and pts) array of ``column`` as the dataset presents it (after select/shuffle/filter)."""
    features = dataset.features
    if column is None:
        candidates = [name for name, f in features.items() if isinstance(f, MediaRefFeature)]
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


def _blocks(groups: UriGroups, block_size: int) -> tuple[np.ndarray, np.ndarray]:
    """Starts (in ``groups.order``) and lengths of the blocks: ``block_size`` consecutive frames of one video;
    a video's remainder joins its last block, so every block of a video with at least ``block_size`` frames
    has ``block_size`` to ``2 * block_size - 1`` frames."""
    counts = np.diff(groups.offsets)
    blocks_per_video = np.maximum(1, counts // block_size)
    video_of_block = np.repeat(np.arange(len(groups)), blocks_per_video)
    first_block = np.cumsum(blocks_per_video) - blocks_per_video
    k = np.arange(len(video_of_block)) - first_block[video_of_block]
    starts = groups.offsets[video_of_block] + k * block_size
    last = k == blocks_per_video[video_of_block] - 1
    ends = np.where(last, groups.offsets[video_of_block + 1], starts + block_size)
    return starts, ends - starts


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
        drop_last: drop the last, incomplete batch.

    Raises:
        ValueError: ``batch_size`` or ``block_size`` below 1, or no single MediaRef column to default to.
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
    ):
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        block_size = batch_size if block_size is None else block_size
        if block_size < 1:
            raise ValueError(f"block_size must be >= 1, got {block_size}")
        self.batch_size, self.block_size = batch_size, block_size
        self.shuffle, self.seed, self.drop_last = shuffle, seed, drop_last
        self.epoch = 0
        uris, pts = _key_column(dataset, column)
        groups = group_by_uri(uris, pts)
        self._order = groups.order  # rows video by video, by time; null refs are never sampled
        self._block_starts, self._block_lengths = _blocks(groups, block_size)
        self.num_videos = len(groups)

    def set_epoch(self, epoch: int) -> None:
        """Reshuffle for ``epoch`` (call it at the start of each epoch, like ``DistributedSampler``)."""
        self.epoch = epoch

    def _ordered_rows(self) -> np.ndarray:
        if not self.shuffle:
            return self._order
        perm = np.random.default_rng(self.seed + self.epoch).permutation(len(self._block_starts))
        lengths, starts = self._block_lengths[perm], self._block_starts[perm]
        out_starts = np.cumsum(lengths) - lengths
        index = np.arange(int(lengths.sum())) - np.repeat(out_starts, lengths) + np.repeat(starts, lengths)
        return self._order[index]

    def __iter__(self) -> Iterator[list[int]]:
        rows = self._ordered_rows()
        stop = len(rows) - len(rows) % self.batch_size if self.drop_last else len(rows)
        for start in range(0, stop, self.batch_size):
            yield rows[start : start + self.batch_size].tolist()

    def __len__(self) -> int:
        n = len(self._order)
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)
