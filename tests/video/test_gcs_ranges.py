"""``gs://`` videos get the concurrency of the HTTP road (issue 23) without leaving ``gcsfs``: each object is
read at the generation its open saw, through the filesystem's own async API (:mod:`hf_mediaref.io._pinned`),
and the byte ranges a batch needs are fetched ahead with many requests in flight, instead of through gcsfs's
serial file object.

Nothing of gcsfs is faked: ``gcsfs.GCSFileSystem(endpoint_url=..., token="anon")`` talks to a loopback
endpoint that answers the JSON API calls it makes (:class:`hf_mediaref.testing.fake_gcs.FakeGcsServer`, each
answer after a delay), where an object's generation is its file's modification time and a request pinned to
a generation that is gone is answered 404. (gcsfs's experimental zonal-bucket class asks the endpoint's bucket
layout over gRPC, which the loopback endpoint does not speak: the tests read with gcsfs's core filesystem.)
Assertions are on the requests the server counts (never on times); every frame is compared with a plain
front-to-back PyAV decode.
"""

from __future__ import annotations

import collections
import os
import time

import pytest

pytest.importorskip("gcsfs")

import gcsfs

from hf_mediaref import DecodeOptions, MediaAccess, MediaRef, batch_decode
from hf_mediaref.errors import DecodeTimeoutError, RemoteChangedError
from hf_mediaref.io import _pinned as pinned
from hf_mediaref.io import _ranges as ranges
from hf_mediaref.io import _sources as sources
from hf_mediaref.io import fetches_ahead, open_media
from hf_mediaref.testing import read_index, write_video
from hf_mediaref.testing.fake_gcs import FakeGcsServer

from .test_remote_latency import VIDEOS, _check, _refs, decode_on_road, write_media

if gcsfs.GCSFileSystem.__module__ != "gcsfs.core":  # imported before this module set the variable
    pytest.skip("gcsfs was imported with its experimental zonal-bucket class", allow_module_level=True)


@pytest.fixture(scope="module")
def media(tmp_path_factory):
    """The five videos of ``test_remote_latency`` in the bucket ``clips``: ``(endpoint root, videos)``."""
    root = tmp_path_factory.mktemp("gcs")
    (root / "clips").mkdir()
    _, videos = write_media(root / "clips")
    return root, videos


def _options(endpoint: str, **more) -> dict:
    return {"gs": {"endpoint_url": endpoint, "token": "anon", **more}}


def _downloads(server) -> list[tuple[str, str | None]]:
    """``(object path, Range)`` of every media download the server answered."""
    return [(p.split("?")[0], r) for _, p, r in server.log if p.startswith("/download/")]


def _pending(server, name: str) -> int:
    return sum(
        ranges.pending(key) for key, _ in list(ranges._entries) if key.startswith(f"gs://clips/{name}#")
    )


def test_gs_objects_fetch_ahead():
    assert fetches_ahead("gs://clips/a.mp4") and fetches_ahead("gcs://clips/a.mp4")
    assert not fetches_ahead("az://clips/a.mp4") and not fetches_ahead("memory://clips/a.mp4")


def _roads(root, refs, access, monkeypatch, server, name: str, **options) -> dict:
    """Decode ``refs`` on the road before (gcsfs's file object) and on the pinned one, each from a warm
    index store of its own (the roads give other version strings) with no container open: ``road ->
    (frames, requests, peak downloads in flight, downloads, bytes sent)``."""
    out = {}
    for road in ("fsspec", "pinned"):
        seam = "_pin" if road == "fsspec" else None  # the road before: gcsfs's GCSFile reads the objects
        store = root.parent / f"store-gcs-{name}-{road}"
        warm = name.endswith("warm")
        options = {"access": access, **options}
        frames = decode_on_road(monkeypatch, refs, server, store, warm=warm, seam=seam, **options)
        out[road] = frames, server.requests, server.peak_downloads, _downloads(server), server.bytes_sent
    return out


@pytest.mark.parametrize("state", ["cold", "warm"])
def test_a_batch_of_gs_refs_reads_each_range_once(media, cold, state, monkeypatch):
    """Refs into five ``gs://`` videos: every frame exact; fewer requests and downloads than gcsfs's file
    objects made, each byte range downloaded once, each download pinned to its object's generation, at least
    one per video in flight together; nothing left fetched."""
    root, _ = media
    with FakeGcsServer(root, delay=0.15) as server:
        access = MediaAccess(root="gs://clips/", storage_options=_options(server.url))
        refs, picks = _refs(media, "x")
        refs = [MediaRef(r.uri.split("/", 1)[1], r.pts_ns) for r in refs]
        roads = _roads(root, refs, access, monkeypatch, server, f"five-{state}")
        for frames, *_ in roads.values():
            _check(media, frames, picks)
        (_, before, _, old, _), (_, together, peak, downloads, _) = roads["fsspec"], roads["pinned"]
        assert together < before and len(downloads) < len(old), (together, before, downloads, old)
        repeated = [d for d, n in collections.Counter(downloads).items() if n > 1]
        if state == "warm":  # (cold: the index scan reads a head before the batch's plan exists)
            assert not repeated, repeated  # each byte range asked once
        generations = {p.split("generation=")[1] for _, p, _ in server.log if "/download/" in p}
        assert len(generations) == len(VIDEOS)  # every download pinned to its object's generation
        assert all("generation=" in p for _, p, _ in server.log if "/download/" in p)
        assert peak >= len(VIDEOS)
        assert _pending(server, "long.mp4") == 0  # untaken ranges released with the batch


def test_the_blocks_of_one_gs_video_are_fetched_together(tmp_path, cold, monkeypatch):
    """One video, one decode thread: the planned keyframe blocks are fetched ahead with several in flight,
    each once, in fewer downloads and bytes than gcsfs's file object takes (gcsfs >= 2026.10 reads ahead in
    the background, concurrently too, but front to back: every byte between the blocks); frames exact."""
    (tmp_path / "clips").mkdir()
    spec = write_video(tmp_path / "clips" / "big.mp4", 300, fps=30, gop=15, bframes=0, size=(360, 640))
    picks = list(range(7, 300, 19))
    refs = [MediaRef("big.mp4", spec.pts_ns[i]) for i in picks]
    with FakeGcsServer(tmp_path, delay=0.1) as server:
        access = MediaAccess(root="gs://clips/", storage_options=_options(server.url))
        roads = _roads(tmp_path / "x", refs, access, monkeypatch, server, "one-warm", max_workers=1)
        for frames, *_ in roads.values():
            assert [read_index(f) for f in frames] == picks
        (_, _, _, old, sent_before), (_, _, peak, downloads, sent) = roads["fsspec"], roads["pinned"]
        assert peak > 1, peak
        assert len(downloads) < len(old) and sent < sent_before, (downloads, old, sent, sent_before)
        repeated = [d for d, n in collections.Counter(downloads).items() if n > 1]
        assert not repeated, repeated


def test_a_gs_object_read_stays_on_the_generation_it_opened(tmp_path):
    """The object is overwritten (a new generation) while a file reads it: bytes fetched ahead of the
    generation opened are still served, a read of any other byte raises RemoteChangedError; a file opened on
    the new generation never takes bytes fetched of the old one."""
    (tmp_path / "b").mkdir()
    path = tmp_path / "b" / "a.bin"
    data = os.urandom(300_000)
    new = bytes(reversed(data))
    path.write_bytes(data)
    uri = "gs://b/a.bin"
    with FakeGcsServer(tmp_path, delay=0) as server:
        options = _options(server.url)
        with open_media(uri, storage_options=options, head=True) as f:
            assert f.read(100) == data[:100]
            assert sources.prefetch_media(uri, [(100_000, 120_000, 2)], 4, storage_options=options) == 1
            until = time.monotonic() + 10
            while len(_downloads(server)) < 2 and time.monotonic() < until:
                time.sleep(0.01)
            time.sleep(0.1)
            st = path.stat()
            path.write_bytes(new)
            os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))  # a new generation
            f.seek(105_000)
            assert f.read(100) == data[105_000:105_100]  # fetched ahead, at the generation opened
            assert len(_downloads(server)) == 2
            f.seek(200_000)
            with pytest.raises(RemoteChangedError):
                f.read(100)
        with open_media(uri, storage_options=options, head=True) as g:  # the new generation
            before = len(_downloads(server))
            g.seek(105_000)
            assert g.read(100) == new[105_000:105_100]  # the range fetched of the old one is not served
            assert len(_downloads(server)) == before + 1
            g.seek(0)
            assert g.read() == new
        assert _pending(server, "a.bin") == 0


def test_a_failing_fetch_ahead_is_read_by_the_file_itself(tmp_path):
    """A range fetched ahead fails (the endpoint refuses it): the file reads those bytes itself."""
    (tmp_path / "b").mkdir()
    data = os.urandom(300_000)
    (tmp_path / "b" / "a.bin").write_bytes(data)
    uri = "gs://b/a.bin"
    with FakeGcsServer(tmp_path, delay=0) as server:
        server.refused_ranges = {"bytes=20000-79999"}
        options = _options(server.url)
        assert sources.prefetch_media(uri, [(20_000, 80_000, 1)], 4, storage_options=options) == 1
        until = time.monotonic() + 10
        while not _downloads(server) and time.monotonic() < until:
            time.sleep(0.01)
        time.sleep(0.1)
        assert [r for _, r in _downloads(server)] == ["bytes=20000-79999"]  # asked, and refused
        with open_media(uri, storage_options=options, head=True) as f:
            server.reset()
            f.seek(25_000)
            assert f.read(1000) == data[25_000:26_000]
            assert [r for _, r in _downloads(server)] == ["bytes=25000-57767"]  # its own read
            assert server.requests == 1  # opened on the info the fetch asked a moment ago
        assert _pending(server, "a.bin") == 0


def test_a_decode_deadline_bounds_the_waits(media, cold):
    """Over an endpoint slower than the decode's ``timeout=``: DecodeTimeoutError, not a hang."""
    root, videos = media
    with FakeGcsServer(root, delay=1.5) as server:
        access = MediaAccess(root="gs://clips/", storage_options=_options(server.url))
        refs = [MediaRef("long.mp4", videos["long.mp4"][0][100])]
        start = time.monotonic()
        with pytest.raises(DecodeTimeoutError):
            batch_decode(refs, access=access, options=DecodeOptions(timeout=0.5))
        assert time.monotonic() - start < 5


def test_which_files_are_pinned(media):
    """A filesystem that is not version-aware reads through a version-aware one of its options; a path
    with ``#`` (part of the object's name for it) stays on gcsfs's file object; other protocols too."""
    fs = gcsfs.GCSFileSystem(endpoint_url="http://127.0.0.1:9", token="anon")
    pin = pinned.pin_of("gs://clips/a.mp4", fs, "clips/a.mp4")
    assert pin is not None and pin.fs.version_aware and pin.at("clips/a.mp4", "7") == "clips/a.mp4#7"
    assert pinned.pin_of("gs://clips/a#1.mp4", fs, "clips/a#1.mp4") is None
    aware = gcsfs.GCSFileSystem(endpoint_url="http://127.0.0.1:9", token="anon", version_aware=True)
    pin = pinned.pin_of("gs://clips/a.mp4", aware, "clips/a.mp4")
    assert pin is not None and pin.fs is aware and pin.at("clips/a.mp4#5", "7") == "clips/a.mp4#5"
    assert pinned.pin_of("memory://clips/a.mp4", fs, "clips/a.mp4") is None
