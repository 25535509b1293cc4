"""What reading refs out of a dataset costs per row, two source trees interleaved (issue 19, G1: a ref a
dataset resolved carries its access).

    python scripts/bench_ref_rows.py --before /tmp/before [--rounds 10]

``--before`` is another checkout's root (``git archive <commit> hf_mediaref | tar -x -C /tmp/before``); this
tree is "after". Each round runs one process per tree (order alternating) that times, on a 20,000-row table
with a ``MediaRefFeature`` column resolved against a root: ``ds[i:i+1000]`` (relative URIs as stored; absolute
URIs, with the garbage collector on and off), ``ds[i]``, and ``batch_decode``'s intake of 2,000 refs (fields
and carried accesses, nothing decoded). Medians of per-round medians (us per row) and the median after/before
ratio of each round are printed as a Markdown table.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

N = 20_000


def _measure(repeats: int) -> dict[str, float]:
    import datasets
    from datasets import Dataset, Features

    from hf_mediaref import decode
    from hf_mediaref.hf import MediaRefFeature, set_media_root

    datasets.disable_progress_bars()
    root = tempfile.mkdtemp()
    features = Features({"frame": MediaRefFeature()})

    def table(prefix: str) -> datasets.Dataset:
        rows = [{"uri": f"{prefix}videos/ep{i % 50}.mp4", "pts_ns": i * 33_333_333} for i in range(N)]
        return set_media_root(Dataset.from_dict({"frame": rows}, features=features), root)

    relative, absolute = table(""), table(f"{root}/")

    def slices(ds: datasets.Dataset) -> float:
        start = time.perf_counter()
        for i in range(0, N, 1000):
            ds[i : i + 1000]
        return (time.perf_counter() - start) / N * 1e6

    def without_gc() -> float:
        gc.disable()
        try:
            return slices(absolute)
        finally:
            gc.enable()

    def rows() -> float:
        start = time.perf_counter()
        for i in range(2000):
            relative[i]
        return (time.perf_counter() - start) / 2000 * 1e6

    refs = relative[:2000]["frame"]

    def intake() -> float:
        start = time.perf_counter()
        for _ in range(5):
            try:
                carried: list = []
                decode._ref_fields(refs, carried)
                decode._by_access(carried)
            except (TypeError, AttributeError):  # before: no carried accesses
                decode._ref_fields(refs)
        return (time.perf_counter() - start) / (5 * len(refs)) * 1e6

    cases = {
        "ds[i:i+1000], relative URIs": lambda: slices(relative),
        "ds[i:i+1000], absolute URIs": lambda: slices(absolute),
        "ds[i:i+1000], absolute URIs, gc off": without_gc,
        "ds[i]": rows,
        "batch_decode intake (per ref)": intake,
    }
    for case in cases.values():
        case()
    return {name: statistics.median(case() for _ in range(repeats)) for name, case in cases.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--before", help="the root of the other source tree")
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(_measure(args.child)))
        return
    after = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    trees = [("before", args.before), ("after", after)]
    results: dict[str, list[dict[str, float]]] = {"before": [], "after": []}
    for round_ in range(args.rounds):
        for name, path in trees if round_ % 2 == 0 else trees[::-1]:
            env = {**os.environ, "PYTHONPATH": path}
            command = [sys.executable, __file__, "--child", "3"]
            out = subprocess.run(command, env=env, capture_output=True, text=True, check=True)
            results[name].append(json.loads(out.stdout.strip().splitlines()[-1]))
    print("| us per row | before | after | after/before (median of rounds) |\n|---|---:|---:|---:|")
    for case in results["before"][0]:
        before = statistics.median(r[case] for r in results["before"])
        now = statistics.median(r[case] for r in results["after"])
        ratio = statistics.median(a[case] / b[case] for a, b in zip(results["after"], results["before"]))
        print(f"| {case} | {before:.2f} | {now:.2f} | {ratio:.3f} |")


if __name__ == "__main__":
    main()
