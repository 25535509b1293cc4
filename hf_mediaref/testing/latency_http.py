"""A loopback HTTP/1.1 Range server that behaves like a far-away one: every request waits a fixed delay before
it is answered (a round trip to a CDN, an object store or the Hub) and the bodies share an optional bandwidth
cap. It counts requests, the most requests in flight at once and the bytes served, so that tests and the
benchmark can check how a reader spends round trips (never by timing them).

Example:
    ```python
    >>> from hf_mediaref.testing import LatencyServer
    >>> with LatencyServer("videos/", delay=0.05) as server:   # 50 ms per request
    ...     frames = hf_mediaref.batch_decode([MediaRef(f"{server.url}/ep0.mp4", 0)])
    ...     server.requests, server.peak_in_flight, server.bytes_sent
    ```
"""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

from .http_server import LoopbackFileServer, RangeRequestHandler

__all__ = ["LatencyServer"]


class _LatencyHandler(RangeRequestHandler):
    """Answers each request after the server's delay; body writes share the server's bandwidth cap."""

    def do_GET(self) -> None:
        self._delayed(super().do_GET)

    def do_HEAD(self) -> None:
        self._delayed(super().do_HEAD)

    def _delayed(self, answer: Any) -> None:
        owner: LatencyServer = self.server.owner  # type: ignore[attr-defined]
        owner._begin()
        try:
            time.sleep(owner.delay)
            answer()
        finally:
            owner._end()

    def _write(self, data: bytes) -> None:
        owner: LatencyServer = self.server.owner  # type: ignore[attr-defined]
        owner._throttle(len(data))
        super()._write(data)


class LatencyServer(LoopbackFileServer):
    """Serve the files under ``root`` on 127.0.0.1 with byte ranges, answering every request (GET or HEAD)
    ``delay`` seconds after it arrived, and sending bodies at most ``bandwidth`` bytes per second in all
    (shared by every connection, as one network link); one thread per connection (HTTP/1.1 keep-alive).

    Counters (reset with :meth:`reset`): :attr:`requests` (requests received), :attr:`peak_in_flight` (the
    most requests being answered at once), :attr:`bytes_sent` (body bytes) and :attr:`log` (``(method, path,
    Range header)`` per request). Usable as a context manager.

    Args:
        root: the folder to serve; ``f"{server.url}/{name}"`` is the URL of ``root / name``.
        delay: seconds each request waits before its answer starts (a round trip), ``>= 0``.
        bandwidth: the link's bytes per second for response bodies, or ``None`` for no cap.

    Raises:
        ValueError: a negative delay or a bandwidth that is not positive.

    Example:
        ```python
        >>> with LatencyServer(tmp_path, delay=0.02, bandwidth=50e6) as server:
        ...     requests.get(f"{server.url}/a.mp4", headers={"Range": "bytes=0-99"})
        >>> server.requests, server.peak_in_flight
        (1, 1)
        ```
    """

    def __init__(self, root: str | Path, delay: float = 0.05, bandwidth: float | None = None):
        if not delay >= 0:
            raise ValueError(f"delay must be >= 0 seconds, got {delay!r}")
        if bandwidth is not None and not bandwidth > 0:
            raise ValueError(f"bandwidth must be a positive number of bytes per second, got {bandwidth!r}")
        self.delay = float(delay)
        self.bandwidth = None if bandwidth is None else float(bandwidth)
        self._count_lock = threading.Lock()
        self._in_flight = 0
        self._link_free = 0.0  # when the link has sent every byte queued so far (time.monotonic)
        self.requests = 0
        self.peak_in_flight = 0
        super().__init__(root, _LatencyHandler)
        self._server.owner = self  # type: ignore[attr-defined]

    @property
    def in_flight(self) -> int:
        """Requests being answered now."""
        return self._in_flight

    def reset(self) -> None:
        """Zero the counters and clear the log (between the rounds of a benchmark)."""
        with self._count_lock, self._server.lock:
            self.requests = self.peak_in_flight = 0
            self._server.bytes_sent = 0
            self._server.log.clear()
            self._server.headers_log.clear()

    def _begin(self) -> None:
        with self._count_lock:
            self.requests += 1
            self._in_flight += 1
            self.peak_in_flight = max(self.peak_in_flight, self._in_flight)

    def _end(self) -> None:
        with self._count_lock:
            self._in_flight -= 1

    def _throttle(self, nbytes: int) -> None:
        """Wait until the link has sent ``nbytes`` more (after what other connections queued before)."""
        if self.bandwidth is None:
            return
        with self._count_lock:
            start = max(time.monotonic(), self._link_free)
            self._link_free = start + nbytes / self.bandwidth
            until = self._link_free
        time.sleep(max(0.0, until - time.monotonic()))
