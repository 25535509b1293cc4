#!/usr/bin/env python
"""Temporal windows benchmark: 64 rows x a window of 4 frames on the benchmark video, decoded as one batch
(``with_format("mediaref", windows=...)``: every window frame in one engine call, each distinct time once)
against the same frames decoded row by row (one engine call per row, its 4 frames) and frame by frame (one
call per frame).

    python scripts/bench_windows.py [--seconds 60] [--reps 3] [--sample 16] [--markdown FILE]

The video is ``scripts/benchmark.py``'s long video (640x360, 20 fps, H.264 with B-frames, a keyframe every
250 frames, noise for a realistic bitrate), kept in ``.bench/``. Every returned frame is checked by its
barcode. Row-by-row and frame-by-frame run on the first ``--sample`` rows (their cost per row does not depend
on the batch size) and are reported per row. Refs per call count distinct times: a batch asks for each
frame its windows share once. LeRobot's own decoding is not compared: LeRobot 0.6 needs
Python >= 3.12 and pins PyAV 15 / datasets 4, which the project's environment (Python 3.11) cannot install.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))

from benchmark import FPS, make_video, publish

from hf_mediaref import MediaRef, batch_decode, cleanup_cache
from hf_mediaref.testing.media import read_index
from hf_mediaref.video import collect_stats

OFFSETS = [-3 / FPS, -2 / FPS, -1 / FPS, 0.0]  # the current frame and the three before it
EPISODE_SECONDS = 10


def build_dataset(video: Any) -> Any:
    from datasets import Dataset, Features, Value

    from hf_mediaref.hf import MediaRefFeature

    n = len(video.pts_ns)
    rows = {
        "frame": [{"uri": video.path, "pts_ns": p} for p in video.pts_ns],
        "episode_index": [i // (EPISODE_SECONDS * FPS) for i in range(n)],
        "frame_index": list(range(n)),
    }
    features = Features(
        {"frame": MediaRefFeature(), "episode_index": Value("int64"), "frame_index": Value("int64")}
    )
    return Dataset.from_dict(rows, features=features)


def expected_window(i: int) -> list[int]:
    start = (i // (EPISODE_SECONDS * FPS)) * EPISODE_SECONDS * FPS
    return [max(start, i + round(o * FPS)) for o in OFFSETS]


def check(windows: list[Any], rows: list[int]) -> int:
    wrong = 0
    for window, i in zip(windows, rows):
        wrong += [read_index(f) for f in window] != expected_window(i)
    return wrong


def run_batch(fmt: Any, rows: list[int]) -> list[Any]:
    return fmt[rows]["frame"]


def run_rows(fmt: Any, rows: list[int]) -> list[Any]:
    return [fmt[i]["frame"] for i in rows]


def run_frames(video: Any, rows: list[int]) -> list[Any]:
    windows = []
    for i in rows:
        times = [video.pts_ns[j] for j in expected_window(i)]
        windows.append(np.stack([batch_decode([MediaRef(video.path, t)])[0] for t in times]))
    return windows


def measure(name: str, fn: Any, rows: list[int], reps: int) -> dict[str, Any]:
    wrong = check(fn(rows), rows)  # warm-up: indexes built, containers open, frames checked
    times, stats_seen = [], None
    for _ in range(reps):
        with collect_stats() as stats:
            t0 = time.perf_counter()
            windows = fn(rows)
            times.append(time.perf_counter() - t0)
        wrong += check(windows, rows)  # barcodes read outside the timed part
        stats_seen = stats
    assert stats_seen is not None
    seconds = statistics.median(times)
    frames = len(rows) * len(OFFSETS)
    return {
        "name": name,
        "rows": len(rows),
        "seconds": seconds,
        "ms_per_row": 1000 * seconds / len(rows),
        "frames_per_s": frames / seconds,
        "calls": stats_seen.calls,
        "refs_per_call": stats_seen.refs_per_call,
        "decoded_per_frame": stats_seen.decoded_frames / frames,
        "wrong": wrong,
    }


def render(results: list[dict[str, Any]], header: str) -> str:
    lines = [
        header,
        "",
        "| workload | how | rows timed | ms / row | window frames/s | engine calls | refs / call "
        "| decoded per window frame | wrong |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        lines.append(
            f"| {r['workload']} | {r['name']} | {r['rows']} | {r['ms_per_row']:.1f} | "
            f"{r['frames_per_s']:.0f} | {r['calls']} | {r['refs_per_call']:.1f} | "
            f"{r['decoded_per_frame']:.2f} | {r['wrong']} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=int, default=60, help="length of the benchmark video (default 60)")
    parser.add_argument("--rows", type=int, default=64, help="rows per batch (default 64)")
    parser.add_argument("--reps", type=int, default=3, help="timed passes (default 3; medians)")
    parser.add_argument("--sample", type=int, default=16, help="rows timed row by row / frame by frame")
    parser.add_argument("--media", default=str(ROOT / ".bench"), help="where generated media is kept")
    parser.add_argument("--markdown", help="also write the report to this file")
    args = parser.parse_args(argv)

    import av

    from hf_mediaref.hf import FrameWindows

    media = Path(args.media)
    media.mkdir(parents=True, exist_ok=True)
    video = make_video(media / f"long_{args.seconds}s_640x360_20fps.mp4", args.seconds)
    ds = build_dataset(video)
    windows = FrameWindows.from_dataset(ds, {"frame": OFFSETS}, episode_column="episode_index")
    fmt = ds.with_format("mediaref", windows=windows)
    n = len(ds)
    rng = np.random.default_rng(0)
    workloads = {
        f"random {args.rows} rows": sorted(rng.choice(n, args.rows, replace=False).tolist()),
        f"{args.rows} consecutive rows": list(range(n // 3, n // 3 + args.rows)),
    }
    results = []
    for workload, rows in workloads.items():
        sample = rows[:: max(1, len(rows) // args.sample)][: args.sample]  # spread over the batch's rows
        print(f"{workload} ...", flush=True)
        cleanup_cache()
        for name, fn, timed in [
            ("one batch, windows (1 engine call)", lambda r: run_batch(fmt, r), rows),
            ("row by row, windows (1 call per row)", lambda r: run_rows(fmt, r), sample),
            ("frame by frame (1 call per frame)", lambda r: run_frames(video, r), sample),
        ]:
            results.append({"workload": workload, **measure(name, fn, timed, args.reps)})
    header = (
        f"Windows of {len(OFFSETS)} frames (offsets {[round(o, 3) for o in OFFSETS]} s, episodes of "
        f"{EPISODE_SECONDS} s) on a {args.seconds} s 640x360 20 fps H.264 video (keyframe every 250 frames, "
        f"B-frames); PyAV {av.__version__}, Python {sys.version.split()[0]}, medians of {args.reps} passes. "
        "LeRobot not run (needs Python >= 3.12)."
    )
    publish(render(results, header), args.markdown)
    return 0 if all(r["wrong"] == 0 for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
