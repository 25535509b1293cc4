"""Run independent decode tasks on a thread pool sized so codec threads and workers fit the cores.

PyAV and TorchCodec release the GIL while demuxing, decoding and converting, so threads scale across
cores. A batch's tasks (keyframe-block spans of any video, image loads) are run longest first. Generic: the
video engine and the decode façade both schedule their work here.
"""

from __future__ import annotations

import contextlib
import contextvars
import dataclasses
import heapq
import os
import time
from collections.abc import Callable, Hashable, Iterator, Sequence
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from typing import Any

from ._deadline import current as current_deadline
from ._torch_job import dataloader_worker_info, local_world_size
from .errors import DecodeTimeoutError

__all__ = [
    "Task",
    "check_deadline",
    "choose_parallelism",
    "core_budget",
    "lane",
    "run_order",
    "run_tasks",
]

#: Frame threading on ``n`` codec threads runs about ``1 + (n - 1) * 0.2`` times as fast as one thread:
#: measured on a 2-core machine, one keyframe block, 640x360 H.264: 1.16-1.25x for 2 threads without B-frames,
#: none (0.93-1.0x) with B-frames, whose skipped non-reference frames leave a strict chain of references.
#: Independent spans on separate threads scale ~linearly, so they win over frame threads unless one span
#: dominates the batch.
_FRAME_THREAD_GAIN = 0.2


#: The lane (see :func:`lane`) decodes started in this context belong to, and the cores it may use.
_LANE: contextvars.ContextVar[tuple[Hashable, int] | None] = contextvars.ContextVar(
    "hf_mediaref_lane", default=None
)


@contextlib.contextmanager
def lane(name: Hashable, cores: int) -> Iterator[None]:
    """Decodes started within the block (this thread, and the tasks it runs) form the lane ``name``, one of
    several decoding side by side (decode-ahead lanes): without ``max_workers`` they use at most ``cores``
    threads, so the lanes share the cores instead of each taking them all."""
    token = _LANE.set((name, max(1, int(cores))))
    try:
        yield
    finally:
        _LANE.reset(token)


@dataclasses.dataclass(frozen=True)
class Task:
    """``run(codec_threads)`` does one independent piece of work costing about ``cost`` decoded frames."""

    cost: float
    run: Callable[[int], Any]


def core_budget(max_workers: int | None = None) -> int:
    """Threads a batch may keep busy: ``max_workers`` if given, 1 inside a torch DataLoader worker
    (the loader already runs one process per core), else the CPUs this process may run on, shared with the
    other processes of this node when ``torchrun`` started it (``LOCAL_WORLD_SIZE`` ranks per node), and
    with the other lanes decoding beside this one (:func:`lane`)."""
    if max_workers is not None:
        if int(max_workers) < 1:
            raise ValueError(f"max_workers must be >= 1, got {max_workers}")
        return int(max_workers)
    if dataloader_worker_info() is not None:
        return 1
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    cores = max(1, cpus // local_world_size())
    current = _LANE.get()
    return cores if current is None else min(cores, current[1])


def _makespan(costs: Sequence[float], workers: int) -> float:
    """Finish time of greedy longest-first scheduling of ``costs`` on ``workers`` equal workers."""
    loads = [0.0] * workers
    for cost in sorted(costs, reverse=True):
        heapq.heappush(loads, heapq.heappop(loads) + cost)
    return max(loads)


def choose_parallelism(costs: Sequence[float], cores: int) -> tuple[int, int]:
    """``(workers, codec_threads)`` with ``workers * codec_threads <= cores`` that finishes ``costs`` soonest.

    Independent spans on single-threaded codecs scale almost linearly and have no frame-threading latency,
    so they win whenever there are enough spans to keep the cores busy; a lone long span gets frame threads.
    """
    cores = max(1, int(cores))
    if not costs or cores == 1:
        return 1, 1
    best: tuple[float, int, int] | None = None
    for workers in range(1, min(cores, len(costs)) + 1):
        threads = cores // workers
        speed = 1.0 + (threads - 1) * _FRAME_THREAD_GAIN
        finish = _makespan(costs, workers) / speed
        if best is None or finish < best[0] - 1e-9:
            best = (finish, workers, threads)
    assert best is not None
    return best[1], best[2]


def check_deadline() -> None:
    """Raise :class:`~hf_mediaref.errors.DecodeTimeoutError` when the running operation's deadline
    (:mod:`._deadline`) has passed: before any piece of work starts (a task, a span of a chain of spans)."""
    end = current_deadline()
    if end is not None and time.monotonic() > end:
        raise DecodeTimeoutError(
            "the decode did not finish within its timeout; its remaining work was not started"
        )


def _start(task: Task, threads: int) -> Any:
    """Run ``task`` unless the running operation's deadline (:mod:`._deadline`) has passed."""
    check_deadline()
    return task.run(threads)


def run_order(costs: Sequence[float], budget: int) -> list[int]:
    """The order :func:`run_tasks` starts tasks of these ``costs`` in: the given order on one worker, the
    costliest first on several (what a batch's fetches ahead follow, so that its first decodes wait least)."""
    return _order(costs, choose_parallelism(costs, budget)[0])


def _order(costs: Sequence[float], workers: int) -> list[int]:
    if workers == 1:
        return list(range(len(costs)))
    return sorted(range(len(costs)), key=lambda i: -costs[i])


def run_tasks(tasks: Sequence[Task], budget: int) -> list[Any]:
    """Run ``tasks`` and return their results in task order; the first failure is raised.

    Workers run a copy of the caller's context (its deadline included); no task starts after the deadline
    (:class:`~hf_mediaref.errors.DecodeTimeoutError`).
    """
    if not tasks:
        return []
    costs = [t.cost for t in tasks]
    workers, threads = choose_parallelism(costs, budget)
    if workers == 1:
        return [_start(task, threads) for task in tasks]
    order = _order(costs, workers)  # run_order's, without choosing the parallelism twice
    pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="hf_mediaref-decode")
    try:
        futures = {i: pool.submit(contextvars.copy_context().run, _start, tasks[i], threads) for i in order}
        done, _ = wait(futures.values(), return_when=FIRST_EXCEPTION)
        for future in done:
            if future.exception() is not None:
                raise future.exception()  # type: ignore[misc]
        return [futures[i].result() for i in range(len(tasks))]
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
