"""Scheduling of decode tasks: how many workers and codec threads a batch gets."""

from __future__ import annotations

import numpy as np

from hf_mediaref._executor import Task, choose_parallelism, run_tasks


class TestParallelism:
    def test_many_spans_use_single_threaded_workers(self):
        assert choose_parallelism([100.0] * 8, 2) == (2, 1)
        assert choose_parallelism([100.0] * 8, 4) == (4, 1)

    def test_one_span_gets_codec_threads(self):
        assert choose_parallelism([300.0], 2) == (1, 2)
        assert choose_parallelism([300.0], 8) == (1, 8)

    def test_unbalanced_spans_prefer_frame_threads(self):
        assert choose_parallelism([300.0, 5.0], 2) == (1, 2)

    def test_never_oversubscribes(self):
        rng = np.random.default_rng(1)
        for cores in range(1, 9):
            costs = rng.uniform(1, 100, int(rng.integers(1, 20))).tolist()
            workers, threads = choose_parallelism(costs, cores)
            assert 1 <= workers <= max(1, min(cores, len(costs))) and workers * threads <= cores

    def test_single_core_or_nothing(self):
        assert choose_parallelism([1.0, 2.0], 1) == (1, 1)
        assert choose_parallelism([], 4) == (1, 1)


def test_run_tasks_returns_results_in_task_order_and_raises_the_first_failure():
    tasks = [Task(float(cost), lambda _threads, cost=cost: cost * 10) for cost in (1, 5, 3)]
    assert run_tasks(tasks, 2) == [10, 50, 30]

    def boom(_threads: int) -> None:
        raise KeyError("bad span")

    try:
        run_tasks([Task(1.0, lambda _t: 1), Task(2.0, boom)], 2)
    except KeyError as exc:
        assert "bad span" in str(exc)
    else:
        raise AssertionError("the failure was not raised")


def test_core_budget_is_shared_by_the_ranks_torchrun_starts_on_a_node(monkeypatch):
    import os

    from hf_mediaref._executor import core_budget

    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    monkeypatch.delenv("LOCAL_WORLD_SIZE", raising=False)
    assert core_budget() == cpus
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "2")
    assert core_budget() == max(1, cpus // 2)
    monkeypatch.setenv("LOCAL_WORLD_SIZE", str(cpus * 4))
    assert core_budget() == 1
    assert core_budget(max_workers=3) == 3  # an explicit budget wins
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "bogus")
    assert core_budget() == cpus
