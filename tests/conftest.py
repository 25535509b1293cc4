"""Shared fixtures: generated media and a loopback HTTP server (127.0.0.1 only)."""

from __future__ import annotations

import os
import re
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from hf_mediaref.testing import write_image, write_video


def pytest_collection_modifyitems(config, items):
    """TorchCodec tests skip when it cannot load, unless HF_MEDIAREF_REQUIRE_TORCHCODEC=1 (CI)."""
    if not any(item.get_closest_marker("torchcodec") for item in items):
        return
    try:
        from torchcodec.decoders import VideoDecoder  # noqa: F401
        reason = None
    except Exception as exc:  # torchcodec raises OSError/RuntimeError when its libraries don't load
        reason = f"torchcodec cannot load: {type(exc).__name__}: {str(exc)[:200]}"
    if reason is None:
        return
    if os.environ.get("HF_MEDIAREF_REQUIRE_TORCHCODEC") == "1":
        raise pytest.UsageError(f"HF_MEDIAREF_REQUIRE_TORCHCODEC=1 but {reason}")
    skip = pytest.mark.skip(reason=reason)
    for item in items:
        if item.get_closest_marker("torchcodec"):
            item.add_marker(skip)


# --------------------------------------------------------------------------------------------- media


@pytest.fixture(scope="session")
def media_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("media")


@pytest.fixture(scope="session")
def h264_video(media_dir):
    """30 frames, 30 fps, 96x128 H.264 in MP4, a keyframe every 10 frames, no B-frames."""
    return write_video(media_dir / "h264.mp4", 30, fps=30, gop=10)


@pytest.fixture(scope="session")
def png_image(media_dir) -> Path:
    return write_image(media_dir / "img7.png", 7)


# --------------------------------------------------------------------------------------------- HTTP


class _Handler(BaseHTTPRequestHandler):
    """Serves ``root`` with Range support. Special prefixes: ``/slow/`` (stalls), ``/fail/`` (always 500),
    ``/flaky/`` (500 on the first two requests of a path), ``/norange/`` (ignores Range), ``/forbidden/`` (403)."""

    root: Path
    log: list
    flaky_counts: dict
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):  # keep test output clean
        pass

    def _route(self) -> tuple[str, Path]:
        m = re.match(r"^/(slow|fail|flaky|norange|forbidden)(/.*)$", self.path)
        mode, rel = (m.group(1), m.group(2)) if m else ("plain", self.path)
        return mode, self.root / rel.lstrip("/").split("?")[0]

    def _send(self, code: int, body: bytes = b"", headers: dict | None = None, head: bool = False):
        self.send_response(code)
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if not head:
            self.wfile.write(body)

    def _serve(self, head: bool):
        mode, path = self._route()
        self.log.append((self.command, self.path, self.headers.get("Range")))
        if mode == "slow":
            time.sleep(3)
        if mode == "fail":
            return self._send(500, b"boom", head=head)
        if mode == "forbidden":
            return self._send(403, b"no", head=head)
        if mode == "flaky":
            n = self.flaky_counts.get(self.path, 0)
            self.flaky_counts[self.path] = n + 1
            if n < 2:
                return self._send(503, b"try again", head=head)
        if not path.is_file():
            return self._send(404, b"not found", head=head)
        data = path.read_bytes()
        rng = self.headers.get("Range")
        if rng and mode != "norange":
            m = re.match(r"bytes=(\d+)-(\d*)", rng)
            start = int(m.group(1))
            end = int(m.group(2)) if m.group(2) else len(data) - 1
            end = min(end, len(data) - 1)
            return self._send(206, data[start : end + 1], {"Accept-Ranges": "bytes",
                              "Content-Range": f"bytes {start}-{end}/{len(data)}"}, head=head)
        headers = {} if mode == "norange" else {"Accept-Ranges": "bytes"}
        return self._send(200, data, headers, head=head)

    def do_GET(self):
        self._serve(head=False)

    def do_HEAD(self):
        self._serve(head=True)


class HttpServer:
    def __init__(self, root: Path):
        handler = type("Handler", (_Handler,), {"root": root, "log": [], "flaky_counts": {}})
        self.handler = handler
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        self.root = root
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    @property
    def log(self) -> list:
        return self.handler.log

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="session")
def http_server(media_dir):
    """A loopback HTTP server over the session's media directory. ``server.url + "/name"`` serves a file."""
    server = HttpServer(media_dir)
    yield server
    server.close()


@pytest.fixture
def fast_http(monkeypatch):
    """Short timeouts and quick back-off so failure tests finish fast."""
    from hf_mediaref.io import http

    monkeypatch.setattr(http.settings, "timeout", 0.5)
    monkeypatch.setattr(http.settings, "backoff", 0.01)
    monkeypatch.setattr(http.settings, "retries", 2)
    return http.settings
