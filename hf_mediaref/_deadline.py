"""One deadline for a whole operation, kept in a :class:`contextvars.ContextVar`.

:func:`deadline` sets it for a block; HTTP requests (:mod:`hf_mediaref.io`) end by it, and the task scheduler
(:mod:`hf_mediaref._executor`) starts no task after it. It follows the code into the scheduler's worker
threads, which run a copy of the caller's context. ``batch_decode(..., timeout=)`` is built on it."""

from __future__ import annotations

import contextlib
import contextvars
import time
from collections.abc import Iterator

__all__ = ["current", "deadline"]

#: The absolute :func:`time.monotonic` time by which the running operation must end, or None.
_end: contextvars.ContextVar[float | None] = contextvars.ContextVar("hf_mediaref_deadline", default=None)


def current() -> float | None:
    """The absolute :func:`time.monotonic` deadline of the running operation, or ``None``."""
    return _end.get()


@contextlib.contextmanager
def deadline(seconds: float | None) -> Iterator[None]:
    """Bound everything inside the block (in this thread, and in threads that run a copy of this context) to
    end within ``seconds`` from now; nested blocks keep the earliest deadline.

    Args:
        seconds: the time, from entering the block, by which the work inside must end; ``None``: no bound.

    Raises:
        ValueError: ``seconds`` is negative or not a number.
    """
    if seconds is None:
        yield
        return
    seconds = float(seconds)
    if not seconds >= 0:
        raise ValueError(f"a deadline needs a non-negative number of seconds, got {seconds!r}")
    end = time.monotonic() + seconds
    outer = _end.get()
    token = _end.set(end if outer is None else min(outer, end))
    try:
        yield
    finally:
        _end.reset(token)
