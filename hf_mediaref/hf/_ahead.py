"""Decode-ahead for a DataLoader that runs in the training process (``num_workers=0``), and reads ahead for
its workers.

With workers, a DataLoader decodes several batches at once, one per worker process. Without them (CUDA
decoding, debugging, small jobs) each batch is decoded when it is asked for, and a batch of a few keyframe
blocks cannot keep every core busy to its end. :class:`DecodeAhead` wraps the dataset: when the DataLoader
asks for a batch of :class:`~hf_mediaref.hf.VideoBlockBatchSampler`'s epoch, the next ``depth`` batches of
that epoch are submitted to ``lanes`` threads, each decoding with its share of the cores. A batch that
continues another (the next rows of the same keyframe block) goes to that batch's lane, after it, so it
decodes on from where the other stopped. Each batch is still one engine call of its own rows; what the
DataLoader gets is what ``dataset.__getitems__`` returns for those indices, computed a little earlier. A
continuing batch goes to another lane when its predecessor's lane has more batches waiting than another lane
(a sampler whose blocks do not align with batches chains every batch to the one before): an idle core costs
more than a seek.

Shared blocks (``group``): rows of random batches over many videos rarely share a keyframe block within one
batch, but often with the next batches the sampler already chose. With ``group=g``, every ``g`` consecutive
batches of the epoch are decoded in one engine call (each block once for all of them) and split back into
batches: the DataLoader still gets exactly the batches it asked for, each what ``dataset.__getitems__``
returns for its indices. Memory: up to ``depth + g`` batches of frames are held. Any batch sampler works: one
without an epoch plan of its own is wrapped (:attr:`DecodeAhead.sampler`, listing each epoch's batches when
it starts), and the DataLoader must then be given ``batch_sampler=ahead.sampler``.

Workers (``num_workers > 0``) decode their batches side by side already; what they cannot do alone is see
their next batch, so its remote reads would start only when its decode does, and a block shared with it is
decoded twice. The planned samplers' batches carry the batches after them (:func:`hinted`, a ``list`` to
everyone else), and :class:`DecodeAhead` in a worker starts the reads of the ones that worker is handed next
(:func:`next_in_worker`). With ``group=g`` it also decodes the batch it is asked for together with that
worker's next ``g - 1`` batches, in one engine call, and keeps those until it is asked for them (a worker
whose next batch turns out to be another than foretold drops them; after :data:`_WRONG_GUESSES` such groups
in a row it stops grouping).
"""

from __future__ import annotations

import collections
import contextvars
import dataclasses
import functools
import logging
import os
import weakref
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from .._executor import core_budget, lane
from .._torch_job import dataloader_worker_info

__all__ = ["DecodeAhead", "EpochPlan", "PlannedBatches"]

logger = logging.getLogger(__name__)


#: Batches in a row whose rows read nothing remote after which :class:`DecodeAhead` stops looking for remote
#: reads to start early (reading a waiting batch's refs costs about a millisecond).
_LOCAL_BATCHES = 4

#: Lanes by default, at most: on many cores each lane decodes its batch on several threads, and every batch
#: ahead is held in memory.
_DEFAULT_MAX_LANES = 4


class PlannedBatches:
    """Any batch sampler, with the batches of its current epoch listed when the epoch starts (:attr:`plan`),
    so that :class:`DecodeAhead` can decode ahead through them (it wraps a sampler without a plan by itself).

    Args:
        batch_sampler: what a DataLoader takes as ``batch_sampler``: ``BatchSampler(RandomSampler(ds), 32,
            drop_last=False)``, a list of index lists...

    Example:
        ```python
        >>> planned = PlannedBatches(BatchSampler(RandomSampler(ds), 32, drop_last=False))
        >>> loader = DataLoader(DecodeAhead(frames, planned, group=4), batch_sampler=planned)
        ```
    """

    def __init__(self, batch_sampler: Any):
        self.batch_sampler = batch_sampler
        self.plan: EpochPlan | None = None

    def __repr__(self) -> str:
        return f"PlannedBatches({self.batch_sampler!r})"

    def __iter__(self) -> Iterator[list[int]]:
        # a generator: the epoch is drawn from the wrapped sampler when its first batch is asked for, not when
        # iter() is called (a DataLoader with workers calls it twice per epoch, and a random sampler drawn
        # twice would give other epochs than the same sampler without this wrapper)
        batches = [[int(i) for i in batch] for batch in self.batch_sampler]
        self.plan = EpochPlan(batches, [-1] * len(batches))
        yield from hinted(batches)

    def __len__(self) -> int:
        return len(self.batch_sampler)

    def set_epoch(self, epoch: int) -> None:
        """Passed on to the wrapped sampler, when it has ``set_epoch``."""
        set_epoch = getattr(self.batch_sampler, "set_epoch", None)
        if set_epoch is not None:
            set_epoch(epoch)


def _lanes_and_depth(lanes: int | None, depth: int | None) -> tuple[int, int]:
    """``(lanes, depth)`` with their defaults (the cores a decode may use here, at most
    :data:`_DEFAULT_MAX_LANES`; twice the lanes); ValueError below 1."""
    lanes = min(core_budget(), _DEFAULT_MAX_LANES) if lanes is None else int(lanes)
    if lanes < 1:
        raise ValueError(f"lanes must be >= 1, got {lanes}")
    depth = 2 * lanes if depth is None else int(depth)
    if depth < 1:
        raise ValueError(f"depth must be >= 1, got {depth}")
    return lanes, depth


@dataclasses.dataclass(frozen=True)
class EpochPlan:
    """The batches of one epoch of a sampler, in the order it yields them; ``continues[i]``: the position of
    the batch that batch ``i`` continues (its first row follows that batch's last, in the same video), or
    -1."""

    batches: list[list[int]]
    continues: list[int]


#: Batches a DataLoader worker (or a stream in one) has the remote reads of started ahead of the one it
#: decodes: two keep a batch's reads a round trip or more ahead of its decode where one batch decodes in
#: less than a round trip (small frames; measured on the remote guide's page).
AHEAD_IN_WORKER = 2
#: Batches after each one that a planned sampler's batch carries (:func:`hinted`): enough for
#: :data:`AHEAD_IN_WORKER` batches of each of 8 workers, or a group of 4 and its reads ahead in each of 4.
_HINTS = 32
#: Groups in a row that a DataLoader worker decoded ahead and then dropped unused (its next batch was another
#: than the sampler's order foretold: ``in_order=False``, a loop broken early) after which it stops grouping.
_WRONG_GUESSES = 3


class _HintedBatch(list):
    """A batch of indices (a plain ``list`` to the DataLoader and the dataset) that also carries the batches
    the sampler yields after it in its epoch (``upcoming``). The DataLoader sends a batch to a worker as the
    sampler yielded it, so a worker, which sees only its own batches, learns which one it gets next:
    batch ``i + num_workers``, since the DataLoader hands batch ``i`` of an epoch to worker
    ``i % num_workers``."""

    def __init__(self, batch: list[int], upcoming: list[list[int]]):
        super().__init__(batch)
        self.upcoming = upcoming


def hinted(batches: list[list[int]]) -> Iterator[list[int]]:
    """``batches`` in order, each carrying the :data:`_HINTS` batches after it (see :class:`_HintedBatch`)."""
    for p, batch in enumerate(batches):
        yield _HintedBatch(batch, batches[p + 1 : p + 1 + _HINTS])


def next_in_worker(indices: Any, num_workers: int, count: int = AHEAD_IN_WORKER) -> list[list[int]] | None:
    """The batches a DataLoader worker among ``num_workers`` is handed after ``indices`` (one it was handed),
    up to ``count``, when the sampler said (:func:`hinted`); else None."""
    upcoming = getattr(indices, "upcoming", None)
    if upcoming is None:
        return None
    return [list(batch) for batch in upcoming[num_workers - 1 :: num_workers][:count]]


@dataclasses.dataclass(frozen=True)
class _Failed:
    """A batch of a group whose own fetch raised ``error``: raised when that batch is asked for."""

    error: Exception


def _fetch_together(fetch: Any, batches: list[list[int]], join: bool = True) -> tuple[list[Any], bool]:
    """What ``fetch`` returns for each of ``batches``: from one fetch of all their indices (``join``) when it
    returns one row per index (each keyframe block decoded once for all of them), else batch by batch; and
    whether such a result may be split (False: it was not one row per index, so fetching together is wasted).
    Where the fetch of them all raises, each batch is fetched on its own, so that an error is raised at its
    own batch (as :class:`_Failed`, see :func:`_unwrap`) and the other batches still come."""
    splits = True
    if join and len(batches) > 1:
        try:
            rows = fetch([i for batch in batches for i in batch])
        except Exception as exc:  # whose? each batch's own fetch says
            logger.debug(
                "fetching %d batches together failed (%s); fetching them one by one", len(batches), exc
            )
        else:
            if isinstance(rows, list) and len(rows) == sum(len(b) for b in batches):
                out, start = [], 0
                for batch in batches:
                    out.append(rows[start : start + len(batch)])
                    start += len(batch)
                return out, True
            splits = False
    each: list[Any] = []
    for batch in batches:
        try:
            each.append(fetch(batch))
        except Exception as exc:
            each.append(_Failed(exc))
    return each, splits


def _unwrap(fetched: Any) -> Any:
    """A batch :func:`_fetch_together` fetched, or the error its own fetch raised, raised."""
    if isinstance(fetched, _Failed):
        raise fetched.error
    return fetched


class _LanePool:
    """``lanes`` single-thread executors, each running its jobs as one :func:`~hf_mediaref._executor.lane`
    with its share of the cores, in a copy of the submitter's context (its stats, deadlines and settings).
    Stopped before a fork (:func:`_stop_before_fork`); :meth:`reopen` starts new threads."""

    def __init__(self, lanes: int):
        self.size, self.cores = lanes, max(1, core_budget() // lanes)
        self.reopen()

    def reopen(self) -> None:
        self.pools = [
            ThreadPoolExecutor(1, thread_name_prefix=f"hf_mediaref-ahead{i}") for i in range(self.size)
        ]
        self.closed = False
        _live.add(self)

    def submit(self, number: int, fn: Any, *args: Any, cores: int | None = None) -> Future:
        """Run ``fn(*args)`` on lane ``number``, with ``cores`` (default: the lane's share)."""
        run = functools.partial(self._run, number, cores or self.cores, fn)
        return self.pools[number].submit(contextvars.copy_context().run, run, *args)

    def _run(self, number: int, cores: int, fn: Any, *args: Any) -> Any:
        with lane(("decode-ahead", id(self), number), cores):
            return fn(*args)

    def close(self) -> None:
        """Drop the jobs not started; wait for the running ones (each bounded like any decode)."""
        self.closed = True
        for pool in self.pools:
            pool.shutdown(wait=True, cancel_futures=True)


class _Lanes:
    """The lanes decoding ahead through one epoch plan."""

    def __init__(
        self,
        plan: EpochPlan,
        fetch: Any,
        fetch_group: Any,
        lanes: int,
        depth: int,
        start: int = 0,
        group: int = 1,
        reads_ahead: Any = None,
    ):
        self.plan, self.fetch, self.depth, self.group = plan, fetch, depth, group
        self.fetch_group = fetch_group  # batches -> what fetch returns for each (see _fetch_together)
        self.reads_ahead = reads_ahead  # indices -> None: a waiting batch's remote reads start early
        self.pool = _LanePool(lanes)
        self.lane_of: list[int] = [-1] * start  # the lane of each batch submitted (-1: before the start)
        self.futures: dict[int, tuple[Future, int]] = {}  # batch -> (its group's job, its place in the group)
        self.cursor = start  # the position the DataLoader is expected to ask for next

    @property
    def closed(self) -> bool:
        return self.pool.closed

    def position(self, indices: list[int]) -> int | None:
        batches = self.plan.batches
        if self.cursor < len(batches) and batches[self.cursor] == indices:
            return self.cursor
        for p in range(len(batches)):  # asked out of order (another consumer of the sampler)
            if batches[p] == indices:
                return p
        return None

    def _submit_through(self, last: int) -> None:
        n = len(self.plan.batches)
        while len(self.lane_of) <= min(last, n - 1):
            p = len(self.lane_of)
            pending = [0] * self.pool.size
            for running, member in {id(f): (f, q) for q, (f, _) in self.futures.items()}.values():
                if not running.done():  # a group's job counts once, on its lane
                    pending[self.lane_of[member]] += 1
            chosen = pending.index(min(pending))
            before = self.plan.continues[p]
            if (
                0 <= before < p
                and self.lane_of[before] >= 0
                and pending[self.lane_of[before]] <= min(pending)
            ):
                chosen = self.lane_of[before]  # after the batch it continues, so it decodes on
            members = list(range(p, min(p + self.group, n)))
            if pending[chosen] and self.reads_ahead is not None:  # it waits for its lane: its reads start now
                self.reads_ahead([i for q in members for i in self.plan.batches[q]])
            job = self.pool.submit(
                chosen,
                self.fetch_group,
                [self.plan.batches[q] for q in members],
                cores=self._group_cores(n),
            )
            for k, q in enumerate(members):
                self.lane_of.append(chosen)
                self.futures[q] = (job, k)

    def _group_cores(self, n: int) -> int:
        """The cores of a group's job in an epoch of ``n`` batches: the lane's share, or, where the epoch has
        fewer groups than lanes (2 batches in groups of 4 on 2 lanes), the idle lanes' cores too: the group
        still decodes each block once, on every core."""
        groups = -(-n // self.group)
        if groups >= self.pool.size:
            return self.pool.cores
        return max(1, self.pool.cores * self.pool.size // groups)

    def get(self, position: int) -> Any:
        self._submit_through(position + self.depth)
        self.cursor = position + 1
        entry = self.futures.pop(position, None)
        if entry is None:  # asked twice: already handed out
            return self.fetch(self.plan.batches[position])
        job, k = entry
        return _unwrap(job.result()[k])

    def close(self) -> None:
        self.pool.close()
        self.futures.clear()


def _format_reads_ahead(dataset: Any) -> Any:
    """``indices -> None`` starting the remote reads of those rows of a ``"mediaref"``-formatted
    ``datasets.Dataset`` (its formatter's ``fetch_ahead`` of the rows as Arrow: refs resolved and checked as
    the decode will); None for any other dataset. Never raises: the decode of the batch raises."""
    from datasets import Dataset
    from datasets.formatting import get_formatter

    from ._formatter import FORMAT_TYPE, MediaRefFormatter

    fmt = dataset.format if isinstance(dataset, Dataset) else None
    if not fmt or fmt.get("type") not in (FORMAT_TYPE, "media_ref"):
        return None
    try:
        formatter = get_formatter(fmt["type"], features=dataset.features, **fmt["format_kwargs"])
        rows = dataset.with_format("arrow", columns=fmt["columns"])
    except Exception as exc:  # the decode raises it
        logger.debug("no reads ahead: %s", exc)
        return None
    if not isinstance(formatter, MediaRefFormatter):
        return None
    local = [0]  # batches in a row with nothing remote: after a few, a local dataset costs nothing more

    def reads_ahead(indices: list[int]) -> None:
        if local[0] >= _LOCAL_BATCHES:
            return
        try:
            remote = formatter.fetch_ahead(rows[indices])
        except Exception as exc:  # the decode of the batch raises it
            logger.debug("nothing fetched ahead: %s", exc)
            remote = False
        local[0] = 0 if remote else local[0] + 1

    return reads_ahead


#: Lanes that may be decoding: before a fork they finish their batch and stop, so that no lane thread holds
#: a lock (FFmpeg's, the engine's caches', logging's) in the child; the parent starts new lanes on its next
#: batch.
_live: weakref.WeakSet[_LanePool] = weakref.WeakSet()


def _stop_before_fork() -> None:
    for lanes in list(_live):
        if not lanes.closed:
            lanes.close()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(before=_stop_before_fork)


class DecodeAhead:
    """A map-style dataset that decodes the batches a :class:`~hf_mediaref.hf.VideoBlockBatchSampler` yields
    next while the DataLoader uses the current one, for ``DataLoader(..., num_workers=0)``.

    Give the DataLoader ``batch_sampler=sampler`` (the same sampler). Batches come back exactly as
    ``dataset.__getitems__(indices)`` returns them, in the sampler's order, each one engine call of its own
    rows; an error raised decoding a batch is raised when the DataLoader asks for that batch. For indices the
    sampler did not yield in its current epoch it is ``dataset`` itself. Remote media (``http(s)``,
    ``hf://``, ``s3://``, ``gs://``) of a ``"mediaref"``-formatted dataset: a batch queued behind another on
    its lane has its reads started when it is queued
    (:meth:`~hf_mediaref.hf.MediaRefFormatter.fetch_ahead`), so the network overlaps the decode before it.

    Inside a DataLoader worker (``num_workers > 0``: the workers already decode batches side by side) it
    decodes the batch it is asked for, and starts the remote reads of the two batches that worker is handed
    next: the sampler's batches carry the ones after them (a worker sees only its own), and the DataLoader
    hands batch ``i`` of an epoch to worker ``i % num_workers``. So a worker's next batches have their bytes
    on the way while it decodes this one, as :func:`~hf_mediaref.hf.decode_stream` ``ahead=True`` does for
    streams. With ``group=g`` the worker decodes the batch it is asked for and its own next ``g - 1``
    batches in one engine call (each keyframe block once for them all), and hands those over when the
    DataLoader asks for them: the same batches, with fewer frames decoded. Should the worker be asked for
    another batch than foretold (``in_order=False``, an epoch left early), what it decoded ahead is dropped;
    after three such groups in a row it stops grouping.

    Args:
        dataset: the map-style dataset (``ds.with_format("mediaref", ...)``, or any dataset with
            ``__getitems__`` or ``__getitem__``).
        sampler: the :class:`~hf_mediaref.hf.VideoBlockBatchSampler` driving the DataLoader.
        lanes: threads decoding ahead, each with its share of the cores (default: the cores a decode may use
            here, see :class:`hf_mediaref.DecodeOptions` ``max_workers``, at most 4).
        depth: batches submitted ahead of the one asked for (default ``2 * lanes``); each is held in memory
            until asked for (mind the size of a batch of full-resolution frames: pass ``size=`` to the format,
            or a smaller ``depth``).
        group: consecutive batches decoded in one engine call, each keyframe block once for all of them, then
            split back into the sampler's batches (default 1). Pays where the rows of a batch rarely share a
            block but those of the next batches do: random rows over a few videos (8 videos, groups of 4
            batches of 32: about 1.6x fewer CPU-seconds per frame). Holds up to ``depth + group`` batches.
            Where an epoch has fewer groups than lanes, a group's decode takes the idle lanes' cores too. In
            a DataLoader worker, a group is the worker's own next batches (batches ``i, i + num_workers,
            ...``), ``group - 1`` of them held at a time.

    Attributes:
        sampler: the sampler to give the DataLoader as ``batch_sampler``: ``sampler`` itself when it lists
            its epochs (:class:`~hf_mediaref.hf.VideoBlockBatchSampler`), else a
            :class:`~hf_mediaref.hf.PlannedBatches` wrapping it.

    Raises:
        ValueError: ``lanes``, ``depth`` or ``group`` below 1.

    Example:
        ```python
        >>> from torch.utils.data import DataLoader
        >>> from hf_mediaref.hf import DecodeAhead, VideoBlockBatchSampler
        >>> sampler = VideoBlockBatchSampler(ds, batch_size=32, seed=0)
        >>> frames = ds.with_format("mediaref", output="torch")
        >>> loader = DataLoader(DecodeAhead(frames, sampler), batch_sampler=sampler)  # num_workers=0
        >>> # the user's own random batches, unchanged, 4 batches per engine call
        >>> ahead = DecodeAhead(frames, BatchSampler(RandomSampler(ds), 32, drop_last=False), group=4)
        >>> loader = DataLoader(ahead, batch_sampler=ahead.sampler)
        ```
    """

    def __init__(
        self,
        dataset: Any,
        sampler: Any,
        *,
        lanes: int | None = None,
        depth: int | None = None,
        group: int = 1,
    ):
        self.lanes, self.depth = _lanes_and_depth(lanes, depth)
        if int(group) < 1:
            raise ValueError(f"group must be >= 1, got {group}")
        self.group = int(group)
        if not hasattr(sampler, "plan") and not hasattr(sampler, "decode_ahead"):
            sampler = PlannedBatches(sampler)
        self.dataset, self.sampler = dataset, sampler
        self._running: _Lanes | None = None
        self._ahead: Any = None
        self._started: list[list[int]] = []  # in a worker: the batches whose reads were started ahead
        self._splits = True  # the dataset's results for a group of batches split into rows
        # in a worker: the batches decoded with an earlier one, in the order it will be asked for them
        self._held: list[tuple[list[int], Any]] = []
        self._used_held = False  # in a worker: a batch of the group held now was asked for
        self._wrong_guesses = 0  # in a worker: groups in a row dropped unused

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: Any) -> Any:
        return self.dataset[index]

    def _fetch(self, indices: list[int]) -> Any:
        getitems = getattr(self.dataset, "__getitems__", None)
        return getitems(indices) if getitems is not None else [self.dataset[i] for i in indices]

    def __getitems__(self, indices: list[int]) -> Any:
        worker = dataloader_worker_info()
        if worker is not None:
            return self._in_worker(indices, worker.num_workers)
        plan = getattr(self.sampler, "plan", None)
        if plan is None:
            return self._fetch(indices)
        running = self._running
        if running is None or running.plan is not plan:  # a new epoch: what was ahead of the old is dropped
            if running is not None:
                running.close()
            running = self._running = self._lanes_for(plan)
        position = running.position(list(indices))
        if position is None:
            logger.debug("indices not in the sampler's current epoch: fetched directly")
            return self._fetch(indices)
        if running.closed:  # stopped for a fork: new lanes from here on
            running = self._running = self._lanes_for(plan, start=position)
        try:
            return running.get(position)
        finally:
            if running.cursor >= len(plan.batches):  # the epoch's last batch: nothing left to decode ahead
                running.close()
                self._running = None

    def _fetch_group(self, batches: list[list[int]]) -> list[Any]:
        """What the dataset returns for each of ``batches``, fetched together while its results split into
        rows (see :func:`_fetch_together`); once one does not, batch by batch from then on."""
        out, splits = _fetch_together(self._fetch, batches, self._splits)
        if not splits and self._splits:
            logger.info("the dataset's batches are not one row per index: each batch is fetched on its own")
            self._splits = False
        return out

    def _lanes_for(self, plan: EpochPlan, start: int = 0) -> _Lanes:
        """New lanes decoding ahead through ``plan`` from its batch ``start`` on."""
        return _Lanes(
            plan,
            self._fetch,
            self._fetch_group,
            self.lanes,
            self.depth,
            start=start,
            group=self.group,
            reads_ahead=self._reads_ahead(),
        )

    def _in_worker(self, indices: list[int], num_workers: int) -> Any:
        """A DataLoader worker's batch: held from the group it was decoded with, or fetched now, with the
        worker's next ``group - 1`` batches when grouping (see the class)."""
        wanted = list(indices)
        if self._held:
            batch, fetched = self._held[0]
            if batch == wanted:
                self._held.pop(0)
                self._used_held, self._wrong_guesses = True, 0
                return _unwrap(fetched)
            self._wrong_guesses = 0 if self._used_held else self._wrong_guesses + 1
            logger.debug("asked for another batch than the one decoded ahead: %d dropped", len(self._held))
            self._held = []
            if self._wrong_guesses >= _WRONG_GUESSES:
                logger.info(
                    "this DataLoader worker is not handed the batches the sampler's order foretells "
                    "(in_order=False?): it no longer decodes its next batches with the one asked for"
                )
        grouping = self.group > 1 and self._wrong_guesses < _WRONG_GUESSES
        count = (self.group - 1 if grouping else 0) + AHEAD_IN_WORKER
        following = next_in_worker(indices, num_workers, count)
        if following is None:  # a batch of a sampler that says nothing of the next ones
            return self._fetch(wanted)
        members = following[: self.group - 1] if grouping else []
        self._read_ahead_in_worker([wanted, *members], following[len(members) :])
        if not members:
            return self._fetch(wanted)
        first, *rest = self._fetch_group([wanted, *members])
        self._held, self._used_held = list(zip(members, rest)), False
        return _unwrap(first)

    def _read_ahead_in_worker(self, now: list[list[int]], following: list[list[int]]) -> None:
        """In a DataLoader worker: start the remote reads of the batches decoded ``now`` (unless they were
        started before) and of the ones it is handed after them (``following``, the sampler's batches say
        which: see :func:`hinted`), so that they overlap this decode."""
        reads_ahead = self._reads_ahead()
        for batch in [*now, *following]:  # now: the worker's first (or ones it was not told of)
            if batch not in self._started:
                reads_ahead(batch)
        self._started = following

    def _reads_ahead(self) -> Any:
        """For a ``"mediaref"``-formatted ``datasets.Dataset``: the function starting the remote reads of a
        batch of indices (the format's :meth:`~hf_mediaref.hf.MediaRefFormatter.fetch_ahead` of their rows,
        read as Arrow); None for other datasets."""
        if self._ahead is None:
            self._ahead = _format_reads_ahead(self.dataset) or (lambda indices: None)
        return self._ahead

    def close(self) -> None:
        """Stop decoding ahead (batches not asked for yet are dropped); the dataset stays usable."""
        if self._running is not None:
            self._running.close()
            self._running = None

    def __getstate__(self) -> dict[str, Any]:
        return {
            **self.__dict__,
            "_running": None,
            "_ahead": None,
            "_started": [],
            "_held": [],
            "_used_held": False,
            "_wrong_guesses": 0,
        }  # a worker's copy starts with no lanes, nothing read ahead and nothing held

    def __repr__(self) -> str:
        return f"DecodeAhead({self.dataset!r}, lanes={self.lanes}, depth={self.depth}, group={self.group})"


# ---------------------------------------------------------------------------------------------------- streams
def _stream_rows(source: Any, batch_size: int) -> Iterator[dict[str, list[Any]]]:
    """``source``'s rows (a ``datasets.IterableDataset``; in a DataLoader worker, that worker's shards) as
    ``{column: values}`` batches of ``batch_size`` rows."""
    rows: list[dict[str, Any]] = []
    for row in source:
        rows.append(row)
        if len(rows) == batch_size:
            yield {name: [r[name] for r in rows] for name in rows[0]}
            rows = []
    if rows:
        yield {name: [r[name] for r in rows] for name in rows[0]}


def _unbatch(batch: dict[str, list[Any]]) -> Iterator[dict[str, Any]]:
    names = list(batch)
    for values in zip(*(batch[name] for name in names)):
        yield dict(zip(names, values))


def _decoded_stream(
    source: Any, transform: Any, batch_size: int, lanes: int, depth: int
) -> Iterator[dict[str, Any]]:
    """The rows of ``source`` decoded ``batch_size`` at a time by ``transform``, in order; outside a
    DataLoader worker, the next ``depth`` batches are decoded ahead on ``lanes`` threads (round robin)."""
    batches = _stream_rows(source, batch_size)
    ahead = getattr(transform, "fetch_ahead", None)  # remote media: the next batches' reads start early
    if dataloader_worker_info() is not None:  # one batch at a time; the next ones' reads start meanwhile
        waiting: collections.deque[dict[str, list[Any]]] = collections.deque()
        for batch in batches:
            if ahead is not None:
                ahead(batch)
            waiting.append(batch)
            if len(waiting) > (AHEAD_IN_WORKER if ahead is not None else 0):
                yield from _unbatch(transform(waiting.popleft()))
        while waiting:
            yield from _unbatch(transform(waiting.popleft()))
        return
    running = _LanePool(lanes)
    pending: collections.deque[tuple[Future, dict[str, list[Any]]]] = collections.deque()
    submitted = 0

    def take() -> dict[str, list[Any]]:
        future, batch = pending.popleft()
        return transform(batch) if future.cancelled() else future.result()  # cancelled: by a fork

    try:
        for batch in batches:
            if running.closed:  # stopped for a fork: new lanes from here on
                running.reopen()
            if ahead is not None and submitted >= lanes:  # it waits for a lane: its reads start now
                ahead(batch)
            pending.append((running.submit(submitted % lanes, transform, batch), batch))
            submitted += 1
            while len(pending) > depth:
                yield from _unbatch(take())
        while pending:
            yield from _unbatch(take())
    finally:
        running.close()


def _make_stream_class() -> type:
    """:class:`StreamDecodeAhead`, made on first use: its base is torch's ``IterableDataset`` (a DataLoader
    iterates a dataset only if it is one), and torch is imported only when it is needed."""
    from .._optional import require

    base = require("torch.utils.data", purpose="decode_stream(..., ahead=True)").IterableDataset

    class StreamDecodeAhead(base):  # type: ignore[misc, valid-type]
        """What ``decode_stream(ids, batch_size, ahead=True)`` returns: a torch ``IterableDataset`` of the
        stream's rows, decoded ``batch_size`` at a time (one engine call each), the next ``depth`` batches on
        ``lanes`` threads while the current one is used. In a DataLoader worker (each reads its own shards,
        as ``datasets`` deals them) it decodes one batch at a time: the workers already decode ahead."""

        def __init__(self, source: Any, transform: Any, batch_size: int, lanes: int, depth: int):
            self.source, self.transform = source, transform
            self.batch_size, self.lanes, self.depth = batch_size, lanes, depth

        def __iter__(self) -> Iterator[dict[str, Any]]:
            return _decoded_stream(self.source, self.transform, self.batch_size, self.lanes, self.depth)

        def __repr__(self) -> str:
            return f"StreamDecodeAhead(batch_size={self.batch_size}, lanes={self.lanes}, depth={self.depth})"

    StreamDecodeAhead.__module__ = __name__
    StreamDecodeAhead.__qualname__ = "StreamDecodeAhead"  # pickled by this name
    return StreamDecodeAhead


def __getattr__(name: str) -> Any:
    if name == "StreamDecodeAhead":  # made on first use (pickles by this name, spawn workers included)
        cls = globals()[name] = _make_stream_class()
        return cls
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def stream_decode_ahead(
    source: Any, transform: Any, batch_size: int, lanes: int | None = None, depth: int | None = None
) -> Any:
    """A :class:`StreamDecodeAhead` over ``source`` (see ``decode_stream(..., ahead=True)``)."""
    lanes, depth = _lanes_and_depth(lanes, depth)
    return __getattr__("StreamDecodeAhead")(source, transform, batch_size, lanes, depth)
