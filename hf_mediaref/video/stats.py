"""Decode counters for benchmarks: how much work the engine did per returned frame.

Counting is off unless a :func:`collect_stats` block is active, so the engine pays one truth test per
span when nobody is listening.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import threading
from typing import Iterator

__all__ = ["DecodeStats", "collect_stats", "record", "is_collecting"]


@dataclasses.dataclass
class DecodeStats:
    """Counters accumulated while a :func:`collect_stats` block is active (from every thread).

    ``bytes_read`` counts bytes read from the media sources: what remote/file-object readers returned, and
    for local files the bytes of the packets demuxed (keyframe-index scans included).
    """

    decoded_frames: int = 0  # frames the decoders produced (including those skipped on the way to a target)
    returned_frames: int = 0  # frames handed back to the caller (duplicates included)
    converted_frames: int = 0  # frames converted to RGB (each unique returned frame once)
    seeks: int = 0
    containers_opened: int = 0
    index_scans: int = 0  # keyframe indexes built (demux passes)
    bytes_read: int = 0

    @property
    def decoded_per_returned(self) -> float:
        return self.decoded_frames / self.returned_frames if self.returned_frames else 0.0

    @property
    def bytes_per_returned(self) -> float:
        return self.bytes_read / self.returned_frames if self.returned_frames else 0.0

    def as_dict(self) -> dict[str, float]:
        out: dict[str, float] = dataclasses.asdict(self)
        out["decoded_per_returned"] = self.decoded_per_returned
        out["bytes_per_returned"] = self.bytes_per_returned
        return out


_lock = threading.Lock()
_active: list[DecodeStats] = []


def is_collecting() -> bool:
    """Whether some :func:`collect_stats` block is listening (cheap; call before computing counts)."""
    return bool(_active)


def record(**counts: int) -> None:
    """Add ``counts`` (field name -> increment) to every active collector."""
    if not _active:
        return
    with _lock:
        for stats in _active:
            for name, value in counts.items():
                setattr(stats, name, getattr(stats, name) + value)


@contextlib.contextmanager
def collect_stats() -> Iterator[DecodeStats]:
    """Count decoding work done inside the block, in every thread: ``with collect_stats() as s: ...``."""
    stats = DecodeStats()
    with _lock:
        _active.append(stats)
    try:
        yield stats
    finally:
        with _lock:
            _active.remove(stats)


def _reset_after_fork() -> None:
    global _lock
    _lock = threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_reset_after_fork)
