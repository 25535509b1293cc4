#!/usr/bin/env python
"""Equal-core benchmark: every contender in a torch ``DataLoader`` with the same workers, the same batches.

    python scripts/benchmark.py --equal-cores [--quick] [--rounds 3] [--media DIR] [--markdown FILE]
    python scripts/bench_equal_cores.py [--quick] [--kinds h264-b h264 av1] [--workloads random] ...

What a user compares: each contender decodes the same rows, in a ``DataLoader`` with ``num_workers=2``
(``--workers``) and persistent workers, batches of 32 (``--batch-size``), one FFmpeg thread per worker, so
that every contender has the same cores (2 here):

- ``datasets.Video`` per row: the rows' ``Video()`` column decodes to a fresh TorchCodec ``VideoDecoder``
  (``seek_mode="exact"``, as ``datasets`` builds it), asked ``get_frames_played_at`` for the row's times in a
  ``with_transform``;
- a cached TorchCodec decoder per row (LeRobot's way): a map-style torch dataset whose ``__getitem__`` asks
  a ``VideoDecoder(path, seek_mode="approximate")``, one cached per video per worker process and never
  evicted, ``get_frames_played_at`` for the row's times (LeRobot then converts to float; not done here);
- ``mediaref`` 2.1.0 (the ``bench`` extra): the DataLoader's batch of rows decoded by one
  ``mediaref.batch_decode(..., decoder="tensorcodec", allow_multi_video=True)`` call in the worker;
- hf_mediaref, map-style: ``ds.with_format("mediaref", output="torch", channels_first=True)`` (windows:
  ``windows={"frame": [...]}``) with the DataLoader's own batches: one engine call per batch, in the worker;
- hf_mediaref, sampler: the same with ``VideoBlockBatchSampler(ds, 32, num_workers=2)``, which changes which
  rows form a batch (rows of one video's keyframe block together);
- hf_mediaref, sampler + ``DecodeAhead`` with no workers (the next batches decoded on 2 lanes of threads in
  the main process);
- hf_mediaref, ``DecodeAhead(..., group=4)`` over the DataLoader's own batches (the same batches as the first
  three contenders), no workers: every 4 consecutive batches decoded in one engine call, each keyframe block
  once for the 4, on 2 lanes;
- hf_mediaref, the same ``DecodeAhead(..., group=4)`` in the workers: each worker decodes the batch it is
  asked for with its own next 3 (batches ``i, i + 2, i + 4, i + 6`` of 2 workers) in one engine call.

Videos: 320x240, 30 fps, 10 s, barcode frames (frame i shows i) with noise for a realistic bitrate, 32 per
kind: H.264 (x264 veryfast, CRF 23) with a keyframe every 60 frames, with 3 B-frames and without, and AV1
(SVT-AV1 preset 12) with a keyframe every 2 frames (LeRobot's encoder default) when PyAV has an AV1 encoder.
Workloads (seeded, the same rows for everyone): "random 256" (256 random rows over 8 videos, in random
order), "32 videos x 8" (8 random frames of each of 32 videos, rows video by video in time order),
"windows 64x4" (64 random rows over 8 videos, each the frame and the 3 before it).

Each loader runs one untimed epoch first (workers started, caches warm, every returned frame checked by its
barcode), then ``--rounds`` timed epochs, interleaved across contenders (the order rotates each round): a
cell is the fastest round (returned frames / s). Decoded frames per returned frame are counted inside the
workers for hf_mediaref's roads. Other processes' load on the machine moves every number: compare the
ratios of one run.
"""

from __future__ import annotations

import argparse
import bisect
import dataclasses
import functools
import gc
import os
import random
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))

from benchmark import cached_video, publish

from hf_mediaref.testing.media import read_index

FPS = 30
SIZE = (240, 320)
SECONDS = 10
N_VIDEOS = 32
HALF_FRAME_NS = 10**9 // (2 * FPS)
WINDOW = 4  # frames per row of the windows workload: the row's frame and the 3 before it


# ----------------------------------------------------------------------------------------------- media


@dataclasses.dataclass(frozen=True)
class EqKind:
    """A kind of video of this benchmark."""

    label: str
    codec: str
    gop: int
    bframes: int
    options: tuple[tuple[str, str], ...] = ()


KINDS = {
    "h264-b": EqKind("H.264, GOP 60, 3 B-frames", "libx264", 60, 3, (("preset", "veryfast"),)),
    "h264": EqKind("H.264, GOP 60, no B-frames", "libx264", 60, 0, (("preset", "veryfast"),)),
    "av1": EqKind("AV1, GOP 2", "libsvtav1", 2, 0),
}


@dataclasses.dataclass
class EqVideo:
    path: str
    pts_ns: list[int]  # pts of the frame showing i


def av1_available() -> bool:
    import av

    return "libsvtav1" in av.codecs_available


def make_videos(media: Path, key: str, count: int = N_VIDEOS) -> list[EqVideo]:
    """``count`` videos of kind ``key`` in ``media`` (generated on first use)."""
    kind = KINDS[key]
    folder = media / "equal_cores"
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for k in range(count):
        path = folder / f"{key}_{k:02d}_{SECONDS}s_{SIZE[1]}x{SIZE[0]}_{FPS}fps.mp4"
        pts_ns = cached_video(
            path,
            SECONDS * FPS,
            fps=FPS,
            size=SIZE,
            codec=kind.codec,
            gop=kind.gop,
            bframes=kind.bframes,
            codec_options=dict(kind.options),
        )
        out.append(EqVideo(str(path), pts_ns))
    return out


# ----------------------------------------------------------------------------------------------- workloads


@dataclasses.dataclass
class Rows:
    """One workload: row r is the frame ``frames[r]`` of ``videos[r]`` (windows: and the 3 before it)."""

    name: str
    videos: list[EqVideo]
    frames: list[int]
    window: bool = False

    def labels(self, r: int) -> list[int]:
        f = self.frames[r]
        return list(range(f - WINDOW + 1, f + 1)) if self.window else [f]

    def seconds(self, r: int) -> list[float]:
        return [self.times_ns(r)[k] / 1e9 for k in range(len(self.labels(r)))]

    def times_ns(self, r: int) -> list[int]:
        """The times asked for: the middle of each frame's time on screen (a float of a frame's own pts can
        fall a rounding error before it, on the previous frame)."""
        return [self.videos[r].pts_ns[f] + HALF_FRAME_NS for f in self.labels(r)]

    def __len__(self) -> int:
        return len(self.frames)


def make_workloads(videos: list[EqVideo], seed: int = 0) -> list[Rows]:
    rng = random.Random(seed)
    n = len(videos[0].pts_ns)
    eight = videos[:8]
    rand = [(rng.choice(eight), rng.randrange(n)) for _ in range(256)]
    per_video = [(v, f) for v in videos for f in sorted(rng.sample(range(n), 8))]
    windows = [(rng.choice(eight), rng.randrange(WINDOW - 1, n)) for _ in range(64)]
    return [
        Rows("random 256", [v for v, _ in rand], [f for _, f in rand]),
        Rows(f"{len(videos)} videos x 8", [v for v, _ in per_video], [f for _, f in per_video]),
        Rows(f"windows {len(windows)}x{WINDOW}", [v for v, _ in windows], [f for _, f in windows], True),
    ]


# ----------------------------------------------------------------------------------------------- contenders


def _video_rows(rows: Rows) -> Any:
    """``datasets.Video`` per row: each row's video decodes to a fresh TorchCodec decoder."""
    import torch
    from datasets import Dataset, Features, Sequence, Value, Video

    ds = Dataset.from_dict(
        {
            "video": [v.path for v in rows.videos],
            "t": [rows.seconds(r) for r in range(len(rows))],
            "label": [rows.labels(r) for r in range(len(rows))],
        },
        features=Features(
            {"video": Video(), "t": Sequence(Value("float64")), "label": Sequence(Value("int64"))}
        ),
    )

    def transform(batch: dict) -> dict:
        frames = [v.get_frames_played_at(t).data for v, t in zip(batch["video"], batch["t"])]
        if not rows.window:
            frames = [f[0] for f in frames]
        return {"frame": frames, "label": [torch.tensor(x) for x in batch["label"]]}

    return ds.with_transform(transform)


_DECODERS: dict[str, Any] = {}  # per process: LeRobot's decoder cache (one per video, never evicted)


class CachedDecoderRows:
    """LeRobot's way: a map-style dataset asking a cached ``VideoDecoder`` per row."""

    def __init__(self, rows: Rows):
        self.paths = [v.path for v in rows.videos]
        self.seconds = [rows.seconds(r) for r in range(len(rows))]
        self.labels = [rows.labels(r) for r in range(len(rows))]
        self.window = rows.window

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, r: int) -> dict:
        import torch
        from torchcodec.decoders import VideoDecoder

        path = self.paths[r]
        decoder = _DECODERS.get(path)
        if decoder is None:
            decoder = _DECODERS[path] = VideoDecoder(path, seek_mode="approximate")
        frames = decoder.get_frames_played_at(self.seconds[r]).data
        return {"frame": frames if self.window else frames[0], "label": torch.tensor(self.labels[r])}


class MediarefBatchRows:
    """``mediaref`` 2.1.0, the package hf_mediaref grew from, used at its best: the DataLoader hands
    ``__getitems__`` a batch's rows, decoded in one ``mediaref.batch_decode(refs, decoder="tensorcodec",
    allow_multi_video=True)`` call in the worker; (H, W, 3) frames made channels-first tensors."""

    def __init__(self, rows: Rows):
        self.paths = [v.path for v in rows.videos]
        self.times_ns = [rows.times_ns(r) for r in range(len(rows))]
        self.labels = [rows.labels(r) for r in range(len(rows))]
        self.window = rows.window

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, r: int) -> dict:
        return self.__getitems__([r])[0]

    def __getitems__(self, rows: list[int]) -> list[dict]:
        import mediaref
        import numpy as np
        import torch

        refs = [mediaref.MediaRef(uri=self.paths[r], pts_ns=t) for r in rows for t in self.times_ns[r]]
        frames = iter(mediaref.batch_decode(refs, decoder="tensorcodec", allow_multi_video=True))
        out = []
        for r in rows:
            chw = [
                torch.from_numpy(np.ascontiguousarray(next(frames).transpose(2, 0, 1)))
                for _ in self.labels[r]
            ]
            out.append(
                {"frame": torch.stack(chw) if self.window else chw[0], "label": torch.tensor(self.labels[r])}
            )
        return out


def _mediaref_rows(rows: Rows) -> Any:
    """The rows as a dataset with a MediaRef column ``frame`` and the expected barcodes ``label``."""
    from datasets import Dataset, Features, Sequence, Value

    from hf_mediaref.hf import MediaRefFeature

    return Dataset.from_dict(
        {
            "frame": [{"uri": v.path, "pts_ns": rows.times_ns(r)[-1]} for r, v in enumerate(rows.videos)],
            "label": [rows.labels(r) for r in range(len(rows))],
        },
        features=Features({"frame": MediaRefFeature(), "label": Sequence(Value("int64"))}),
    )


def _mediaref_format(ds: Any, rows: Rows, **options: Any) -> Any:
    extra = {"windows": {"frame": [(k - WINDOW + 1) / FPS for k in range(WINDOW)]}} if rows.window else {}
    return ds.with_format("mediaref", output="torch", channels_first=True, **extra, **options)


@dataclasses.dataclass
class Contender:
    name: str
    make: Callable[[Rows, int, int], Any]  # (rows, batch size, workers) -> DataLoader
    same_batches: bool = True  # False: the contender regroups the rows into batches of its own


def _loader(dataset: Any, batch_size: int, workers: int, **kw: Any) -> Any:
    from bench_roads import _collate, _start_stats
    from torch.utils.data import DataLoader

    if "batch_sampler" not in kw:
        kw.update(batch_size=batch_size, shuffle=False)
    return DataLoader(
        dataset,
        num_workers=workers,
        persistent_workers=workers > 0,
        worker_init_fn=_start_stats if workers else None,
        collate_fn=_collate,
        **kw,
    )


def _plain_batches(n: int, batch_size: int) -> list[list[int]]:
    """The DataLoader's own batches of rows ``0..n-1`` in order (``shuffle=False``)."""
    return [list(range(i, min(i + batch_size, n))) for i in range(0, n, batch_size)]


def make_contenders(has_torchcodec: bool, has_mediaref: bool = False) -> list[Contender]:
    from hf_mediaref.hf import DecodeAhead, VideoBlockBatchSampler

    def mediaref_2(rows: Rows, bs: int, workers: int) -> Any:
        return _loader(MediarefBatchRows(rows), bs, workers)

    def video(rows: Rows, bs: int, workers: int) -> Any:
        return _loader(_video_rows(rows), bs, workers)

    def cached(rows: Rows, bs: int, workers: int) -> Any:
        return _loader(CachedDecoderRows(rows), bs, workers)

    def fmt(rows: Rows, bs: int, workers: int) -> Any:
        return _loader(_mediaref_format(_mediaref_rows(rows), rows), bs, workers)

    def fmt_torchcodec(rows: Rows, bs: int, workers: int) -> Any:
        return _loader(_mediaref_format(_mediaref_rows(rows), rows, decoder="torchcodec"), bs, workers)

    def sampler(rows: Rows, bs: int, workers: int) -> Any:
        ds = _mediaref_rows(rows)
        s = VideoBlockBatchSampler(ds, bs, seed=0, num_workers=workers)
        return _loader(_mediaref_format(ds, rows), bs, workers, batch_sampler=s)

    def ahead(rows: Rows, bs: int, workers: int) -> Any:
        ds = _mediaref_rows(rows)
        s = VideoBlockBatchSampler(ds, bs, seed=0)
        return _loader(DecodeAhead(_mediaref_format(ds, rows), s), bs, 0, batch_sampler=s)

    def grouped_in_workers(rows: Rows, bs: int, workers: int) -> Any:
        ahead = DecodeAhead(
            _mediaref_format(_mediaref_rows(rows), rows), _plain_batches(len(rows), bs), group=4
        )
        return _loader(ahead, bs, workers, batch_sampler=ahead.sampler)

    def grouped(rows: Rows, bs: int, workers: int) -> Any:
        return grouped_in_workers(rows, bs, 0)  # no workers: the groups run on lanes in this process

    out = []
    if has_torchcodec:
        out += [
            Contender("datasets.Video per row", video),
            Contender("cached TorchCodec decoder per row", cached),
        ]
    if has_mediaref:
        out.append(Contender("mediaref 2.1.0 batch_decode per batch", mediaref_2))
    out += [
        Contender('hf_mediaref with_format("mediaref")', fmt),
    ]
    if has_torchcodec:
        out.append(Contender('hf_mediaref with_format("mediaref", decoder="torchcodec")', fmt_torchcodec))
    out += [
        Contender("hf_mediaref + VideoBlockBatchSampler", sampler, same_batches=False),
        Contender("hf_mediaref sampler + DecodeAhead, 0 workers", ahead, same_batches=False),
        Contender("hf_mediaref DecodeAhead(group=4), same batches, 0 workers", grouped),
        Contender("hf_mediaref DecodeAhead(group=4), same batches, in the workers", grouped_in_workers),
    ]
    return out


# ----------------------------------------------------------------------------------------------- measuring


@dataclasses.dataclass
class Cell:
    times: list[float] = dataclasses.field(default_factory=list)
    frames: int = 0
    wrong: int = 0
    decoded: int = 0  # decoded frames in the timed epochs (hf_mediaref roads; 0: not counted)
    cpu: list[float] = dataclasses.field(
        default_factory=list
    )  # CPU seconds of each timed epoch, all processes
    error: str = ""

    @property
    def fps(self) -> float:
        return self.frames / min(self.times) if self.times and not self.error else float("nan")

    @property
    def cpu_fps(self) -> float:
        """Returned frames per CPU-second (the main process and its workers; the fastest epoch): what the
        contender costs, less moved than wall time by other processes' load on a shared machine."""
        return self.frames / min(self.cpu) if self.cpu and not self.error else float("nan")


def _epoch(loader: Any, check: bool, latest: dict[int, Any]) -> tuple[int, int]:
    frames = wrong = 0
    for batch, worker, counters in loader:
        latest[worker] = counters
        got = batch["frame"].reshape(-1, *batch["frame"].shape[-3:])
        labels = batch["label"].reshape(-1).tolist()
        frames += len(labels)
        if check:
            wrong += sum(read_index(f.numpy()) != n for f, n in zip(got, labels))
            wrong += abs(len(got) - len(labels))
    return frames, wrong


def measure_workload(
    rows: Rows, contenders: list[Contender], rounds: int, batch_size: int, workers: int
) -> dict[str, Cell]:
    from hf_mediaref.video import collect_stats

    cells = {c.name: Cell() for c in contenders}
    loaders: dict[str, Any] = {}
    latest: dict[str, dict[int, Any]] = {c.name: {} for c in contenders}
    expected = len(rows) * (WINDOW if rows.window else 1)
    for c in contenders:  # start the workers, warm the caches, check every frame
        try:
            loaders[c.name] = c.make(rows, batch_size, workers)
            frames, wrong = _epoch(loaders[c.name], True, latest[c.name])
            cells[c.name].wrong = wrong + abs(frames - expected)
            cells[c.name].frames = frames
        except Exception as exc:  # a contender that fails is reported, not fatal
            cells[c.name].error = f"{type(exc).__name__}: {str(exc)[:160]}"
    before = {name: dict(v) for name, v in latest.items()}
    main_decoded = {c.name: 0 for c in contenders}
    for k in range(rounds):
        order = contenders[k % len(contenders) :] + contenders[: k % len(contenders)]
        for c in order:
            cell = cells[c.name]
            if cell.error:
                continue
            seen = dict(latest[c.name])
            with collect_stats() as stats:
                start, cpu = time.perf_counter(), time.process_time()
                _epoch(loaders[c.name], False, latest[c.name])
                cell.times.append(time.perf_counter() - start)
                cpu = time.process_time() - cpu
            main_decoded[c.name] += stats.decoded_frames
            for w, counters in latest[c.name].items():  # each worker's CPU time up to its last batch
                if w >= 0:
                    cpu += counters[2] - seen.get(w, (0, 0, counters[2], 0))[2]
            cell.cpu.append(cpu)
    for c in contenders:
        cell = cells[c.name]
        cell.decoded = main_decoded[c.name]
        for w, counters in latest[c.name].items():
            if w >= 0:
                cell.decoded += counters[3] - before[c.name].get(w, (0, 0, 0.0, 0))[3]
    loaders.clear()
    gc.collect()
    return cells


# ----------------------------------------------------------------------------------------------- floors


@functools.cache
def _decode_order(path: str) -> tuple[list[int], list[int], list[int]]:
    """A video's packets: their pts (ns) sorted, the decode position of each of those, and the decode
    positions of its keyframes (ascending)."""
    import av

    with av.open(path) as container:
        stream = container.streams.video[0]
        base = stream.time_base
        packets = [p for p in container.demux(stream) if p.size and p.pts is not None]
        listed = sorted((round(p.pts * base * 10**9), k) for k, p in enumerate(packets))
        keys = [k for k, p in enumerate(packets) if p.is_keyframe]
    return [t for t, _ in listed], [k for _, k in listed], keys


def _positions(video: EqVideo, frames: list[int]) -> list[int]:
    """Decode positions of the frames ``frames`` (display indexes) of ``video``."""
    pts, order, _ = _decode_order(video.path)
    out = []
    for f in frames:
        i = bisect.bisect_left(pts, video.pts_ns[f] - 1000)  # the packet of the frame's pts (1 us slack)
        out.append(order[min(i, len(order) - 1)])
    return out


def per_row_floors(rows: Rows, batch_size: int, workers: int) -> tuple[float, float]:
    """Frames a decoder asked row by row must decode per returned frame, counted from the packets (decode
    order; no frame skipped): ``(a fresh decoder per row, as datasets.Video; a decoder per video kept by
    each DataLoader worker that decodes on, without a seek, when the row's frames come later in the keyframe
    block it is in, as TorchCodec's approximate mode)``. Batch ``b`` goes to worker ``b % workers``."""
    fresh = cached = returned = 0
    where: dict[tuple[int, str], int] = {}  # (worker, video) -> decode position of the last frame out
    for r in range(len(rows)):
        video = rows.videos[r]
        positions = _positions(video, rows.labels(r))
        keys = _decode_order(video.path)[2]
        first, last = min(positions), max(positions)
        key = keys[bisect.bisect_right(keys, first) - 1]
        fresh += last - key + 1
        slot = ((r // batch_size) % max(1, workers), video.path)
        now = where.get(slot)
        # the worker's decoder decodes on (no seek) when the row's frames come later in the block it is in
        decodes_on = now is not None and first > now and keys[bisect.bisect_right(keys, now) - 1] == key
        cached += last - now if decodes_on else last - key + 1
        where[slot] = last
        returned += len(positions)
    return fresh / returned, cached / returned


# ----------------------------------------------------------------------------------------------- report


def render(
    table: dict[str, dict[str, dict[str, Cell]]],
    args: argparse.Namespace,
    floors: dict[tuple[str, str], tuple[float, float]] | None = None,
) -> str:
    import av

    cached, video = "cached TorchCodec decoder per row", "datasets.Video per row"
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    lines = [
        f"Equal cores: {cpus} CPUs, every contender in a DataLoader with num_workers={args.workers} "
        f"(persistent) or, for DecodeAhead, 0 workers and 2 lanes; batches of {args.batch_size}; "
        f"{SIZE[1]}x{SIZE[0]} {FPS} fps {SECONDS} s videos; frames/s = returned frames / s, fastest of "
        f"{args.rounds} interleaved rounds after a checked warm-up epoch. PyAV {av.__version__}.\n",
    ]
    names: list[str] = []
    for kind_cells in table.values():
        for cells in kind_cells.values():
            names += [n for n in cells if n not in names]
    hf = [n for n in names if n.startswith("hf_mediaref")]
    header = "| workload | " + " | ".join(names) + " | " + " | ".join(f"{n} / cached" for n in hf) + " |"

    def rows(measure: str) -> list[str]:
        """One table row per workload: each contender's ``measure`` (``fps`` or ``cpu_fps``), then each
        hf_mediaref road's ratio to the cached decoder."""
        out = [header, "|---|" + "---:|" * (len(names) + len(hf))]
        for kind, kind_cells in table.items():
            for workload, cells in kind_cells.items():
                row = []
                for n in names:
                    c = cells.get(n)
                    row.append("–" if c is None else ("error" if c.error else f"{getattr(c, measure):,.0f}"))
                base = cells.get(cached)
                for n in hf:
                    c = cells.get(n)
                    ok = c and base and not c.error and not base.error
                    row.append(f"{getattr(c, measure) / getattr(base, measure):.2f}x" if ok else "–")
                out.append(f"| {workload}, {KINDS[kind].label} | " + " | ".join(row) + " |")
        return out

    wrong = sum(
        c.wrong for kind_cells in table.values() for cells in kind_cells.values() for c in cells.values()
    )
    lines += rows("fps")
    lines.append(f"\nWrong frames over all contenders and workloads: {wrong}.")
    lines.append(
        "\nFrames per CPU-second (CPU time of the main process and the workers in an epoch, fastest epoch; "
        "less moved by other load than frames/s):\n"
    )
    lines += rows("cpu_fps")
    floors = floors or {}
    lines.append(
        "\nDecoded frames per returned frame: hf_mediaref roads counted in the workers; a decoder asked row "
        "by row counted from the packets (decode order, no frame skipped: what datasets.Video's fresh "
        "decoder per row and the cached decoder per video and worker must decode):\n"
    )
    lines.append(
        "| workload | fresh decoder per row | cached decoder per row | "
        + " | ".join(hf)
        + " | fastest hf_mediaref road / datasets.Video (frames/s) |"
    )
    lines.append("|---|" + "---:|" * (len(hf) + 3))
    for kind, kind_cells in table.items():
        for workload, cells in kind_cells.items():
            floor = floors.get((kind, workload))
            row = [f"{x:.2f}" for x in floor] if floor else ["–", "–"]
            for n in hf:
                c = cells.get(n)
                ok = c and not c.error and c.decoded and c.times
                row.append(f"{c.decoded / (c.frames * len(c.times)):.2f}" if ok else "–")
            v, best = cells.get(video), max((cells[n].fps for n in hf if n in cells), default=float("nan"))
            row.append(f"{best / v.fps:.2f}x" if v and not v.error else "–")
            lines.append(f"| {workload}, {KINDS[kind].label} | " + " | ".join(row) + " |")
    errors = [
        f"{workload}, {kind}: {n}: {c.error}"
        for kind, kind_cells in table.items()
        for workload, cells in kind_cells.items()
        for n, c in cells.items()
        if c.error
    ]
    if errors:
        lines.append("\nErrors: " + "; ".join(errors))
    return "\n".join(lines)


def run_equal_cores(args: argparse.Namespace) -> str:
    """Measure every contender on every workload of every kind; returns the Markdown report."""
    import warnings

    import datasets
    import torch

    datasets.disable_progress_bars()
    warnings.filterwarnings("ignore", message=".*shard.*")
    torch.set_num_threads(1)
    os.environ["OMP_NUM_THREADS"] = "1"
    try:
        import torchcodec.decoders  # noqa: F401

        has_torchcodec = True
    except Exception as exc:  # a missing or broken install: reported
        print(f"TorchCodec not usable ({exc}): its contenders are not run", flush=True)
        has_torchcodec = False
    try:
        import mediaref  # noqa: F401  (pip install -e '.[bench]')

        has_mediaref = True
    except ImportError:
        print(
            "mediaref 2.1.0 not installed (pip install -e '.[bench]'): its contender is not run", flush=True
        )
        has_mediaref = False
    contenders = make_contenders(has_torchcodec, has_mediaref)
    if args.eq_only:
        contenders = [c for c in contenders if any(s in c.name for s in args.eq_only)]
    table: dict[str, dict[str, dict[str, Cell]]] = {}
    floors: dict[tuple[str, str], tuple[float, float]] = {}
    for key in args.eq_kinds:
        if key == "av1" and not av1_available():
            print("no AV1 encoder (libsvtav1) in PyAV: AV1 not run", flush=True)
            continue
        print(f"media: {KINDS[key].label} ...", flush=True)
        videos = make_videos(Path(args.media), key, 8 if args.quick and key != "h264-b" else N_VIDEOS)
        for rows in make_workloads(videos):
            if args.eq_workloads and not any(s in rows.name for s in args.eq_workloads):
                continue
            print(f"  {rows.name} ...", flush=True)
            cells = measure_workload(rows, contenders, args.rounds, args.batch_size, args.workers)
            table.setdefault(key, {})[rows.name] = cells
            floors[key, rows.name] = per_row_floors(rows, args.batch_size, args.workers)
            for n, c in cells.items():
                print(
                    f"    {n}: {c.fps:,.1f} frames/s, {c.cpu_fps:,.1f} frames/CPU-s, "
                    f"wrong {c.wrong} {c.error}",
                    flush=True,
                )
    return render(table, args, floors)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--rounds", type=int, default=None, help="timed rounds (default 3, --quick 1)")
    parser.add_argument("--workers", type=int, default=2, help="DataLoader workers of every contender")
    parser.add_argument(
        "--eq-kinds", dest="eq_kinds", nargs="*", default=list(KINDS), choices=list(KINDS), help="video kinds"
    )
    parser.add_argument(
        "--eq-workloads", dest="eq_workloads", nargs="*", help="workloads whose name contains"
    )
    parser.add_argument("--eq-only", dest="eq_only", nargs="*", help="contenders whose name contains")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="1 round; 8 videos for the kinds but the first")
    parser.add_argument("--media", default=str(ROOT / ".bench"))
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--markdown", help="also write the report to this file")
    add_arguments(parser)
    args = parser.parse_args(argv)
    args.rounds = args.rounds or (1 if args.quick else 3)
    publish(run_equal_cores(args), args.markdown)
    return 0


if __name__ == "__main__":
    sys.exit(main())
