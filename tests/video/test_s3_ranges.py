"""``s3://`` videos get the HTTP road's concurrency (issue 23): their objects are read at URLs presigned by
the user's own ``s3fs`` filesystem (:mod:`hf_mediaref.io._remote`), so a batch fetches the byte ranges it
needs with many requests in flight, as for ``http(s)`` and ``hf://`` videos, instead of reading through
s3fs's serial file object.

Nothing of s3fs or botocore is faked: ``fs.sign`` is local computation, and the endpoint (``endpoint_url`` in
the access's storage options, as for MinIO) is a real loopback Range server that answers every request after
a delay (:class:`LatencyServer`), serves ``root/<bucket>/<key>`` at ``/<bucket>/<key>`` and checks each
request's signature (query-string auth, as botocore presigns it here) with the test's secret: a wrong or
expired signature is refused with 403, as S3 does (s3fs's own requests, signed in a header, are checked by
their access key only). Assertions are on the requests the server counts (never on times);
every frame is compared with a plain front-to-back PyAV decode.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import os
import time
import urllib.parse

import pytest

pytest.importorskip("s3fs")

from hf_mediaref import MediaAccess, MediaRef
from hf_mediaref.errors import MediaNotFoundError, RemoteAccessError, RemoteChangedError
from hf_mediaref.io import _ranges as ranges
from hf_mediaref.io import _remote as remote
from hf_mediaref.io import _sources as sources
from hf_mediaref.io import open_media
from hf_mediaref.io._remote import remote_location
from hf_mediaref.testing import LatencyServer

from .test_remote_latency import VIDEOS, _check, _refs, decode_on_road, write_media

KEY, SECRET = "AKIAHFMEDIAREFTEST", "s3cr3t/never-shown+anywhere"


@pytest.fixture(autouse=True)
def _no_instance_metadata(monkeypatch):
    """botocore never asks a cloud's metadata service for credentials here (the tests give a key)."""
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")


@pytest.fixture(scope="module")
def media(tmp_path_factory):
    """The five videos of ``test_remote_latency`` in the bucket ``clips`` of a folder served as an endpoint:
    ``(endpoint root, videos)``."""
    root = tmp_path_factory.mktemp("s3")
    (root / "clips").mkdir()
    _, videos = write_media(root / "clips")
    return root, videos


class SigningServer(LatencyServer):
    """A :class:`LatencyServer` that answers only requests signed with :data:`SECRET` (query-string auth of
    ``GET /<bucket>/<key>``), and refuses signatures that expire before :attr:`not_before` (403)."""

    def __init__(self, root, delay: float = 0.05):
        super().__init__(root, delay)
        self.not_before = 0.0
        self.refused = 0
        handler = self._server.RequestHandlerClass
        server = self

        class Checked(handler):  # type: ignore[misc, valid-type]
            def handle_request(self, head: bool) -> None:
                authorization = self.headers.get("Authorization") or ""  # s3fs's own requests (the road
                if KEY in authorization:  # before) sign a header: checked by its access key only
                    return super().handle_request(head)
                if not server.signed(self.command, self.path):
                    with server._count_lock:
                        server.refused += 1
                    return self.send_body(403, b"<Error><Code>AccessDenied</Code></Error>", head=head)
                return super().handle_request(head)

        self._server.RequestHandlerClass = Checked

    def signed(self, method: str, url_path: str) -> bool:
        path, _, query = url_path.partition("?")
        params = dict(urllib.parse.parse_qsl(query))
        expires = params.get("Expires", "")
        if params.get("AWSAccessKeyId") != KEY or not expires.isdigit() or int(expires) < self.not_before:
            return False
        resource = path + (f"?versionId={params['versionId']}" if "versionId" in params else "")
        digest = hmac.new(SECRET.encode(), f"{method}\n\n\n{expires}\n{resource}".encode(), hashlib.sha1)
        return hmac.compare_digest(base64.b64encode(digest.digest()).decode(), params.get("Signature", ""))


def _options(endpoint: str, **more) -> dict:
    return {"s3": {"key": KEY, "secret": SECRET, "endpoint_url": endpoint, **more}}


def _access(endpoint: str) -> MediaAccess:
    return MediaAccess(root="s3://clips/", storage_options=_options(endpoint))


def _relative(refs: list[MediaRef]) -> list[MediaRef]:
    return [MediaRef(r.uri.split("/", 1)[1], r.pts_ns) for r in refs]


def _pending(url: str) -> int:
    return sum(ranges.pending(key) for key, _ in list(ranges._entries) if key.split("#")[0] == url)


@pytest.mark.parametrize("state", ["cold", "warm"])
def test_a_batch_of_s3_refs_fetches_its_ranges_together(media, cold, state, monkeypatch):
    """Refs into five ``s3://`` videos: their range requests go out together (more in flight than videos), in
    fewer requests than s3fs's file object (the road before); every request is signed; every frame exact;
    nothing left fetched."""
    root, _ = media
    with SigningServer(root, delay=0.15) as server:
        access = _access(server.url)
        assert access.public_only(f"{server.url}/clips/a.mp4")  # the data's rule: not for the endpoint
        refs, picks = _refs(media, "x")
        refs = _relative(refs)
        counts = {}
        for road in ("fsspec", "presigned"):
            seam = "_location" if road == "fsspec" else None  # the road before: s3fs's S3File reads
            store = root.parent / f"store-{road}-{state}"
            warm = state == "warm"
            frames = decode_on_road(monkeypatch, refs, server, store, warm=warm, seam=seam, access=access)
            _check(media, frames, picks)
            counts[road] = server.requests, server.peak_in_flight
        assert server.refused == 0
        (before, _), (together, peak) = counts["fsspec"], counts["presigned"]
        assert peak >= len(VIDEOS), counts
        assert together < before, counts
        assert _pending(f"{server.url}/clips/long.mp4") == 0  # untaken ranges released with the batch


def test_the_endpoint_is_the_accesss_and_the_secret_is_never_shown(media, caplog):
    """The endpoint comes from the access's storage options, never from a ref: a ref naming a host as its
    bucket is a key path at the configured endpoint (and the other server sees nothing). Neither the secret
    nor a signature appears in a location's repr, an error or the log."""
    root, _ = media
    caplog.set_level(logging.DEBUG, logger="hf_mediaref")
    with SigningServer(root, delay=0) as server, SigningServer(root, delay=0) as other:
        options = _options(server.url)
        other_host = urllib.parse.urlsplit(other.url).netloc
        with pytest.raises(MediaNotFoundError) as missing:
            with open_media(
                f"s3://{other_host.split(':')[0]}/clips/a.mp4", storage_options=options, head=True
            ):
                pass
        with pytest.raises(MediaNotFoundError) as missing2:
            with open_media("s3://clips/nope.mp4", storage_options=options, head=True):
                pass
        assert other.requests == 0 and server.requests == 2, server.log
        assert missing2.value.uri == "s3://clips/nope.mp4"  # the ref, and the URL in the message
        assert f"{server.url}/clips/nope.mp4" in str(missing2.value)
        assert [p.split("?")[0] for _, p, _ in server.log] == ["/127.0.0.1/clips/a.mp4", "/clips/nope.mp4"]
        fs, path = sources._fsspec_filesystem("s3://clips/a.mp4", options)
        where = remote_location("s3://clips/a.mp4", fs, path)
        assert where is not None and where.url == f"{server.url}/clips/a.mp4" and where.query
        shown = [repr(where), str(missing.value), str(missing2.value), caplog.text]
        shown += [str(missing.value.uri), str(missing2.value.uri)]
        for text in shown:
            assert SECRET not in text and "Signature" not in text, text
        assert "Signature" in server.log[0][1]  # it went on the wire


def test_an_s3_object_read_stays_on_the_version_it_opened(media, tmp_path):
    """The object changes (new bytes, same key) while it is read: the read that follows raises
    RemoteChangedError instead of mixing versions; ranges fetched of the old version are never served to a
    file opened on the new one."""
    root, _ = media
    (tmp_path / "b").mkdir()
    path = tmp_path / "b" / "a.mp4"
    data = (root / "clips" / "a.mp4").read_bytes()
    path.write_bytes(data)
    uri, options = "s3://b/a.mp4", _options("")
    with SigningServer(tmp_path, delay=0) as server:
        options["s3"]["endpoint_url"] = server.url
        assert sources.prefetch_media(uri, [(4096, 8192, 1)], 4, storage_options=options) == 1
        until = time.monotonic() + 10
        while (server.requests, server.in_flight) != (1, 0) and time.monotonic() < until:
            time.sleep(0.01)
        with open_media(uri, storage_options=options, head=True) as f:
            assert f.read(100) == data[:100]
            assert server.requests == 2  # its own head (not fetched ahead)
            st = path.stat()
            path.write_bytes(bytes(reversed(data)))
            os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
            f.seek(5000)
            assert f.read(100) == data[5000:5100]  # fetched ahead (signed earlier), of the version opened
            f.seek(len(data) - 1000)
            with pytest.raises(RemoteChangedError):
                f.read(100)
        assert _pending(f"{server.url}/b/a.mp4") == 0
        with open_media(uri, storage_options=options, head=True) as f:
            assert f.read(100) == bytes(reversed(data))[:100]


def test_an_expired_signature_is_renewed_and_a_refused_one_is_an_error(media, monkeypatch):
    """A container stays open past its URL's signature: the read that the endpoint refuses (403) signs anew
    once and goes on; a read refused again, and credentials the endpoint refuses, raise RemoteAccessError
    naming the URL, not the signature."""
    root, _ = media
    data = (root / "clips" / "long.mp4").read_bytes()
    with SigningServer(root, delay=0) as server:
        options = _options(server.url)
        with open_media("s3://clips/long.mp4", storage_options=options, head=True) as f:
            assert f.read(100) == data[:100]
            first = server.log[-1][1]
            expires = int(urllib.parse.parse_qs(first.split("?")[1])["Expires"][0])
            server.not_before = expires + 1  # the signature of the open has expired
            monkeypatch.setattr(remote, "S3_EXPIRY", remote.S3_EXPIRY + 60)  # the next one expires later
            f.seek(20_000)
            assert f.read(1000) == data[20_000:21_000]
            assert server.refused == 1 and server.log[-1][1] != first
            server.not_before = expires + 3600  # and that one too: refused after its renewal
            f.seek(5_000)  # not fetched yet
            with pytest.raises(RemoteAccessError) as again:
                f.read(1000)
            assert server.refused == 3 and "403" in str(again.value)
            assert "Signature" not in str(again.value) and SECRET not in str(again.value)
        server.not_before = 0
        wrong = _options(server.url, secret="not-the-secret")
        with pytest.raises(RemoteAccessError) as refused:
            with open_media("s3://clips/long.mp4", storage_options=wrong, head=True):
                pass
        assert "403" in str(refused.value) and refused.value.uri == "s3://clips/long.mp4"
        assert "Signature" not in str(refused.value) and "not-the-secret" not in str(refused.value)


def test_anonymous_and_version_pinned_objects(media):
    """``anon=True``: the plain URL of the object, nothing signed; a ``?versionId=`` path of a
    ``version_aware`` filesystem keeps its version in the URL (and its signature covers it)."""
    root, _ = media
    data = (root / "clips" / "a.mp4").read_bytes()
    with LatencyServer(root, delay=0) as plain, SigningServer(root, delay=0) as server:
        anon = {"s3": {"anon": True, "endpoint_url": plain.url}}
        with open_media("s3://clips/a.mp4", storage_options=anon, head=True) as f:
            assert f.read() == data
        assert {p for _, p, _ in plain.log} == {"/clips/a.mp4"}
        versioned = _options(server.url, version_aware=True)
        fs, path = sources._fsspec_filesystem("s3://clips/a.mp4?versionId=v1", versioned)
        where = remote_location("s3://clips/a.mp4?versionId=v1", fs, path)
        assert where is not None and where.url == f"{server.url}/clips/a.mp4?versionId=v1"
        with open_media("s3://clips/a.mp4?versionId=v1", storage_options=versioned, head=True) as f:
            assert f.read(8)[4:8] == b"ftyp"
        assert server.refused == 0 and all("versionId=v1" in p for _, p, _ in server.log)


def test_what_a_presigned_url_cannot_carry_stays_on_fsspec():
    """Requester-pays and SSE-C options are request parameters a presigned URL does not carry; keys with
    dot segments would be resolved by an HTTP client: those objects are read by s3fs's file object."""
    for options in (
        _options("http://127.0.0.1:9", requester_pays=True),
        _options("http://127.0.0.1:9", s3_additional_kwargs={"SSECustomerAlgorithm": "AES256"}),
    ):
        fs, path = sources._fsspec_filesystem("s3://clips/a.mp4", options)
        assert remote_location("s3://clips/a.mp4", fs, path) is None
    fs, path = sources._fsspec_filesystem("s3://clips/x/../a.mp4", _options("http://127.0.0.1:9"))
    assert remote_location("s3://clips/x/../a.mp4", fs, path) is None
