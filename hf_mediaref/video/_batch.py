"""Frames of many videos in one planned pass: open each video once (indexes scanned in parallel), map times to
frames, plan spans; the caller runs the span tasks (with any other work) and collects the frames.

Works on URIs and nanosecond times, never on ``MediaRef`` (the decode façade above turns refs into these).
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from .._executor import Task, run_order, run_tasks
from ..io import (
    DEFAULT_IO_CONCURRENCY,
    READ_BY_EVERY_OPEN,
    coalesce_ranges,
    fetches_ahead,
    http_settings,
    is_remote_uri,
    prefetch_ranges,
)
from ._base import BaseVideoDecoder
from ._cache import decoder_cache
from ._container import kept_for_its_resume_point
from ._identity import source_key
from ._index import VideoIndex
from ._planning import BatchDecodingStrategy, Span, span_cost
from ._truth import Stale

__all__ = ["VideoPlan", "plan_videos"]


@dataclasses.dataclass
class VideoPlan:
    """The decode of one video's requested frames: ``tasks`` to run, then :meth:`frames` to collect."""

    decoder: BaseVideoDecoder
    positions: list[int]  # the frame position answering each request, in request order
    tasks: list[Task]
    times_ns: list[int] | None = None  # the requested times, in request order
    strategy: BatchDecodingStrategy | str | None = None
    size: tuple[int, int] | None = None
    budget: int = 1
    index: VideoIndex | None = None  # the index the tasks' spans were planned on (positions are in it)

    def frames(self, results: Sequence[dict[int, Any]]) -> list[Any]:
        """The (H, W, 3) frame of each request, in request order, from the results of :attr:`tasks`.

        Where a span showed the video's index wrong (a hint: see :mod:`._truth`), the video was indexed
        again by a scan and the request is decoded again here with the new index."""
        if any(isinstance(part, Stale) for part in results):
            positions, decoded, _ = self.decoder._decode_again(
                times_ns=self.times_ns,
                positions=self.positions,
                strategy=self.strategy,
                size=self.size,
                budget=self.budget,
            )
            return [decoded[p] for p in positions]
        decoded = {}
        for part in results:
            decoded.update(part)
        return [decoded[p] for p in self.positions]


def _decoder_class(decoder: str) -> type[BaseVideoDecoder]:
    if decoder == "pyav":
        from ._pyav import PyAVVideoDecoder

        return PyAVVideoDecoder
    if decoder == "torchcodec":
        from ._torchcodec import TorchCodecVideoDecoder

        return TorchCodecVideoDecoder
    raise ValueError(f"unknown decoder {decoder!r}; use 'pyav' or 'torchcodec'")


def _open(cls: type[BaseVideoDecoder], uri: str, options: dict[str, Any], _threads: int) -> BaseVideoDecoder:
    return cls(uri, **options)


#: The most bytes after a video's last packet fetched ahead with a batch (the ``moov`` or the ``Cues`` that
#: muxers write at the end, which an open or a first seek reads).
_MAX_TAIL = 8 << 20
#: Bytes at the end of a file whose last packets are not known yet (a Matroska snapshot): its trailing Cues,
#: SeekHead or Tags, which a first seek reads.
_END_GUESS = 64 << 10
#: Bytes after a packet's data that its demuxer reads with it (a Matroska block's trailing elements).
_PACKET_TAIL = 64


def _size_of(index: VideoIndex) -> int | None:
    """The file size in an HTTP version string (``"<ETag or Last-Modified>; <size>"``), else None."""
    try:
        return int(str(index.version).rsplit("; ", 1)[1])
    except (IndexError, ValueError):
        return None


def _reads_ahead(
    dec: BaseVideoDecoder, index: VideoIndex, spans: Sequence[Span], budget: int, later: bool = False
) -> list[tuple[int, int, int]]:
    """The byte ranges the decode of a remote video's planned spans reads, as ``(start, end, uses)``, merged
    (:func:`hf_mediaref.io._ranges.coalesce`): the spans' keyframe blocks; and where fewer containers of the
    video are open than the batch may use, the head and the bytes after the last packet (a ``moov`` or
    ``Cues`` at the end) that opening and seeking read, kept for every container the batch opens (how many
    it opens is the decode's to choose: one opened late must not pay a round trip for a head already
    fetched). ``later``: for a call that runs after the one running now
    (:func:`~hf_mediaref.decode.fetch_ahead`), which may take or keep the containers idle now: every open
    is counted."""
    reads: list[tuple[int, int, int]] = [(a, b, 1) for a, b in dec._planned_reads(spans, index)]
    key = source_key(dec.uri, dec.storage_options)
    idle = 0  # a later call may find none of the containers idle now
    if not later:  # those a lease may take: one kept for its resume point waits for its continuation
        idle = decoder_cache.idle_count(
            lambda k: isinstance(k, tuple) and key in k,
            usable=lambda video: not kept_for_its_resume_point(key, video),
        )
    if idle:  # an open container holds the head it read (the one the index opened: what it recorded)
        small = http_settings.small_read
        reads = [(max(a, small), b, n) for a, b, n in reads if b > small]
    opens = max(1, min(len(spans), budget)) - idle
    offsets = index.packet_offsets
    known = offsets >= 0 if offsets is not None else None  # a progressive snapshot: its demuxed blocks
    if opens <= 0 or offsets is None or known is None or not known.any():
        return coalesce_ranges(reads)
    ends = offsets[known] + index.packet_sizes[known]
    first = int(np.argmin(offsets[known]))
    # the header and the packet an open probes
    reads.append((0, int(ends[first]) + _PACKET_TAIL, READ_BY_EVERY_OPEN))
    size = _size_of(index)
    clusters = getattr(index.progressive, "cluster_positions", None)
    if size is not None and clusters is not None and clusters.size:
        # FFmpeg's Matroska demuxer, seeking into the last cue's cluster, parses on to the file's end first
        reads = [(a, size if b > int(clusters[-1]) else b, n) for a, b, n in reads]
    if size is not None:  # what follows the last packet, or (a snapshot) what a file's end usually holds
        last = int(ends.max()) if index.progressive is None else size - _END_GUESS
        if 0 < size - last <= _MAX_TAIL:
            reads.append((max(0, last), size, READ_BY_EVERY_OPEN))
    return coalesce_ranges(reads)


def plan_videos(
    requests: Mapping[str, Sequence[int]],
    *,
    decoder: str = "pyav",
    strategy: BatchDecodingStrategy | str | None = None,
    size: tuple[int, int] | None = None,
    storage_options: dict | None = None,
    device: str = "cpu",
    orientation: str = "display",
    budget: int = 1,
    io_concurrency: int = DEFAULT_IO_CONCURRENCY,
    owner: object = None,
    later: bool = False,
) -> list[VideoPlan]:
    """Open every video of ``requests`` (URI -> times in ns) and plan the decode of its frames.

    Args:
        requests: for each video URI, the requested times in nanoseconds (any order, duplicates allowed).
        decoder, strategy, size, storage_options, device, orientation: see :class:`hf_mediaref.DecodeOptions`.
        budget: threads to use while opening and indexing the videos.
        io_concurrency: requests in flight per host for remote videos: their first touches (heads, indexes)
            go out together (``http(s)`` and fsspec network URLs), and the byte ranges of the planned spans
            of ``http(s)``, ``hf://``, ``s3://`` and ``gs://`` videos are fetched ahead
            (:mod:`hf_mediaref.io._ranges`) while the decodes start.
        owner: what the ranges are fetched for (:func:`hf_mediaref.io._ranges.release` drops the untaken).
        later: planned for a call that runs after the one running now (its reads fetched ahead): the
            containers idle now may not be by then, so what every open reads is fetched too.

    Returns:
        One :class:`VideoPlan` per video, in the order of ``requests``.

    Raises:
        FrameOutOfRangeError: a time at or past the end of its video (named by its label).
    """
    if not requests:
        return []
    cls = _decoder_class(decoder)
    options: dict[str, Any] = {"storage_options": storage_options, "orientation": orientation}
    if decoder == "torchcodec":
        options["device"] = device
    far = [is_remote_uri(uri) for uri in requests]
    remote = [fetches_ahead(uri) for uri in requests]  # ranges fetched ahead: http(s), hf://, s3://, gs://
    # opening a remote video (HTTP or fsspec) waits on the network, not the cores: first touches go together
    opening = max(budget, min(sum(far), io_concurrency)) if any(far) else budget
    decoders: list[BaseVideoDecoder] = run_tasks(
        [Task(1.0, functools.partial(_open, cls, uri, options)) for uri in requests], opening
    )
    ahead = io_concurrency > 1
    order = list(requests.values())
    demuxing = [dec._uses_snapshots and dec._current().progressive is not None for dec in decoders]
    waits = [False] * len(decoders)  # its index waits on the network (Matroska blocks to demux first)
    if ahead:  # what opening every video reads (no decode starts without it), then the Matroska blocks
        for dec, over_http in zip(decoders, remote):  # that the snapshots below demux, of every video at once
            if over_http:
                opening_reads = _reads_ahead(dec, dec._current(), [], budget, later)
                prefetch_ranges(
                    dec.uri, opening_reads, io_concurrency, owner, storage_options=storage_options
                )
        for i, (dec, times) in enumerate(zip(decoders, order)):
            if remote[i] and demuxing[i]:
                reads = coalesce_ranges(dec._current().progressive.block_reads(times))
                prefetch_ranges(
                    dec.uri,
                    [(a, b, 2 * n) for a, b, n in reads],
                    io_concurrency,
                    owner,
                    storage_options=storage_options,
                )
                waits[i] = bool(reads)
    plans: list[VideoPlan | None] = [None] * len(decoders)
    wanted: list[_Reads] = []
    # videos whose index needs no demux first: their spans are fetched while the others' blocks arrive
    for i in sorted(range(len(decoders)), key=lambda i: demuxing[i]):
        dec, times = decoders[i], order[i]
        if waits[i]:  # what the others read goes before this one's wait
            _prefetch_in_order(wanted, budget, io_concurrency, owner, storage_options)
            wanted = []
        index = dec._index_for(times)  # positions in it, for the plan and the decode
        positions = dec._frames_at(times, index)
        spans = dec._plan(positions, strategy, index)
        tasks = dec._span_tasks(spans, size=size, index=index, budget=budget)
        if remote[i] and ahead:
            reads = _reads_ahead(dec, index, spans, budget, later)
            wanted.append(_Reads(i, dec, index, spans, reads))
            if waits[i]:  # and its own before the next one's
                _prefetch_in_order(wanted, budget, io_concurrency, owner, storage_options)
                wanted = []
        plans[i] = VideoPlan(dec, positions.tolist(), tasks, list(times), strategy, size, budget, index)
    _prefetch_in_order(wanted, budget, io_concurrency, owner, storage_options)
    return [plan for plan in plans if plan is not None]


@dataclasses.dataclass
class _Reads:
    """A remote video's reads ahead (:func:`_reads_ahead`), with the spans that order them."""

    video: int  # its place in the batch (the decode runs the videos' tasks in that order)
    decoder: BaseVideoDecoder
    index: VideoIndex
    spans: Sequence[Span]
    reads: list[tuple[int, int, int]]


def _prefetch_in_order(
    wanted: Sequence[_Reads], budget: int, concurrency: int, owner: object, storage_options: dict | None
) -> None:
    """Fetch ahead the reads of several videos in the order their decodes want them: each keyframe block when
    the span task reading it starts (:func:`~hf_mediaref._executor.run_order`: task order on one thread,
    the costliest first on several). What opening every video reads went before (:func:`plan_videos`); a
    range holding it and a near block asks for the block's part here. The I/O threads take requests first
    come first served: a block queued behind blocks decoded later kept a decode waiting a round trip more."""
    spans = [(video, span) for video in sorted(wanted, key=lambda v: v.video) for span in video.spans]
    sent: set[tuple[str, int]] = set()
    for k in run_order([span_cost(span) for _, span in spans], budget):  # the spans as their tasks start
        video, span = spans[k]
        uri = video.decoder.uri
        for start, _ in video.decoder._planned_reads([span], video.index):
            held = next((r for r in video.reads if r[0] <= start < r[1]), None)
            if held is not None and (uri, held[0]) not in sent:
                sent.add((uri, held[0]))
                prefetch_ranges(uri, [held], concurrency, owner, storage_options=storage_options)
    for video in wanted:  # what no span's read starts in (an index at the end: asked before)
        uri = video.decoder.uri
        rest = [r for r in video.reads if (uri, r[0]) not in sent]
        prefetch_ranges(uri, rest, concurrency, owner, storage_options=storage_options)
