"""A loopback HTTP server that misbehaves as real servers do, chosen per request by the query string.

``FaultyFileServer(root)`` serves the files under ``root`` like :class:`~.http_server.LoopbackFileServer`,
and the query string of each URL picks its faults (they combine; every other query is ignored, so a test can
add ``id=...`` to get its own counters and its own cache keys). Counters are per full path (query included)
and count every request (HEAD and GET) to it, starting at 0:

- ``status=C1,C2,...``: the first requests are answered with these statuses, then the file is served
  (``status=503`` is "503 once, then 200"); ``retry_after=S`` adds a ``Retry-After: S`` header to them.
- ``fail=C``: every request is answered with status ``C`` (401, 403, 404, 429, ...).
- ``head=C``: every HEAD is answered with status ``C`` (403/405: HEAD refused, as presigned URLs do).
- ``trickle=S``: the body goes out ``trickle_bytes`` (default 1) bytes every ``S`` seconds.
- ``cap=N``: a 206 carries at most ``N`` bytes (with an honest ``Content-Range``).
- ``drop=N``: the first ``drops`` (default 1) GETs close the connection after ``N`` body bytes.
- ``shift=N``: a 206 serves the bytes from ``N`` past the requested start, saying so in ``Content-Range``.
- ``long206=N``: a 206 serves ``N`` bytes more than asked, saying so in ``Content-Range``.
- ``empty206=1``: a 206 with the asked ``Content-Range`` and no body (``Content-Length: 0``).
- ``ignorerange=1``: ranges are advertised (``Accept-Ranges: bytes``) but a ranged GET gets a 200, whole.
- ``norange=1``: no ``Accept-Ranges`` and no 206s (a server that cannot serve ranges).
- ``swap=NAME&after=K``: from request ``K`` on, the file ``NAME`` (under the root) is served instead: the
  remote file was replaced (another ETag, Last-Modified and size).
- ``ifrange=ignore``: ``If-Range`` is ignored (by default an ``If-Range`` naming another ETag gets a 200
  with the whole current file, as RFC 9110 says).
- ``redirect=loop``: every request is redirected (302) to itself.
- ``hugelen=N``: the headers declare ``Content-Length: N`` and the body is the file's bytes, then the
  connection closes (or, with ``hold=S``, stays silent for ``S`` seconds first).

127.0.0.1 only; for tests.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

from .http_server import LoopbackFileServer, RangeRequestHandler

__all__ = ["FaultyFileServer", "FaultyRequestHandler"]

_CHUNK = 64 << 10


class FaultyRequestHandler(RangeRequestHandler):
    """Serves files under ``server.root`` with the faults the query string names (see the module)."""

    def handle_request(self, head: bool) -> None:
        """Answer one request with the faults its query string asks for."""
        url_path, _, query = self.path.partition("?")
        q = {k: v[-1] for k, v in parse_qs(query).items()}
        n = self.count(self.path)
        retry = {"Retry-After": q["retry_after"]} if "retry_after" in q else {}
        if q.get("redirect") == "loop":
            return self.send_body(302, b"", {"Location": self.path}, head=head)
        if "fail" in q:
            return self.send_body(int(q["fail"]), b"no", retry, head=head)
        statuses = [int(s) for s in q.get("status", "").split(",") if s]
        if n < len(statuses):
            return self.send_body(statuses[n], b"not now", retry, head=head)
        if head and "head" in q:
            return self.send_body(int(q["head"]), b"", head=True)
        if "swap" in q and n >= int(q.get("after", 1)):
            url_path = "/" + q["swap"]
        return self._serve(self.resolve(url_path), q, head)

    def _serve(self, path: Path, q: dict, head: bool) -> None:
        if not path.is_file():
            return self.send_body(404, b"not found", head=head)
        st = path.stat()
        size = st.st_size
        ranges = "norange" not in q
        headers = self.file_headers(st, ranges)
        if_range = self.headers.get("If-Range")
        stale = bool(if_range) and if_range != headers["ETag"] and q.get("ifrange") != "ignore"
        ranged = ranges and "ignorerange" not in q and not stale  # If-Range of another version: all of it
        code, start, end = self.requested_range(size, ranged)
        if code == 416:
            return self.send_body(416, b"", {"Content-Range": f"bytes */{size}"}, head=head)
        if code == 206:
            if "shift" in q:
                start = min(start + int(q["shift"]), size - 1)
                end = min(end + int(q["shift"]), size - 1)
            if "long206" in q:
                end = min(end + int(q["long206"]), size - 1)
            if "cap" in q:
                end = min(end, start + int(q["cap"]) - 1)
            headers["Content-Range"] = f"bytes {start}-{end}/{size}"
        length = 0 if code == 206 and "empty206" in q else end - start + 1
        self._send_head(code, headers, int(q.get("hugelen", length)))
        if head or not length:
            return None
        limit = length
        if "drop" in q and self.count(("drop", self.path)) < int(q.get("drops", 1)):
            limit = min(limit, int(q["drop"]))
        self._stream(path, start, limit, q)
        if limit < length or "hugelen" in q:
            time.sleep(float(q.get("hold", 0)))
            self.close_connection = True  # the client sees the body end short of its Content-Length
        return None

    def _stream(self, path: Path, start: int, count: int, q: dict) -> None:
        trickle = float(q.get("trickle", 0))
        piece = int(q.get("trickle_bytes", 1)) if trickle else _CHUNK
        with open(path, "rb") as f:
            f.seek(start)
            while count > 0:
                chunk = f.read(min(piece, count))
                if not chunk:
                    break
                self._write(chunk)
                count -= len(chunk)
                if trickle:
                    time.sleep(trickle)


class FaultyFileServer(LoopbackFileServer):
    """A :class:`~.http_server.LoopbackFileServer` with :class:`FaultyRequestHandler` (127.0.0.1 only).

    Args:
        root: the directory whose files are served.
    """

    def __init__(self, root: str | Path, handler: type[RangeRequestHandler] = FaultyRequestHandler):
        super().__init__(root, handler)

    def requests_for(self, marker: str, method: str | None = None) -> list[tuple[str, str, Any]]:
        """The logged ``(method, path, Range)`` of requests whose path contains ``marker`` (an ``id=...``).

        Args:
            marker: a substring of the path, such as the test's ``id=`` query.
            method: keep only this method (``"GET"``, ``"HEAD"``).

        Returns:
            The matching entries of :attr:`log`, in order.
        """
        return [e for e in list(self.log) if marker in e[1] and (method is None or e[0] == method)]

    def headers_for(self, marker: str) -> list[dict]:
        """The request headers (a dict each) of the requests whose path contains ``marker``, in order.

        Args:
            marker: a substring of the path, such as the test's ``id=`` query.

        Returns:
            The matching entries of :attr:`headers_log`.
        """
        log, headers = list(self.log), list(self.headers_log)
        return [h for e, h in zip(log, headers) if marker in e[1]]
