"""A loopback Google Cloud Storage endpoint for ``gcsfs`` (``endpoint_url``), with a delay per request."""

from __future__ import annotations

import datetime
import json
import urllib.parse
from pathlib import Path
from typing import Any

from .latency_http import LatencyServer

__all__ = ["FakeGcsServer"]


class FakeGcsServer(LatencyServer):
    """Serve the files under ``root`` as the objects of a Google Cloud Storage endpoint:
    ``root/<bucket>/<key>`` is the object ``gs://<bucket>/<key>``, read by a real
    ``gcsfs.GCSFileSystem(endpoint_url=server.url, token="anon")``. Each answer comes after ``delay`` seconds
    and is counted as :class:`LatencyServer` counts (requests, peak in flight, bytes, log), and the media
    downloads in flight apart (:attr:`peak_downloads`).

    The parts of the JSON API that ``gcsfs`` calls to read: an object's metadata (``GET
    /storage/v1/b/<bucket>/o/<key>``: ``size``, ``generation``, ``etag``, ``updated``), a listing by prefix
    (``GET /storage/v1/b/<bucket>/o?prefix=``: what ``info`` asks alongside, for a directory) and the media
    download with a byte range (``GET /download/storage/v1/b/<bucket>/o/<key>?alt=media``). An object's
    ``generation`` is its file's modification time in nanoseconds: a file written anew is a new generation,
    and a request pinned to another one (``generation=``) is answered ``404``, as for an overwritten object of
    a bucket without versioning.

    Args:
        root: the folder whose subfolders are the buckets.
        delay: seconds each request waits before its answer starts (a round trip).
        bandwidth: the link's bytes per second for response bodies, or ``None`` for no cap.
    """

    def __init__(self, root: str | Path, delay: float = 0.05, bandwidth: float | None = None):
        self._downloading = 0
        #: ``Range`` headers of media downloads answered ``403`` (a failing read, which gcsfs does not retry).
        self.refused_ranges: set[str] = set()
        #: The most media downloads (``alt=media``: object bytes, not metadata) answered at once.
        self.peak_downloads = 0
        super().__init__(root, delay, bandwidth)
        handler = self._server.RequestHandlerClass
        server = self

        class Gcs(handler):  # type: ignore[misc, valid-type]
            def do_GET(self) -> None:
                download = self.path.startswith("/download/")
                if download:
                    server._downloads(+1)
                try:
                    super().do_GET()
                finally:
                    if download:
                        server._downloads(-1)

            def handle_request(self, head: bool) -> None:
                _answer(self, head)

        self._server.RequestHandlerClass = Gcs

    def _downloads(self, change: int) -> None:
        with self._count_lock:
            self._downloading += change
            self.peak_downloads = max(self.peak_downloads, self._downloading)

    def reset(self) -> None:
        """Zero the counters (:attr:`peak_downloads` too) and clear the log."""
        super().reset()
        with self._count_lock:
            self.peak_downloads = 0


def _metadata(bucket: str, key: str, path: Path) -> dict[str, Any]:
    st = path.stat()
    return {
        "kind": "storage#object",
        "id": f"{bucket}/{key}/{st.st_mtime_ns}",
        "name": key,
        "bucket": bucket,
        "generation": str(st.st_mtime_ns),
        "metageneration": "1",
        "contentType": "application/octet-stream",
        "size": str(st.st_size),
        "etag": f"{st.st_mtime_ns:x}",
        "updated": _rfc3339(st.st_mtime),
        "timeCreated": _rfc3339(st.st_mtime),
    }


def _rfc3339(seconds: float) -> str:
    moment = datetime.datetime.fromtimestamp(seconds, datetime.timezone.utc)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def _error(handler: Any, code: int, message: str, head: bool) -> None:
    body = json.dumps({"error": {"code": code, "message": message}}).encode()
    handler.send_body(code, body, {"Content-Type": "application/json"}, head=head)


def _answer(handler: Any, head: bool) -> None:
    """One request of the JSON API (see :class:`FakeGcsServer`)."""
    url = urllib.parse.urlsplit(handler.path)
    params = dict(urllib.parse.parse_qsl(url.query))
    parts = url.path.split("/")
    download = parts[1:2] == ["download"]
    if download:
        parts = parts[1:]
    # /storage/v1/b/<bucket>/o[/<key>]
    if parts[1:4] != ["storage", "v1", "b"] or len(parts) < 6 or parts[5] != "o":
        return _error(handler, 404, f"no such endpoint: {url.path}", head)
    bucket = urllib.parse.unquote(parts[4])
    root: Path = handler.server.root
    if len(parts) == 6:  # a listing: the objects under a prefix (none are folders here)
        prefix = params.get("prefix", "")
        folder = root / bucket
        items = [
            _metadata(bucket, str(p.relative_to(folder)), p)
            for p in sorted(folder.rglob("*"))
            if p.is_file() and str(p.relative_to(folder)).startswith(prefix)
        ]
        if "delimiter" in params:
            items = [i for i in items if "/" not in i["name"][len(prefix) :]]
        body = json.dumps({"kind": "storage#objects", "items": items, "prefixes": []}).encode()
        return handler.send_body(200, body, {"Content-Type": "application/json"}, head=head)
    key = urllib.parse.unquote("/".join(parts[6:]))
    path = root / bucket / key
    if not path.is_file():
        return _error(handler, 404, f"No such object: {bucket}/{key}", head)
    meta = _metadata(bucket, key, path)
    if params.get("generation") not in (None, meta["generation"]):
        return _error(handler, 404, f"No such object: {bucket}/{key}#{params['generation']}", head)
    if not download:
        return handler.send_body(
            200, json.dumps(meta).encode(), {"Content-Type": "application/json"}, head=head
        )
    if params.get("alt") != "media":
        return _error(handler, 400, "a download needs alt=media", head)
    if handler.headers.get("Range") in handler.server.owner.refused_ranges:
        return _error(handler, 403, "Forbidden", head)
    size = int(meta["size"])
    code, start, end = handler.requested_range(size, True)
    if code == 416:
        return handler.send_body(416, b"", {"Content-Range": f"bytes */{size}"}, head=head)
    with open(path, "rb") as f:
        f.seek(start)
        data = f.read(end - start + 1)
    if str(path.stat().st_mtime_ns) != meta["generation"]:  # written anew meanwhile: not that generation
        return _error(handler, 404, f"No such object: {bucket}/{key}#{params.get('generation')}", head)
    headers = {"x-goog-generation": meta["generation"], "ETag": meta["etag"], "Accept-Ranges": "bytes"}
    if code == 206:
        headers["Content-Range"] = f"bytes {start}-{end}/{size}"
    return handler.send_body(code, data, headers, head=head)
