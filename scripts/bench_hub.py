#!/usr/bin/env python
"""``hf://`` videos over a slow link (issue 23): one ``batch_decode`` of the remote benchmark's 120 refs over
5 videos (``scripts/bench_remote.py``), kept in a fake Hub repo whose endpoint is a loopback HTTP/1.1 server
that answers every request after 50 ms (:class:`hf_mediaref.testing.LatencyServer`).

    python scripts/bench_hub.py [--quick] [--reps N] [--delays 50 100] [--markdown FILE]

Roads, interleaved round by round:

- local: the same files from local disk;
- hf:// before: ``huggingface_hub``'s ``HfFileSystemFile`` reads each file (ranged GETs of its resolve URL,
  5 MiB blocks, one request at a time per decode), as hf_mediaref read ``hf://`` before ``io/_hub``;
- hf:// now: the resolve URLs read on hf_mediaref's HTTP road, the batch's byte ranges fetched ahead
  (``DecodeOptions.io_concurrency``, 16).

The Hub's API is faked (``hf_mediaref.testing.fake_hub``); every file byte goes over HTTP. States: cold (empty
index store, nothing open), warm (indexes known, containers closed). Columns as in ``bench_remote.py``:
frames/s (median of ``--reps`` rounds), requests and peak in flight (counted by the server), bytes per frame,
wrong frames (barcode check of every frame of every round: must be 0).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))

from bench_remote import Cell, make_refs, make_remote_media
from benchmark import publish

import hf_mediaref
from hf_mediaref.io import _sources
from hf_mediaref.testing import LatencyServer, read_index
from hf_mediaref.testing.fake_hub import FakeHub
from hf_mediaref.video import cleanup_cache
from hf_mediaref.video._cache import decoder_cache

ROADS = ("local", "hf:// before", "hf:// now")


@contextlib.contextmanager
def _road(name: str) -> Any:
    """``hf:// before``: the Hub files read through fsspec's file object, as before ``io/_hub``."""
    if name != "hf:// before":
        yield
        return
    original = _sources._location
    _sources._location = lambda *args: None  # type: ignore[assignment]
    try:
        yield
    finally:
        _sources._location = original  # type: ignore[assignment]


def _run(refs: list[dict], expected: list[int], state: str, cell: Cell, server: Any, access: Any) -> None:
    if state == "cold":
        os.environ["HF_MEDIAREF_CACHE_DIR"] = tempfile.mkdtemp(prefix="hf_mediaref-bench-hub-")
        cleanup_cache()
    else:
        decoder_cache.clear()  # containers closed, indexes kept (of this road: its cold run just before)
    if server is not None:
        server.reset()
    start = time.perf_counter()
    frames = hf_mediaref.batch_decode(refs, access=access)
    cell.times.append(time.perf_counter() - start)
    if server is not None:
        cell.requests.append(server.requests)
        cell.peaks.append(server.peak_in_flight)
        cell.bytes.append(server.bytes_sent)
    cell.wrong += sum(read_index(f) != e for f, e in zip(frames, expected)) + abs(len(frames) - len(expected))


def run_hub(media: Path, quick: bool, delays: list[int], reps: int, bandwidth: float | None = None) -> str:
    videos = make_remote_media(media, quick)
    pairs = make_refs(videos)
    expected = [i for _, i in pairs]
    rows = []
    with (
        tempfile.TemporaryDirectory(prefix="hf_mediaref-bench-hub-") as tmp,
        FakeHub(Path(tmp) / "hub") as hub,
    ):
        import huggingface_hub

        huggingface_hub.HfApi().create_repo("bench/clips", repo_type="dataset")
        repo = hub.repo_dir("bench/clips")
        for video in videos:
            target = repo / Path(video.path).name
            if not target.exists():
                os.symlink(os.path.abspath(video.path), target)
        sha = hub.sha("bench/clips")
        www = hub.resolve_tree(Path(tmp) / "www")
        local = [{"uri": v.path, "pts_ns": v.pts_ns[i]} for v, i in pairs]
        remote = [{"uri": Path(v.path).name, "pts_ns": v.pts_ns[i]} for v, i in pairs]
        access = hf_mediaref.MediaAccess(root=f"hf://datasets/bench/clips@{sha}/", token="hf_bench")
        for delay in delays:
            with LatencyServer(www, delay=delay / 1000, bandwidth=bandwidth) as server:
                hub.endpoint = server.url
                cells = {(r, s): Cell() for r in ROADS for s in ("cold", "warm")}
                for rep in range(reps + 1):
                    order = list(ROADS) if rep % 2 else list(ROADS)[::-1]
                    for road in order:
                        refs, srv, acc = (local, None, None) if road == "local" else (remote, server, access)
                        with _road(road):
                            for state in ("cold", "warm"):
                                cell = Cell() if rep == 0 else cells[road, state]  # round 0: warm-up
                                _run(refs, expected, state, cell, srv, acc)
                                if rep == 0:
                                    cells[road, state].wrong += cell.wrong
                        print(f"round {rep} {road} done", flush=True)
                n = len(pairs)
                for state in ("cold", "warm"):
                    base = cells["local", state].fps(n)
                    for road in ROADS:
                        c = cells[road, state]
                        net = (
                            f"{statistics.median(c.requests):.0f} | {max(c.peaks)} | "
                            f"{statistics.median(c.bytes) / n / 1024:.0f} KiB"
                            if c.requests
                            else "- | - | -"
                        )
                        rows.append(
                            f"| {road} | {delay} ms | {state} | {c.fps(n):.1f} | {c.fps(n) / base:.2f}x "
                            f"| {net} | {c.wrong} |"
                        )
                        print(rows[-1], flush=True)
    head = (
        f"{'60 s' if quick else '5 min'} 640x360 MP4 (B-frames) + MKV (no B-frames) and three 5 s MP4s in a "
        f"(fake) Hub repo, its endpoint a loopback server; 120 refs over the 5 videos; one batch_decode; "
        f"{'' if bandwidth is None else f'a {bandwidth * 8 / 1e9:g} Gbit/s link; '}"
        f"median of {reps} interleaved rounds; {len(os.sched_getaffinity(0))} cores\n\n"
        "| road | per request | state | frames/s | / local | requests | peak in flight | bytes per frame "
        "| wrong frames |\n"
        "|---|---|---|---:|---:|---:|---:|---:|---:|"
    )
    return head + "\n" + "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="60 s long videos, 1 round")
    parser.add_argument("--reps", type=int, default=None, help="timed rounds (default 3, --quick 1)")
    parser.add_argument("--delays", type=int, nargs="*", default=None, help="ms per request (50)")
    parser.add_argument("--bandwidth", type=float, default=None, help="the link's bytes/s (default: no cap)")
    parser.add_argument("--media", default=str(ROOT / ".bench"), help="where generated media is kept")
    parser.add_argument("--markdown", help="also write the report to this file")
    args = parser.parse_args(argv)
    reps = args.reps or (1 if args.quick else 3)
    publish(run_hub(Path(args.media), args.quick, args.delays or [50], reps, args.bandwidth), args.markdown)
    return 0


if __name__ == "__main__":
    sys.exit(main())
