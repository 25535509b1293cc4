"""``hf://`` videos get the HTTP road's concurrency (issue 23): their files are read at the Hub's resolve URLs
(:mod:`hf_mediaref.io._hub`), so a batch fetches the byte ranges it needs with many requests in flight, as for
``http(s)`` videos, instead of reading through ``HfFileSystem``'s serial file object.

The Hub's network API is faked at the ``HfApi`` / ``HfFileSystem`` boundary (:class:`FakeHub`); its endpoint
is a real loopback HTTP server that answers every request after a delay (:class:`LatencyServer`), serving the
repos at their resolve URLs. Assertions are on the requests the server counts (never on times); every frame
is compared with a plain front-to-back PyAV decode.
"""

from __future__ import annotations

import os
import shutil
import time

import pytest

pytest.importorskip("huggingface_hub")

import huggingface_hub

from hf_mediaref import MediaAccess, MediaRef, batch_decode
from hf_mediaref.errors import DecodeTimeoutError, MediaNotFoundError, RemoteChangedError
from hf_mediaref.io import _ranges as ranges
from hf_mediaref.io import _sources as sources
from hf_mediaref.io import open_media
from hf_mediaref.testing import LatencyServer
from hf_mediaref.testing.fake_hub import FakeHub
from hf_mediaref.testing.http_server import LoopbackFileServer, RangeRequestHandler
from hf_mediaref.video import cleanup_cache

from .test_remote_latency import VIDEOS, _check, _refs, decode_on_road, write_media

TOKEN = "hf_secret_token"


@pytest.fixture(scope="module")
def media(tmp_path_factory):
    """The five videos of ``test_remote_latency``, their pts and frames (:func:`write_media`)."""
    return write_media(tmp_path_factory.mktemp("hub-media"))


@pytest.fixture
def hub(media, tmp_path):
    """A fake Hub holding the five videos in ``me/clips``; ``(hub, sha, resolve folder)``."""
    folder, videos = media
    with FakeHub(tmp_path / "hub") as hub:
        huggingface_hub.HfApi().create_repo("me/clips", repo_type="dataset")
        for name in videos:
            shutil.copy(folder / name, hub.repo_dir("me/clips") / name)
        yield hub, hub.sha("me/clips"), hub.resolve_tree(tmp_path / "www")


#: ``HfFileSystem``'s read size for these small videos (0.1 MB at most), as its 5 MiB default is for real ones
#: (50 MB to 1 GB): the road before reads them in several requests, not one (the HTTP road ignores it).
BLOCK = 16 << 10


def _access(hub: FakeHub, endpoint: str) -> MediaAccess:
    """What a loader of ``me/clips`` makes: the root at the commit, the token in its options; the fake Hub's
    endpoint is ``endpoint``."""
    hub.endpoint = endpoint
    return MediaAccess(
        root=f"hf://datasets/me/clips@{hub.sha('me/clips')}/",
        storage_options={"hf": {"token": TOKEN, "block_size": BLOCK}},
    )


def _pending(url: str) -> int:
    """Ranges of ``url`` fetched ahead and not taken, whatever headers they were fetched with."""
    return sum(ranges.pending(key) for key, _ in list(ranges._entries) if key.split("#")[0] == url)


def _answered(server: LatencyServer, n: int) -> None:
    """Wait (10 s at most) until ``server`` has answered ``n`` requests and has none in flight."""
    until = time.monotonic() + 10
    while (server.requests, server.in_flight) != (n, 0) and time.monotonic() < until:
        time.sleep(0.01)


def _relative(refs: list[MediaRef], base: str) -> list[MediaRef]:
    return [MediaRef(r.uri[len(base) + 1 :], r.pts_ns) for r in refs]


@pytest.mark.parametrize("state", ["cold", "warm"])
def test_a_batch_of_hub_refs_fetches_its_ranges_together(media, cold, hub, state, monkeypatch):
    """Refs into five ``hf://`` videos: their range requests go out together (more in flight than videos),
    in fewer requests than the same reads one at a time and than ``HfFileSystem``'s file object (the road
    before); every request to the endpoint carries the token; every frame exact; nothing left fetched."""
    hub_, sha, www = hub
    with LatencyServer(www, delay=0.15) as server:
        access = _access(hub_, server.url)
        refs, picks = _refs(media, "x")
        refs = _relative(refs, "x")
        counts = {}
        for road, concurrency in (("fsspec", 16), ("resolve", 1), ("resolve", 16)):
            seam = "_location" if road == "fsspec" else None  # the road before: HfFileSystemFile reads
            store = www.parent / f"store-{road}-{concurrency}"
            warm = state == "warm"
            options = {"access": access, "io_concurrency": concurrency}
            frames = decode_on_road(monkeypatch, refs, server, store, warm=warm, seam=seam, **options)
            _check(media, frames, picks)
            counts[road, concurrency] = server.requests, server.peak_in_flight
            assert all(h.get("authorization") == f"Bearer {TOKEN}" for h in server.headers_log)
            assert {p.split("/resolve/")[1].split("/")[0] for _, p, _ in server.log} == {sha}
        (before, _), (serial, _), (together, peak) = (
            counts["fsspec", 16],
            counts["resolve", 1],
            counts["resolve", 16],
        )
        assert peak >= len(VIDEOS), counts
        print(state, counts)
        assert together < serial and together < before, counts
        url = f"{server.url}/datasets/me/clips/resolve/{sha}/long.mp4"
        assert _pending(url) == 0  # untaken ranges released with the batch


def test_the_token_goes_to_the_endpoint_only(media, cold, hub):
    """The endpoint redirects every file to another host (the Hub's CDN): the token goes to the endpoint,
    never to the other host; the frames are exact."""
    hub_, _, www = hub

    with LatencyServer(www, delay=0.01) as cdn:
        cdn_base = cdn.url.replace("127.0.0.1", "localhost")  # another host name

        class Redirect(RangeRequestHandler):
            def handle_request(self, head: bool) -> None:
                self.send_body(302, b"", {"Location": cdn_base + self.path}, head=head)

        with LoopbackFileServer(www, Redirect) as endpoint:
            refs, picks = _refs(media, "x")
            _check(media, batch_decode(_relative(refs, "x"), access=_access(hub_, endpoint.url)), picks)
            assert endpoint.headers_log and all(
                h.get("authorization") == f"Bearer {TOKEN}" for h in endpoint.headers_log
            )
            assert cdn.headers_log and not [
                h for h in cdn.headers_log if "authorization" in map(str.lower, h)
            ]


def test_ranges_fetched_with_one_token_are_never_served_to_another(hub):
    """Two accesses with other tokens in one process: what was fetched ahead with the first token is not
    served to a file read with the second (or none); that file asks the endpoint itself, with its own
    token."""
    hub_, sha, www = hub
    data = (hub_.repo_dir("me/clips") / "a.mp4").read_bytes()
    uri = f"hf://datasets/me/clips@{sha}/a.mp4"
    with LatencyServer(www, delay=0) as server:
        hub_.endpoint = server.url
        first = {"hf": {"token": "hf_first"}}
        assert sources.prefetch_media(uri, [(0, 8192, 1)], 4, storage_options=first) == 1
        url = f"{server.url}/datasets/me/clips/resolve/{sha}/a.mp4"
        assert _pending(url) == 1
        _answered(server, 1)  # the range fetched ahead
        for options in ({"hf": {"token": "hf_second"}}, {"hf": {"token": False}}):
            server.reset()
            with open_media(uri, storage_options=options, head=True) as f:
                assert f.read(100) == data[:100]
            # its own head, not the range fetched with the first token
            assert server.requests == 1, server.log
            assert server.headers_log[0].get("authorization") == (
                "Bearer hf_second" if options["hf"]["token"] else None
            )
        server.reset()
        with open_media(uri, storage_options=first, head=True) as f:
            assert f.read(100) == data[:100]
        assert server.requests == 0 and _pending(url) == 0  # the first token's file takes its range


def test_a_hub_file_read_stays_on_the_version_it_opened(media, hub):
    """The file changes (new bytes, same path) while it is read: the read that follows raises
    RemoteChangedError instead of mixing versions; ranges fetched of the old version are never served to a
    file opened on the new one."""
    hub_, sha, www = hub
    path = hub_.repo_dir("me/clips") / "a.mp4"
    data = path.read_bytes()
    options = {"hf": {"token": TOKEN}}
    with LatencyServer(www, delay=0) as server:
        hub_.endpoint = server.url
        uri = f"hf://datasets/me/clips@{sha}/a.mp4"
        url = f"{server.url}/datasets/me/clips/resolve/{sha}/a.mp4"
        assert sources.prefetch_media(uri, [(4096, 8192, 1)], 4, storage_options=options) == 1
        _answered(server, 1)  # of the first version
        with open_media(uri, storage_options=options, head=True) as f:
            assert f.read(100) == data[:100]
            st = path.stat()
            path.write_bytes(bytes(reversed(data)))
            os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
            f.seek(5000)
            assert f.read(100) == data[5000:5100]  # fetched ahead, of the version opened
            f.seek(len(data) - 1000)
            with pytest.raises(RemoteChangedError):
                f.read(100)
        assert _pending(url) == 0  # the changed file's ranges were dropped
        with open_media(uri, storage_options=options, head=True) as f:
            assert f.read(100) == bytes(reversed(data))[:100]


def test_missing_hub_files_and_repos_are_not_found(hub):
    hub_, sha, www = hub
    with LatencyServer(www, delay=0) as server:
        hub_.endpoint, options = server.url, {}
        with pytest.raises(MediaNotFoundError):
            with open_media(f"hf://datasets/me/clips@{sha}/nope.mp4", storage_options=options):
                pass
        with pytest.raises(MediaNotFoundError):
            with open_media("hf://datasets/me/other/a.mp4", storage_options=options):
                pass
        with pytest.raises(MediaNotFoundError):  # pinned: read without asking the API, the endpoint's 404
            with open_media(f"hf://datasets/me/other@{sha}/a.mp4", storage_options=options):
                pass
        assert (
            sources.prefetch_media("hf://datasets/me/other/a.mp4", [(0, 10, 1)], 4, storage_options=options)
            == 0
        )


def test_the_operation_timeout_covers_hub_fetches(media, cold, hub):
    hub_, _, www = hub
    with LatencyServer(www, delay=0.5) as server:
        refs, _ = _refs(media, "x")
        with pytest.raises(DecodeTimeoutError):
            batch_decode(_relative(refs, "x"), access=_access(hub_, server.url), timeout=0.3)


def test_a_pinned_hub_file_is_read_without_asking_the_api(media, cold, hub, monkeypatch):
    """Refs at a commit go straight to their resolve URLs: no ``resolve_path`` (an API call per filesystem
    object, one per thread) on the way; an unpinned ref asks it once."""
    hub_, _, www = hub
    fs_class = type(__import__("fsspec").filesystem("hf"))
    asked = []
    original = fs_class.resolve_path

    def resolve_path(self, path, revision=None):
        asked.append(path)
        return original(self, path, revision)

    monkeypatch.setattr(fs_class, "resolve_path", resolve_path)
    with LatencyServer(www, delay=0) as server:
        refs, picks = _refs(media, "x")
        _check(media, batch_decode(_relative(refs, "x"), access=_access(hub_, server.url)), picks)
        assert asked == []
        with open_media("hf://datasets/me/clips/a.mp4", storage_options={}, head=True) as f:
            assert f.read(8)[4:8] == b"ftyp"
        assert asked == ["datasets/me/clips/a.mp4"]


def test_the_endpoint_is_not_held_to_the_datas_public_address_rule(hub):
    """The data's rule holds every URL it names to public addresses; the endpoint is the user's own
    configuration (a loopback one here), read as ``HfFileSystem`` reads it."""
    hub_, sha, www = hub
    with LatencyServer(www, delay=0) as server:
        access = _access(hub_, server.url)
        assert access.public_only(f"{server.url}/datasets/me/clips/resolve/{sha}/a.mp4")
        from hf_mediaref.io import reading_with

        with (
            reading_with(access),
            open_media(
                access.resolve("a.mp4"), storage_options=access.engine_storage_options(), head=True
            ) as f,
        ):
            assert f.read(8)[4:8] == b"ftyp"


def test_a_stream_fetches_the_next_hub_batch_ahead(media, cold, hub):
    """``fetch_ahead`` (what ``decode_stream(ahead=True)`` and DataLoader workers call for the next batches)
    opens ``hf://`` videos and fetches their ranges before the batch that reads them: that batch
    sends fewer requests than a cold one; every frame exact."""
    from hf_mediaref.decode import fetch_ahead

    hub_, sha, www = hub
    with LatencyServer(www, delay=0.01) as server:
        access = _access(hub_, server.url)
        refs, picks = _refs(media, "x")
        refs = _relative(refs, "x")
        _check(media, batch_decode(refs, access=access), picks)
        cold_requests = server.requests
        cleanup_cache()
        os.environ["HF_MEDIAREF_CACHE_DIR"] = str(www.parent / "store-ahead")
        job = fetch_ahead(refs, access=access)
        assert job is not None
        job.result(timeout=60)
        assert _pending(f"{server.url}/datasets/me/clips/resolve/{sha}/long.mp4") > 0
        server.reset()
        _check(media, batch_decode(refs, access=access), picks)
        assert server.requests < cold_requests / 2, (server.requests, cold_requests)
