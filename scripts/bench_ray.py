#!/usr/bin/env python
"""Ray Data benchmark: decoding the benchmark's refs with hf_mediaref.ray on a local 2-CPU Ray runtime
(tasks, and an actor pool) against direct ``batch_decode`` on the same batches with the same 2 cores.

    python scripts/bench_ray.py [--quick] [--reps N] [--repeat K] [--markdown FILE] [--media DIR]
                                [--kinds bframes nobframes]

Media and workloads are scripts/benchmark.py's ("random 256": 256 random frames of one long video;
"32 videos x 8": 8 random frames of each of 32 short videos), on both kinds of video (MP4 with B-frames,
MKV without). Refs are sorted by (video, time), as
``video_shuffle`` lays them out, and cut into batches of ``--batch-size`` rows; each dataset holds the
workload ``--repeat`` times so that Ray's per-run start-up is paid once per dataset, as in training.

Roads, each decoding the same batches:
- direct: ``batch_decode(batch, max_workers=2)`` for each batch in turn, in this process;
- Ray tasks: ``map_batches(MediaDecoder(...))``, 1 CPU per task (1 decoder thread each), 2 at a time;
- Ray actors: ``map_batches(MediaDecoder, compute=ActorPoolStrategy(size=2))``, 1 CPU per actor;
- Ray, no decoding: the tasks road with a function that returns the batch's frames ready made (uint8 of the
  video's size, nothing decoded): what Ray's own pipeline delivers at most, the ceiling of the roads above.

Frames/s count every returned frame, delivered to this process (Ray's frames travel through the object
store to the driver, as they would to a training loop). Each Ray road is measured on its own, as a user runs
it epoch after epoch: one untimed run (which also checks every frame's barcode), then ``--reps`` pairs of a
direct run and a run of the road; "x direct" is the median over the pairs of direct's time over the road's
(the machine's load drifts; a pair sees the same). Roads are not interleaved with one another: an actor pool
starts fresh worker processes, and Ray then ends idle task workers beyond its soft limit (one per CPU), so a
tasks run after an actors run would start fresh processes too, which a user running tasks never does.
"x direct per CPU-second" is the same median of direct's CPU seconds over the road's (this process's, Ray's
workers' and daemons'): the share of direct's speed the road would keep on cores of its own, whatever else
runs on the machine (not for actors: their processes end with the run, uncounted). Engine calls, refs per
call and index scans are counted inside the Ray workers (last run). "cores" is the CPU time of this
process, of Ray's workers and of Ray's daemons (raylet, GCS) over the road's wall time (median run; other
users of the machine and ended processes are not counted). Also: videos per 64-row batch after
``random_shuffle()`` and after ``video_shuffle``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))

from benchmark import KINDS, add_kinds_argument, make_media, make_workloads, publish

from hf_mediaref.testing.media import read_index


def read_frame_shape(path: str) -> tuple[int, int, int]:
    """``(H, W, 3)`` of the video's frames."""
    import av

    with av.open(path) as container:
        stream = container.streams.video[0]
        return (stream.codec_context.height, stream.codec_context.width, 3)


CPUS = 2
ROAD_WORKLOADS = ("random 256", "videos x 8")


def _table(requests: list[tuple[Any, int]], repeat: int) -> Any:
    """The workload's refs sorted by (video, time), ``repeat`` times, with the expected barcode."""
    import pyarrow as pa

    from hf_mediaref.arrow import STORAGE_TYPE

    rows = sorted((v.path, v.pts_ns[i], i) for v, i in requests)
    rows = rows * repeat
    return pa.table(
        {
            "frame": pa.array([{"uri": u, "pts_ns": p} for u, p, _ in rows], STORAGE_TYPE),
            "expected": pa.array([i for _, _, i in rows], pa.int64()),
        }
    )


def _counting_decoder() -> type:
    """A MediaDecoder adding the engine calls and refs of each batch (counted in the worker) as columns."""
    from hf_mediaref.ray import MediaDecoder

    class CountingDecoder(MediaDecoder):
        def __call__(self, batch: Any) -> dict[str, Any]:
            from hf_mediaref.video import collect_stats

            with collect_stats() as stats:
                out = super().__call__(batch)
            n = len(out["expected"])
            out["calls"] = np.full(n, stats.calls / n)  # shares: they add up to the counts over any rows
            out["refs"] = np.full(n, stats.requested_refs / n)
            out["scans"] = np.full(n, stats.index_scans / n)
            return out

    return CountingDecoder


def run_direct(table: Any, batch_size: int, check: bool) -> tuple[int, int, int, int]:
    import hf_mediaref
    from hf_mediaref.video import collect_stats

    frames_total = 0
    with collect_stats() as stats:
        for start in range(0, table.num_rows, batch_size):
            part = table.slice(start, batch_size)
            refs = part["frame"].to_pylist()
            frames = hf_mediaref.batch_decode(refs, max_workers=CPUS)
            frames_total += len(frames)
            if check:
                expected = part["expected"].to_pylist()
                wrong = sum(read_index(f) != e for f, e in zip(frames, expected))
                assert wrong == 0, f"direct: {wrong} wrong frames"
    return frames_total, stats.calls, stats.requested_refs, stats.index_scans


def _ready_frames(shape: tuple[int, ...]) -> Any:
    """A map_batches function returning ``shape`` frames for each row, nothing decoded (Ray's ceiling)."""

    def ready(batch: Any) -> dict[str, Any]:
        n = len(batch["expected"])
        frames = np.full((n, *shape), 7, np.uint8)  # written once, as a decoder writes its frames
        zeros = np.zeros(n)
        return {
            "frame": frames,
            "expected": np.asarray(batch["expected"]),
            "calls": zeros,
            "refs": zeros,
            "scans": zeros,
        }

    return ready


def run_ray(
    ray: Any, ds: Any, road: str, batch_size: int, check: bool, shape: tuple[int, ...]
) -> tuple[int, int, int, int]:
    decoder = _counting_decoder()
    if road == "tasks":
        out = ds.map_batches(decoder(), batch_size=batch_size, num_cpus=1)
    elif road == "ready":
        out = ds.map_batches(_ready_frames(shape), batch_size=batch_size, num_cpus=1)
    else:
        out = ds.map_batches(
            decoder, batch_size=batch_size, num_cpus=1, compute=ray.data.ActorPoolStrategy(size=CPUS)
        )
    frames, calls, refs, scans = 0, 0.0, 0.0, 0.0
    for batch in out.iter_batches(batch_size=None, batch_format="numpy"):
        n = len(batch["expected"])
        frames += n
        calls += float(batch["calls"].sum())
        refs += float(batch["refs"].sum())
        scans += float(batch["scans"].sum())
        if check and road != "ready":
            wrong = sum(read_index(f) != e for f, e in zip(batch["frame"], batch["expected"]))
            assert wrong == 0, f"ray {road}: {wrong} wrong frames"
    return frames, round(calls), round(refs), round(scans)


_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def cpu_seconds() -> dict[str, float]:
    """CPU seconds so far of this process, of Ray's worker processes and of Ray's daemons (raylet, GCS and
    the others Ray starts), from ``/proc`` (empty elsewhere). Processes that ended are not counted."""
    out = {"driver": 0.0, "workers": 0.0, "daemons": 0.0}
    proc = Path("/proc")
    if not proc.is_dir():
        return {}
    me = os.getpid()
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmd = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        seconds = (int(fields[11]) + int(fields[12])) / _TICKS
        if int(entry.name) == me:
            out["driver"] += seconds
        elif "ray::" in cmd or "default_worker.py" in cmd:
            out["workers"] += seconds
        elif "/ray/" in cmd and (
            "raylet" in cmd or "gcs_server" in cmd or "dashboard" in cmd or "monitor" in cmd
        ):
            out["daemons"] += seconds
    return out


def shuffle_locality(ray: Any, videos: int = 32, frames: int = 64, batch: int = 64) -> list[tuple[str, Any]]:
    """Mean distinct videos per ``batch``-row batch of a refs-only dataset after each shuffle."""
    import pyarrow as pa

    from hf_mediaref.arrow import STORAGE_TYPE
    from hf_mediaref.ray import video_shuffle

    refs = [
        {"uri": f"/v/{v:03d}.mp4", "pts_ns": t * 50_000_000} for v in range(videos) for t in range(frames)
    ]
    ds = ray.data.from_arrow(pa.table({"frame": pa.array(refs, STORAGE_TYPE)})).repartition(8)

    def per_batch(shuffled: Any) -> float:
        counts = [
            len(set(b["frame"].combine_chunks().field("uri").to_pylist()))
            for b in shuffled.iter_batches(batch_size=batch, batch_format="pyarrow")
        ]
        return float(np.mean(counts))

    return [
        ("random_shuffle()", per_batch(ds.random_shuffle(seed=0))),
        ("video_shuffle(block_size=16)", per_batch(video_shuffle(ds, block_size=16, seed=0))),
        ("video_shuffle(block_size=64)", per_batch(video_shuffle(ds, block_size=64, seed=0))),
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="a 60 s video, 4 short videos, 1 rep")
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--repeat", type=int, default=4, help="copies of the workload in each dataset")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--media", default=str(ROOT / ".bench"), help="where generated media is kept")
    parser.add_argument("--markdown", help="write the table to this file")
    add_kinds_argument(parser)
    args = parser.parse_args(argv)
    warnings.filterwarnings("ignore")
    os.environ.setdefault("RAY_DEDUP_LOGS", "0")
    # stored indexes in a folder of this run only (inherited by the Ray workers): the first run stores them
    os.environ["HF_MEDIAREF_CACHE_DIR"] = tempfile.mkdtemp(prefix="hf_mediaref-bench-ray-")
    reps = 1 if args.quick else args.reps
    media = Path(args.media)
    media.mkdir(parents=True, exist_ok=True)
    workloads = []
    for kind in [KINDS[k] for k in args.kinds]:
        long, shorts = make_media(media, args.quick, kind)
        workloads += [w for w in make_workloads(long, shorts, kind=kind) if w.base.endswith(ROAD_WORKLOADS)]

    import ray

    ray.init(num_cpus=CPUS, include_dashboard=False, log_to_driver=False, logging_level="ERROR")
    context = ray.data.DataContext.get_current()
    context.enable_progress_bars = False
    rows = []
    for workload in workloads:
        table = _table(workload.requests, args.repeat)
        shape = read_frame_shape(workload.requests[0][0].path)
        blocks = max(CPUS, table.num_rows // (args.batch_size * 2))
        ds = ray.data.from_arrow(table).repartition(blocks).materialize()

        def direct(check: bool, t: Any = table) -> tuple[int, int, int, int]:
            return run_direct(t, args.batch_size, check)

        roads = {
            "Ray Data tasks (2 x 1 CPU)": "tasks",
            "Ray Data actors (2 x 1 CPU)": "actors",
            "Ray Data, no decoding (ready frames; tasks)": "ready",
        }
        direct_counts = direct(True)  # warm-up: caches; every frame checked
        direct_times: list[float] = []
        results = []
        for name, road in roads.items():

            def run(
                check: bool, d: Any = ds, r: str = road, f: tuple[int, ...] = shape
            ) -> tuple[int, int, int, int]:
                return run_ray(ray, d, r, args.batch_size, check, f)

            counts = run(True)  # warm-up: this road's Ray workers, caches; every frame checked
            times, ratios, cpu_ratios, cores = [], [], [], []
            direct_cpu = 0.0
            for _ in range(reps):  # pairs: direct, then the road
                before, start = cpu_seconds(), time.perf_counter()
                direct_counts = direct(False)
                direct_times.append(time.perf_counter() - start)
                direct_cpu = sum(cpu_seconds().values()) - sum(before.values())
                before, start = cpu_seconds(), time.perf_counter()
                counts = run(False)
                times.append(time.perf_counter() - start)
                after = cpu_seconds()
                cores.append({k: (after[k] - before[k]) / times[-1] for k in after})
                ratios.append(direct_times[-1] / times[-1])
                road_cpu = sum(after.values()) - sum(before.values())
                if direct_cpu > 0 and road_cpu > 0 and road != "actors":  # ended actors: not counted
                    cpu_ratios.append(direct_cpu / road_cpu)
            median_run = sorted(range(reps), key=lambda i: times[i])[reps // 2]
            cpu_ratio = statistics.median(cpu_ratios) if cpu_ratios else None
            results.append(
                (
                    name,
                    counts,
                    statistics.median(times),
                    statistics.median(ratios),
                    cpu_ratio,
                    cores[median_run],
                )
            )
        results.insert(
            0,
            ("direct batch_decode (2 threads)", direct_counts, statistics.median(direct_times), 1.0, 1.0, {}),
        )
        for name, (n, calls, refs, scans), seconds, ratio, cpu_ratio, busy in results:
            fps = n / seconds
            used = " / ".join(f"{busy[k]:.2f}" for k in ("driver", "workers", "daemons")) if busy else ""
            per_cpu = "" if cpu_ratio is None else f"{cpu_ratio:.2f}"
            rows.append((workload.name, name, fps, ratio, per_cpu, calls, refs / max(calls, 1), scans, used))
            print(
                f"{workload.name:14s} {name:44s} {fps:8.1f} frames/s  x{ratio:.2f}  per CPU-s x{per_cpu}  "
                f"cores {used}",
                flush=True,
            )
    locality = shuffle_locality(ray)
    ray.shutdown()

    lines = [
        f"Ray Data on {CPUS} CPUs, batches of {args.batch_size} refs sorted by (video, time), each workload "
        f"{args.repeat}x per dataset, median of {reps} (x direct: median over pairs of runs)",
        "",
        "| workload | road | frames/s | x direct | x direct per CPU-second | engine calls | refs per call "
        "| index scans (last run) | cores: driver / workers / daemons |",
        "|---|---|---:|---:|---:|---:|---:|---:|---|",
    ]
    lines += [
        f"| {w} | {r} | {f:.0f} | {x:.2f} | {pc} | {c} | {rpc:.1f} | {n} | {u} |"
        for w, r, f, x, pc, c, rpc, n, u in rows
    ]
    lines += ["", "| shuffle (32 videos x 64 refs) | videos per 64-row batch |", "|---|---:|"]
    lines += [f"| {name} | {value:.1f} |" for name, value in locality]
    publish("\n".join(lines), args.markdown)
    return 0


if __name__ == "__main__":
    sys.exit(main())
