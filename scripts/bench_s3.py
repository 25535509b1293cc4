#!/usr/bin/env python
"""``s3://`` (or ``gs://``) videos over a slow link (issue 23): one ``batch_decode`` of the remote benchmark's
120 refs over 5 videos (``scripts/bench_remote.py``), kept in a bucket of an S3 endpoint (``endpoint_url``, as
MinIO) that is a loopback HTTP/1.1 server answering every request after 50 ms
(:class:`hf_mediaref.testing.LatencyServer`, serving ``<bucket>/<key>``; it does not check signatures), or
with ``--store gs`` of a loopback Google Cloud Storage endpoint read by ``gcsfs``
(:class:`hf_mediaref.testing.fake_gcs.FakeGcsServer`, the same delay; gcsfs's core filesystem: its
experimental zonal-bucket class asks a gRPC API the loopback endpoint does not speak).

    python scripts/bench_s3.py [--store s3|gs] [--quick] [--reps N] [--delays 50 100] [--markdown FILE]

Roads, interleaved round by round:

- local: the same files from local disk;
- s3:// before: ``s3fs``'s ``S3File`` reads each object (botocore requests, its default block size and
  read-ahead cache, one request at a time per decode), as hf_mediaref read ``s3://`` before ``io/_remote``;
- s3:// now: URLs presigned by the same ``S3FileSystem``, read on hf_mediaref's HTTP road, the batch's byte
  ranges fetched ahead (``DecodeOptions.io_concurrency``, 16).
- gs:// before: ``gcsfs``'s ``GCSFile`` reads each object (its default block size, cache and background
  prefetcher), as hf_mediaref read ``gs://`` before ``io/_pinned``;
- gs:// now: each object read at the generation its open saw through the same ``GCSFileSystem``'s async API,
  the batch's byte ranges fetched ahead (``io/_pinned``).

States: cold (empty index store, nothing open), warm (indexes known, containers closed). Columns as in
``bench_remote.py``: frames/s (median of ``--reps`` rounds), requests and peak in flight (counted by the
server), bytes per frame, wrong frames (barcode check of every frame of every round: must be 0).
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
from hf_mediaref.video import cleanup_cache
from hf_mediaref.video._cache import decoder_cache

ROADS = {"s3": ("local", "s3:// before", "s3:// now"), "gs": ("local", "gs:// before", "gs:// now")}


@contextlib.contextmanager
def _road(name: str) -> Any:
    """``s3:// before``: the objects read through s3fs's file object, as before ``io/_remote``; ``gs://
    before``: through gcsfs's, as before ``io/_pinned``."""
    seam = {"s3:// before": "_location", "gs:// before": "_pin"}.get(name)
    if seam is None:
        yield
        return
    original = getattr(_sources, seam)
    setattr(_sources, seam, lambda *args: None)
    try:
        yield
    finally:
        setattr(_sources, seam, original)


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


def run_s3(
    media: Path, quick: bool, delays: list[int], reps: int, bandwidth: float | None = None, store: str = "s3"
) -> str:
    os.environ.setdefault("AWS_EC2_METADATA_DISABLED", "true")  # the benchmark gives its key: no lookups
    os.environ.setdefault("GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT", "false")  # before gcsfs is imported
    from hf_mediaref.testing.fake_gcs import FakeGcsServer

    roads = ROADS[store]
    videos = make_remote_media(media, quick)
    pairs = make_refs(videos)
    expected = [i for _, i in pairs]
    rows = []
    with tempfile.TemporaryDirectory(prefix="hf_mediaref-bench-s3-") as tmp:
        bucket = Path(tmp) / "bench"
        bucket.mkdir()
        for video in videos:
            os.symlink(os.path.abspath(video.path), bucket / Path(video.path).name)
        local = [{"uri": v.path, "pts_ns": v.pts_ns[i]} for v, i in pairs]
        remote = [{"uri": Path(v.path).name, "pts_ns": v.pts_ns[i]} for v, i in pairs]
        for delay in delays:
            kind = FakeGcsServer if store == "gs" else LatencyServer
            with kind(tmp, delay=delay / 1000, bandwidth=bandwidth) as server:
                options: dict[str, Any] = {
                    "s3": {"s3": {"key": "AKIABENCH", "secret": "bench-secret", "endpoint_url": server.url}},
                    "gs": {"gs": {"endpoint_url": server.url, "token": "anon"}},
                }[store]
                access = hf_mediaref.MediaAccess(root=f"{store}://bench/", storage_options=options)
                cells = {(r, s): Cell() for r in roads for s in ("cold", "warm")}
                for rep in range(reps + 1):
                    order = list(roads) if rep % 2 else list(roads)[::-1]
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
                    for road in roads:
                        c = cells[road, state]
                        net = (
                            f"{statistics.median(c.requests):.0f} | {max(c.peaks)} | "
                            f"{statistics.median(c.bytes) / n / 1024:.0f} KiB"
                            if c.requests
                            else "- | - | -"
                        )
                        wall = f"{statistics.median(c.times) * 1000:.0f} ms"
                        rows.append(
                            f"| {road} | {delay} ms | {state} | {wall} | {c.fps(n):.1f} | "
                            f"{c.fps(n) / base:.2f}x | {net} | {c.wrong} |"
                        )
                        print(rows[-1], flush=True)
    head = (
        f"{'60 s' if quick else '5 min'} 640x360 MP4 (B-frames) + MKV (no B-frames) and three 5 s MP4s in a "
        f"bucket of a loopback {'GCS' if store == 'gs' else 'S3'} endpoint; 120 refs over the 5 videos; "
        "one batch_decode; "
        f"{'' if bandwidth is None else f'a {bandwidth * 8 / 1e9:g} Gbit/s link; '}"
        f"median of {reps} interleaved rounds; {len(os.sched_getaffinity(0))} cores\n\n"
        "| road | per request | state | wall | frames/s | / local | requests | peak in flight "
        "| bytes per frame | wrong frames |\n"
        "|---|---|---|---:|---:|---:|---:|---:|---:|---:|"
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
    parser.add_argument("--store", choices=sorted(ROADS), default="s3", help="s3:// (default) or gs://")
    args = parser.parse_args(argv)
    reps = args.reps or (1 if args.quick else 3)
    report = run_s3(Path(args.media), args.quick, args.delays or [50], reps, args.bandwidth, args.store)
    publish(report, args.markdown)
    return 0


if __name__ == "__main__":
    sys.exit(main())
