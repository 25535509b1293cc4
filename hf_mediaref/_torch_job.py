"""This process's place in a torch job: the DataLoader worker it is, its distributed rank and world size, the
ranks on its node. The one place that asks; torch is looked up in ``sys.modules``, never imported (a process
that never imported torch is no DataLoader worker and has no process group).
"""

from __future__ import annotations

import os
import sys
from typing import Any

__all__ = ["dataloader_worker_info", "distributed_rank", "local_world_size"]


def dataloader_worker_info() -> Any:
    """torch's ``get_worker_info()`` in a DataLoader worker process, else ``None`` (also for a torch whose
    ``get_worker_info`` fails: nothing that asks breaks)."""
    data = sys.modules.get("torch.utils.data")
    get_worker_info = getattr(data, "get_worker_info", None)
    if get_worker_info is None:
        return None
    try:
        return get_worker_info()
    except Exception:  # a torch we do not know
        return None


def _env_int(name: str) -> int | None:
    value = os.environ.get(name)
    if value is None or not value.strip():
        return None
    try:
        return int(value)
    except ValueError:
        raise ValueError(f"the environment variable {name}={value!r} is not an integer") from None


def _process_group() -> Any:
    """``torch.distributed`` when it is initialized in this process, else ``None``."""
    dist = sys.modules.get("torch.distributed")
    if dist is None or not (dist.is_available() and dist.is_initialized()):
        return None
    return dist


def distributed_rank(rank: int | None = None, world_size: int | None = None) -> tuple[int, int]:
    """``(rank, world_size)`` of this process: each given value as it is; a missing one from
    ``torch.distributed`` when it is initialized, else from the ``RANK`` / ``WORLD_SIZE`` environment
    variables (``torchrun``, ``accelerate`` and DeepSpeed set them before the process group exists), else a
    single process: world size 1, rank 0 (the only rank of a world of one).

    Raises ``ValueError`` where a guess would give wrong shards instead: a world of more than one process
    whose rank is known from nowhere (``world_size=4`` given, no process group, no ``RANK``), ``rank`` outside
    ``[0, world_size)``, or a ``RANK`` / ``WORLD_SIZE`` that is not an integer.
    """
    dist = _process_group()
    if world_size is None:
        world_size = dist.get_world_size() if dist is not None else _env_int("WORLD_SIZE")
        world_size = 1 if world_size is None else world_size
    if rank is None:
        rank = dist.get_rank() if dist is not None else _env_int("RANK")
        if world_size == 1:
            rank = 0  # a world of one has one rank, whatever the job around it says
        elif rank is None:
            raise ValueError(
                f"world_size={world_size} but this process's rank is unknown (torch.distributed is not "
                "initialized and RANK is not set): pass rank= too"
            )
    if world_size < 1 or not 0 <= rank < world_size:
        raise ValueError(f"need 0 <= rank < world_size, got rank={rank}, world_size={world_size}")
    return int(rank), int(world_size)


def local_world_size() -> int:
    """The processes of this job on this node: ``LOCAL_WORLD_SIZE`` (set by ``torchrun``), else 1 (also for
    a value that is not a positive integer)."""
    try:
        return max(1, _env_int("LOCAL_WORLD_SIZE") or 1)
    except ValueError:
        return 1
