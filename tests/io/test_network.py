"""The network side of the trust boundary: which addresses are public, and hosts named by untrusted refs
reached at public addresses only, checked on the connected socket (DNS answers and redirects included)."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from hf_mediaref.errors import UntrustedRefError
from hf_mediaref.io import MediaAccess, is_private_host, is_public_address, read_bytes, reading_with

DATASET = MediaAccess("/nonexistent-dataset-root")  # a dataset's access: allows no host beyond public ones


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1",
        "10.0.0.1",
        "172.16.5.4",
        "192.168.1.1",
        "169.254.169.254",
        "100.64.0.1",
        "0.0.0.0",
        "224.0.0.1",
        "240.0.0.1",
        "255.255.255.255",
        "192.0.2.1",
        "::1",
        "::",
        "fe80::1%eth0",
        "fc00::1",
        "::ffff:127.0.0.1",
        "2002:7f00:1::",  # 6to4 of 127.0.0.1
        "64:ff9b::a00:1",  # NAT64 of 10.0.0.1
        "2001:db8::1",
        "not an address",
    ],
)
def test_non_public_addresses(address):
    assert not is_public_address(address)


@pytest.mark.parametrize("address", ["8.8.8.8", "1.1.1.1", "2606:4700:4700::1111", "::ffff:8.8.8.8"])
def test_public_addresses(address):
    assert is_public_address(address)


def test_private_hosts_by_their_name():
    assert all(map(is_private_host, ["localhost", "LOCALHOST.", "a.localhost", "[::1]", "10.0.0.1"]))
    assert not any(map(is_private_host, ["example.com", "8.8.8.8", "2130706433"]))  # decided at connect


def _port(server) -> int:
    return int(server.url.rsplit(":", 1)[1].split("/")[0])


class _Redirect(BaseHTTPRequestHandler):
    target = ""

    def log_message(self, *args):
        pass

    def do_GET(self):
        self.server.log.append(self.path)
        self.send_response(302)
        self.send_header("Location", self.target)
        self.send_header("Content-Length", "0")
        self.end_headers()

    do_HEAD = do_GET


def test_a_host_name_resolving_to_a_private_address_is_refused_at_connect(
    http_server, png_image, fake_dns, fast_http
):
    url = f"http://rebind.test:{_port(http_server)}/img7.png"
    before = len(http_server.log)
    assert read_bytes(url)  # not guarded: a name like any other
    assert len(http_server.log) == before + 1
    with reading_with(DATASET):
        with pytest.raises(UntrustedRefError, match="non-public address 127.0.0.1") as info:
            read_bytes(url)
        assert info.value.uri == url
        assert len(http_server.log) == before + 1  # the server saw nothing
        with pytest.raises(UntrustedRefError, match="non-public address 127.0.0.1"):
            read_bytes(
                f"https://rebind.test:{_port(http_server)}/img7.png"
            )  # checked before the TLS handshake
        assert len(http_server.log) == before + 1
    with reading_with(DATASET.allowing([f"http://rebind.test:{_port(http_server)}/"])):
        assert read_bytes(url)  # an allowed prefix is exempt
    assert read_bytes(url)  # the rule was the call's: outside it, nothing is held (no process-wide state)


def test_the_rule_follows_the_access_not_the_process(http_server, png_image, fake_dns, fast_http):
    """An allowance given to one dataset's access does not hold another's hosts (the old host sets did)."""
    url = f"http://rebind.test:{_port(http_server)}/img7.png"
    with reading_with(DATASET.allowing(["http://rebind.test:"])):
        assert read_bytes(url)
    with reading_with(DATASET), pytest.raises(UntrustedRefError):
        read_bytes(url)


def test_a_redirect_to_a_private_address_is_refused(http_server, png_image, fake_dns, fast_http):
    server = ThreadingHTTPServer(("127.0.0.2", 0), _Redirect)
    server.log = []
    _Redirect.target = f"http://127.0.0.1:{_port(http_server)}/img7.png"
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://public.test:{server.server_address[1]}/a.png"
        before = len(http_server.log)
        with reading_with(DATASET), pytest.raises(UntrustedRefError, match="127.0.0.1"):
            read_bytes(url)
        assert server.log == ["/a.png"] and len(http_server.log) == before  # the redirect was not followed
    finally:
        server.shutdown()
        server.server_close()


def test_numeric_host_forms_are_checked_where_they_connect(http_server, png_image, fake_dns, fast_http):
    """``127.1`` or ``2130706433`` are no IP literals to ``ipaddress``, but the socket reaches 127.0.0.1."""
    port = _port(http_server)
    before = len(http_server.log)
    for host in ("127.1", "2130706433"):
        assert not is_private_host(host)
        with reading_with(DATASET), pytest.raises(UntrustedRefError, match="non-public"):
            read_bytes(f"http://{host}:{port}/img7.png")
    assert len(http_server.log) == before
