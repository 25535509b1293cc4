"""Streaming roads: batched decoding of an ``IterableDataset`` and a video-keeping split across ranks.

``datasets`` formats a streaming dataset row by row when a torch DataLoader iterates it (``format_row`` on
1-row tables), and ``IterableDataset.with_format`` takes no formatter options, so ``with_format("mediaref")``
cannot batch there. :func:`decode_stream` puts the decode into a batched ``map`` instead: each DataLoader
worker reads whole shards, cuts them into batches of ``batch_size`` rows, and hands each batch to the engine
in one call (rows of one video stay together when the shards are sorted by video, as
:func:`hf_mediaref.push_to_hub` writes them). :func:`split_by_node` gives each rank whole shards, so a video
is decoded by one rank only.
"""

from __future__ import annotations

import logging
import os
import warnings
from collections.abc import Sequence
from typing import Any

from datasets import IterableDataset

from .._torch_job import dataloader_worker_info, distributed_rank
from ..decode import DecodeOptions
from ..io import MediaAccess
from ._ahead import stream_decode_ahead
from ._compat import shard_iterable
from ._roots import get_media_access
from ._transform import MediaDecodeTransform

__all__ = ["StreamDecodeTransform", "decode_stream", "split_by_node"]

logger = logging.getLogger(__name__)


class StreamDecodeTransform(MediaDecodeTransform):
    """The batched ``map`` function of :func:`decode_stream`: a :class:`MediaDecodeTransform` that also warns,
    once per DataLoader worker process, when the dataset has fewer shards than the DataLoader has workers
    (``datasets`` gives each worker whole shards, so the extra workers sit idle).

    Args:
        *args, **kwargs: as for :class:`MediaDecodeTransform` (columns, root, options, ...).
        num_shards: the shards of the dataset being decoded.

    Example:
        ```python
        >>> from hf_mediaref.hf import StreamDecodeTransform
        >>> ids = ids.map(StreamDecodeTransform(num_shards=ids.num_shards), batched=True, batch_size=32)
        ```
    """

    def __init__(self, *args: Any, num_shards: int | None = None, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.num_shards = num_shards
        self._checked_pid: int | None = None

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_checked_pid": None}

    def _check_workers(self) -> None:
        self._checked_pid = os.getpid()
        info = dataloader_worker_info()
        if info is None or self.num_shards is None or info.num_workers <= self.num_shards:
            return
        warnings.warn(
            f"the streaming dataset has {self.num_shards} shard(s) but the DataLoader has {info.num_workers} "
            f"workers: datasets gives each worker whole shards, so {info.num_workers - self.num_shards} "
            "worker(s) get no data. Push with more shards (hf_mediaref.push_to_hub(..., num_shards=N)), "
            "use ids.reshard() where the file format allows, or use fewer workers.",
            UserWarning,
            stacklevel=2,
        )

    def __repr__(self) -> str:
        windows = f", windows={self.windows}" if self.windows is not None else ""
        return (
            f"StreamDecodeTransform(columns={self.columns!r}, access={self.access!r}, {self.options}, "
            f"num_shards={self.num_shards}{windows})"
        )

    def __call__(self, batch: dict) -> dict:
        if self._checked_pid != os.getpid():
            self._check_workers()
        return super().__call__(batch)


def decode_stream(
    dataset: Any,
    batch_size: int = 32,
    *,
    columns: Sequence[str] | None = None,
    root: str | os.PathLike[str] | None = None,
    options: DecodeOptions | None = None,
    ahead: bool = False,
    access: MediaAccess | None = None,
    **decode_options: Any,
) -> Any:
    """Decode the media columns of a streaming dataset ``batch_size`` rows (one engine call) at a time.

    The streaming counterpart of ``ds.with_format("mediaref", **decode_options)``: give the result to a torch
    ``DataLoader`` with the same ``batch_size`` and each DataLoader batch is one engine call, in the main
    process and in every worker (fork, spawn, forkserver). Rows keep their order; other columns pass through.
    Inside a DataLoader worker the decoder uses one thread unless ``max_workers`` says otherwise (the workers
    are the parallelism). Shuffle shards, not rows (``ids.shuffle(seed=..., buffer_size=1)`` keeps rows in
    order): a row-level shuffle buffer spreads a batch over many videos.

    Args:
        dataset: a ``datasets.IterableDataset`` (``load_dataset(..., streaming=True)``,
            ``Dataset.to_iterable_dataset(num_shards=...)``), with MediaRef columns or ref dicts.
        batch_size: rows per engine call; use the DataLoader's ``batch_size``.
        columns: the columns to decode (default: every column holding refs).
        root: the media root for relative refs the dataset does not resolve itself.
        access: the :class:`~hf_mediaref.MediaAccess` to resolve and check refs with and whose public-address
            rule their reads follow; default: the dataset's own (:func:`~hf_mediaref.hf.get_media_access`).
        options: a :class:`hf_mediaref.DecodeOptions`.
        ahead: for a DataLoader without workers (CUDA decoding, one process per GPU): decode the next batches
            on lanes of threads while the current one is used (up to 4 lanes, each with its share of the
            cores; ``2 * lanes`` batches ahead, held in memory). The result is then a torch
            ``IterableDataset`` of the same rows in the same order, one engine call per batch; inside a
            DataLoader worker it decodes one batch at a time. Use it as the last step (it has no ``map``).
        **decode_options: fields of :class:`hf_mediaref.DecodeOptions` by name (``size``, ``output``,
            ``decoder``, ``strategy``, ``device``, ``max_workers``, ...); given ones override ``options``.

    Returns:
        An ``IterableDataset`` of rows whose media columns hold frames (its format is reset: the frames are
        already decoded); with ``ahead=True`` a torch ``IterableDataset`` of those rows.

    Raises:
        TypeError: ``dataset`` is not an ``IterableDataset`` (a map-style ``Dataset`` batches through
            ``with_format("mediaref")``), or a name that is not a decode option.
        ValueError: ``batch_size`` below 1, or invalid decode options.

    Example:
        ```python
        >>> from torch.utils.data import DataLoader
        >>> import hf_mediaref
        >>> ids = hf_mediaref.load_dataset("me/robot-frames", split="train", streaming=True)
        >>> frames = hf_mediaref.hf.decode_stream(ids, batch_size=32, output="torch", size=(224, 224))
        >>> loader = DataLoader(frames, batch_size=32, num_workers=4)
        >>> ahead = hf_mediaref.hf.decode_stream(ids, batch_size=32, output="torch", ahead=True)
        >>> loader = DataLoader(ahead, batch_size=32)  # no workers: the next batches decode on lanes
        ```
    """
    if not isinstance(dataset, IterableDataset):
        raise TypeError(
            f"decode_stream takes a datasets.IterableDataset, got {type(dataset).__name__}; a map-style "
            "Dataset decodes in batches with ds.with_format('mediaref', ...) and VideoBlockBatchSampler"
        )
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    opts = DecodeOptions.resolve(options, **decode_options)
    if access is None and root is None:
        access = get_media_access(dataset)  # its reads follow the rule of the access its refs were checked by
    transform = StreamDecodeTransform(
        columns, root=root, options=opts, num_shards=dataset.num_shards, access=access
    )
    if ahead:
        return stream_decode_ahead(dataset.with_format(None), transform, batch_size)
    return dataset.with_format(None).map(transform, batched=True, batch_size=batch_size)


def split_by_node(dataset: Any, rank: int | None = None, world_size: int | None = None) -> Any:
    """The part of a streaming dataset that rank ``rank`` of ``world_size`` reads: whole shards, so a video
    (kept inside one shard by :func:`hf_mediaref.push_to_hub`) is decoded by one rank only.

    ``datasets.distributed.split_dataset_by_node`` assigns whole shards only when the shard count is a
    multiple of ``world_size`` and otherwise keeps every ``world_size``-th row, which spreads every video over
    every rank; this function assigns contiguous runs of shards whenever there are at least ``world_size``
    shards (ranks then differ by at most one shard; stop every rank after the same number of steps, or use
    ``torch.distributed.algorithms.Join``). With fewer shards than ranks it warns and falls back to
    ``split_dataset_by_node``.

    Args:
        dataset: a ``datasets.IterableDataset``.
        rank: this process's rank (default: ``torch.distributed.get_rank()`` when torch.distributed is
            initialized, else the ``RANK`` environment variable, else 0 in a single process).
        world_size: the number of ranks (default: ``torch.distributed.get_world_size()`` when initialized,
            else ``WORLD_SIZE``, else 1: the whole dataset).

    Returns:
        The ``IterableDataset`` for this rank.

    Raises:
        TypeError: ``dataset`` is not an ``IterableDataset``.
        ValueError: ``rank`` outside ``[0, world_size)``, or a world of several ranks whose rank is known
            from nowhere (``world_size`` given, no process group, no ``RANK``).

    Example:
        ```python
        >>> import torch.distributed as dist
        >>> from hf_mediaref.hf import decode_stream, split_by_node
        >>> ids = hf_mediaref.load_dataset("me/robot-frames", split="train", streaming=True)
        >>> mine = decode_stream(split_by_node(ids, dist.get_rank(), dist.get_world_size()), batch_size=32)
        ```
    """
    if not isinstance(dataset, IterableDataset):
        raise TypeError(
            f"split_by_node takes a datasets.IterableDataset, got {type(dataset).__name__}; for a map-style "
            "Dataset use VideoBlockBatchSampler(ds, batch_size, rank=..., world_size=...)"
        )
    rank, world_size = distributed_rank(rank, world_size)
    shards = dataset.num_shards
    if shards % world_size == 0:
        from datasets.distributed import split_dataset_by_node

        return split_dataset_by_node(dataset, rank=rank, world_size=world_size)  # whole shards
    if shards < world_size:
        warnings.warn(
            f"the streaming dataset has {shards} shard(s) for {world_size} ranks: falling back to "
            "datasets.distributed.split_dataset_by_node, which keeps every world_size-th row, so every rank "
            "decodes every video. Push with at least as many shards as ranks "
            "(hf_mediaref.push_to_hub(..., num_shards=N)).",
            UserWarning,
            stacklevel=2,
        )
        from datasets.distributed import split_dataset_by_node

        return split_dataset_by_node(dataset, rank=rank, world_size=world_size)
    logger.info(
        "rank %d of %d: contiguous shards of %d (ranks differ by at most one shard)", rank, world_size, shards
    )
    return shard_iterable(dataset, world_size, rank)
