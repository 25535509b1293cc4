"""The loopback file server that tests and the benchmark read remote media from."""

from __future__ import annotations

import socket

import requests

from hf_mediaref.testing.http_server import LoopbackFileServer, RangeRequestHandler


def test_ranges_head_missing_and_byte_count(tmp_path):
    payload = bytes(range(256)) * 1024
    (tmp_path / "a.bin").write_bytes(payload)
    with LoopbackFileServer(tmp_path) as server:
        assert server.url.startswith("http://127.0.0.1:")
        whole = requests.get(f"{server.url}/a.bin", timeout=5)
        assert whole.status_code == 200 and whole.content == payload
        part = requests.get(f"{server.url}/a.bin", headers={"Range": "bytes=1000-1009"}, timeout=5)
        assert part.status_code == 206 and part.content == payload[1000:1010]
        assert part.headers["Content-Range"] == f"bytes 1000-1009/{len(payload)}"
        tail = requests.get(f"{server.url}/a.bin", headers={"Range": "bytes=262140-"}, timeout=5)
        assert tail.content == payload[-4:]
        head = requests.head(f"{server.url}/a.bin", timeout=5)
        assert (
            head.headers["Content-Length"] == str(len(payload)) and head.headers["Accept-Ranges"] == "bytes"
        )
        assert (
            requests.get(f"{server.url}/a.bin", headers={"Range": "bytes=999999-"}, timeout=5).status_code
            == 416
        )
        assert requests.get(f"{server.url}/nope.bin", timeout=5).status_code == 404
        assert server.bytes_sent == len(payload) + 10 + 4 + len(b"not found")
        assert [m for m, _, _ in server.log] == ["GET", "GET", "GET", "HEAD", "GET", "GET"]


def test_a_client_hanging_up_mid_body_is_not_an_error(tmp_path, capsys):
    (tmp_path / "big.bin").write_bytes(b"x" * (32 << 20))
    with LoopbackFileServer(tmp_path) as server:
        port = int(server.url.rsplit(":", 1)[1])
        with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
            sock.sendall(b"GET /big.bin HTTP/1.1\r\nHost: x\r\n\r\n")
            assert sock.recv(4096).startswith(b"HTTP/1.1 200")
        ok = requests.get(f"{server.url}/big.bin", headers={"Range": "bytes=0-3"}, timeout=5)
        assert ok.content == b"xxxx"  # still serving
        assert 0 < server.bytes_sent < (32 << 20) + 4  # counts what went out, not the whole file
    assert "Traceback" not in capsys.readouterr().err


class _SeenHandler(RangeRequestHandler):
    seen: list[str] = []

    def do_GET(self) -> None:
        self.seen.append(repr(self))
        super().do_GET()


def test_reprs_say_where_and_what(tmp_path):
    (tmp_path / "a.bin").write_bytes(b"abc")
    with LoopbackFileServer(tmp_path, handler=_SeenHandler) as server:
        requests.get(f"{server.url}/a.bin", timeout=5)
        assert repr(server) == (
            f"LoopbackFileServer({server.url!r}, root={str(tmp_path)!r}, requests=1, bytes_sent=3)"
        )
    assert repr(server).endswith(", closed)")
    assert _SeenHandler.seen[0].startswith("_SeenHandler('GET /a.bin' from 127.0.0.1:")
