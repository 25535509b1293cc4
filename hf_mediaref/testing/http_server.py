"""A loopback HTTP file server with Range support, for tests and the benchmark (127.0.0.1 only).

``LoopbackFileServer(root)`` serves the files under ``root`` at ``server.url``, answers ``Range: bytes=a-b``
with 206 partial content (reading only that slice from disk), sends ``ETag`` and ``Last-Modified``, logs
every request (and its headers) and counts the body bytes it sent, so callers can check how much of a video a
reader fetched. Subclass :class:`RangeRequestHandler` and override :meth:`~RangeRequestHandler.handle_request`
to add misbehaving endpoints (:mod:`hf_mediaref.testing.faulty_http` has many).
"""

from __future__ import annotations

import os
import re
import sys
import threading
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

__all__ = ["LoopbackFileServer", "RangeRequestHandler"]

_RANGE = re.compile(r"bytes=(\d+)-(\d*)$")
_CHUNK = 64 << 10


class RangeRequestHandler(BaseHTTPRequestHandler):
    """Serves files under ``server.root`` for GET and HEAD, honouring single byte ranges."""

    server: _Server
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body go out in separate writes: no 40 ms delayed-ACK stall

    def log_message(self, *args: Any) -> None:  # keep test and benchmark output clean
        pass

    def __repr__(self) -> str:
        request = f"{getattr(self, 'command', None) or '?'} {getattr(self, 'path', '?')}"
        host, port = (*self.client_address, "?", "?")[:2]
        return f"{type(self).__name__}({request!r} from {host}:{port})"

    def do_GET(self) -> None:
        self._log()
        self.handle_request(head=False)

    def do_HEAD(self) -> None:
        self._log()
        self.handle_request(head=True)

    def _log(self) -> None:
        with self.server.lock:
            self.server.log.append((self.command, self.path, self.headers.get("Range")))
            self.server.headers_log.append(dict(self.headers.items()))

    def count(self, key: Any) -> int:
        """How many times ``key`` was counted before on this server (then counts it): per-path state."""
        with self.server.lock:
            n = self.server.counts.get(key, 0)
            self.server.counts[key] = n + 1
        return n

    def requested_range(self, size: int, ranged: bool) -> tuple[int, int, int]:
        """``(status, start, end)`` for this request's ``Range`` header (ignored unless ``ranged``): 200 for
        the whole file, 206 for a satisfiable range (``end`` clipped to the file), 416 past the end."""
        match = _RANGE.match(self.headers.get("Range") or "") if ranged else None
        if not match:
            return 200, 0, size - 1
        start = int(match.group(1))
        end = min(int(match.group(2)) if match.group(2) else size - 1, size - 1)
        return (416 if start >= size else 206), start, end

    @staticmethod
    def file_headers(st: os.stat_result, ranges: bool) -> dict[str, str]:
        """``Accept-Ranges`` (when ``ranges``) and the validators that real servers send, ``Last-Modified``
        and ``ETag``, for the file ``st`` describes."""
        headers = {"Accept-Ranges": "bytes"} if ranges else {}
        headers["Last-Modified"] = formatdate(st.st_mtime, usegmt=True)
        headers["ETag"] = f'"{st.st_mtime_ns:x}-{st.st_size:x}"'
        return headers

    def handle_request(self, head: bool) -> None:
        """Answer one request; the default serves ``self.path`` from the root with ranges."""
        self.serve_file(self.path, head)

    def resolve(self, url_path: str) -> Path:
        """The file under the root that ``url_path`` names (query strings ignored)."""
        return self.server.root / url_path.split("?")[0].lstrip("/")

    def _send_head(self, code: int, headers: dict, length: int) -> None:
        self.send_response(code)
        for key, value in headers.items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(length))
        self.end_headers()

    def send_body(
        self, code: int, body: bytes = b"", headers: dict | None = None, head: bool = False
    ) -> None:
        self._send_head(code, headers or {}, len(body))
        if not head:
            self._write(body)

    def serve_file(self, url_path: str, head: bool, ranges: bool = True) -> None:
        """Serve ``url_path``: 404 when missing, 206 for a byte range (when ``ranges``), else 200."""
        path = self.resolve(url_path)
        if not path.is_file():
            return self.send_body(404, b"not found", head=head)
        st = path.stat()
        size = st.st_size
        headers = self.file_headers(st, ranges)
        code, start, end = self.requested_range(size, ranges)
        if code == 416:
            return self.send_body(416, b"", {"Content-Range": f"bytes */{size}"}, head=head)
        if code == 206:
            headers["Content-Range"] = f"bytes {start}-{end}/{size}"
        self._send_head(code, headers, end - start + 1)
        if head:
            return None
        with open(path, "rb") as f:  # streamed: only what the client reads before it hangs up is sent
            f.seek(start)
            remaining = end - start + 1
            while remaining > 0:
                chunk = f.read(min(_CHUNK, remaining))
                if not chunk:
                    break
                self._write(chunk)
                remaining -= len(chunk)
        return None

    def _write(self, data: bytes) -> None:
        with self.server.lock:  # counted first, so a client that has the bytes also sees them counted
            self.server.bytes_sent += len(data)
        self.wfile.write(data)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    root: Path
    log: list
    headers_log: list
    counts: dict
    bytes_sent: int
    lock: threading.Lock

    def handle_error(self, request: Any, client_address: Any) -> None:
        if isinstance(sys.exc_info()[1], (ConnectionError, TimeoutError)):
            return  # a client hanging up mid-body is normal (FFmpeg asks for open-ended ranges)
        super().handle_error(request, client_address)


class LoopbackFileServer:
    """Serve ``root`` on 127.0.0.1 (a free port) in a background thread until :meth:`close`.

    ``url`` is the base URL; ``log`` lists ``(method, path, Range header)`` per request and ``headers_log``
    the request headers (a dict per request, in the same order); ``bytes_sent`` counts response body bytes.
    Usable as a context manager.
    """

    def __init__(self, root: str | Path, handler: type[RangeRequestHandler] = RangeRequestHandler):
        self.root = Path(root)
        self._server = _Server(("127.0.0.1", 0), handler)
        self._server.root, self._server.log, self._server.bytes_sent = self.root, [], 0
        self._server.headers_log, self._server.counts = [], {}
        self._server.lock = threading.Lock()
        self._thread = threading.Thread(target=self._server.serve_forever, name="loopback-http", daemon=True)
        self._thread.start()
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"

    @property
    def log(self) -> list:
        return self._server.log

    @property
    def headers_log(self) -> list:
        return self._server.headers_log

    @property
    def bytes_sent(self) -> int:
        return self._server.bytes_sent

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._closed = True

    def __repr__(self) -> str:
        state = ", closed" if getattr(self, "_closed", False) else ""
        return (
            f"{type(self).__name__}({self.url!r}, root={str(self.root)!r}, requests={len(self.log)}, "
            f"bytes_sent={self.bytes_sent}{state})"
        )

    def __enter__(self) -> LoopbackFileServer:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
