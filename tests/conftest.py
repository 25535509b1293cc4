"""Shared fixtures: generated media and a loopback HTTP server (127.0.0.1 only)."""

from __future__ import annotations

import os
import re
import time
from pathlib import Path

import pytest

from hf_mediaref.testing import write_image, write_video
from hf_mediaref.testing.http_server import LoopbackFileServer, RangeRequestHandler


def pytest_configure(config):
    """Stored keyframe indexes go to a temporary folder, never the user's cache (workers inherit it)."""
    import tempfile

    os.environ["HF_MEDIAREF_CACHE_DIR"] = tempfile.mkdtemp(prefix="hf_mediaref-test-cache-")
    # gcsfs's default (experimental zonal-bucket) class asks a bucket's layout over gRPC, which the loopback
    # GCS endpoint (hf_mediaref.testing.fake_gcs) does not speak: the tests read with its core filesystem
    os.environ.setdefault("GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT", "false")


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


class _Handler(RangeRequestHandler):
    """Serves the media directory with Range support. Special prefixes: ``/slow/`` (stalls), ``/fail/``
    (always 500), ``/flaky/`` (503 on the first two requests of a path), ``/norange/`` (ignores Range),
    ``/forbidden/`` (403)."""

    flaky_counts: dict = {}

    def handle_request(self, head: bool) -> None:
        m = re.match(r"^/(slow|fail|flaky|norange|forbidden)(/.*)$", self.path)
        mode, rel = (m.group(1), m.group(2)) if m else ("plain", self.path)
        if mode == "slow":
            time.sleep(3)
        if mode == "fail":
            return self.send_body(500, b"boom", head=head)
        if mode == "forbidden":
            return self.send_body(403, b"no", head=head)
        if mode == "flaky":
            n = self.flaky_counts.get(self.path, 0)
            self.flaky_counts[self.path] = n + 1
            if n < 2:
                return self.send_body(503, b"try again", head=head)
        return self.serve_file(rel, head, ranges=mode != "norange")


@pytest.fixture(scope="session")
def http_server(media_dir):
    """A loopback HTTP server over the session's media directory. ``server.url + "/name"`` serves a file."""
    server = LoopbackFileServer(media_dir, handler=_Handler)
    yield server
    server.close()


@pytest.fixture
def fast_http(monkeypatch):
    """Short timeouts and quick back-off so failure tests finish fast."""
    from hf_mediaref.io import http_settings

    monkeypatch.setattr(http_settings, "timeout", 0.5)
    monkeypatch.setattr(http_settings, "backoff", 0.01)
    monkeypatch.setattr(http_settings, "retries", 2)
    return http_settings


@pytest.fixture
def fake_dns(monkeypatch):
    """DNS for the trust-boundary tests: ``rebind.test`` resolves to 127.0.0.1 and ``public.test`` to
    127.0.0.2, which the connect-time check treats as a public address (a stand-in: nothing public is
    reachable offline). The HTTP sessions start empty."""
    import socket
    import threading

    from hf_mediaref.io import _http, _network

    real = socket.getaddrinfo
    names = {"rebind.test": "127.0.0.1", "public.test": "127.0.0.2"}

    def getaddrinfo(host, *args, **kwargs):
        return real(names.get(host, host), *args, **kwargs)

    public = _network.is_public_address
    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    monkeypatch.setattr(_http, "is_public_address", lambda a: a == "127.0.0.2" or public(a))
    monkeypatch.setattr(_http, "_local", threading.local())  # fresh sessions: no pooled connections
