#!/usr/bin/env python
"""Remote at the speed of local (issue 23): one ``batch_decode`` of 120 refs over 5 videos, from local disk
and from a loopback HTTP/1.1 Range server that answers every request after 20, 50 or 100 ms
(:class:`hf_mediaref.testing.LatencyServer`).

    python scripts/bench_remote.py [--quick] [--reps N] [--delays 20 50 100] [--markdown FILE]
    python scripts/bench_remote.py --loader ...  # an epoch through DataLoader workers (across calls)
    python scripts/bench_remote.py --ray ...     # Ray Data tasks and actors (across calls)
    python scripts/benchmark.py --remote        # the same, from the benchmark

Videos (barcode videos, generated once into ``.bench/`` by ``scripts/benchmark.py``'s ``make_video``): a
5-minute 640x360 B-frame MP4 (GOP 250), a 5-minute 640x360 MKV (GOP 30, no B-frames) and three 5 s MP4s (with
``--quick``: 60 s long videos). Workloads: 120 refs, 48 random frames of each long video and 8 of each short
one, shuffled; and the benchmark's "random 256" (256 random frames of the long MP4). States:

- cold: empty index store (a new ``HF_MEDIAREF_CACHE_DIR``), no index in memory, no open container;
- warm: indexes known (in memory), containers closed.

Columns: frames/s (median of ``--reps`` interleaved rounds), requests and peak requests in flight (counted by
the server), bytes per frame (bytes the server sent / refs), wrong frames (barcode check of every frame of
every round: must be 0), and remote / local frames/s (the local run of the same state, same round).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))

from benchmark import BFRAMES, NO_BFRAMES, Video, make_video, publish

import hf_mediaref
from hf_mediaref import MediaRef
from hf_mediaref.testing import LatencyServer, read_index
from hf_mediaref.video import cleanup_cache
from hf_mediaref.video._cache import decoder_cache


def make_remote_media(media: Path, quick: bool) -> list[Video]:
    """Two long videos (MP4 with B-frames, MKV without) and three 5 s MP4s."""
    media.mkdir(parents=True, exist_ok=True)
    seconds = 60 if quick else 300
    long_mp4 = make_video(media / f"long_{seconds}s_640x360_20fps.mp4", seconds, kind=BFRAMES)
    long_mkv = make_video(media / f"long_{seconds}s_640x360_20fps.mp4", seconds, kind=NO_BFRAMES)
    shorts = [make_video(media / f"short_{k:02d}_5s_640x360_20fps.mp4", 5, kind=BFRAMES) for k in range(3)]
    return [long_mp4, long_mkv, *shorts]


def make_refs(videos: list[Video], seed: int = 0) -> list[tuple[Video, int]]:
    """48 random frames of each long video, 8 of each short one: 120 refs, shuffled."""
    rng = random.Random(seed)
    refs = []
    for video, n in zip(videos, (48, 48, 8, 8, 8)):
        refs += [(video, i) for i in rng.sample(range(len(video.pts_ns)), n)]
    rng.shuffle(refs)
    return refs


class Cell:
    def __init__(self) -> None:
        self.times: list[float] = []
        self.requests: list[int] = []
        self.peaks: list[int] = []
        self.bytes: list[int] = []
        self.wrong = 0

    def fps(self, n: int) -> float:
        return n / statistics.median(self.times) if self.times else float("nan")


def run_once(
    refs: list[dict], expected: list[int], state: str, cell: Cell, server: Any, **decode: Any
) -> None:
    """One ``batch_decode(refs, **decode)`` timed into ``cell``, in ``state``: cold (an empty index store,
    nothing open) or warm (indexes known, containers closed); with the requests, the peak in flight and the
    bytes ``server`` counted (None: local disk), and every frame checked by its barcode."""
    if state == "cold":
        os.environ["HF_MEDIAREF_CACHE_DIR"] = tempfile.mkdtemp(prefix="hf_mediaref-bench-remote-")
        cleanup_cache()
    else:
        decoder_cache.clear()  # containers closed, indexes kept
    if server is not None:
        server.reset()
    start = time.perf_counter()
    frames = hf_mediaref.batch_decode(refs, **decode)
    cell.times.append(time.perf_counter() - start)
    if server is not None:
        cell.requests.append(server.requests)
        cell.peaks.append(server.peak_in_flight)
        cell.bytes.append(server.bytes_sent)
    cell.wrong += sum(read_index(f) != e for f, e in zip(frames, expected)) + abs(len(frames) - len(expected))


@contextlib.contextmanager
def fsspec_file_objects(seam: str | None) -> Iterator[None]:
    """The "before" road of a store: ``hf_mediaref.io._sources``'s ``seam`` (``_location``: ``hf://`` and
    ``s3://`` read over HTTP; ``_pin``: ``gs://`` read at a pinned generation) answers None, so every file
    is read through fsspec's own file object, as before those roads; None: nothing changed."""
    if seam is None:
        yield
        return
    from hf_mediaref.io import _sources

    original = getattr(_sources, seam)
    setattr(_sources, seam, lambda *args: None)
    try:
        yield
    finally:
        setattr(_sources, seam, original)


#: The columns of :func:`store_roads`' rows.
STORE_TABLE = (
    "| road | per request | state | wall | frames/s | / local | requests | peak in flight | bytes per frame "
    "| wrong frames |\n|---|---|---|---:|---:|---:|---:|---:|---:|---:|"
)


def store_refs(pairs: list[tuple[Video, int]]) -> tuple[list[dict], list[dict]]:
    """The refs of :func:`make_refs`' pairs on local disk, and relative to a store's root (the file name)."""
    local = [{"uri": v.path, "pts_ns": v.pts_ns[i]} for v, i in pairs]
    remote = [{"uri": Path(v.path).name, "pts_ns": v.pts_ns[i]} for v, i in pairs]
    return local, remote


def store_report(rows: list[str], where: str, quick: bool, reps: int, bandwidth: float | None) -> str:
    """The one-store scripts' report: what was measured (the media ``where`` they lie), then the rows."""
    head = (
        f"{'60 s' if quick else '5 min'} 640x360 MP4 (B-frames) + MKV (no B-frames) and three 5 s MP4s in "
        f"{where}; 120 refs over the 5 videos; one batch_decode; "
        f"{'' if bandwidth is None else f'a {bandwidth * 8 / 1e9:g} Gbit/s link; '}"
        f"median of {reps} interleaved rounds; {len(os.sched_getaffinity(0))} cores\n\n{STORE_TABLE}"
    )
    return head + "\n" + "\n".join(rows)


def add_store_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of the one-store scripts (``bench_hub.py``, ``bench_s3.py``)."""
    parser.add_argument("--quick", action="store_true", help="60 s long videos, 1 round")
    parser.add_argument("--reps", type=int, default=None, help="timed rounds (default 3, --quick 1)")
    parser.add_argument("--delays", type=int, nargs="*", default=None, help="ms per request (50)")
    parser.add_argument("--bandwidth", type=float, default=None, help="the link's bytes/s (default: no cap)")
    parser.add_argument("--media", default=str(ROOT / ".bench"), help="where generated media is kept")
    parser.add_argument("--markdown", help="also write the report to this file")


def store_roads(
    roads: dict[str, tuple[list[dict], str | None]],
    expected: list[int],
    server: Any,
    delay: int,
    reps: int,
    **decode: Any,
) -> list[str]:
    """Rows (:data:`STORE_TABLE`) of the roads of one store at one delay, interleaved round by round (the
    order reversed every other round; round 0 a warm-up whose frames are checked too), cold then warm.

    Args:
        roads: name -> ``(refs, the seam of fsspec_file_objects or None)``; the first is local disk
            (no server, no ``decode``), which the others are divided by.
        server: what counts the remote roads' requests.
        decode: ``batch_decode`` arguments of the remote roads (``access=``).
    """
    names = list(roads)
    cells = {(r, s): Cell() for r in names for s in ("cold", "warm")}
    for rep in range(reps + 1):
        for road in names if rep % 2 else names[::-1]:
            refs, seam = roads[road]
            local = road == names[0]
            with fsspec_file_objects(seam):
                for state in ("cold", "warm"):
                    cell = Cell() if rep == 0 else cells[road, state]  # round 0: warm-up
                    run_once(
                        refs, expected, state, cell, None if local else server, **({} if local else decode)
                    )
                    if rep == 0:
                        cells[road, state].wrong += cell.wrong
            quiet = time.monotonic() + 30  # what a road left in flight (gcsfs's background reads) ends first
            while server.in_flight and time.monotonic() < quiet:
                time.sleep(0.05)
            print(f"round {rep} {road} done", flush=True)
    n, rows = len(expected), []
    for state in ("cold", "warm"):
        base = cells[names[0], state].fps(n)
        for road in names:
            c = cells[road, state]
            net = (
                f"{statistics.median(c.requests):.0f} | {max(c.peaks)} | "
                f"{statistics.median(c.bytes) / n / 1024:.0f} KiB"
                if c.requests
                else "- | - | -"
            )
            rows.append(
                f"| {road} | {delay} ms | {state} | {statistics.median(c.times) * 1000:.0f} ms | "
                f"{c.fps(n):.1f} | {c.fps(n) / base:.2f}x | {net} | {c.wrong} |"
            )
            print(rows[-1], flush=True)
    return rows


def run_remote(
    media: Path, quick: bool, delays: list[int], reps: int, io_concurrency: int | None = None
) -> str:
    """Measure and return the markdown report (see the module doc)."""
    videos = make_remote_media(media, quick)
    rng = random.Random(1)
    workloads = {
        "120 refs, 5 videos": make_refs(videos),
        "random 256": [(videos[0], i) for i in rng.sample(range(len(videos[0].pts_ns)), 256)],
    }
    options = hf_mediaref.DecodeOptions()
    if io_concurrency is not None:
        options = options.replace(io_concurrency=io_concurrency)
    rows = []
    for delay in delays:
        with LatencyServer(media, delay=delay / 1000) as server:
            for label, pairs in workloads.items():
                expected = [i for _, i in pairs]
                local = [{"uri": v.path, "pts_ns": v.pts_ns[i]} for v, i in pairs]
                remote = [
                    {"uri": f"{server.url}/{Path(v.path).name}", "pts_ns": v.pts_ns[i]} for v, i in pairs
                ]
                cells = {(w, s): Cell() for w in ("local", "remote") for s in ("cold", "warm")}
                for rep in range(reps + 1):
                    order = [("local", local, None), ("remote", remote, server)]
                    for where, refs, srv in order if rep % 2 else order[::-1]:
                        for state in ("cold", "warm"):
                            cell = Cell() if rep == 0 else cells[where, state]  # round 0: warm-up
                            run_once(refs, expected, state, cell, srv, options=options)
                            if rep == 0:
                                cells[where, state].wrong += cell.wrong
                for state in ("cold", "warm"):
                    lo, re_ = cells["local", state], cells["remote", state]
                    n = len(pairs)
                    rows.append(
                        f"| {label} | {delay} ms | {state} | {lo.fps(n):.0f} | {re_.fps(n):.0f} | "
                        f"{re_.fps(n) / lo.fps(n):.2f}x | {statistics.median(re_.requests):.0f} | "
                        f"{max(re_.peaks)} | {statistics.median(re_.bytes) / n / 1024:.0f} KiB | "
                        f"{lo.wrong + re_.wrong} |"
                    )
                    print(rows[-1], flush=True)
    head = (
        f"{'60 s' if quick else '5 min'} 640x360 MP4 (B-frames) + MKV (no B-frames) and three 5 s MP4s; "
        f"120 refs over the 5 videos, or 256 random frames of the long MP4; one batch_decode; median of "
        f"{reps} "
        f"interleaved rounds; {len(os.sched_getaffinity(0))} cores\n\n"
        "| workload | per request | state | local frames/s | remote frames/s | remote / local | requests "
        "| peak in flight | bytes per frame | wrong frames |\n"
        "|---|---|---|---:|---:|---:|---:|---:|---:|---:|"
    )
    return head + "\n" + "\n".join(rows)


def _loader_epoch(dataset: Any, batches: list[list[int]], workers: int, ahead: bool) -> tuple[float, list]:
    """Seconds for one epoch of ``batches`` through a map-style DataLoader with ``workers`` workers (the
    rows' labels, in order)."""
    from torch.utils.data import DataLoader

    from hf_mediaref.hf import DecodeAhead

    frames = dataset.with_format("mediaref", output="numpy")
    if ahead:
        frames = DecodeAhead(frames, batches)
    sampler = frames.sampler if ahead else batches
    loader = DataLoader(frames, batch_sampler=sampler, num_workers=workers, collate_fn=lambda rows: rows)
    decoder_cache.clear()  # containers closed, indexes kept (the workers fork from here)
    start = time.perf_counter()
    got = [(read_index(row["frame"]), row["k"]) for batch in loader for row in batch]
    return time.perf_counter() - start, got


def _robot_cameras(media: Path) -> list[Video]:
    """8 of the equal-cores benchmark's videos (10 s, 320x240, 30 fps, a keyframe every 60 frames, B-frames:
    the size of many robot cameras), made by ``scripts/benchmark.py --equal-cores`` into ``.bench/``."""
    import json
    from types import SimpleNamespace

    folder = media / "equal_cores"
    paths = sorted(folder.glob("h264-b_*_10s_320x240_30fps.mp4"))[:8]
    if len(paths) < 8:
        raise SystemExit(f"run scripts/benchmark.py --equal-cores first (no videos in {folder})")
    return [
        SimpleNamespace(path=str(p), pts_ns=json.loads(p.with_suffix(".json").read_text()))  # type: ignore[misc]
        for p in paths
    ]


def run_loader(
    media: Path, quick: bool, delays: list[int], reps: int, workers: int = 2, small: bool = False
) -> str:
    """Across calls (issue 23): an epoch of 12 batches of 32 random rows over the 5 videos through a
    map-style DataLoader with ``workers`` workers, local against remote, the format alone and with
    :class:`~hf_mediaref.hf.DecodeAhead` (each worker starts the reads of the batch it is handed next)."""
    import datasets

    from hf_mediaref.hf import MediaRefFeature

    videos = _robot_cameras(media) if small else make_remote_media(media, quick)
    rng = random.Random(2)
    pairs = [(v, i) for v in videos for i in rng.sample(range(len(v.pts_ns)), 96 if v is videos[0] else 72)]
    rng.shuffle(pairs)
    pairs = pairs[:384]
    serve = Path(videos[0].path).parent
    batches = [list(range(s, s + 32)) for s in range(0, len(pairs), 32)]
    features = datasets.Features({"frame": MediaRefFeature(), "k": datasets.Value("int64")})
    rows = []
    for delay in delays:
        with LatencyServer(serve, delay=delay / 1000) as server:
            sets = {
                "local": [MediaRef(v.path, v.pts_ns[i]) for v, i in pairs],
                "remote": [MediaRef(f"{server.url}/{Path(v.path).name}", v.pts_ns[i]) for v, i in pairs],
            }
            data = {
                where: datasets.Dataset.from_dict(
                    {"frame": refs, "k": [i for _, i in pairs]}, features=features
                )
                for where, refs in sets.items()
            }
            for where in data:  # warm: every index known before the workers fork
                hf_mediaref.batch_decode(sets[where])
            roads = [("local", False), ("remote", False), ("remote", True)]
            times: dict[tuple[str, bool], list[float]] = {road: [] for road in roads}
            wrong = dict.fromkeys(roads, 0)
            sent: dict[tuple[str, bool], list[int]] = {road: [] for road in roads}
            asked: dict[tuple[str, bool], list[int]] = {road: [] for road in roads}
            for rep in range(reps + 1):
                for road in roads if rep % 2 else roads[::-1]:
                    server.reset()
                    seconds, got = _loader_epoch(data[road[0]], batches, workers, road[1])
                    if rep:
                        sent[road].append(server.bytes_sent)
                        asked[road].append(server.requests)
                    wrong[road] += sum(index != k for index, k in got) + abs(len(got) - len(pairs))
                    if rep:  # round 0: warm-up
                        times[road].append(seconds)
            fps = {road: len(pairs) / statistics.median(t) for road, t in times.items()}
            for road in roads:
                name = f"{road[0]}, {'DecodeAhead' if road[1] else 'format'}"
                rows.append(
                    f"| {delay} ms | {name} | {fps[road]:.0f} | {fps[road] / fps['local', False]:.2f}x | "
                    f"{statistics.median(asked[road]):.0f} | "
                    f"{statistics.median(sent[road]) / len(pairs) / 1024:.0f} KiB | {wrong[road]} |"
                )
                print(rows[-1], flush=True)
    head = (
        f"an epoch of 12 batches of 32 random rows over {len(videos)} videos"
        f"{' (320x240, GOP 60, B-frames)' if small else ''}, map-style DataLoader with {workers} "
        f"workers, indexes known, containers closed; median of {reps} interleaved rounds; "
        f"{len(os.sched_getaffinity(0))} cores\n\n"
        "| per request | road | frames/s | / local format | requests | bytes per frame | wrong frames |\n"
        "|---|---|---:|---:|---:|---:|---:|"
    )
    return head + "\n" + "\n".join(rows)


def _two_calls_per_actor(ray: Any) -> Any:
    """An actor pool of 2 whose actors each run 2 calls of the UDF at once (Ray Data's
    ``max_concurrent_calls_per_actor`` with ``enable_true_multi_threading``; plain actors where this Ray lacks
    them)."""
    try:
        return ray.data.ActorPoolStrategy(
            size=2, max_concurrent_calls_per_actor=2, enable_true_multi_threading=True
        )
    except TypeError:
        return ray.data.ActorPoolStrategy(size=2)


def run_ray_roads(
    media: Path, quick: bool, delays: list[int], reps: int, repeat: int = 4, only: list[str] | None = None
) -> str:
    """Across calls on Ray Data (issue 23): the 120 refs ``repeat`` times, batches of 32 rows, through
    ``map_batches`` on a local 2-CPU Ray, local against remote; each task or actor decodes one batch at a
    time, so a road hides the network only by running more batches at once than there are cores
    (``num_cpus=0.5``: two per core, one fetching while the other decodes)."""
    import pyarrow as pa
    import ray

    from hf_mediaref.ray import MediaDecoder

    videos = make_remote_media(media, quick)
    pairs = make_refs(videos) * repeat
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level="ERROR")
    ray.data.DataContext.get_current().enable_progress_bars = False
    roads: list[tuple[str, bool, Any]] = [
        ("local, tasks (1 CPU each)", False, {"num_cpus": 1}),
        ("remote, tasks (1 CPU each)", True, {"num_cpus": 1}),
        ("remote, tasks (0.5 CPU each)", True, {"num_cpus": 0.5}),
        ("local, actors (2 x 1 CPU)", False, {"num_cpus": 1, "compute": ray.data.ActorPoolStrategy(size=2)}),
        ("remote, actors (2 x 1 CPU)", True, {"num_cpus": 1, "compute": ray.data.ActorPoolStrategy(size=2)}),
        (
            "remote, actors (4 x 0.5 CPU)",
            True,
            {"num_cpus": 0.5, "compute": ray.data.ActorPoolStrategy(size=4)},
        ),
        (  # one actor per CPU decodes one batch while the next one's reads wait on the network
            "remote, actors (2 x 1 CPU, 2 calls each at once)",
            True,
            {"num_cpus": 1, "compute": _two_calls_per_actor(ray)},
        ),
    ]
    if only:
        roads = [r for r in roads if not r[1] or any(o in r[0] for o in only)]
    rows = []
    try:
        for delay in delays:
            with LatencyServer(media, delay=delay / 1000) as server:
                tables = {
                    remote: pa.table(
                        {
                            "frame": [
                                {
                                    "uri": f"{server.url}/{Path(v.path).name}" if remote else v.path,
                                    "pts_ns": v.pts_ns[i],
                                }
                                for v, i in pairs
                            ],
                            "expected": [i for _, i in pairs],
                        }
                    )
                    for remote in (False, True)
                }
                data = {k: ray.data.from_arrow(t).repartition(8).materialize() for k, t in tables.items()}
                fps: dict[str, float] = {}
                for name, remote, args in roads:
                    decoder = MediaDecoder if "compute" in args else MediaDecoder()
                    times, wrong = [], 0
                    for rep in range(reps + 1):
                        start = time.perf_counter()
                        out = data[remote].map_batches(decoder, batch_size=32, **args)
                        got = 0
                        for batch in out.iter_batches(batch_size=None, batch_format="numpy"):
                            got += len(batch["expected"])
                            wrong += sum(
                                read_index(f) != e for f, e in zip(batch["frame"], batch["expected"])
                            )
                        wrong += abs(got - len(pairs))
                        if rep:  # round 0: warm-up (Ray's workers, their indexes)
                            times.append(time.perf_counter() - start)
                    fps[name] = len(pairs) / statistics.median(times)
                    local = fps[  # local disk, the same kind of road (tasks or actors)
                        next(n for n, r, a in roads if not r and ("compute" in a) == ("compute" in args))
                    ]
                    rows.append(
                        f"| {delay} ms | {name} | {fps[name]:.0f} | {fps[name] / local:.2f}x | {wrong} |"
                    )
                    print(rows[-1], flush=True)
    finally:
        ray.shutdown()
    head = (
        f"the 120 refs x {repeat} in batches of 32 through Ray Data map_batches(MediaDecoder), local Ray "
        "with "
        f"2 CPUs; median of {reps} runs after a warm-up run; {len(os.sched_getaffinity(0))} cores\n\n"
        "| per request | road | frames/s | / local, same road | wrong frames |\n|---|---|---:|---:|---:|"
    )
    return head + "\n" + "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="60 s long videos, 1 round, 50 ms only")
    parser.add_argument("--reps", type=int, default=None, help="timed rounds (default 3, --quick 1)")
    parser.add_argument("--delays", type=int, nargs="*", default=None, help="ms per request (20 50 100)")
    parser.add_argument("--io-concurrency", type=int, default=None, help="DecodeOptions.io_concurrency")
    parser.add_argument("--media", default=str(ROOT / ".bench"), help="where generated media is kept")
    parser.add_argument("--loader", action="store_true", help="map-style DataLoader workers (across calls)")
    parser.add_argument("--ray", action="store_true", help="Ray Data tasks and actors (across calls)")
    parser.add_argument("--roads", nargs="*", default=None, help="--ray: remote roads whose name contains")
    parser.add_argument(
        "--small", action="store_true", help="--loader on 8 videos of 320x240 (robot cameras)"
    )
    parser.add_argument("--markdown", help="also write the report to this file")
    args = parser.parse_args(argv)
    reps = args.reps or (1 if args.quick else 3)
    delays = args.delays or ([50] if args.quick else [20, 50, 100])
    if args.loader or args.ray:
        if args.loader:
            report = run_loader(Path(args.media), args.quick, delays, reps, small=args.small)
        else:
            report = run_ray_roads(Path(args.media), args.quick, delays, reps, only=args.roads)
        publish(report, args.markdown)
        return 0
    publish(run_remote(Path(args.media), args.quick, delays, reps, args.io_concurrency), args.markdown)
    return 0


if __name__ == "__main__":
    sys.exit(main())
