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
import os
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))

from bench_remote import (
    add_store_arguments,
    make_refs,
    make_remote_media,
    store_refs,
    store_report,
    store_roads,
)
from benchmark import publish

import hf_mediaref
from hf_mediaref.testing import LatencyServer
from hf_mediaref.testing.fake_hub import FakeHub


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
        local, remote = store_refs(pairs)
        access = hf_mediaref.MediaAccess(root=f"hf://datasets/bench/clips@{sha}/", token="hf_bench")
        roads = {"local": (local, None), "hf:// before": (remote, "_location"), "hf:// now": (remote, None)}
        for delay in delays:
            with LatencyServer(www, delay=delay / 1000, bandwidth=bandwidth) as server:
                hub.endpoint = server.url
                rows += store_roads(roads, expected, server, delay, reps, access=access)
    return store_report(rows, "a (fake) Hub repo, its endpoint a loopback server", quick, reps, bandwidth)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    add_store_arguments(parser)
    args = parser.parse_args(argv)
    reps = args.reps or (1 if args.quick else 3)
    publish(run_hub(Path(args.media), args.quick, args.delays or [50], reps, args.bandwidth), args.markdown)
    return 0


if __name__ == "__main__":
    sys.exit(main())
