"""Byte sources: local, file://, HTTP (loopback server), memory:// (fsspec), data:, and their errors."""

from __future__ import annotations

import contextlib

import fsspec
import pytest

from hf_mediaref.errors import (
    MediaNotFoundError,
    RemoteAccessError,
    UnreadableMediaError,
    UnsupportedURIError,
)
from hf_mediaref.io import open_media, read_bytes, uri_exists
from hf_mediaref.testing import write_image


@pytest.fixture
def memfs():
    fs = fsspec.filesystem("memory")
    yield fs
    fs.store.clear()
    fs.pseudo_dirs.clear()
    fs.pseudo_dirs.append("")


def test_local_and_file_uri(png_image):
    data = png_image.read_bytes()
    assert read_bytes(str(png_image)) == data
    assert read_bytes(png_image.as_uri()) == data
    with open_media(png_image.as_uri()) as src:
        assert src == str(png_image)


def test_local_missing_and_directory(tmp_path):
    with pytest.raises(MediaNotFoundError, match="does not exist"):
        read_bytes(str(tmp_path / "x.png"))
    with pytest.raises(UnreadableMediaError, match="is a directory"):
        read_bytes(str(tmp_path))


def test_memory_fsspec(memfs, png_image):
    memfs.pipe("/clips/a.png", png_image.read_bytes())
    assert read_bytes("memory://clips/a.png") == png_image.read_bytes()
    assert uri_exists("memory://clips/a.png") and not uri_exists("memory://clips/b.png")
    with open_media("memory://clips/a.png") as f:
        f.seek(1)
        assert f.read(3) == b"PNG"
    with pytest.raises(MediaNotFoundError, match="memory://clips/b.png"):
        read_bytes("memory://clips/b.png")


def test_unsupported_scheme():
    with pytest.raises(UnsupportedURIError, match="nosuchscheme"):
        read_bytes("nosuchscheme://x/y.png")


def test_data_uri():
    assert read_bytes("data:,abc") == b"abc"
    with open_media("data:;base64,YWJj") as f:
        assert f.read() == b"abc"


class TestHttp:
    def test_get_and_exists(self, http_server, png_image):
        url = f"{http_server.url}/{png_image.name}"
        assert read_bytes(url) == png_image.read_bytes()
        assert uri_exists(url)
        assert not uri_exists(f"{http_server.url}/missing.png")

    def test_exists_is_not_a_download(self, http_server, png_image):
        start = len(http_server.log)
        assert uri_exists(f"{http_server.url}/{png_image.name}")
        assert [m for m, *_ in http_server.log[start:]] == ["HEAD"]

    def test_404_names_url(self, http_server):
        with pytest.raises(MediaNotFoundError, match=r"404.*missing\.png"):
            read_bytes(f"{http_server.url}/missing.png")

    def test_403_is_remote_access_error(self, http_server, png_image, fast_http):
        with pytest.raises(RemoteAccessError, match=r"403.*forbidden/"):
            read_bytes(f"{http_server.url}/forbidden/{png_image.name}")

    def test_retries_5xx_then_succeeds(self, http_server, png_image, fast_http):
        url = f"{http_server.url}/flaky/{png_image.name}?n=1"
        assert read_bytes(url) == png_image.read_bytes()
        assert sum(1 for _, p, _ in http_server.log if p.endswith("?n=1")) == 3

    def test_persistent_5xx(self, http_server, png_image, fast_http):
        with pytest.raises(RemoteAccessError, match="fail/"):
            read_bytes(f"{http_server.url}/fail/{png_image.name}")

    def test_slow_endpoint_times_out(self, http_server, png_image, fast_http):
        with pytest.raises(RemoteAccessError, match="slow/"):
            read_bytes(f"{http_server.url}/slow/{png_image.name}")

    def test_connection_refused(self, fast_http):
        with pytest.raises(RemoteAccessError, match="127.0.0.1:9"):
            read_bytes("http://127.0.0.1:9/a.png")

    def test_range_reads(self, http_server, media_dir):
        path = media_dir / "big.bin"
        payload = bytes(range(256)) * 4096  # 1 MiB
        path.write_bytes(payload)
        start, sent = len(http_server.log), http_server.bytes_sent
        with open_media(f"{http_server.url}/big.bin") as f:
            f.seek(500_000)
            assert f.read(10) == payload[500_000:500_010]
            f.seek(-5, 2)
            assert f.read() == payload[-5:]
            assert f.raw.bytes_read < len(payload)
            assert http_server.bytes_sent - sent == f.raw.bytes_read  # the server sent what was counted
        ranges = [r for m, _, r in http_server.log[start:] if m == "GET"]
        assert ranges and all(r and r.startswith("bytes=") for r in ranges)

    def test_read_ahead_grows_on_forward_reads_and_shrinks_after_a_seek(self, http_server, media_dir):
        payload = bytes(range(256)) * 16384  # 4 MiB
        (media_dir / "big4.bin").write_bytes(payload)
        start = len(http_server.log)
        with open_media(f"{http_server.url}/big4.bin") as f:
            chunks = []
            while chunk := f.read(32 << 10):  # FFmpeg's read size
                chunks.append(chunk)
            assert b"".join(chunks) == payload
            assert f.raw.bytes_read == len(payload) and f.raw.requests <= 8  # 32K, 64K, 128K, ... 2M
            before = f.raw.bytes_read
            f.seek(1_000_000)
            assert f.read(100) == payload[1_000_000:1_000_100]
            assert f.raw.bytes_read - before == 32 << 10  # a seek restarts at the smallest read-ahead
        ranges = [r[len("bytes=") :].split("-") for _, _, r in http_server.log[start:] if r]
        sizes = [int(b) - int(a) + 1 for a, b in ranges]
        assert sizes[:4] == [32 << 10, 64 << 10, 128 << 10, 256 << 10]

    def test_expected_read_is_one_request(self, http_server, media_dir):
        """The decoder says how many bytes a keyframe block holds: one request fetches it, and reading a
        little past it does not fetch as much again."""
        payload = bytes(range(256)) * 4096
        (media_dir / "block.bin").write_bytes(payload)
        with open_media(f"{http_server.url}/block.bin") as f:
            f.raw.expect(300_000)
            f.seek(100_000)
            start = len(http_server.log)
            assert f.read(300_000) == payload[100_000:400_000]
            assert f.read(10) == payload[400_000:400_010]
        sizes = [
            int(b) - int(a) + 1
            for a, b in (r[len("bytes=") :].split("-") for _, _, r in http_server.log[start:])
        ]
        assert sizes == [300_000, 64 << 10]

    def _gets(self, http_server, start):
        ranges = [r[len("bytes=") :].split("-") for m, _, r in http_server.log[start:] if m == "GET"]
        return [(int(a), int(b)) for a, b in ranges]

    def test_a_reader_of_short_reads_reads_the_head_small(self, http_server, media_dir):
        """A decoder that takes short reads (FFmpeg through ``read1``): the head is read in 4 KiB, the reads
        that continue it double from there; a seek restarts at the usual 32 KiB."""
        payload = bytes(range(256)) * 1024
        (media_dir / "head.bin").write_bytes(payload)
        start = len(http_server.log)
        with open_media(f"{http_server.url}/head.bin") as f:
            f.raw.short_reads = True
            got = [f.read1(32 << 10) for _ in range(4)]
            assert [len(g) for g in got] == [4096, 8192, 16384, 32768]
            assert b"".join(got) == payload[: 60 << 10]
            f.seek(200_000)
            assert f.read1(100) == payload[200_000:200_100]
        assert self._gets(http_server, start) == [
            (0, 4095),
            (4096, 12287),
            (12288, 28671),
            (28672, 61439),
            (200_000, 200_000 + (32 << 10) - 1),
        ]

    def test_server_without_ranges_falls_back_to_whole_download(self, http_server, png_image):
        with open_media(f"{http_server.url}/norange/{png_image.name}") as f:
            f.seek(1)
            assert f.read(3) == b"PNG"


def test_http_image_end_to_end(http_server, media_dir):
    from hf_mediaref.io import load_image_rgb
    from hf_mediaref.testing import read_index

    write_image(media_dir / "web42.webp", 42, format="WEBP", quality=95)
    assert read_index(load_image_rgb(f"{http_server.url}/web42.webp")) == 42


@pytest.mark.parametrize("kind", ["directory", "fifo", "socket", "char_device"])
def test_special_files_are_unreadable_not_missing_and_never_opened(kind, tmp_path):
    import os
    import socket

    path, sock = str(tmp_path / "x.mp4"), None
    if kind == "directory":
        os.mkdir(path)
    elif kind == "fifo":
        os.mkfifo(path)  # opening it would block: it must never be opened
    elif kind == "socket":
        sock = socket.socket(socket.AF_UNIX)
        sock.bind(path)
    else:
        path = "/dev/null"
    try:
        for read in (read_bytes, lambda uri: open_media(uri).__enter__()):
            with pytest.raises(UnreadableMediaError) as info:
                read(path)
            assert info.value.uri == path and isinstance(info.value, OSError)
        assert not uri_exists(path)
    finally:
        if sock is not None:
            sock.close()


def test_unreadable_file(tmp_path, png_image):
    import os

    path = tmp_path / "secret.png"
    path.write_bytes(png_image.read_bytes())
    path.chmod(0)
    try:
        if os.access(path, os.R_OK):
            pytest.skip("this user (root) reads files without read permission")
        with pytest.raises(UnreadableMediaError, match="permission"):
            read_bytes(str(path))
    finally:
        path.chmod(0o644)


def test_nul_byte_in_a_path():
    with pytest.raises(UnsupportedURIError, match="NUL") as info:
        read_bytes("/data/a\x00.png")
    assert info.value.uri == "/data/a\x00.png"
    assert not uri_exists("/data/a\x00.png")


def test_a_filesystem_that_fails_to_connect_is_a_remote_error():
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    uri = f"ftp://127.0.0.1:{port}/a.png"  # fsspec's FTP filesystem connects when it is built
    with pytest.raises(RemoteAccessError, match="Connection refused") as info:
        read_bytes(uri)
    assert info.value.uri == uri


@pytest.mark.parametrize("uri", ["gopher://127.0.0.1/a.png", "nosuchproto://bucket/a.png"])
def test_unknown_schemes_are_unsupported(uri):
    with pytest.raises(UnsupportedURIError, match="unsupported URI scheme") as info:
        read_bytes(uri)
    assert info.value.uri == uri


@contextlib.contextmanager
def _ranged_file(store, name, payload, http_server, media_dir, tmp_path):
    """``payload`` as a remote file of ``store``: ``(its URI, its storage options, the byte ranges its server
    was asked for since)``. ``http``: the loopback HTTP server; ``gs``: a loopback GCS endpoint read by gcsfs
    (tests/conftest.py keeps gcsfs on its core filesystem)."""
    if store == "http":
        (media_dir / name).write_bytes(payload)
        start = len(http_server.log)
        yield f"{http_server.url}/{name}", None, lambda: _asked(http_server.log[start:])
        return
    pytest.importorskip("gcsfs")
    from hf_mediaref.testing.fake_gcs import FakeGcsServer

    (tmp_path / "clips").mkdir()
    (tmp_path / "clips" / name).write_bytes(payload)
    with FakeGcsServer(tmp_path, delay=0.0) as server:
        options = {"endpoint_url": server.url, "token": "anon"}
        yield f"gs://clips/{name}", options, lambda: _asked(server.log, "/download/")


def _asked(log, prefix="/"):
    """``(first, last)`` of each ranged GET in a server's log (of paths starting with ``prefix``)."""
    ranges = [r[len("bytes=") :].split("-") for m, p, r in log if m == "GET" and r and p.startswith(prefix)]
    return [(int(a), int(b)) for a, b in ranges]


@pytest.mark.parametrize("store", ["http", "gs"])
@pytest.mark.parametrize("short_reads", [True, False])
def test_an_announced_range_is_one_request_and_nothing_past_it(
    http_server, media_dir, tmp_path, store, short_reads
):
    """The decoder announces the bytes of a span (from the index): the first read in them fetches up to their
    end in one request, reads are served from it exactly, a read elsewhere (a demuxer's cues) leaves the
    announcement for later, and a read past the end fetches little; a seek back into the range is served
    from it. The same for an HTTP Range file and a gs:// file (the class they share), so a decode drains at
    its span's last target packet on both."""
    payload = bytes(range(251)) * 4000  # ~1 MB, no period of a power of two
    with _ranged_file(store, "announced.bin", payload, http_server, media_dir, tmp_path) as (
        uri,
        options,
        asked,
    ):
        with open_media(uri, storage_options=options) as f:
            f.raw.short_reads = short_reads
            f.raw.announce(500_000 - 64, 600_000)
            f.seek(990_000)  # the cues, first
            assert f.read1(100) == payload[990_000:990_100]
            f.seek(500_000)
            parts = []
            while f.tell() < 600_000:
                parts.append(f.read1(32 << 10))  # FFmpeg's reads: short at the end of the range
            assert b"".join(parts) == payload[500_000:600_000]
            assert f.read1(32 << 10) == payload[600_000 : 600_000 + (4096 if short_reads else 32768)]
            f.seek(510_000)  # a demuxer seeking back into the block: no request
            assert f.read1(100) == payload[510_000:510_100]
        past = (600_000, 600_000 + 4095) if short_reads else (600_000, 600_000 + (64 << 10) - 1)
        assert asked() == [(990_000, len(payload) - 1), (500_000, 599_999), past]
