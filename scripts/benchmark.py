#!/usr/bin/env python
"""Frame-decoding benchmark: hf_mediaref against its peers, in one process, on the same generated media.

    make bench                      # or: python scripts/benchmark.py [--quick] [--reps N] [--markdown FILE]

Media (barcode videos whose frame i shows i, so every returned frame is checked) is generated once into
``.bench/``. Each contender runs every workload once untimed (warm-up: builds caches, verifies every frame),
then ``--reps`` timed passes, interleaved across contenders so that machine noise hits all of them alike;
cells are medians. Slow per-frame contenders (naive PyAV, ``SEPARATE``) run on the first ``--sample`` refs of
each workload: their cost per frame does not depend on the batch size.

Columns: frames/s (returned frames per second), decoded frames per returned frame (where the contender lets
us count), bytes read per returned frame (``rchar`` of /proc/self/io: every byte read by the process, page
cache hits included; for the workload over HTTP, the bytes a loopback server sent), peak RSS growth during
the call, and wrong frames (barcode check; must be 0). "new process" empties hf_mediaref's index and container
in-memory caches before every call, as a new process (a DataLoader worker, a new run) finds them.
The targets of issue 3 are checked at the end.

Every workload runs on two kinds of video (``--kinds``): a B-frame MP4 (x264, GOP 250, 3 B-frames) and a
stream with no B-frames, every frame a reference (MKV, H.264, GOP 30, like the D2E recordings), where
skipping non-reference frames cannot help. ``--roads`` / ``--only-roads`` add the roads section
(scripts/bench_roads.py: the same refs through batch_decode, map-style and streaming DataLoaders, 2-rank
DDP, and Ray Data when scripts/bench_ray.py provides ``ray_roads``); ``make_media`` and ``make_workloads``
are importable for it. ``--equal-cores`` measures only the equal-core comparison
(scripts/bench_equal_cores.py: every contender in a DataLoader with the same workers, 320x240 H.264 and AV1).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import random
import statistics
import sys
import tempfile
import threading
import time
import warnings
from bisect import bisect_right
from collections.abc import Callable
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))

from hf_mediaref.testing.http_server import LoopbackFileServer
from hf_mediaref.testing.media import read_index, write_video

FPS = 20
SIZE = (360, 640)


# ----------------------------------------------------------------------------------------------- media


@dataclasses.dataclass
class Video:
    path: str
    pts_ns: list[int]  # pts of the frame showing i
    time_base: Fraction
    keyframes: list[int]  # frame numbers of the keyframes (demuxed once, for the oracle)

    def pts_tb(self, frame: int) -> int:
        return int(Fraction(self.pts_ns[frame], 10**9) / self.time_base)


def _demux_keyframes(path: str, pts_ns: list[int]) -> tuple[Fraction, list[int]]:
    import av

    with av.open(path) as container:
        stream = container.streams.video[0]
        tb = stream.time_base
        key_pts = sorted(
            int(p.pts * tb * 10**9) for p in container.demux(stream) if p.pts is not None and p.is_keyframe
        )
    frames = sorted({bisect_right(pts_ns, p) - 1 for p in key_pts})
    return Fraction(tb), frames


@dataclasses.dataclass(frozen=True)
class Kind:
    """A kind of benchmark video: container and encoder settings."""

    label: str  # shown in tables
    suffix: str  # file name tail
    container: str
    gop: int
    bframes: int


#: B-frame MP4 (x264, GOP 250, 3 B-frames): non-reference frames the engine can skip.
BFRAMES = Kind("MP4, B-frames", "", ".mp4", gop=250, bframes=3)
#: Every frame a reference, like the D2E recordings: MKV, H.264, GOP 30, no B-frames, 20 fps.
NO_BFRAMES = Kind("MKV, no B-frames", "_gop30_noB", ".mkv", gop=30, bframes=0)
KINDS = {"bframes": BFRAMES, "nobframes": NO_BFRAMES}


def add_kinds_argument(parser: argparse.ArgumentParser) -> None:
    """``--kinds``: which of :data:`KINDS` to run (default: both)."""
    parser.add_argument(
        "--kinds",
        nargs="*",
        default=list(KINDS),
        choices=list(KINDS),
        help="video kinds: B-frame MP4 (GOP 250) and/or no-B-frame MKV (GOP 30, like D2E recordings)",
    )


def cached_video(path: Path, num_frames: int, **write_args: Any) -> list[int]:
    """The frame pts of the barcode video ``path``, written by ``write_video(path, num_frames, noise=0.02,
    **write_args)`` on first use and kept with its pts in ``<path>.json`` (every benchmark's media)."""
    meta = path.with_suffix(".json")
    if not (path.exists() and meta.exists()):
        spec = write_video(path, num_frames, noise=0.02, **write_args)
        meta.write_text(json.dumps(list(spec.pts_ns)))
    return json.loads(meta.read_text())


def make_video(path: Path, seconds: int, first_index: int = 0, kind: Kind = BFRAMES) -> Video:
    path = path.with_name(path.stem + kind.suffix + kind.container)
    pts_ns = cached_video(
        path, seconds * FPS, fps=FPS, size=SIZE, gop=kind.gop, bframes=kind.bframes, first_index=first_index
    )
    tb, keyframes = _demux_keyframes(str(path), pts_ns)
    return Video(str(path), pts_ns, tb, keyframes)


def make_media(media: Path, quick: bool, kind: Kind = BFRAMES) -> tuple[Video, list[Video]]:
    """The long video and the short ones of ``kind`` (generated into ``media`` on first use): 300 s and 32
    x 5 s, or 60 s and 4 x 5 s with ``quick``. Importable (``scripts/bench_roads.py``, ``bench_ray.py``)."""
    media.mkdir(parents=True, exist_ok=True)
    seconds, n_short = (60, 4) if quick else (300, 32)
    long = make_video(media / f"long_{seconds}s_640x360_20fps.mp4", seconds, kind=kind)
    shorts = [
        make_video(media / f"short_{k:02d}_5s_640x360_20fps.mp4", 5, first_index=0, kind=kind)
        for k in range(n_short)
    ]
    return long, shorts


# ----------------------------------------------------------------------------------------------- workloads


@dataclasses.dataclass
class Workload:
    name: str
    requests: list[tuple[Video, int]]  # (video, frame index), in input order
    bytes_counter: Callable[[], int] | None = None  # bytes fetched so far (default: the process's rchar)
    kind: Kind = BFRAMES
    base: str = ""  # the name without the kind ("random 256")

    def __post_init__(self) -> None:
        self.base = self.base or self.name

    def head(self, n: int | None) -> Workload:
        if n is None or n >= len(self.requests):
            return self
        return dataclasses.replace(self, requests=self.requests[:n])


def over_http(workload: Workload, server: Any) -> Workload:
    """The same requests, with every video read from ``server`` (a loopback file server over the media
    folder); bytes are what the server sent."""
    remote: dict[str, Video] = {}
    for video, _ in workload.requests:
        remote.setdefault(
            video.path, dataclasses.replace(video, path=f"{server.url}/{Path(video.path).name}")
        )
    return Workload(
        f"{workload.name} over HTTP",
        [(remote[v.path], i) for v, i in workload.requests],
        bytes_counter=lambda: server.bytes_sent,
        kind=workload.kind,
        base=f"{workload.base} over HTTP",
    )


def make_workloads(long: Video, shorts: list[Video], seed: int = 0, kind: Kind = BFRAMES) -> list[Workload]:
    rng = random.Random(seed)
    n = len(long.pts_ns)
    clips = []
    for start in sorted(rng.sample(range(n - 16), 16)):
        clips += [(long, start + k) for k in range(16)]
    rng.shuffle(clips_order := list(range(16)))  # clips arrive in random order, frames in order inside a clip
    clips = [clips[c * 16 + k] for c in clips_order for k in range(16)]
    one_hz = [(long, i) for i in range(0, n, FPS)]
    rand = [(long, i) for i in rng.sample(range(n), 256)]
    start = rng.randrange(n - 300)
    consecutive = [(long, start + k) for k in range(300)]
    short = [(v, i) for v in shorts for i in rng.sample(range(len(v.pts_ns)), 8)]
    workloads = [
        Workload("clips 16x16", clips),
        Workload("1 Hz", one_hz),
        Workload("random 256", rand),
        Workload("300 consecutive", consecutive),
        Workload(f"{len(shorts)} videos x 8", short),
    ]
    for w in workloads:
        w.kind, w.base = kind, w.name
        if kind is not BFRAMES:
            w.name = f"{w.name} [{kind.label}]"
    return workloads


def by_video(requests: list[tuple[Video, int]]) -> dict[str, tuple[Video, list[int]]]:
    """{path: (video, [request positions])} in order of first appearance."""
    out: dict[str, tuple[Video, list[int]]] = {}
    for pos, (video, _) in enumerate(requests):
        out.setdefault(video.path, (video, []))[1].append(pos)
    return out


# ----------------------------------------------------------------------------------------------- contenders


@dataclasses.dataclass
class Result:
    frames: list[Any]
    decoded: int | None = None


@dataclasses.dataclass
class Contender:
    name: str
    run: Callable[[Workload], Result]
    sample: int | None = None  # only the first N refs of each workload
    note: str = ""
    before: Callable[[], None] | None = None  # untimed preparation before each call
    after: Callable[[], None] | None = None  # untimed clean-up after each call


def hf_contender(name: str, fresh: list[str] | None = None, **options: Any) -> Contender:
    """``hf_mediaref.batch_decode``. With ``fresh`` (every video path of the run), each call starts with empty
    in-memory caches, as in a new process, and the caches are filled again afterwards (untimed) so that the
    next contender finds them as it left them."""
    import hf_mediaref
    from hf_mediaref.video import collect_stats
    from hf_mediaref.video._indexes import load_index

    def run(w: Workload) -> Result:
        refs = [hf_mediaref.MediaRef(v.path, v.pts_ns[i]) for v, i in w.requests]
        with collect_stats() as stats:
            frames = hf_mediaref.batch_decode(refs, **options)
        return Result(frames, stats.decoded_frames)

    def refill() -> None:
        for path in fresh or ():
            load_index(path)

    return Contender(
        name, run, before=hf_mediaref.cleanup_cache if fresh else None, after=refill if fresh else None
    )


def mediaref_contender(decoder: str) -> Contender:
    import mediaref

    def run(w: Workload) -> Result:
        refs = [mediaref.MediaRef(uri=v.path, pts_ns=v.pts_ns[i]) for v, i in w.requests]
        return Result(mediaref.batch_decode(refs, decoder=decoder, allow_multi_video=True))

    return Contender(f"mediaref 2.1.0 ({decoder})", run)


def played_at_contender(name: str, make_decoder: Callable[[str], Any], note: str) -> Contender:
    """A library's ``VideoDecoder(path).get_frames_played_at(seconds)``, one decoder per video per call."""

    def run(w: Workload) -> Result:
        out: list[Any] = [None] * len(w.requests)
        for video, positions in by_video(w.requests).values():
            decoder = make_decoder(video.path)
            try:
                batch = decoder.get_frames_played_at(
                    [video.pts_ns[w.requests[p][1]] / 1e9 for p in positions]
                )
            finally:
                close = getattr(decoder, "close", None)
                if close is not None:
                    close()
            for p, frame in zip(positions, batch.data):
                out[p] = frame
        return Result(out)

    return Contender(name, run, note=note)


def naive_pyav_contender() -> Contender:
    """Per ref: open, seek to the keyframe before t, decode up to t, convert, close."""
    import av

    def run(w: Workload) -> Result:
        out, decoded = [], 0
        for video, i in w.requests:
            target = video.pts_tb(i)
            with av.open(video.path) as container:
                stream = container.streams.video[0]
                container.seek(target, stream=stream, backward=True)
                last = None
                for frame in container.decode(stream):
                    decoded += 1
                    if frame.pts > target:
                        break
                    last = frame
                out.append(last.to_ndarray(format="rgb24"))
        return Result(out, decoded)

    return Contender("naive PyAV (open+seek per frame)", run)


def oracle_contender(threads: int) -> Contender:
    """Knows the keyframes; per video, one stream, each needed block decoded once from its keyframe to its
    last target; only targets converted."""
    import av

    def run(w: Workload) -> Result:
        out: list[Any] = [None] * len(w.requests)
        decoded = 0
        for video, positions in by_video(w.requests).values():
            wanted: dict[int, list[int]] = {}
            for p in positions:
                wanted.setdefault(w.requests[p][1], []).append(p)
            blocks: dict[int, list[int]] = {}
            for frame in sorted(wanted):
                key = video.keyframes[bisect_right(video.keyframes, frame) - 1]
                blocks.setdefault(key, []).append(frame)
            with av.open(video.path) as container:
                stream = container.streams.video[0]
                stream.thread_count = threads
                stream.thread_type = "FRAME" if threads > 1 else "SLICE"
                reformatter = av.video.reformatter.VideoReformatter()
                by_pts = {video.pts_tb(f): f for f in wanted}
                for key, targets in blocks.items():
                    container.seek(video.pts_tb(key), stream=stream, backward=True)
                    last = video.pts_tb(targets[-1])
                    for frame in container.decode(stream):
                        decoded += 1
                        f = by_pts.get(frame.pts)
                        if f is not None:
                            rgb = reformatter.reformat(frame, format="rgb24").to_ndarray()
                            for p in wanted[f]:
                                out[p] = rgb
                        if frame.pts >= last:
                            break
        return Result(out, decoded)

    return Contender(f"oracle (PyAV, {threads} codec thread{'s' if threads > 1 else ''})", run)


def build_contenders(
    args: argparse.Namespace, workloads: list[Workload]
) -> tuple[list[Contender], list[str]]:
    from hf_mediaref.video_decoder import BatchDecodingStrategy as S

    videos = sorted({v.path for w in workloads for v, _ in w.requests})
    contenders = [
        hf_contender("hf_mediaref pyav (default)"),
        hf_contender("hf_mediaref pyav (new process)", fresh=videos),
        hf_contender("hf_mediaref pyav SEQUENTIAL", strategy=S.SEQUENTIAL),
        hf_contender("hf_mediaref pyav 1 worker", max_workers=1),
    ]
    sep = hf_contender("hf_mediaref pyav SEPARATE", strategy=S.SEPARATE)
    sep.sample = args.sample
    contenders.append(sep)
    missing: list[str] = []
    try:
        import torchcodec.decoders

        contenders.append(hf_contender("hf_mediaref torchcodec", decoder="torchcodec"))
        contenders.append(
            played_at_contender(
                "torchcodec 0.13 get_frames_played_at",
                lambda path: torchcodec.decoders.VideoDecoder(
                    path, dimension_order="NHWC", seek_mode="exact"
                ),
                "exact mode, 1 FFmpeg thread (defaults), a decoder per video per call",
            )
        )
    except Exception as exc:
        missing.append(f"torchcodec: {type(exc).__name__}: {exc}")
    try:
        import mediaref  # noqa: F401

        contenders += [mediaref_contender("tensorcodec"), mediaref_contender("pyav")]
    except ImportError as exc:
        missing.append(f"mediaref 2.1.0: {exc} (pip install -e '.[bench]')")
    try:
        import tensorcodec.decoders

        contenders.append(
            played_at_contender(
                "tensorcodec 0.4.1 get_frames_played_at",
                lambda path: tensorcodec.decoders.VideoDecoder(path, dimension_order="NHWC"),
                "exact mode (default), a decoder per video per call",
            )
        )
    except ImportError as exc:
        missing.append(f"tensorcodec: {exc}")
    naive = naive_pyav_contender()
    naive.sample = args.sample
    contenders += [naive, oracle_contender(1), oracle_contender(2)]
    if args.only:
        contenders = [c for c in contenders if any(s in c.name for s in args.only)]
    return contenders, missing


# ----------------------------------------------------------------------------------------------- measuring


def _rchar() -> int:
    try:
        with open("/proc/self/io") as f:
            for line in f:
                if line.startswith("rchar:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def _rss() -> int:
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except OSError:
        return 0


def _malloc_trim() -> None:
    """Give freed heap memory back to the OS (glibc), so that a call's RSS growth is not hidden by memory an
    earlier contender freed but the allocator kept."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


class PeakRSS:
    """Samples the process RSS every 5 ms while active; ``peak - start`` is the call's RSS growth."""

    def __enter__(self) -> PeakRSS:
        _malloc_trim()
        self.start = self.peak = _rss()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def _sample(self) -> None:
        while not self._stop.wait(0.005):
            self.peak = max(self.peak, _rss())

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, _rss())


def _as_hwc(frame: Any) -> np.ndarray:
    arr = frame.numpy() if hasattr(frame, "numpy") else np.asarray(frame)
    if arr.ndim == 3 and arr.shape[0] == 3 and arr.shape[-1] != 3:
        arr = arr.transpose(1, 2, 0)
    return arr


@dataclasses.dataclass
class Cell:
    times: list[float] = dataclasses.field(default_factory=list)
    returned: int = 0
    decoded: int | None = None
    bytes_read: int = 0
    rss_growth: int = 0
    wrong: int = 0
    error: str = ""

    @property
    def time(self) -> float:
        return statistics.median(self.times) if self.times else float("nan")

    @property
    def fps(self) -> float:
        return self.returned / self.time if self.times else float("nan")


def measure(contender: Contender, workload: Workload, cell: Cell, warmup: bool) -> None:
    w = workload.head(contender.sample)
    count_bytes = w.bytes_counter or _rchar
    if contender.before is not None:
        contender.before()
    before = count_bytes()
    with PeakRSS() as rss:
        start = time.perf_counter()
        try:
            result = contender.run(w)
        except Exception as exc:
            cell.error = f"{type(exc).__name__}: {str(exc)[:120]}"
            return
        elapsed = time.perf_counter() - start
    bytes_read = count_bytes() - before
    if contender.after is not None:
        contender.after()
    if warmup:  # verify every frame once, outside the timed passes
        expected = [i for _, i in w.requests]
        cell.wrong = sum(read_index(_as_hwc(f)) != e for f, e in zip(result.frames, expected))
        cell.wrong += abs(len(result.frames) - len(expected))
        return
    cell.times.append(elapsed)
    cell.returned = len(w.requests)
    cell.decoded = result.decoded
    cell.bytes_read = max(cell.bytes_read, bytes_read)
    cell.rss_growth = max(cell.rss_growth, rss.peak - rss.start)


# ----------------------------------------------------------------------------------------------- extras


def formatter_overhead(workloads: list[Workload], reps: int) -> list[tuple[str, float, float, float]]:
    """Median time of batch_decode vs ``ds.with_format("mediaref")[:]`` vs
    ``with_transform(decode_transform())`` on the same refs (plus an int label column)."""
    import datasets

    import hf_mediaref

    rows = []
    for w in workloads:
        refs = [hf_mediaref.MediaRef(v.path, v.pts_ns[i]) for v, i in w.requests]
        ds = datasets.Dataset.from_dict(
            {"frame": refs, "label": list(range(len(refs)))},
            features=datasets.Features(
                {"frame": hf_mediaref.MediaRefFeature(), "label": datasets.Value("int64")}
            ),
        )
        fmt = ds.with_format("mediaref")
        tr = ds.with_transform(hf_mediaref.decode_transform())
        runs = {
            "batch_decode": lambda refs=refs: hf_mediaref.batch_decode(refs),
            "formatter": lambda fmt=fmt: fmt[:]["frame"],
            "with_transform": lambda tr=tr: tr[:]["frame"],
        }
        times: dict[str, list[float]] = {k: [] for k in runs}
        for name, fn in runs.items():  # warm-up + check
            got = fn()
            assert [read_index(f) for f in got] == [i for _, i in w.requests], name
        for _ in range(reps):
            for name, fn in runs.items():
                start = time.perf_counter()
                fn()
                times[name].append(time.perf_counter() - start)
        rows.append((w.name, *(statistics.median(times[k]) for k in runs)))
    return rows


def grouping_cost(rows: int = 1_000_000, videos: int = 1000, reps: int = 3) -> float:
    import pyarrow as pa

    from hf_mediaref.arrow import group_by_uri

    rng = np.random.default_rng(0)
    names = np.array([f"videos/episode_{k:05d}.mkv" for k in range(videos)], dtype=object)
    uris = pa.array(names[rng.integers(0, videos, rows)], pa.string())
    pts = pa.array(rng.integers(0, 300 * 10**9, rows), pa.int64())
    times = []
    for _ in range(reps):
        start = time.perf_counter()
        groups = group_by_uri(uris, pts)
        groups.order, groups.offsets  # noqa: B018  (force the lazy parts)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def parquet_size(rows: int = 100_000) -> tuple[int, int]:
    """Bytes of a Parquet file holding ``rows`` frame refs (100 videos x 1000 frames), as a MediaRef column
    and, for scale, as the same strings and ints written without dictionary encoding or compression."""
    import datasets
    import pyarrow.parquet as pq

    import hf_mediaref

    uris = [f"videos/episode_{k // 1000:03d}.mp4" for k in range(rows)]
    pts = [(k % 1000) * 50_000_000 for k in range(rows)]
    ds = datasets.Dataset.from_dict(
        {"frame": [{"uri": u, "pts_ns": p} for u, p in zip(uris, pts)]},
        features=datasets.Features({"frame": hf_mediaref.MediaRefFeature()}),
    )
    with tempfile.TemporaryDirectory() as tmp:
        ds.to_parquet(f"{tmp}/refs.parquet")
        plain = f"{tmp}/plain.parquet"
        pq.write_table(ds.data.table, plain, use_dictionary=False, compression="none")
        return os.path.getsize(f"{tmp}/refs.parquet"), os.path.getsize(plain)


# ----------------------------------------------------------------------------------------------- report


def _fmt_num(x: float | None, digits: int = 1) -> str:
    return "–" if x is None or x != x else f"{x:,.{digits}f}"


def _render_kind(
    lines: list[str],
    kind: Kind,
    workloads: list[Workload],
    contenders: list[Contender],
    cells: dict,
    args: argparse.Namespace,
) -> None:
    """The frames/s and ratio tables of the workloads of one video kind."""
    names = [w.base for w in workloads]
    lines.append(f"### {kind.label} (H.264, GOP {kind.gop}, {kind.bframes} B-frames, {FPS} fps)\n")
    lines.append(f"Frames/s (returned frames per second, median of {args.reps} passes; higher is better)\n")
    lines.append("| contender | " + " | ".join(names) + " |")
    lines.append("|---|" + "---:|" * len(names))
    for c in contenders:
        row = []
        for w in workloads:
            cell = cells[c.name, w.name]
            row.append("error" if cell.error else _fmt_num(cell.fps) + ("*" if c.sample else ""))
        lines.append(f"| {c.name} | " + " | ".join(row) + " |")
    if any(c.sample for c in contenders):
        lines.append(
            f"\n\\* on the first {args.sample} refs of the workload (per-frame cost does not depend on"
            " the batch)."
        )

    default = "hf_mediaref pyav (default)"
    peers = [c.name for c in contenders if c.name.startswith("mediaref 2.1.0")]
    lines.append(
        "\nRatios: frames/s of hf_mediaref (default) / frames/s of the other (>1: hf_mediaref is faster)\n"
    )
    lines.append("| vs | " + " | ".join(names) + " |")
    lines.append("|---|" + "---:|" * len(names))
    for other in peers + [
        c.name for c in contenders if c.name.startswith(("oracle", "torchcodec", "tensorcodec"))
    ]:
        row = []
        for w in workloads:
            a, b = cells.get((default, w.name)), cells.get((other, w.name))
            ok = a and b and a.times and b.times
            row.append(f"{a.fps / b.fps:.2f}x" if ok else "–")
        lines.append(f"| {other} | " + " | ".join(row) + " |")
    lines.append("")


def render(
    workloads: list[Workload],
    contenders: list[Contender],
    cells: dict,
    args: argparse.Namespace,
    extras: dict[str, Any],
    missing: list[str],
) -> str:
    lines: list[str] = []
    kinds = list(dict.fromkeys(w.kind for w in workloads))
    for kind in kinds:
        _render_kind(lines, kind, [w for w in workloads if w.kind == kind], contenders, cells, args)

    for w in workloads:
        lines.append(f"\n**{w.name}** ({len(w.requests)} refs)\n")
        lines.append(
            "| contender | median s | frames/s | decoded / returned | KiB read / returned | "
            "peak RSS growth MiB | wrong frames |"
        )
        lines.append("|---|---:|---:|---:|---:|---:|---:|")
        for c in contenders:
            cell = cells[c.name, w.name]
            if cell.error:
                lines.append(f"| {c.name} | error: {cell.error} | | | | | |")
                continue
            dec = None if cell.decoded is None or not cell.returned else cell.decoded / cell.returned
            kib = cell.bytes_read / 1024 / cell.returned if cell.returned else None
            lines.append(
                f"| {c.name} | {_fmt_num(cell.time, 3)} | {_fmt_num(cell.fps)} | {_fmt_num(dec, 2)} | "
                f"{_fmt_num(kib)} | {_fmt_num(cell.rss_growth / 2**20)} | {cell.wrong} |"
            )

    if extras.get("formatter"):
        lines.append(
            "\nDatasets path: the same refs through `batch_decode`, the `mediaref` format (`ds[:]`) and "
            "`with_transform(decode_transform())` (median s; overhead vs batch_decode)\n"
        )
        lines.append("| workload | batch_decode | formatter | overhead | with_transform | overhead |")
        lines.append("|---|---:|---:|---:|---:|---:|")
        for name, bd, fmt, tr in extras["formatter"]:
            lines.append(
                f"| {name} | {bd:.3f} | {fmt:.3f} | {100 * (fmt / bd - 1):+.1f}% | {tr:.3f} | "
                f"{100 * (tr / bd - 1):+.1f}% |"
            )
    if "grouping" in extras:
        lines.append(
            f"\nGrouping 1,000,000 rows (1,000 videos) by URI and pts: {extras['grouping'] * 1000:.0f} ms"
        )
    if "parquet" in extras:
        refs, plain = extras["parquet"]
        lines.append(
            f"\nParquet, 100,000 frame refs: {refs / 1024:.1f} KiB as a MediaRef column via `to_parquet` "
            f"({plain / 1024:,.0f} KiB without dictionary encoding and compression)"
        )
    if missing:
        lines.append("\nNot run: " + "; ".join(missing))
    lines.append("\n" + check_targets(workloads, contenders, cells, extras))
    return "\n".join(lines)


def check_targets(workloads: list[Workload], contenders: list[Contender], cells: dict, extras: dict) -> str:
    default = "hf_mediaref pyav (default)"
    peers = [c.name for c in contenders if c.name.startswith("mediaref 2.1.0")]
    out = ["Targets (issue 3 and 4):\n"]

    def cell(name: str, w: str) -> Cell | None:
        c = cells.get((name, w))
        return c if c and c.times else None

    for w in workloads:
        me = cell(default, w.name)
        best = max((cell(p, w.name) for p in peers if cell(p, w.name)), key=lambda c: c.fps, default=None)
        oracle = cell("oracle (PyAV, 1 codec thread)", w.name)
        if me and best:
            ratio = me.fps / best.fps
            need = 1.5 if w.base in ("1 Hz", "random 256") else 1.0
            out.append(
                f"- {w.name}: {ratio:.2f}x the frames/s of mediaref 2.1.0's faster backend "
                f"(target >= {need}x): {'met' if ratio >= need else 'MISSED'}"
            )
        if me and oracle and w.base in ("1 Hz", "random 256"):
            ratio = me.time / oracle.time
            out.append(
                f"- {w.name}: {ratio:.2f}x the oracle's time (target <= 0.8x): "
                f"{'met' if ratio <= 0.8 else 'MISSED'}"
            )
    wrong = sum(c.wrong for c in cells.values())
    out.append(f"- wrong frames over all contenders: {wrong}")
    for name, bd, fmt, _ in extras.get("formatter", []):
        out.append(
            f"- formatter overhead on {name}: {100 * (fmt / bd - 1):+.1f}% (target <= 10%): "
            f"{'met' if fmt / bd <= 1.10 else 'MISSED'}"
        )
    if "grouping" in extras:
        out.append(
            f"- grouping 1M rows: {extras['grouping']:.3f} s (target < 1 s): "
            f"{'met' if extras['grouping'] < 1 else 'MISSED'}"
        )
    return "\n".join(out)


# ----------------------------------------------------------------------------------------------- main


def publish(report: str, markdown: str | None) -> None:
    """Print ``report`` and, given a path (``--markdown``), write it there: every benchmark's last step."""
    print("\n" + report, flush=True)
    if markdown:
        Path(markdown).write_text(report + "\n", encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="a 60 s video, 4 short videos, 1 pass")
    parser.add_argument("--reps", type=int, default=None, help="timed passes (default 3, --quick 1)")
    parser.add_argument("--sample", type=int, default=32, help="refs given to the slow per-frame contenders")
    parser.add_argument("--only", nargs="*", help="run only contenders whose name contains one of these")
    parser.add_argument("--workloads", nargs="*", help="run only workloads whose name contains one of these")
    parser.add_argument(
        "--no-extras", action="store_true", help="skip formatter/grouping/Parquet measurements"
    )
    parser.add_argument("--media", default=str(ROOT / ".bench"), help="where generated media is kept")
    parser.add_argument("--markdown", help="also write the report to this file")
    add_kinds_argument(parser)
    parser.add_argument(
        "--roads",
        action="store_true",
        help="also measure the roads (batch_decode, map-style and streaming DataLoaders, 2-rank DDP, and Ray "
        "when scripts/bench_ray.py provides it) on random 256 and N videos x 8",
    )
    parser.add_argument("--only-roads", action="store_true", help="measure only the roads")
    parser.add_argument(
        "--remote",
        action="store_true",
        help="also measure the remote road (scripts/bench_remote.py: 120 refs over 5 videos from a loopback "
        "server answering after 20, 50 and 100 ms, cold and warm, against local disk)",
    )
    parser.add_argument("--batch-size", type=int, default=32, help="rows per batch on the roads")
    parser.add_argument(
        "--equal-cores",
        action="store_true",
        help="measure only the equal-core comparison (scripts/bench_equal_cores.py: datasets.Video and a "
        "cached TorchCodec decoder per row against hf_mediaref's roads, each in a DataLoader with 2 workers)",
    )
    from bench_equal_cores import add_arguments as add_equal_core_arguments

    add_equal_core_arguments(parser)
    args = parser.parse_args(argv)
    if args.equal_cores:
        from bench_equal_cores import run_equal_cores

        args.rounds = args.rounds or (1 if args.quick else 3)
        publish(run_equal_cores(args), args.markdown)
        return 0
    args.reps = args.reps or (1 if args.quick else 3)
    warnings.filterwarnings("ignore", module="mediaref")  # its "sparse timestamp query" advice, every call

    media = Path(args.media)
    n_short = 4 if args.quick else 32
    print(f"media in {media} (generated on first use) ...", flush=True)
    kinds = [KINDS[k] for k in args.kinds]
    # remote reads: loopback HTTP, bytes counted by the server; stored indexes in a folder of this run only
    os.environ["HF_MEDIAREF_CACHE_DIR"] = tempfile.mkdtemp(prefix="hf_mediaref-bench-")
    server = LoopbackFileServer(media)
    workloads = []
    for kind in kinds:
        long, shorts = make_media(media, args.quick, kind)
        kind_workloads = make_workloads(long, shorts, kind=kind)
        kind_workloads.append(over_http(next(w for w in kind_workloads if w.base == "random 256"), server))
        workloads += kind_workloads
    if args.roads or args.only_roads:
        from bench_roads import run_roads

        roads_report = run_roads(media, args.quick, kinds, reps=args.reps, batch_size=args.batch_size)
        publish(roads_report, args.markdown if args.only_roads else None)
        if args.only_roads:
            return 0
    if args.remote:
        from bench_remote import run_remote

        remote_report = run_remote(media, args.quick, [50] if args.quick else [20, 50, 100], args.reps)
        print("\n" + remote_report, flush=True)
    if args.workloads:
        workloads = [w for w in workloads if any(s in w.name for s in args.workloads)]
    contenders, missing = build_contenders(args, workloads)
    for m in missing:
        print(f"not run: {m}", flush=True)

    import av

    print(
        f"{os.cpu_count()} CPUs (usable {len(os.sched_getaffinity(0))}), PyAV {av.__version__} "
        f"(FFmpeg {av.ffmpeg_version_info}), Python {sys.version.split()[0]}",
        flush=True,
    )
    cells = {(c.name, w.name): Cell() for c in contenders for w in workloads}
    for rep in range(args.reps + 1):
        label = "warm-up + frame check" if rep == 0 else f"pass {rep}/{args.reps}"
        print(f"{label} ...", flush=True)
        for w in workloads:
            for c in contenders if rep % 2 else contenders[::-1]:  # alternate order: no one always goes first
                cell = cells[c.name, w.name]
                if not cell.error:
                    measure(c, w, cell, warmup=rep == 0)

    extras: dict[str, Any] = {}
    if not args.no_extras:
        print("datasets path, grouping, Parquet ...", flush=True)
        pick = [w for w in workloads if w.base in ("random 256", f"{n_short} videos x 8")]
        extras["formatter"] = formatter_overhead(pick, max(args.reps, 3))
        extras["grouping"] = grouping_cost()
        extras["parquet"] = parquet_size()

    publish(render(workloads, contenders, cells, args, extras, missing), args.markdown)
    return 0


if __name__ == "__main__":
    sys.exit(main())
