"""_torch_job: the one place that asks torch where this process stands (DataLoader worker, rank, node)."""

from __future__ import annotations

import pytest

from hf_mediaref._torch_job import dataloader_worker_info, distributed_rank, local_world_size

torch = pytest.importorskip("torch")


@pytest.fixture
def no_job_env(monkeypatch):
    for name in ("RANK", "WORLD_SIZE", "LOCAL_WORLD_SIZE"):
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def test_rank_given_then_environment_then_one_process(no_job_env):
    assert distributed_rank() == (0, 1)
    assert distributed_rank(2, 4) == (2, 4)
    no_job_env.setenv("RANK", "3")
    no_job_env.setenv("WORLD_SIZE", "4")
    assert distributed_rank() == (3, 4)
    assert distributed_rank(rank=1) == (1, 4)
    assert distributed_rank(world_size=1) == (0, 1)  # a world of one has one rank
    no_job_env.setenv("WORLD_SIZE", "8")
    assert distributed_rank() == (3, 8)


def test_rank_raises_where_a_guess_would_give_wrong_shards(no_job_env):
    with pytest.raises(ValueError, match="rank is unknown"):
        distributed_rank(world_size=2)
    no_job_env.setenv("WORLD_SIZE", "2")
    with pytest.raises(ValueError, match="rank is unknown"):
        distributed_rank()
    with pytest.raises(ValueError, match="rank < world_size"):
        distributed_rank(rank=2)
    with pytest.raises(ValueError, match="rank < world_size"):
        distributed_rank(rank=-1, world_size=2)
    no_job_env.setenv("RANK", "first")
    with pytest.raises(ValueError, match="RANK"):
        distributed_rank()


def test_an_initialized_process_group_wins_over_the_environment(no_job_env, tmp_path):
    import torch.distributed as dist

    no_job_env.setenv("RANK", "3")
    no_job_env.setenv("WORLD_SIZE", "4")
    dist.init_process_group("gloo", init_method=f"file://{tmp_path / 'init'}", rank=0, world_size=1)
    try:
        assert distributed_rank() == (0, 1)
        assert distributed_rank(rank=2, world_size=4) == (2, 4)  # given values still win
    finally:
        dist.destroy_process_group()
    assert distributed_rank() == (3, 4)


def test_local_world_size(no_job_env):
    assert local_world_size() == 1
    no_job_env.setenv("LOCAL_WORLD_SIZE", "4")
    assert local_world_size() == 4
    no_job_env.setenv("LOCAL_WORLD_SIZE", "x")
    assert local_world_size() == 1


class _WorkerIds(torch.utils.data.Dataset):
    def __len__(self) -> int:
        return 2

    def __getitem__(self, i: int) -> int:
        info = dataloader_worker_info()
        return -1 if info is None else info.id


def test_dataloader_worker_info_in_a_real_worker():
    assert dataloader_worker_info() is None
    loader = torch.utils.data.DataLoader(_WorkerIds(), batch_size=None, num_workers=1, timeout=60)
    assert list(loader) == [0, 0]
