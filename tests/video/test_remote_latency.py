"""Remote at the speed of local (issue 23): a batch of refs over several remote videos fetches the byte ranges
it needs with many requests in flight (``DecodeOptions.io_concurrency``), not one after another.

A loopback Range server that answers every request after a delay (:class:`hf_mediaref.testing.LatencyServer`)
counts requests and the most requests in flight at once; the assertions are on those counts (never on times).
Every frame is compared with a plain front-to-back PyAV decode of the same file.
"""

from __future__ import annotations

import concurrent.futures
import itertools
import os
import random
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import requests

import hf_mediaref
from hf_mediaref import DecodeOptions, MediaRef, batch_decode
from hf_mediaref.errors import DecodeTimeoutError, RemoteChangedError
from hf_mediaref.io import _http as http
from hf_mediaref.io import _ranges as ranges
from hf_mediaref.io import _sources as sources
from hf_mediaref.io import open_media
from hf_mediaref.io._network import public_address_rule
from hf_mediaref.testing import LatencyServer, read_index, write_video
from hf_mediaref.video import cleanup_cache
from hf_mediaref.video._cache import decoder_cache

from .conftest import _remux

#: (name, frames, GOP, B-frames): two longer videos (MP4 with B-frames, a Matroska remux without) and three
#: short MP4s, as the issue's workload, small.
VIDEOS = [("long.mp4", 240, 24, 2), ("long_nob.mp4", 240, 24, 0), ("a.mp4", 30, 10, 0), ("b.mp4", 30, 10, 0)]
VIDEOS += [("c.mp4", 30, 10, 0)]


def _plain_frames(path: Path) -> list[np.ndarray]:
    """Every frame of ``path`` in presentation order, by a plain front-to-back PyAV decode."""
    import av

    with av.open(str(path)) as container:
        frames = [(f.pts, f.to_ndarray(format="rgb24")) for f in container.decode(video=0)]
    return [a for _, a in sorted(frames, key=lambda t: t[0])]


def write_media(folder: Path) -> tuple[Path, dict[str, tuple[list[int], list[np.ndarray]]]]:
    """The five videos written into ``folder`` (the second long one as Matroska), with their pts and their
    frames by a plain decode."""
    out = {}
    for name, n, gop, bframes in VIDEOS:
        spec = write_video(folder / name, n, fps=30, gop=gop, bframes=bframes, size=(64, 128))
        if name == "long_nob.mp4":
            _remux(spec.path, folder / "long.mkv")
            spec.path.unlink()
            name = "long.mkv"
        out[name] = (list(spec.pts_ns), _plain_frames(folder / name))
    return folder, out


@pytest.fixture(scope="module")
def media(tmp_path_factory):
    """:func:`write_media` of a folder of this module's."""
    return write_media(tmp_path_factory.mktemp("remote"))


def _refs(media, base: str, seed: int = 3) -> tuple[list[MediaRef], list[tuple[str, int]]]:
    """16 random frames of each long video, 4 of each short one, shuffled."""
    _, videos = media
    rng = random.Random(seed)
    picks = []
    for name, (pts, _) in videos.items():
        picks += [(name, i) for i in rng.sample(range(len(pts)), 16 if name.startswith("long") else 4)]
    rng.shuffle(picks)
    return [MediaRef(f"{base}/{name}", videos[name][0][i]) for name, i in picks], picks


def _check(media, frames, picks) -> None:
    _, videos = media
    assert [read_index(f) for f in frames] == [i for _, i in picks]
    for frame, (name, i) in zip(frames, picks):
        assert np.array_equal(frame, videos[name][1][i]), (name, i)


def decode_on_road(monkeypatch, refs, server, store: Path, *, warm: bool, seam: str | None = None, **options):
    """``batch_decode(refs, **options)`` from the index store ``store`` of its own, emptied first (the roads
    give other version strings): cold, or warm (a first call knew the indexes, and the containers closed);
    ``server``'s counters reset before the call measured. ``seam``: a function of
    :mod:`hf_mediaref.io._sources` made to answer None, so the road before (the fsspec file object) reads."""
    with monkeypatch.context() as patch:
        if seam is not None:
            patch.setattr(sources, seam, lambda *args: None)
        cleanup_cache()
        patch.setenv("HF_MEDIAREF_CACHE_DIR", str(store))
        if warm:
            batch_decode(refs, **options)  # the indexes are known
            decoder_cache.clear()  # the containers closed
        server.reset()
        return batch_decode(refs, **options)


# ---------------------------------------------------------------------------------------- the latency server


def test_the_latency_server_counts_requests_in_flight_and_bytes(tmp_path):
    (tmp_path / "f.bin").write_bytes(bytes(range(256)) * 40)
    with LatencyServer(tmp_path, delay=0.3) as server:
        barrier = threading.Barrier(4)

        def get(i: int) -> bytes:
            barrier.wait()
            r = requests.get(f"{server.url}/f.bin", headers={"Range": f"bytes={i * 100}-{i * 100 + 99}"})
            assert (
                r.status_code == 206 and r.headers["Content-Range"] == f"bytes {i * 100}-{i * 100 + 99}/10240"
            )
            return r.content

        with concurrent.futures.ThreadPoolExecutor(4) as pool:
            bodies = list(pool.map(get, range(4)))
        assert bodies == [(bytes(range(256)) * 40)[i * 100 : i * 100 + 100] for i in range(4)]
        assert (server.requests, server.peak_in_flight, server.bytes_sent, server.in_flight) == (4, 4, 400, 0)
        requests.head(f"{server.url}/f.bin")
        assert server.requests == 5 and server.peak_in_flight == 4
        server.reset()
        assert (server.requests, server.peak_in_flight, server.bytes_sent, server.log) == (0, 0, 0, [])


def test_the_latency_server_caps_bandwidth_and_refuses_bad_settings(tmp_path):
    (tmp_path / "f.bin").write_bytes(b"x" * 200_000)
    with LatencyServer(tmp_path, delay=0, bandwidth=1e6) as server:  # 1 MB/s: 200 KB take about 0.2 s
        start = time.monotonic()
        assert len(requests.get(f"{server.url}/f.bin").content) == 200_000
        assert time.monotonic() - start >= 0.15  # a lower bound: the cap holds bytes back, never speeds up
    with pytest.raises(ValueError, match="delay"):
        LatencyServer(tmp_path, delay=-1)
    with pytest.raises(ValueError, match="bandwidth"):
        LatencyServer(tmp_path, bandwidth=0)


# ---------------------------------------------------------------------------------------- the finding


def test_one_request_at_a_time_without_io_concurrency(media, cold):
    """The issue's finding, kept reachable with ``io_concurrency=1``: at most 2 requests in flight (one per
    decode thread), every HEAD and range read one after another."""
    folder, _ = media
    with LatencyServer(folder, delay=0.01) as server:
        refs, picks = _refs(media, server.url)
        _check(media, batch_decode(refs, io_concurrency=1, max_workers=2), picks)
        assert server.peak_in_flight <= 2
        assert server.requests >= 25


@pytest.mark.parametrize("state", ["cold", "warm"])
def test_a_batch_sends_its_requests_together(media, cold, state, monkeypatch):
    """With the default ``io_concurrency`` the first touches of the five unseen videos go out together, and
    the keyframe blocks of the planned spans are fetched ahead while the decodes start: more requests in
    flight than videos, fewer requests than reading as the decodes ask, no HEAD of a video, every frame
    exact."""
    folder, _ = media
    with LatencyServer(folder, delay=0.05) as server:
        refs, picks = _refs(media, server.url)
        counts = {}
        for concurrency in (1, 16):
            # requests sent together overlap by the round trip less the spread of their sending: 200 ms
            # keeps a busy machine's stall of a thread from splitting them (50 ms did once, on CI)
            server.delay = 0.2 if concurrency == 16 else 0.05
            store = folder / f"store-{state}-{concurrency}"
            options = {"io_concurrency": concurrency, "max_workers": 2}
            frames = decode_on_road(monkeypatch, refs, server, store, warm=state == "warm", **options)
            _check(media, frames, picks)
            counts[concurrency] = server.requests, server.peak_in_flight
            if concurrency == 16:
                # no HEAD of a video (a sidecar's absence is asked with one: its size is known before a
                # byte of it is read)
                assert not [p for m, p, _ in server.log if m == "HEAD" and not p.endswith(".mrindex")]
                assert ranges.pending(f"{server.url}/long.mp4") == 0  # nothing left behind
        (serial, _), (together, peak) = counts[1], counts[16]
        assert peak >= len(VIDEOS)
        assert together < serial, counts
        if state == "warm":  # per video: one request of its head and blocks (merged), or a few
            assert together <= 3 * len(VIDEOS), counts


def test_first_touches_of_unseen_videos_go_out_together(media, cold):
    """The first request of each of the five unseen videos is in flight before any of them is answered."""
    folder, _ = media
    with LatencyServer(folder, delay=0.2) as server:
        refs, picks = _refs(media, server.url)
        _check(media, batch_decode(refs), picks)
        first = {}
        for i, (_, path, _) in enumerate(server.log):
            first.setdefault(path, i)
        assert sorted(first[f"/{n}"] for n in ("long.mp4", "long.mkv", "a.mp4", "b.mp4", "c.mp4")) == list(
            range(5)
        )
        assert server.peak_in_flight >= 5


def test_io_concurrency_is_a_decode_option():
    assert DecodeOptions().io_concurrency == 16
    assert DecodeOptions(io_concurrency=4).io_concurrency == 4
    for bad in (0, -2, True):
        with pytest.raises(ValueError, match="io_concurrency"):
            DecodeOptions(io_concurrency=bad)


def test_requests_in_flight_are_bounded_per_host(media, cold):
    folder, _ = media
    with LatencyServer(folder, delay=0.05) as server:
        refs, picks = _refs(media, server.url)
        batch_decode(refs, io_concurrency=3)  # the indexes are known
        decoder_cache.clear()
        server.reset()
        _check(media, batch_decode(refs, io_concurrency=3), picks)
        assert server.peak_in_flight <= 3 + 2  # 3 fetching ahead, and the decode threads' own reads


# ---------------------------------------------------------------------------------------- guarantees kept


def test_the_operation_timeout_covers_the_fetches_ahead(media, cold):
    folder, _ = media
    with LatencyServer(folder, delay=0.5) as server:
        refs, _ = _refs(media, server.url)
        with pytest.raises(DecodeTimeoutError):
            batch_decode(refs, timeout=0.3)


def test_bytes_fetched_ahead_of_an_older_version_are_never_served(tmp_path):
    """Ranges fetched ahead before the file changed: the file opened on them reads on from the server and
    finds the change (RemoteChangedError); a file opened after the change never takes them."""
    data = bytes(range(256)) * 1000
    path = tmp_path / "v.bin"
    path.write_bytes(data)
    with LatencyServer(tmp_path, delay=0) as server:
        url = f"{server.url}/v.bin"
        http.prefetch(url, [(0, 4096, 1), (100_000, 120_000, 2)])
        time.sleep(0.2)  # both answered, of the first version
        st = path.stat()
        path.write_bytes(bytes(reversed(data)))
        os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
        with open_media(url, head=True) as f:  # opened on the old head: the old version
            assert f.read(10) == data[:10]
            f.seek(100_000)
            assert f.read(100) == data[100_000:100_100]  # fetched ahead, of the version opened
            f.seek(50_000)
            with pytest.raises(RemoteChangedError):
                f.read(100)  # the server's answer is of another version
        with open_media(url, head=True) as f:  # opened on the new version: the old ranges are refused
            f.seek(100_000)
            with pytest.raises(RemoteChangedError):
                f.read(100)
        ranges.forget(url)
        with open_media(url, head=True) as f:
            f.seek(100_000)
            assert f.read(100) == bytes(reversed(data))[100_000:100_100]


def test_ranges_fetched_under_one_address_rule_are_not_served_under_another(tmp_path):
    (tmp_path / "f.bin").write_bytes(b"y" * 10_000)
    with LatencyServer(tmp_path, delay=0) as server:
        url = f"{server.url}/f.bin"
        http.prefetch(url, [(0, 5000, 1)])
        with public_address_rule(lambda u: True):
            assert ranges.take(url, 10, set(), 5.0) is None  # fetched without the rule: not for this call
        start, body, _ = ranges.take(url, 10, set(), 5.0) or (None, b"", None)
        assert start == 0 and body == b"y" * 5000
        ranges.forget(url)


def test_a_failed_fetch_ahead_is_read_again_by_the_file(tmp_path):
    (tmp_path / "f.bin").write_bytes(b"z" * 10_000)
    with LatencyServer(tmp_path, delay=0) as server:
        url = f"{server.url}/missing.bin"
        http.prefetch(url, [(0, 5000, 1)])
        assert ranges.take(url, 0, set(), 5.0) is None  # a 404: dropped, the file reads (and raises) itself
        assert ranges.pending(url) == 0


def test_a_range_two_calls_planned_is_kept_until_both_are_done(tmp_path):
    """A range fetched ahead for a later call and read by the call running now too: the running call's end
    hands it on; the later call adopts it, takes it, and its end drops it."""
    data = bytes(range(256)) * 40
    (tmp_path / "f.bin").write_bytes(data)
    later, now, running = object(), object(), object()
    with LatencyServer(tmp_path, delay=0) as server:
        url = f"{server.url}/f.bin"
        assert http.prefetch(url, [(0, 1000, 1)], owner=later) == 1
        assert http.prefetch(url, [(0, 1000, 1)], owner=now) == 0  # held: this call's read is added
        seen: set[int] = set()
        assert ranges.take(url, 10, seen, 5.0) is not None  # the running call's read
        ranges.release(now)
        assert ranges.pending(url) == 1  # kept for the later call
        ranges.adopt(later, running)
        assert ranges.take(url, 500, set(), 5.0) is not None  # the later call's read (another file)
        assert ranges.pending(url) == 0  # both reads taken: dropped
        assert http.prefetch(url, [(0, 1000, 2)], owner=running) == 1
        ranges.release(running)  # no read took it
        assert ranges.pending(url) == 0
        ranges.forget(url)


def test_coalesce_merges_near_ranges_and_sums_their_reads():
    assert ranges.coalesce([(0, 10), (20, 30, 2), (200_000, 200_100)], gap=64) == [
        (0, 30, 3),
        (200_000, 200_100, 1),
    ]
    assert ranges.coalesce([(5, 5), (50, 40)]) == []


def test_a_range_every_open_reads_serves_every_file_until_its_batch_is_released(tmp_path):
    """A head (or an index at the end) is planned for every container the batch opens, however many: the
    decode may open more than the plan counted (one opened late, after another's buffer moved on), and that
    one must not pay a round trip for bytes already fetched. Released with its batch."""
    (tmp_path / "f.bin").write_bytes(bytes(range(256)) * 40)
    with LatencyServer(tmp_path, delay=0) as server:
        url = f"{server.url}/f.bin"
        owner = object()
        assert http.prefetch(url, [(0, 4000, ranges.EVERY_OPEN)], owner=owner) == 1
        for _ in range(5):  # five files (containers), each taking it once
            start, body, _ = ranges.take(url, 100, set(), 5.0) or (None, b"", None)
            assert start == 0 and body == (bytes(range(256)) * 40)[:4000]
        assert ranges.pending(url) == 1 and server.requests == 1
        ranges.release(owner)
        assert ranges.pending(url) == 0
    assert ranges.coalesce([(0, 10, ranges.EVERY_OPEN), (20, 30, 2)]) == [(0, 30, ranges.EVERY_OPEN)]


@pytest.mark.parametrize("name", ["long.mkv", "long.mp4"])
def test_a_batch_fetches_a_videos_head_once_however_many_containers_open(media, cold, name):
    """Warm (indexes known, containers closed), many refs of one video on two threads: its head is requested
    once in the batch; no container opened later reads it again."""
    folder, videos = media
    pts = videos[name][0]
    with LatencyServer(folder, delay=0.02) as server:
        picks = [(name, i) for i in random.Random(5).sample(range(len(pts)), 40)]
        refs = [MediaRef(f"{server.url}/{name}", pts[i]) for _, i in picks]
        batch_decode(refs, max_workers=2)
        for _ in range(3):
            decoder_cache.clear()
            server.reset()
            _check(media, batch_decode(refs, max_workers=2), picks)
            starts = [int(r.split("=")[1].split("-")[0]) for _, _, r in server.log if r]
            assert starts.count(0) == 1, server.log
            assert not [s for s in starts if 0 < s < 4096], server.log  # nor the rest of it, later


def test_a_range_partly_fetched_ahead_asks_only_for_the_rest(tmp_path):
    data = bytes(range(256)) * 40
    (tmp_path / "f.bin").write_bytes(data)
    with LatencyServer(tmp_path, delay=0) as server:
        url = f"{server.url}/f.bin"
        assert http.prefetch(url, [(0, 1000, ranges.EVERY_OPEN)]) == 1
        assert http.prefetch(url, [(500, 3000, 1), (9000, 10_000, 1)]) == 2  # 1000-3000 and 9000-10000
        assert http.prefetch(url, [(100, 900, 1)]) == 0  # all held
        for pos in (10, 1500, 9500):
            start, body, _ = ranges.take(url, pos, set(), 5.0) or (0, b"", None)
            assert body and data[start : start + len(body)] == body and start <= pos < start + len(body)
        assert sorted(r for _, _, r in server.log) == ["bytes=0-999", "bytes=1000-2999", "bytes=9000-9999"]
        ranges.forget(url)


@pytest.fixture(scope="module")
def spread(tmp_path_factory):
    """Three noisy videos (their keyframe blocks lie further apart than ranges merge), MP4 and Matroska."""
    folder = tmp_path_factory.mktemp("spread")
    out = {}
    for name in ("x.mp4", "y.mp4", "z.mp4"):
        spec = write_video(folder / name, 90, fps=30, gop=15, size=(160, 192), noise=0.6)
        if name == "y.mp4":
            _remux(spec.path, folder / "y.mkv")
            spec.path.unlink()
            name = "y.mkv"
        out[name] = list(spec.pts_ns)
    assert all((folder / n).stat().st_size > 6 * ranges.COALESCE_GAP for n in out)
    return folder, out


@pytest.mark.parametrize("name", ["x.mp4", "y.mkv"])
def test_a_container_kept_for_its_resume_point_costs_the_next_batch_no_round_trip(spread, cold, name):
    """Steady state (containers stay open from batch to batch): a batch that cannot continue where the last
    one stopped in a video leaves the container kept for that continuation and opens another; what that open
    reads (the head, the index at the end) goes out with the batch's reads ahead, instead of one round trip
    after another when the container opens."""
    folder, videos = spread
    pts = videos[name]
    with LatencyServer(folder, delay=0.01) as server:
        url = f"{server.url}/{name}"
        batch_decode([MediaRef(url, pts[i]) for i in (5, 40)], max_workers=1)  # the index is known
        decoder_cache.clear()
        batch_decode([MediaRef(url, pts[i]) for i in (70, 80)], max_workers=1)  # kept: resumes after 80
        server.reset()
        frames = batch_decode([MediaRef(url, pts[i]) for i in (5, 40)], max_workers=1, io_concurrency=2)
        assert [read_index(f) for f in frames] == [5, 40]
        asked = sorted(tuple(int(x) for x in header.split("=")[1].split("-")) for _, _, header in server.log)
        assert asked[0][0] == 0, server.log  # the new container's head
        # its opening reads were fetched with the blocks: no byte is asked for twice (not the open's own
        # small first read, then the head and the index at the end again, one round trip after another)
        assert all(a[1] < b[0] for a, b in itertools.pairwise(asked)), server.log


@pytest.mark.parametrize("workers", [1, 2])
def test_heads_go_out_first_then_blocks_in_the_order_the_decode_takes_them(spread, cold, workers):
    """The I/O threads serve requests first come first served: every video's head is asked before any
    keyframe block (no decode starts without its head), and on one decode thread the blocks come video after
    video, as its tasks run (not one of each video in turn)."""
    folder, videos = spread
    with LatencyServer(folder, delay=0.01) as server:
        picks = [(name, i) for i in (5, 40, 80) for name in videos]  # three blocks of each video, interleaved
        refs = [MediaRef(f"{server.url}/{name}", videos[name][i]) for name, i in picks]
        batch_decode(refs, max_workers=workers)  # the indexes are known
        decoder_cache.clear()  # the containers closed
        server.reset()
        frames = batch_decode(refs, max_workers=workers, io_concurrency=2)
        assert [read_index(f) for f in frames] == [i for _, i in picks]
        asked = []  # (video, first byte, a keyframe block: neither its head nor what ends the file)
        head_ends = {}
        for _, path, header in server.log:
            first, last = (int(x) for x in header.split("=")[1].split("-"))
            size = (folder / path.lstrip("/")).stat().st_size
            if first == 0:
                head_ends[path] = last + 1
            # a block the plan merged with the head (near it) goes with the heads: no decode of it waits
            block = first > 0 and last + 1 < size and first != head_ends.get(path)
            asked.append((path.lstrip("/"), first, block))
        heads = [k for k, (_, first, _) in enumerate(asked) if first == 0]
        blocks = [k for k, (_, _, block) in enumerate(asked) if block]
        assert len(heads) == len(videos) and len(blocks) >= 2 * len(videos), asked
        assert max(heads) <= min(blocks) + 1, asked  # 2 in flight: one may pass another
        if workers == 1:  # x's blocks, then z's (the Matroska's index asks for its own blocks first)
            taken = [asked[k][0] for k in blocks if asked[k][0] != "y.mkv"]
            assert taken == sorted(taken), [a for a in asked if a[2]]


def test_frames_over_a_slow_link_are_the_local_frames(media, cold):
    """A bandwidth cap (answers come in pieces) changes when bytes arrive, never which."""
    folder, _ = media
    with LatencyServer(folder, delay=0.005, bandwidth=20e6) as server:
        refs, picks = _refs(media, server.url, seed=9)
        _check(media, batch_decode(refs), picks)
        local = batch_decode([MediaRef(str(folder / n), media[1][n][0][i]) for n, i in picks])
        _check(media, local, picks)


def test_the_public_names():
    assert hf_mediaref.testing.LatencyServer is LatencyServer


# ---------------------------------------------------------------------------------------- across calls


@pytest.mark.parametrize("name", ["long.mp4", "long.mkv"])
def test_batches_fetched_ahead_that_share_blocks_each_keep_theirs(media, cold, name):
    """Two batches fetched ahead (``fetch_ahead``, as a stream of batches does) read the same keyframe
    blocks: the first one's decode reads them too, and its end does not drop what the second was fetched;
    neither decode sends a request of its own. Every frame exact."""
    from hf_mediaref.decode import fetch_ahead

    folder, videos = media
    pts = videos[name][0]
    with LatencyServer(folder, delay=0.01) as server:
        url = f"{server.url}/{name}"
        first, second = [3, 30, 100, 170], [5, 33, 102, 175]  # the same blocks, other frames
        batch_decode([MediaRef(url, pts[i]) for i in (0, 200)])  # the index is known
        decoder_cache.clear()
        for picks in (first, second):
            job = fetch_ahead([MediaRef(url, pts[i]) for i in picks])
            assert job is not None
            job.result(timeout=30)  # planned; then every range it asked for answered (10 s at most)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and not all(
            e.future.done() for key, held in ranges._entries.items() if key[0] == url for e in held
        ):
            time.sleep(0.01)
        for picks in (first, second):
            server.reset()
            frames = batch_decode([MediaRef(url, pts[i]) for i in picks])
            assert [read_index(f) for f in frames] == picks
            assert server.requests == 0, (picks, server.log)


@pytest.mark.parametrize("workers", [0, 1])
def test_a_stream_of_batches_fetches_the_next_batch_ahead(media, cold, workers):
    """``decode_stream(..., ahead=True)``: in the process (lanes) and in a DataLoader worker (one batch at a
    time) the next batches' first touches and ranges start before their decode; every frame exact, in
    order."""
    pytest.importorskip("torch")  # its DataLoader
    import datasets
    from torch.utils.data import DataLoader

    from hf_mediaref.hf import decode_stream

    folder, _ = media
    with LatencyServer(folder, delay=0.05) as server:  # first touches sent together overlap on a busy machine
        refs, picks = _refs(media, server.url, seed=5)
        rows = {"frame": [{"uri": r.uri, "pts_ns": r.pts_ns} for r in refs], "k": list(range(len(refs)))}
        ids = datasets.Dataset.from_dict(rows).to_iterable_dataset(num_shards=1)
        ahead = []
        original = hf_mediaref.decode.fetch_ahead

        def recording(batch_refs, *args, **kwargs):
            ahead.append(len(batch_refs))
            return original(batch_refs, *args, **kwargs)

        hf_mediaref.decode.fetch_ahead = recording
        try:
            stream = decode_stream(ids, batch_size=8, output="numpy", ahead=True)
            got = [
                row for batch in DataLoader(stream, batch_size=None, num_workers=workers) for row in [batch]
            ]
        finally:
            hf_mediaref.decode.fetch_ahead = original
        assert [int(r["k"]) for r in got] == list(range(len(refs)))
        _check(media, [np.asarray(r["frame"]) for r in got], picks)
        if workers == 0:
            assert ahead  # the batches waiting for a lane
        assert server.peak_in_flight >= 3


def test_decode_ahead_starts_the_reads_of_the_batches_waiting_for_a_lane(media, cold, monkeypatch):
    """``DecodeAhead`` over a ``"mediaref"``-formatted dataset of remote refs: a batch queued behind another
    on its lane has its reads started when it is queued (the format's ``fetch_ahead`` of its rows), so they
    overlap the decode before it; the DataLoader gets the sampler's batches, every frame exact."""
    pytest.importorskip("torch")  # its DataLoader
    from datasets import Dataset, Features, Value
    from torch.utils.data import BatchSampler, DataLoader, SequentialSampler

    from hf_mediaref.hf import DecodeAhead, MediaRefFeature

    folder, _ = media
    with LatencyServer(folder, delay=0.02) as server:
        refs, picks = _refs(media, server.url, seed=8)
        features = Features({"frame": MediaRefFeature(), "k": Value("int64")})
        ds = Dataset.from_dict({"frame": refs, "k": list(range(len(refs)))}, features=features)
        asked = []
        original = hf_mediaref.decode.fetch_ahead

        def recording(batch_refs, *args, **kwargs):
            asked.append([r.pts_ns for r in batch_refs])
            return original(batch_refs, *args, **kwargs)

        monkeypatch.setattr(hf_mediaref.decode, "fetch_ahead", recording)
        sampler = BatchSampler(SequentialSampler(range(len(refs))), 8, drop_last=False)
        ahead = DecodeAhead(ds.with_format("mediaref", output="numpy"), sampler, lanes=1, depth=3)
        batches = list(DataLoader(ahead, batch_sampler=ahead.sampler, collate_fn=lambda rows: rows))
        ahead.close()
    got = [row for batch in batches for row in batch]
    assert [int(r["k"]) for r in got] == list(range(len(refs)))
    _check(media, [np.asarray(r["frame"]) for r in got], picks)
    batch_pts = [[r.pts_ns for r in refs[i : i + 8]] for i in range(0, len(refs), 8)]
    assert asked and all(a in batch_pts[1:] for a in asked), asked  # queued batches, never the first
    assert len(asked) >= len(batch_pts) - 2  # one lane: all but the first (and the one right after it)


@pytest.mark.parametrize("workers", [1, 2])
def test_decode_ahead_in_dataloader_workers_reads_each_workers_next_batch_ahead(
    media, cold, tmp_path, monkeypatch, workers
):
    """With DataLoader workers, each worker sees only its own batches. ``DecodeAhead``'s sampler tells it the
    next ones: a worker decoding batch ``i`` starts the remote reads of batch ``i + workers`` (the one it is
    handed next), and of its first batch; so every batch's reads start once, in the worker that decodes it,
    before its decode. The DataLoader gets the sampler's batches, every frame exact."""
    pytest.importorskip("torch")  # its DataLoader
    import json

    from datasets import Dataset, Features, Value
    from torch.utils.data import BatchSampler, DataLoader, SequentialSampler

    from hf_mediaref.hf import DecodeAhead, MediaRefFeature

    folder, _ = media
    log = tmp_path / "ahead.jsonl"  # the workers are other processes: they record into a file
    original = hf_mediaref.decode.fetch_ahead

    def recording(batch_refs, *args, **kwargs):
        import torch.utils.data

        worker = torch.utils.data.get_worker_info()
        with open(log, "a") as f:
            f.write(
                json.dumps([None if worker is None else worker.id, [r.pts_ns for r in batch_refs]]) + "\n"
            )
        return original(batch_refs, *args, **kwargs)

    monkeypatch.setattr(hf_mediaref.decode, "fetch_ahead", recording)
    with LatencyServer(folder, delay=0.02) as server:
        refs, picks = _refs(media, server.url, seed=11)
        features = Features({"frame": MediaRefFeature(), "k": Value("int64")})
        ds = Dataset.from_dict({"frame": refs, "k": list(range(len(refs)))}, features=features)
        sampler = BatchSampler(SequentialSampler(range(len(refs))), 8, drop_last=False)
        ahead = DecodeAhead(ds.with_format("mediaref", output="numpy"), sampler)
        loader = DataLoader(
            ahead, batch_sampler=ahead.sampler, num_workers=workers, collate_fn=lambda rows: rows, timeout=60
        )
        batches = list(loader)
    got = [row for batch in batches for row in batch]
    assert [int(r["k"]) for r in got] == list(range(len(refs)))
    _check(media, [np.asarray(r["frame"]) for r in got], picks)
    batch_pts = [[r.pts_ns for r in refs[i : i + 8]] for i in range(0, len(refs), 8)]
    started = [json.loads(line) for line in log.read_text().splitlines()]
    for w in range(workers):  # in order: its first batch, then each next one while it decodes the one before
        assert [pts for who, pts in started if who == w] == batch_pts[w::workers], w
    assert all(who is not None for who, _ in started)


def test_decode_ahead_over_local_media_stops_looking_for_remote_reads(media, cold, monkeypatch):
    """Reading a waiting batch's refs costs a little: after a few batches with nothing remote, none more."""
    pytest.importorskip("torch")  # its DataLoader
    from datasets import Dataset, Features, Value
    from torch.utils.data import BatchSampler, DataLoader, SequentialSampler

    from hf_mediaref.hf import DecodeAhead, MediaRefFeature

    folder, _ = media
    refs, picks = _refs(media, str(folder), seed=8)
    features = Features({"frame": MediaRefFeature(), "k": Value("int64")})
    ds = Dataset.from_dict({"frame": refs, "k": list(range(len(refs)))}, features=features)
    looked, planned = [], []
    formatter_module = sys.modules["hf_mediaref.hf._formatter"]
    original = formatter_module.fetch_media_columns_ahead
    monkeypatch.setattr(
        formatter_module,
        "fetch_media_columns_ahead",
        lambda table, *a, **k: looked.append(len(table)) or original(table, *a, **k),
    )
    engine = hf_mediaref.decode.fetch_ahead
    monkeypatch.setattr(  # local refs: nothing to plan ahead
        hf_mediaref.decode, "fetch_ahead", lambda refs, *a, **k: planned.append(refs) or engine(refs, *a, **k)
    )
    sampler = BatchSampler(SequentialSampler(range(len(refs))), 4, drop_last=False)
    ahead = DecodeAhead(ds.with_format("mediaref", output="numpy"), sampler, lanes=1, depth=3)
    got = [
        row
        for batch in DataLoader(ahead, batch_sampler=ahead.sampler, collate_fn=lambda r: r)
        for row in batch
    ]
    ahead.close()
    _check(media, [np.asarray(r["frame"]) for r in got], picks)
    assert len(refs) // 4 > 8 and len(looked) == 4, looked
    assert not planned


def test_a_windowed_batch_fetches_its_window_frames_ahead_and_plans_no_windows_for_local_media(
    media, cold, monkeypatch
):
    """The format's ``fetch_ahead`` of a batch with ``windows=`` over remote videos fetches the window frames'
    blocks too (the later decode sends no request); over local videos it returns at once, before planning
    any window (the bounds of every video of the batch)."""
    from datasets import Dataset, Features
    from datasets.formatting import get_formatter

    import hf_mediaref.hf._formatter as formatter_module
    from hf_mediaref.hf import FrameWindows, MediaRefFeature, set_media_root

    folder, videos = media
    pts = videos["long.mp4"][0]
    picks = [40, 120, 200]
    windows = FrameWindows({"frame": [-3 / 30, 0.0]})  # (the long videos are 30 fps)
    features = Features({"frame": MediaRefFeature()})
    plans = []
    original = formatter_module.plan_table_windows
    monkeypatch.setattr(
        formatter_module, "plan_table_windows", lambda *a, **k: plans.append(1) or original(*a, **k)
    )
    with LatencyServer(folder, delay=0.01) as server:
        for base in (str(folder), server.url):
            ds = Dataset.from_dict({"frame": [{"uri": f"{base}/long.mp4", "pts_ns": pts[i]} for i in picks]})
            ds = set_media_root(ds.cast(features), folder, allow_uris="*")
            formatter = get_formatter("mediaref", features=ds.features, windows=windows, output="numpy")
            rows = ds.with_format("arrow")[:]
            plans.clear()
            if base == str(folder):
                assert formatter.fetch_ahead(rows) is False
                assert not plans
                continue
            batch_decode([MediaRef(f"{base}/long.mp4", pts[0])])  # the index is known
            decoder_cache.clear()
            assert formatter.fetch_ahead(rows) is True
            assert plans == [1]
            deadline = time.monotonic() + 10
            url = f"{base}/long.mp4"
            while time.monotonic() < deadline and not all(
                e.future.done() for key, held in ranges._entries.items() if key[0] == url for e in held
            ):
                time.sleep(0.01)
            server.reset()
            batch = formatter.format_batch(rows)
            assert server.requests == 0, server.log
            assert [[read_index(f) for f in w] for w in batch["frame"]] == [[i - 3, i] for i in picks]


def test_first_touches_of_hub_videos_go_out_together(media, cold, tmp_path):
    """``hf://`` videos (the fake Hub's filesystem, each open made to take a round trip) are opened side by
    side, not one after another; every frame exact."""
    import shutil

    import huggingface_hub

    from hf_mediaref.testing.fake_hub import FakeHub

    folder, videos = media
    with FakeHub(tmp_path / "hub") as hub:
        huggingface_hub.HfApi().create_repo("me/clips", repo_type="dataset")  # the fake's, patched in
        for name in videos:
            shutil.copy(folder / name, hub.repo_dir("me/clips") / name)
        fs_class = type(__import__("fsspec").filesystem("hf"))
        original = fs_class._open
        lock, state = threading.Lock(), {"now": 0, "peak": 0}

        def slow_open(self, path, mode="rb", **kwargs):
            with lock:
                state["now"] += 1
                state["peak"] = max(state["peak"], state["now"])
            try:  # the Hub's round trip: it ends when every video is being opened (or after 2 s: serial)
                deadline = time.monotonic() + 2.0
                while state["peak"] < len(VIDEOS) and time.monotonic() < deadline:
                    time.sleep(0.01)
                return original(self, path, mode, **kwargs)
            finally:
                with lock:
                    state["now"] -= 1

        fs_class._open = slow_open
        try:
            refs, picks = _refs(media, "hf://datasets/me/clips")
            _check(media, batch_decode(refs, max_workers=1), picks)
        finally:
            fs_class._open = original
        assert state["peak"] >= len(VIDEOS)  # one decode thread, five opens at once


def _pending_in_child(url: str, out) -> None:
    out.put(ranges.pending(url))


def test_a_forked_child_never_waits_on_the_parents_fetches(tmp_path):
    """A DataLoader worker forked while ranges are in flight: their I/O threads stay in the parent, so the
    child's store starts empty (its reads go to the server)."""
    import multiprocessing

    (tmp_path / "f.bin").write_bytes(b"q" * 10_000)
    with LatencyServer(tmp_path, delay=1.0) as server:
        url = f"{server.url}/f.bin"
        http.prefetch(url, [(0, 5000, 1)])
        assert ranges.pending(url) == 1
        ctx = multiprocessing.get_context("fork")
        out = ctx.Queue()
        child = ctx.Process(target=_pending_in_child, args=(url, out))
        child.start()
        assert out.get(timeout=30) == 0
        child.join(30)
        ranges.forget(url)


def test_a_read_waiting_on_a_fetch_ahead_keeps_one_request_deadline(tmp_path, monkeypatch):
    """A read that waits for a fetch ahead past the request deadline (RemoteAccessError there) does not start
    a deadline of its own after the wait: it raises without sending another request.

    The fetch ahead starts its own deadline under a longer limit, so the read's wait (0.5 s) always ends
    first, while the fetch is still in flight: were the limits equal, the fetch could fail a moment before
    the read's wait ended, and the read would then rightly send its own request in what is left."""
    from hf_mediaref.errors import RemoteAccessError

    (tmp_path / "f.bin").write_bytes(b"w" * 10_000)
    with LatencyServer(tmp_path, delay=1.5) as server:
        url = f"{server.url}/f.bin"
        monkeypatch.setattr(http.settings, "deadline", 30.0)
        http.prefetch(url, [(0, 5000, 1)])
        until = time.monotonic() + 10
        while server.requests < 1:  # the fetch ahead is on the wire, its deadline set
            assert time.monotonic() < until, "the fetch ahead never reached the server"
            time.sleep(0.01)
        monkeypatch.setattr(http.settings, "deadline", 0.5)
        with pytest.raises(RemoteAccessError, match="did not finish within"):
            with open_media(url, head=True):
                pass
        assert server.requests == 1  # the fetch ahead only
        ranges.forget(url)
