"""The fault-injection server: each fault the query string names, seen with plain ``requests``."""

from __future__ import annotations

import pytest
import requests

from hf_mediaref.testing.faulty_http import FaultyFileServer

PAYLOAD = bytes(range(256)) * 64  # 16 KiB


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    root = tmp_path_factory.mktemp("faulty-server")
    (root / "a.bin").write_bytes(PAYLOAD)
    (root / "b.bin").write_bytes(b"other" * 100)
    with FaultyFileServer(root) as srv:
        yield srv


def _get(url: str, start: int | None = None, end: int | None = None, **headers: str) -> requests.Response:
    if start is not None:
        headers["Range"] = f"bytes={start}-{'' if end is None else end}"
    return requests.get(url, headers=headers, timeout=5)


def test_healthy_and_logged(server):
    r = _get(f"{server.url}/a.bin?id=ok", 10, 19)
    assert r.status_code == 206 and r.content == PAYLOAD[10:20]
    assert server.requests_for("id=ok") == [("GET", "/a.bin?id=ok", "bytes=10-19")]
    assert server.headers_for("id=ok")[0]["Range"] == "bytes=10-19"


def test_range_faults(server):
    capped = _get(f"{server.url}/a.bin?cap=100", 0, 999)
    assert capped.headers["Content-Range"] == f"bytes 0-99/{len(PAYLOAD)}" and capped.content == PAYLOAD[:100]
    shifted = _get(f"{server.url}/a.bin?shift=5", 0, 9)
    assert shifted.headers["Content-Range"].startswith("bytes 5-14/") and shifted.content == PAYLOAD[5:15]
    longer = _get(f"{server.url}/a.bin?long206=3", 0, 9)
    assert longer.headers["Content-Range"].startswith("bytes 0-12/") and len(longer.content) == 13
    empty = _get(f"{server.url}/a.bin?empty206=1", 0, 9)
    assert empty.status_code == 206 and empty.content == b""
    whole = _get(f"{server.url}/a.bin?ignorerange=1", 0, 9)
    assert whole.status_code == 200 and whole.headers["Accept-Ranges"] == "bytes" and whole.content == PAYLOAD


def test_status_faults(server):
    assert [_get(f"{server.url}/a.bin?status=503,429&id=s").status_code for _ in range(3)] == [503, 429, 200]
    assert _get(f"{server.url}/a.bin?fail=401").status_code == 401
    assert requests.head(f"{server.url}/a.bin?head=405", timeout=5).status_code == 405
    assert _get(f"{server.url}/a.bin?head=405").status_code == 200
    r = _get(f"{server.url}/a.bin?status=503&retry_after=2&id=ra")
    assert r.headers["Retry-After"] == "2"
    with pytest.raises(requests.TooManyRedirects):
        _get(f"{server.url}/a.bin?redirect=loop")


def test_drop_swap_and_if_range(server):
    with pytest.raises(requests.exceptions.ChunkedEncodingError):  # requests' name for a short body
        _get(f"{server.url}/a.bin?drop=1000&id=d")
    assert _get(f"{server.url}/a.bin?drop=1000&id=d").content == PAYLOAD  # once, then healthy
    first = _get(f"{server.url}/a.bin?swap=b.bin&after=1&id=w")
    second = _get(f"{server.url}/a.bin?swap=b.bin&after=1&id=w")
    assert first.content == PAYLOAD and second.content == b"other" * 100
    assert first.headers["ETag"] != second.headers["ETag"]
    stale = _get(f"{server.url}/a.bin", 0, 9, **{"If-Range": '"not-the-etag"'})
    assert stale.status_code == 200 and stale.content == PAYLOAD  # If-Range of another version: all of it
    fresh = _get(f"{server.url}/a.bin", 0, 9, **{"If-Range": first.headers["ETag"]})
    assert fresh.status_code == 206
    ignored = _get(f"{server.url}/a.bin?ifrange=ignore", 0, 9, **{"If-Range": '"x"'})
    assert ignored.status_code == 206
