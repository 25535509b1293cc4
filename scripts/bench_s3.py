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
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))

import bench_remote
from benchmark import publish

import hf_mediaref
from hf_mediaref.testing import LatencyServer

#: Each store's roads: name -> the seam of ``bench_remote.fsspec_file_objects`` (None: as it is).
ROADS = {
    "s3": {"local": None, "s3:// before": "_location", "s3:// now": None},
    "gs": {"local": None, "gs:// before": "_pin", "gs:// now": None},
}


def run_s3(
    media: Path, quick: bool, delays: list[int], reps: int, bandwidth: float | None = None, store: str = "s3"
) -> str:
    os.environ.setdefault("AWS_EC2_METADATA_DISABLED", "true")  # the benchmark gives its key: no lookups
    os.environ.setdefault("GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT", "false")  # before gcsfs is imported
    from hf_mediaref.testing.fake_gcs import FakeGcsServer

    videos = bench_remote.make_remote_media(media, quick)
    pairs = bench_remote.make_refs(videos)
    expected = [i for _, i in pairs]
    rows = []
    with tempfile.TemporaryDirectory(prefix="hf_mediaref-bench-s3-") as tmp:
        bucket = Path(tmp) / "bench"
        bucket.mkdir()
        for video in videos:
            os.symlink(os.path.abspath(video.path), bucket / Path(video.path).name)
        local, remote = bench_remote.store_refs(pairs)
        roads = {name: (local if name == "local" else remote, seam) for name, seam in ROADS[store].items()}
        for delay in delays:
            kind = FakeGcsServer if store == "gs" else LatencyServer
            with kind(tmp, delay=delay / 1000, bandwidth=bandwidth) as server:
                options: dict[str, Any] = {
                    "s3": {"s3": {"key": "AKIABENCH", "secret": "bench-secret", "endpoint_url": server.url}},
                    "gs": {"gs": {"endpoint_url": server.url, "token": "anon"}},
                }[store]
                access = hf_mediaref.MediaAccess(root=f"{store}://bench/", storage_options=options)
                rows += bench_remote.store_roads(roads, expected, server, delay, reps, access=access)
    where = f"a bucket of a loopback {'GCS' if store == 'gs' else 'S3'} endpoint"
    return bench_remote.store_report(rows, where, quick, reps, bandwidth)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    bench_remote.add_store_arguments(parser)
    parser.add_argument("--store", choices=sorted(ROADS), default="s3", help="s3:// (default) or gs://")
    args = parser.parse_args(argv)
    reps = args.reps or (1 if args.quick else 3)
    report = run_s3(Path(args.media), args.quick, args.delays or [50], reps, args.bandwidth, args.store)
    publish(report, args.markdown)
    return 0


if __name__ == "__main__":
    sys.exit(main())
