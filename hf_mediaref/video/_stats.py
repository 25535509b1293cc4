"""Decode counters for benchmarks: how much work the engine did per returned frame.

Counting is off unless a :func:`collect_stats` block is active, so the engine pays one truth test per
span when nobody is listening.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import threading
from collections.abc import Iterator
from typing import IO

__all__ = ["CountingReader", "DecodeStats", "collect_stats", "is_collecting", "record"]


@dataclasses.dataclass
class DecodeStats:
    """Counters accumulated while a :func:`collect_stats` block is active (from every thread).

    Attributes:
        calls: ``batch_decode`` calls (engine calls); ``requested_refs``: the refs they were given.
        decoded_frames: frames the decoders produced, those decoded on the way to a target included.
        returned_frames: frames handed back (duplicates included); ``converted_frames``: converted to RGB.
        seeks, containers_opened, index_scans: seeks, containers opened and keyframe indexes built (by a demux
            scan, from MP4 ``moov`` tables or from a sidecar; not those found in memory or on disk).
        bytes_read: bytes read from the media sources: what remote and file-object readers returned, and for
            local files the bytes of the packets demuxed (index scans included).

    Example:
        ```python
        >>> from hf_mediaref.video import collect_stats
        >>> with collect_stats() as stats:
        ...     frames = hf_mediaref.batch_decode(refs)
        >>> stats.decoded_per_returned, stats.refs_per_call
        ```
    """

    calls: int = 0  # batch_decode calls (engine calls)
    requested_refs: int = 0  # refs those calls were given
    decoded_frames: int = 0  # frames the decoders produced (including those skipped on the way to a target)
    returned_frames: int = 0  # frames handed back to the caller (duplicates included)
    converted_frames: int = 0  # frames converted to RGB (each unique returned frame once)
    seeks: int = 0
    containers_opened: int = 0
    index_scans: int = 0  # keyframe indexes built (demux scans, moov tables, sidecars)
    bytes_read: int = 0

    @property
    def decoded_per_returned(self) -> float:
        return self.decoded_frames / self.returned_frames if self.returned_frames else 0.0

    @property
    def refs_per_call(self) -> float:
        return self.requested_refs / self.calls if self.calls else 0.0

    @property
    def bytes_per_returned(self) -> float:
        return self.bytes_read / self.returned_frames if self.returned_frames else 0.0

    def as_dict(self) -> dict[str, float]:
        out: dict[str, float] = dataclasses.asdict(self)
        out["decoded_per_returned"] = self.decoded_per_returned
        out["bytes_per_returned"] = self.bytes_per_returned
        out["refs_per_call"] = self.refs_per_call
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


class CountingReader:
    """A pass-through binary file that reports the bytes read to the active collectors.

    A read is one read of the file below (its ``read1`` where it has one): it may return fewer bytes than
    asked, which FFmpeg's I/O accepts, so a Range-request file fetches no more than it decides to (an
    announced keyframe block ends where the decode's last packet ends, not at FFmpeg's 32 KiB buffer)."""

    def __init__(self, raw: IO[bytes]):
        self._raw = raw
        self._read1 = getattr(raw, "read1", None)

    def read(self, size: int = -1) -> bytes:
        data = self._raw.read(size) if self._read1 is None or size is None or size < 0 else self._read1(size)
        if _active:
            record(bytes_read=len(data))
        return data

    def seek(self, offset: int, whence: int = 0) -> int:
        return self._raw.seek(offset, whence)

    def tell(self) -> int:
        return self._raw.tell()

    def seekable(self) -> bool:
        return True

    def readable(self) -> bool:
        return True

    def close(self) -> None:
        self._raw.close()


def _reset_after_fork() -> None:
    global _lock
    _lock = threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_reset_after_fork)
