#!/usr/bin/env python
"""The roads benchmark: the same refs through every way a training job reads them.

    python scripts/benchmark.py --only-roads [--quick] [--kinds bframes nobframes] [--batch-size 32]

On the refs of two workloads of ``scripts/benchmark.py`` ("random 256": random frames of one long video,
"N videos x 8": 8 random frames of each short video), for each video kind, frames/s of:

- direct ``batch_decode`` of all refs in one call (the reference), and of the sampler's batches (what
  cutting the refs into batches costs by itself, without a DataLoader);
- a map-style ``DataLoader`` over ``ds.with_format("mediaref")`` with ``VideoBlockBatchSampler`` (0 and 2
  workers), and with 0 workers over ``DecodeAhead`` (the next batches decoded on lanes of threads);
- the streaming loader with 0 workers over ``decode_stream(..., ahead=True)``;
- a streaming ``DataLoader`` over ``decode_stream(ids, batch_size)``, the ``IterableDataset`` laid out as
  ``push_to_hub`` writes it (8 shards of whole videos; 0 and 2 workers);
- 2-rank DDP (torch.distributed, gloo, CPU): each rank a map-style loader with the distributed sampler;
  frames/s per rank and of the slowest rank's time;

plus engine calls and refs per call, counted where the decoding happens (in the workers and ranks). Every
road uses the machine's cores: batch_decode's threads, 2 workers x 1 thread, 2 ranks x cores/2 threads
(``LOCAL_WORLD_SIZE``, as torchrun sets it). Workers are persistent and every road runs one untimed epoch
first (caches warm, every frame checked); timed epochs repeat the same order.

Hook for more roads (Ray Data): a module ``scripts/bench_ray.py`` defining
``ray_roads(case: RoadCase, batch_size: int, reps: int) -> list[RoadResult]`` is picked up by
:func:`run_roads`; :func:`road_cases` builds the same cases for it (``from bench_roads import road_cases``).
"""

from __future__ import annotations

import dataclasses
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmark import BFRAMES, Kind, make_media, make_workloads

from hf_mediaref.testing.media import read_index

ROAD_WORKLOADS = ("random 256", "videos x 8")


@dataclasses.dataclass
class RoadCase:
    """One set of refs: ``uris[k]``, ``pts_ns[k]`` name a frame showing ``labels[k]``."""

    name: str  # "random 256 [MKV, no B-frames]"
    kind: Kind
    uris: list[str]
    pts_ns: list[int]
    labels: list[int]

    def refs(self) -> list[Any]:
        from hf_mediaref import MediaRef

        return [MediaRef(u, p) for u, p in zip(self.uris, self.pts_ns)]

    def dataset(self) -> Any:
        """A ``datasets.Dataset`` with columns ``frame`` (MediaRef) and ``label`` (the expected barcode)."""
        from datasets import Dataset, Features, Value

        from hf_mediaref.hf import MediaRefFeature

        features = Features({"frame": MediaRefFeature(), "label": Value("int64")})
        return Dataset.from_dict({"frame": self.refs(), "label": self.labels}, features=features)


@dataclasses.dataclass
class RoadResult:
    """One road on one case. ``seconds``: median wall time of one pass over all refs (for DDP: the slowest
    rank's); ``calls`` / ``refs``: engine calls and refs they got in one pass (summed over workers/ranks)."""

    road: str
    seconds: float
    frames: int
    calls: int
    refs: int
    wrong: int = 0
    note: str = ""
    error: str = ""
    cpu_seconds: float = float("nan")  # CPU time of one pass, every process and thread of the road
    decoded: int = 0  # frames the codecs decoded in one pass (summed over workers/ranks)

    @property
    def fps(self) -> float:
        return self.frames / self.seconds if self.seconds else float("nan")

    @property
    def frames_per_cpu_s(self) -> float:
        return self.frames / self.cpu_seconds if self.cpu_seconds else float("nan")


def road_cases(media: Path, quick: bool, kinds: list[Kind] | None = None) -> list[RoadCase]:
    """The road cases (random 256 and N videos x 8) of each kind, media generated on first use."""
    cases = []
    media = Path(media).resolve()
    for kind in kinds or [BFRAMES]:
        long, shorts = make_media(media, quick, kind)
        for w in make_workloads(long, shorts, kind=kind):
            if w.base.endswith(ROAD_WORKLOADS):
                cases.append(
                    RoadCase(
                        w.name,
                        kind,
                        [v.path for v, _ in w.requests],
                        [v.pts_ns[i] for v, i in w.requests],
                        [i for _, i in w.requests],
                    )
                )
    return cases


# ----------------------------------------------------------------------------------------------- helpers

_WORKER: dict[str, Any] = {}


def _start_stats(worker_id: int) -> None:
    """worker_init_fn: count this worker's engine calls for its whole life."""
    from hf_mediaref.video import collect_stats

    _WORKER["block"] = collect_stats()
    _WORKER["stats"] = _WORKER["block"].__enter__()


def _collate(rows: list[dict]) -> tuple[Any, int, tuple[int, int, float, int]]:
    """Collate, and attach the worker id and ``(engine calls, refs, CPU seconds, decoded frames)`` of this
    worker so far."""
    from torch.utils.data import default_collate, get_worker_info

    info = get_worker_info()
    stats = _WORKER.get("stats")
    if info is None or stats is None:
        return default_collate(rows), -1, (0, 0, 0.0, 0)
    counters = (stats.calls, stats.requested_refs, time.process_time(), stats.decoded_frames)
    return default_collate(rows), info.id, counters


def _wrong(frames: Any, labels: Any) -> int:
    return sum(read_index(f.numpy()) != int(n) for f, n in zip(frames, labels))


def _loader_road(name: str, make_loader: Callable[[], Any], frames: int, reps: int) -> RoadResult:
    """Time ``reps`` epochs of a DataLoader after an untimed, checked one; count engine calls where they
    happen (main process: collect_stats; workers: their own counters, read from the batches)."""
    from hf_mediaref.video import collect_stats

    loader = make_loader()
    latest: dict[int, tuple[int, int, float, int]] = {}

    def epoch(check: bool) -> tuple[int, int]:
        wrong = seen = 0
        for batch, worker, counters in loader:
            latest[worker] = counters
            seen += len(batch["label"])
            if check:
                wrong += _wrong(batch["frame"], batch["label"])
        return wrong, seen

    wrong, seen = epoch(check=True)
    if seen != frames:
        return RoadResult(name, float("nan"), frames, 0, 0, error=f"{seen} rows of {frames}")
    before = dict(latest)
    times = []
    cpu = time.process_time()
    with collect_stats() as main_stats:
        for _ in range(reps):
            start = time.perf_counter()
            epoch(check=False)
            times.append(time.perf_counter() - start)
    cpu = time.process_time() - cpu
    calls, refs, decoded = main_stats.calls, main_stats.requested_refs, main_stats.decoded_frames
    for w in [w for w in latest if w >= 0]:
        old = before.get(w, (0, 0, latest[w][2], 0))
        calls += latest[w][0] - old[0]
        refs += latest[w][1] - old[1]
        cpu += latest[w][2] - old[2]  # up to its last batch of the timed epochs
        decoded += latest[w][3] - old[3]
    return RoadResult(
        name,
        statistics.median(times),
        frames,
        calls // reps,
        refs // reps,
        wrong,
        cpu_seconds=cpu / reps,
        decoded=decoded // reps,
    )


# ----------------------------------------------------------------------------------------------- roads


def direct_road(case: RoadCase, batch_size: int, reps: int) -> RoadResult:
    import hf_mediaref
    from hf_mediaref.video import collect_stats

    refs = case.refs()
    frames = hf_mediaref.batch_decode(refs)
    wrong = sum(read_index(f) != n for f, n in zip(frames, case.labels))
    times = []
    cpu = time.process_time()
    with collect_stats() as stats:
        for _ in range(reps):
            start = time.perf_counter()
            hf_mediaref.batch_decode(refs)
            times.append(time.perf_counter() - start)
    cpu = time.process_time() - cpu
    return RoadResult(
        "batch_decode (1 call)",
        statistics.median(times),
        len(refs),
        stats.calls // reps,
        len(refs),
        wrong,
        cpu_seconds=cpu / reps,
        decoded=stats.decoded_frames // reps,
    )


def direct_batches_road(case: RoadCase, batch_size: int, reps: int) -> RoadResult:
    """``batch_decode`` per batch of the sampler, no DataLoader: what batching itself costs."""
    import hf_mediaref
    from hf_mediaref.hf import VideoBlockBatchSampler
    from hf_mediaref.video import collect_stats

    refs = case.refs()
    batches = [[refs[i] for i in b] for b in VideoBlockBatchSampler(case.dataset(), batch_size, seed=0)]
    times = []
    cpu = time.process_time()
    with collect_stats() as stats:
        for _ in range(reps + 1):
            start = time.perf_counter()
            for batch in batches:
                hf_mediaref.batch_decode(batch)
            times.append(time.perf_counter() - start)
    cpu = time.process_time() - cpu
    return RoadResult(
        f"batch_decode, the sampler's batches of {batch_size}",
        statistics.median(times[1:]),
        len(refs),
        stats.calls // (reps + 1),
        stats.requested_refs // (reps + 1),
        cpu_seconds=cpu / (reps + 1),
        decoded=stats.decoded_frames // (reps + 1),
        note="no DataLoader",
    )


def map_road(case: RoadCase, batch_size: int, reps: int, workers: int, ahead: bool = False) -> RoadResult:
    from torch.utils.data import DataLoader

    from hf_mediaref.hf import DecodeAhead, VideoBlockBatchSampler

    ds = case.dataset()

    def make() -> Any:
        sampler = VideoBlockBatchSampler(ds, batch_size, seed=0, num_workers=workers)
        frames = ds.with_format("mediaref", output="torch")
        return DataLoader(
            DecodeAhead(frames, sampler) if ahead else frames,
            batch_sampler=sampler,
            num_workers=workers,
            persistent_workers=workers > 0,
            worker_init_fn=_start_stats if workers else None,
            collate_fn=_collate,
        )

    name = f"map-style + sampler, {workers} workers" + (", DecodeAhead" if ahead else "")
    return _loader_road(name, make, len(ds), reps)


def stream_road(case: RoadCase, batch_size: int, reps: int, workers: int, ahead: bool = False) -> RoadResult:
    from torch.utils.data import DataLoader

    from hf_mediaref.hf import decode_stream
    from hf_mediaref.hf._sharding import shard_for_streaming

    laid_out, kwargs = shard_for_streaming(case.dataset(), {})  # the rows and shards push_to_hub writes
    ids = laid_out.to_iterable_dataset(num_shards=kwargs["num_shards"])

    def make() -> Any:
        return DataLoader(
            decode_stream(ids, batch_size=batch_size, output="torch", ahead=ahead),
            batch_size=batch_size,
            num_workers=workers,
            persistent_workers=workers > 0,
            worker_init_fn=_start_stats if workers else None,
            collate_fn=_collate,
        )

    name = f"streaming decode_stream, {workers} workers" + (", ahead" if ahead else "")
    result = _loader_road(name, make, len(laid_out), reps)
    result.note = f"{kwargs['num_shards']} shards"
    return result


def _ddp_rank(rank: int, world_size: int, init: str, case_file: str, batch_size: int, reps: int) -> None:
    """One DDP rank: a map-style loader with the distributed sampler; writes its timings to a JSON file."""
    import torch
    import torch.distributed as dist
    from torch.utils.data import DataLoader

    from hf_mediaref.hf import VideoBlockBatchSampler
    from hf_mediaref.video import collect_stats

    torch.set_num_threads(1)  # as torchrun's OMP_NUM_THREADS=1
    dist.init_process_group(
        "gloo", init_method=f"file://{init}", rank=rank, world_size=world_size, timeout=timedelta(seconds=600)
    )
    spec = json.loads(Path(case_file).read_text())
    case = RoadCase(spec["name"], BFRAMES, spec["uris"], spec["pts_ns"], spec["labels"])
    ds = case.dataset()
    sampler = VideoBlockBatchSampler(ds, batch_size, seed=0)  # rank, world size from torch.distributed
    loader = DataLoader(ds.with_format("mediaref", output="torch"), batch_sampler=sampler)
    wrong = frames = 0
    for batch in loader:  # warm-up and check
        wrong += _wrong(batch["frame"], batch["label"])
        frames += len(batch["label"])
    times = []
    cpu = 0.0
    with collect_stats() as stats:
        for _ in range(reps):
            dist.barrier()
            start, cpu_start = time.perf_counter(), time.process_time()
            for _batch in loader:
                pass
            times.append(time.perf_counter() - start)
            cpu += time.process_time() - cpu_start
    out = {
        "cpu": cpu,
        "times": times,
        "frames": frames,
        "wrong": wrong,
        "calls": stats.calls,
        "refs": stats.requested_refs,
        "decoded": stats.decoded_frames,
    }
    Path(case_file).with_name(f"rank{rank}.json").write_text(json.dumps(out))
    dist.barrier()
    dist.destroy_process_group()


def ddp_road(case: RoadCase, batch_size: int, reps: int, world_size: int = 2) -> RoadResult:
    import torch.multiprocessing as mp

    with tempfile.TemporaryDirectory() as tmp:
        case_file = Path(tmp, "case.json")
        case_file.write_text(
            json.dumps({"name": case.name, "uris": case.uris, "pts_ns": case.pts_ns, "labels": case.labels})
        )
        previous = os.environ.get("LOCAL_WORLD_SIZE")
        os.environ["LOCAL_WORLD_SIZE"] = str(world_size)  # as torchrun sets it: ranks share the cores
        try:
            mp.spawn(
                _ddp_rank,
                args=(world_size, str(Path(tmp, "init")), str(case_file), batch_size, reps),
                nprocs=world_size,
                join=True,
            )
        finally:
            if previous is None:
                os.environ.pop("LOCAL_WORLD_SIZE", None)
            else:
                os.environ["LOCAL_WORLD_SIZE"] = previous
        ranks = [json.loads(Path(tmp, f"rank{r}.json").read_text()) for r in range(world_size)]
    per_rank = [r["frames"] / statistics.median(r["times"]) for r in ranks]
    slowest = max(statistics.median(r["times"]) for r in ranks)
    return RoadResult(
        f"DDP {world_size} ranks (gloo) + sampler",
        slowest,
        sum(r["frames"] for r in ranks),
        sum(r["calls"] for r in ranks) // reps,
        sum(r["refs"] for r in ranks) // reps,
        sum(r["wrong"] for r in ranks),
        note="per rank: " + ", ".join(f"{x:,.0f}" for x in per_rank) + " frames/s",
        cpu_seconds=sum(r["cpu"] for r in ranks) / reps,
        decoded=sum(r["decoded"] for r in ranks) // reps,
    )


def extra_roads() -> list[Callable[[RoadCase, int, int], list[RoadResult]]]:
    """Roads other scripts provide: ``bench_ray.ray_roads`` when ``scripts/bench_ray.py`` exists."""
    try:
        import bench_ray  # type: ignore[import-not-found]
    except ImportError:
        return []
    fn = getattr(bench_ray, "ray_roads", None)
    return [fn] if fn is not None else []


# ----------------------------------------------------------------------------------------------- report


def _guard(fn: Callable[[], RoadResult], name: str) -> RoadResult:
    try:
        return fn()
    except Exception as exc:  # a road that fails is reported, not fatal
        return RoadResult(name, float("nan"), 0, 0, 0, error=f"{type(exc).__name__}: {str(exc)[:150]}")


def measure_case(case: RoadCase, batch_size: int, reps: int) -> list[RoadResult]:
    results = [_guard(lambda: direct_road(case, batch_size, reps), "batch_decode")]
    results.append(_guard(lambda: direct_batches_road(case, batch_size, reps), "batch_decode batches"))
    for workers in (0, 2):
        results.append(_guard(lambda w=workers: map_road(case, batch_size, reps, w), f"map-style {workers}"))
        if workers == 0:
            results.append(_guard(lambda: map_road(case, batch_size, reps, 0, True), "map-style ahead"))
    for workers in (0, 2):
        results.append(
            _guard(lambda w=workers: stream_road(case, batch_size, reps, w), f"streaming {workers}")
        )
        if workers == 0:
            results.append(_guard(lambda: stream_road(case, batch_size, reps, 0, True), "streaming ahead"))
    results.append(_guard(lambda: ddp_road(case, batch_size, reps), "DDP"))
    for extra in extra_roads():
        try:
            results += extra(case, batch_size, reps)
        except Exception as exc:
            results.append(
                RoadResult(getattr(extra, "__name__", "extra"), float("nan"), 0, 0, 0, error=str(exc))
            )
    # the reference again after the roads: the machine drifts over a case's minutes (other load, caches),
    # and every road is compared with the mean of the two
    after = _guard(lambda: direct_road(case, batch_size, reps), "batch_decode")
    before = results[0]
    if before.error or after.error:
        return results
    results[0] = dataclasses.replace(
        before,
        seconds=(before.seconds + after.seconds) / 2,
        cpu_seconds=(before.cpu_seconds + after.cpu_seconds) / 2,
        wrong=before.wrong + after.wrong,
        note=f"before the roads {before.fps:.1f} f/s, after {after.fps:.1f} f/s",
    )
    return results


def render_roads(table: dict[str, list[RoadResult]], batch_size: int, reps: int) -> str:
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    lines = [
        f"Roads: the same refs through each road, batch size {batch_size}, {cpus} CPUs, median of {reps} "
        "epochs after a checked warm-up (ratio: frames/s / direct batch_decode's, measured before and after "
        "the case's roads and averaged; target >= 0.9x, refs per "
        "call = batch size). frames / CPU-s: frames per second of CPU time of every process and thread of "
        "the road (less sensitive than wall time to other load on a shared machine).\n"
    ]
    misses: list[str] = []
    cpu_misses: list[str] = []
    for name, results in table.items():
        direct = results[0]
        lines.append(f"**{name}** ({direct.frames} refs)\n")
        lines.append(
            "| road | frames/s | vs batch_decode | frames / CPU-s | vs batch_decode | engine calls | "
            "refs / call | decoded / returned | wrong | note |"
        )
        lines.append("|---|---:|---:|---:|---:|---:|---:|---:|---:|---|")
        for r in results:
            if r.error:
                lines.append(f"| {r.road} | error: {r.error} | | | | | |")
                misses.append(f"{name}: {r.road} failed")
                continue
            ratio = r.fps / direct.fps if direct.fps == direct.fps else float("nan")
            per_call = r.refs / r.calls if r.calls else float("nan")
            cpu_ratio = r.frames_per_cpu_s / direct.frames_per_cpu_s
            cells = [f"{r.fps:,.1f}", f"{ratio:.2f}x", f"{r.frames_per_cpu_s:,.1f}", f"{cpu_ratio:.2f}x"]
            decoded = f"{r.decoded / r.frames:.2f}" if r.decoded and r.frames else "-"
            cells += [str(r.calls), f"{per_call:.1f}", decoded, str(r.wrong), r.note]
            lines.append(f"| {r.road} | " + " | ".join(cells) + " |")
            if r is not direct and ratio < 0.9:
                misses.append(f"{name}: {r.road} at {ratio:.2f}x")
            if r is not direct and cpu_ratio < 0.9:
                cpu_misses.append(f"{name}: {r.road} at {cpu_ratio:.2f}x")
        lines.append("")
    lines.append("Roads below 0.9x of batch_decode's frames/s: " + ("; ".join(misses) if misses else "none"))
    lines.append(
        "\nRoads below 0.9x of batch_decode's frames per CPU-second: "
        + ("; ".join(cpu_misses) if cpu_misses else "none")
    )
    return "\n".join(lines)


def run_roads(media: Path, quick: bool, kinds: list[Kind], reps: int = 3, batch_size: int = 32) -> str:
    """Measure every road on every case; returns the Markdown report."""
    import warnings

    import datasets
    import torch

    datasets.disable_progress_bars()
    warnings.filterwarnings("ignore", message=".*shard.*")
    # one intra-op thread, as torchrun sets (OMP_NUM_THREADS=1) and DataLoader workers use: two OpenMP
    # threads spin-waiting beside the decode threads made each 32-frame torch.stack take 250-700 ms here
    torch.set_num_threads(1)
    os.environ["OMP_NUM_THREADS"] = "1"  # the DDP ranks too
    table = {}
    for case in road_cases(media, quick, kinds):
        print(f"roads: {case.name} ...", flush=True)
        table[case.name] = measure_case(case, batch_size, reps)
    return render_roads(table, batch_size, reps)


if __name__ == "__main__":
    import argparse

    from benchmark import KINDS

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--kinds", nargs="*", default=list(KINDS), choices=list(KINDS))
    parser.add_argument("--media", default=str(Path(__file__).resolve().parents[1] / ".bench"))
    args = parser.parse_args()
    print(run_roads(Path(args.media), args.quick, [KINDS[k] for k in args.kinds], args.reps, args.batch_size))
