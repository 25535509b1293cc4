"""HTTP(S) reads through ``requests``: timeouts, retries with back-off, and a seekable Range-request file.

Settings (read at import, patchable on :data:`settings`): ``HF_MEDIAREF_HTTP_TIMEOUT`` (seconds, default 30),
``HF_MEDIAREF_HTTP_RETRIES`` (default 3), ``HF_MEDIAREF_HTTP_READAHEAD`` (the largest read-ahead, bytes,
default 4 MiB) and ``HF_MEDIAREF_HTTP_MIN_READAHEAD`` (the read-ahead after a seek, default 32 KiB).
"""

from __future__ import annotations

import dataclasses
import io
import logging
import os
import threading
from typing import Any

import requests
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from ..errors import MediaNotFoundError, RemoteAccessError, describe_uri

logger = logging.getLogger(__name__)

__all__ = ["http_exists", "http_get", "open_http", "settings"]


@dataclasses.dataclass
class HttpSettings:
    timeout: float = float(os.environ.get("HF_MEDIAREF_HTTP_TIMEOUT", 30))
    retries: int = int(os.environ.get("HF_MEDIAREF_HTTP_RETRIES", 3))
    backoff: float = 0.25
    readahead: int = int(os.environ.get("HF_MEDIAREF_HTTP_READAHEAD", 4 << 20))
    min_readahead: int = int(os.environ.get("HF_MEDIAREF_HTTP_MIN_READAHEAD", 32 << 10))


settings = HttpSettings()
_local = threading.local()


def _session() -> requests.Session:
    """One session per thread and process (sessions are not fork- or thread-safe)."""
    sess = getattr(_local, "session", None)
    if sess is None or _local.pid != os.getpid() or _local.retries != settings.retries:
        retry = Retry(
            total=settings.retries,
            connect=settings.retries,
            read=settings.retries,
            status=settings.retries,
            backoff_factor=settings.backoff,
            status_forcelist=(500, 502, 503, 504),
            allowed_methods=frozenset({"GET", "HEAD"}),
            raise_on_status=False,
        )
        sess = requests.Session()
        adapter = HTTPAdapter(max_retries=retry)
        sess.mount("http://", adapter)
        sess.mount("https://", adapter)
        _local.session, _local.pid, _local.retries = sess, os.getpid(), settings.retries
    return sess


def _request(method: str, url: str, **kw) -> requests.Response:
    try:
        resp = _session().request(method, url, timeout=settings.timeout, **kw)
    except requests.exceptions.RequestException as exc:
        raise RemoteAccessError(
            f"cannot read {describe_uri(url)}: {type(exc).__name__}: {exc}", uri=url
        ) from exc
    if resp.status_code in (404, 410):
        resp.close()
        raise MediaNotFoundError(f"HTTP {resp.status_code}: no media at {describe_uri(url)}", uri=url)
    if resp.status_code >= 400:
        resp.close()
        raise RemoteAccessError(f"HTTP {resp.status_code} {resp.reason} for {describe_uri(url)}", uri=url)
    return resp


def http_get(url: str) -> bytes:
    """Download ``url`` whole."""
    resp = _request("GET", url)
    try:
        return resp.content
    except requests.exceptions.RequestException as exc:
        raise RemoteAccessError(f"download of {describe_uri(url)} failed: {exc}", uri=url) from exc


def http_exists(url: str) -> bool:
    """Cheap existence check: HEAD (falling back to a 1-byte ranged GET where HEAD is not allowed)."""
    try:
        resp = _request("HEAD", url, allow_redirects=True)
    except MediaNotFoundError:
        return False
    except RemoteAccessError:
        try:
            resp = _request("GET", url, headers={"Range": "bytes=0-0"}, stream=True)
        except MediaNotFoundError:
            return False
    resp.close()
    return True


_MAX_EXPECTED = 32 << 20


class _RangeReader(io.RawIOBase):
    """A raw, seekable file over HTTP Range requests, with an adaptive read-ahead.

    A read that misses the last fetched range fetches ``min_readahead`` bytes from there after a seek, and
    twice the previous fetch when it continues where that fetch ended, up to ``readahead``. Seeks (container
    probing, jumps to keyframes) cost little; long forward reads (a keyframe block, an index scan) take few
    requests. A caller that knows how much it will read after a seek says so with :meth:`expect`.
    """

    def __init__(self, url: str, readahead: int | None = None):
        self.url = url
        self.bytes_read = 0
        self.requests = 0
        self._pos = 0
        self._max = max(1, readahead or settings.readahead)
        self._min = max(1, min(self._max, settings.min_readahead))
        self._window = self._min
        self._expected = 0
        self._buf = b""
        self._buf_start = 0
        self._fallback: io.BytesIO | None = None
        head = _request("HEAD", url, allow_redirects=True)
        head.close()
        length = head.headers.get("Content-Length")
        self._size = int(length) if length is not None else None
        validator = head.headers.get("ETag") or head.headers.get("Last-Modified")
        #: Changes when the resource changes (validator + size); None when the server sends no validator.
        self.version = f"{validator}; {length}" if validator else None
        if self._size is None or head.headers.get("Accept-Ranges", "").lower() != "bytes":
            logger.info("%s does not advertise range requests; downloading it whole", describe_uri(url))
            self._load_whole()

    def _load_whole(self) -> None:
        data = http_get(self.url)
        self.bytes_read += len(data)
        self.requests += 1
        self._fallback, self._size = io.BytesIO(data), len(data)
        self._fallback.seek(self._pos)

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: self._size or 0}[whence]
        self._pos = max(0, base + offset)
        if self._fallback is not None:
            self._fallback.seek(self._pos)
        return self._pos

    def expect(self, nbytes: int) -> None:
        """Hint that reading (after the seek that follows) goes on for about ``nbytes`` (a keyframe block to
        decode): the next fetch takes them in one request (up to 32 MiB) instead of growing from
        ``min_readahead``; a read just past them starts from ``min_readahead`` again."""
        self._expected = min(max(0, int(nbytes)), _MAX_EXPECTED)

    def _fetch(self, start: int, length: int) -> None:
        """Fetch ``[start, start + length)`` into the buffer (or switch to a whole download)."""
        resp = _request("GET", self.url, headers={"Range": f"bytes={start}-{start + length - 1}"})
        if resp.status_code != 206:  # server ignored the range: serve from a full copy
            resp.close()
            self._load_whole()
            return
        self._buf, self._buf_start = resp.content[:length], start
        self.bytes_read += len(self._buf)
        self.requests += 1

    def readinto(self, buffer: Any) -> int:
        size = self._size or 0
        if self._fallback is None and self._pos < size:
            offset = self._pos - self._buf_start
            if not 0 <= offset < len(self._buf):
                if self._expected:  # the caller said how much it will read from here: one request
                    fetch, self._window, self._expected = max(self._min, self._expected), self._min, 0
                elif bool(self._buf) and offset == len(self._buf):  # continues the last fetch: grow
                    self._window = min(2 * self._window, self._max)
                    fetch = self._window
                else:  # after a seek: the smallest read-ahead
                    fetch = self._window = self._min
                self._fetch(self._pos, min(max(len(buffer), fetch), size - self._pos))
                offset = 0
        if self._fallback is not None:
            n = self._fallback.readinto(buffer)
            self._pos = self._fallback.tell()
            return n
        n = max(0, min(len(buffer), len(self._buf) - (self._pos - self._buf_start)))
        if n:
            offset = self._pos - self._buf_start
            buffer[:n] = memoryview(self._buf)[offset : offset + n]
            self._pos += n
        return n


def open_http(url: str, readahead: int | None = None) -> io.BufferedReader:
    """A seekable binary file over ``url`` that reads with Range requests and an adaptive read-ahead of up to
    ``readahead`` bytes (default ``settings.readahead``)."""
    return io.BufferedReader(_RangeReader(url, readahead), buffer_size=32 << 10)  # FFmpeg reads 32 KiB blocks
