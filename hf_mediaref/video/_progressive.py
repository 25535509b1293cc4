"""A keyframe index built from Matroska/WebM ``Cues`` block by block, as decodes need it (remote videos).

Cues give keyframe times and cluster positions only, not every frame's pts, and the engine plans on exact
per-frame positions. So the index holds the exact frames (pts, sizes, offsets, keyframe flags) of the *blocks*
(from one cue's keyframe to the next cue) it has demuxed, and one placeholder entry at the cue time of every
block not demuxed yet. Before times are mapped to positions, :meth:`ProgressiveIndex.snapshot_for` demuxes the
blocks holding them (a seek to the cue and the packets up to the next cue's keyframe: that block's bytes
only) and returns a new :class:`~._index.VideoIndex` snapshot, which also replaces the cached one. Positions
from one snapshot are used for a whole batch (plan and decode); a snapshot's placeholders are never targets.

Nothing taken from the Cues is trusted unchecked. A demuxed block must start with a keyframe packet at its
cue time, all its frames must lie in ``[cue_j, cue_j+1)``, it must end at a keyframe packet at the next cue
time, and the packets just after that keyframe must not show before it (open GOPs: their leading frames
belong to the previous block's time range). Any mismatch, a stream that flags every packet as a keyframe, or a
last frame without a duration (its end would need the whole stream) ends the progressive index: it is
completed by the full demux scan, as without Cues (logged). What needs the whole index (metadata, the
frame count, positions, TorchCodec's frame mappings) calls :meth:`ProgressiveIndex.complete` (the scan).
Partial indexes are never written to the on-disk store or a sidecar.

A block is demuxed on the container opened for the index when it is still unused (else on a new one), with
its source recording what is read; the container then goes back to the decoder cache as the next decode's
fresh container, which reads the block again from memory, not from the network.
"""

from __future__ import annotations

import bisect
import contextlib
import logging
import os
import threading
import weakref
from collections.abc import Callable, Hashable, Sequence
from fractions import Fraction
from typing import Any, cast

import numpy as np

from .._fields import INT64_MAX, NS_PER_SECOND
from ..errors import RemoteChangedError, describe_uri
from . import _mkv as mkv
from . import _stats as stats
from ._cache import decoder_cache, replace_index
from ._container import OpenedVideo, fresh_key, hand_back, was_demuxed
from ._errors import check_same_version
from ._index import VideoIndex, end_pts, presentation_order, scan_index
from ._index_store import store_index
from ._planning import NO_FRAME

logger = logging.getLogger(__name__)

__all__ = ["ProgressiveIndex", "from_cues"]

#: The most frames an H.264/HEVC decoder reorders (its DPB): the delay assumed where PyAV (< 18) only says
#: whether the stream has B-frames.
MAX_REORDER = 16
#: Bytes before a cluster fetched with a block ahead (as a decode's span announces before its keyframe, so
#: that the span's read lies in the block's).
_CLUSTER_LEAD = 64 << 10
#: The most bytes of one block kept in memory for the decode that follows its demux.
MAX_RECORDED_BLOCK = 16 << 20

#: Every progressive index, for the fork handler: a child gets fresh locks (one held by another thread of the
#: parent at the fork would never be released in the child).
_instances: weakref.WeakSet[ProgressiveIndex] = weakref.WeakSet()


def _after_fork_in_child() -> None:
    for index in list(_instances):
        index._lock = threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


class _Block:
    """The frames of one demuxed block, in presentation order: all of them, or (``upto`` set) those before
    ``upto``, the pts of the frame that follows them."""

    def __init__(
        self,
        pts: np.ndarray,
        keys: np.ndarray,
        sizes: np.ndarray,
        offsets: np.ndarray,
        last: int,
        upto: int | None,
        time_base: Fraction,
    ):
        self.pts, self.keys, self.sizes, self.offsets = pts, keys, sizes, offsets
        self.last_duration = last  # the packet duration of the block's last frame (0: none given)
        self.upto = upto  # None: the whole block
        self.upto_ns = (
            None if upto is None else upto * time_base.numerator * NS_PER_SECOND // time_base.denominator
        )

    def covers(self, probe_ns: int) -> bool:
        """Whether the frame on screen at ``probe_ns`` (a time plus the tolerance) is known."""
        return self.upto_ns is None or probe_ns < self.upto_ns


class ProgressiveIndex:
    """The Cues of one remote video and the blocks demuxed so far; shared by every snapshot of its index."""

    def __init__(
        self,
        *,
        uri: str,
        key: Hashable,
        cue_pts: np.ndarray,
        reorder: int,
        facts: dict[str, Any],
        average_rate: Fraction | None,
        version: str | None,
        open_fresh: Callable[[], OpenedVideo],
        scan: Callable[[], VideoIndex],
        cluster_positions: np.ndarray | None = None,
        file_size: int | None = None,
    ):
        self.uri, self.key, self.version = uri, key, version
        self.cue_pts = cue_pts
        #: Where each cue's cluster starts in the file (from the Cues), and the file's size: the bytes a
        #: block's demux reads, fetched ahead for remote files (:meth:`block_reads`).
        self.cluster_positions = cluster_positions
        self.file_size = file_size
        self.reorder = reorder  # the reorder delay assumed (twice FFmpeg's and 1 more, at least 2)
        #: Packets read past the next cue's keyframe to check that none shows before it (an open GOP's
        #: leading frames come right after their keyframe in decode order, within the reorder delay), and
        #: showing after the last frame a demux must know.
        self.lead_check = 2 * reorder + 2
        self.facts = facts
        self.average_rate = average_rate
        self.time_base = Fraction(facts["time_base"])
        self._open_fresh = open_fresh
        self._scan = scan
        self._lock = threading.Lock()
        _instances.add(self)
        self._blocks: dict[int, _Block] = {}
        self._complete: VideoIndex | None = None
        self._current = self._snapshot(None)
        tb = self.time_base
        self.cue_ns = (cue_pts * tb.numerator * NS_PER_SECOND) // tb.denominator  # as VideoIndex.frame_ns

    # ------------------------------------------------------------------ snapshots
    @property
    def current(self) -> VideoIndex:
        """The latest snapshot (the complete index once completed)."""
        return self._complete or self._current

    def _snapshot(self, previous: VideoIndex | None) -> VideoIndex:
        pts, keys, sizes, offsets = [], [], [], []
        n = self.cue_pts.size
        for j in range(n):
            block = self._blocks.get(j)
            if block is None:  # a placeholder at the cue time: a keyframe, never a target
                pts.append(self.cue_pts[j : j + 1])
                keys.append(np.ones(1, dtype=bool))
                sizes.append(np.zeros(1, dtype=np.int64))
                offsets.append(np.full(1, -1, dtype=np.int64))
            else:
                pts.append(block.pts)
                keys.append(block.keys)
                sizes.append(block.sizes)
                offsets.append(block.offsets)
                if block.upto is not None:  # a placeholder at the frame after the known ones
                    pts.append(np.full(1, block.upto, dtype=np.int64))
                    keys.append(np.zeros(1, dtype=bool))
                    sizes.append(np.zeros(1, dtype=np.int64))
                    offsets.append(np.full(1, -1, dtype=np.int64))
        all_pts = np.concatenate(pts)
        is_key = np.concatenate(keys)
        last = self._blocks.get(n - 1)
        if last is None or last.upto is not None:
            end = int(all_pts[-1]) + 1  # mapped times all lie before the last placeholder
        else:
            end = end_pts(last.pts, last.last_duration, self.average_rate, self.time_base)
        index = VideoIndex.from_stream_facts(
            {**self.facts, "end_pts": end},
            pts=all_pts,
            packet_sizes=np.concatenate(sizes),
            keyframe_positions=[0] + [int(p) for p in np.flatnonzero(is_key) if p > 0],
            packet_offsets=np.concatenate(offsets),
        )
        index.version = self.version
        index.progressive = self
        if previous is not None:  # what decodes learned about the video
            index.nonref_skipping = previous.nonref_skipping
            index.torchcodec_seeks_ok = previous.torchcodec_seeks_ok
            index.decoder_draining = previous.decoder_draining
        return index

    def blocks_for(self, times_ns: Sequence[int], tolerance_ns: int) -> dict[int, int]:
        """The blocks whose frames answer ``times_ns`` (the playback rule: the frame at ``t + tolerance``),
        each with the latest such probe time in it."""
        probe = np.fromiter((int(t) for t in times_ns), dtype=np.int64)
        probe = np.minimum(probe, INT64_MAX - tolerance_ns) + tolerance_ns
        blocks = np.maximum(np.searchsorted(self.cue_ns, probe, side="right") - 1, 0)
        out: dict[int, int] = {}
        for block, t in zip(blocks.tolist(), probe.tolist()):
            out[block] = max(t, out.get(block, t))
        return dict(sorted(out.items()))

    def block_reads(self, times_ns: Sequence[int]) -> list[tuple[int, int]]:
        """The ``[start, end)`` byte ranges that :meth:`snapshot_for` of ``times_ns`` demuxes: for each block
        not demuxed yet, from a little before its cluster to the end of the cluster of the next cue (where
        the demux checks the packets after the next keyframe). Only read sizes are decided from the Cues'
        positions: what is demuxed is checked as always."""
        positions = self.cluster_positions
        if positions is None or self._complete is not None:
            return []
        with self._lock:
            current = self._current
            missing = [
                j
                for j, probe in self.blocks_for(times_ns, current.tolerance_ns).items()
                if j not in self._blocks or not self._blocks[j].covers(probe)
            ]
        out = []
        for j in missing:
            start = int(positions[j])
            after = int(positions[j + 1]) if j + 1 < positions.size else None
            later = positions[positions > after] if after is not None else positions[:0]
            end = int(later[0]) if later.size else self.file_size
            if end is not None and end > start:
                out.append((max(0, start - _CLUSTER_LEAD), end))
        return out

    def snapshot_for(self, times_ns: Sequence[int]) -> VideoIndex:
        """A snapshot whose frames at ``times_ns`` are exact (their blocks demuxed), or the complete index."""
        with self._lock:
            if self._complete is not None:
                return self._complete
            current = self._current
            missing = {
                j: probe
                for j, probe in self.blocks_for(times_ns, current.tolerance_ns).items()
                if j not in self._blocks or not self._blocks[j].covers(probe)
            }
            if not missing:
                return current
            try:
                for j, probe in missing.items():
                    self._blocks[j] = self._demux(j, probe)
                last = self._blocks.get(self.cue_pts.size - 1)
                if last is not None and last.upto is None and last.last_duration <= 0:
                    raise mkv.Unsupported("the last frame has no duration (the end needs every frame)")
            except mkv.Unsupported as exc:
                logger.info(
                    "%s: its Cues are not used (%s); indexing it by a scan", describe_uri(self.uri), exc
                )
                return self._complete_locked()
            snapshot = self._snapshot(current)
            frames = snapshot.frames_at(times_ns)
            hit = frames[frames != NO_FRAME]
            if (snapshot.packet_sizes[hit] == 0).any():  # a placeholder: never answer with it (a bug)
                logger.warning("%s: a time maps to a frame not demuxed; indexing it by a scan", self.uri)
                return self._complete_locked()
            self._current = snapshot
            replace_index(self.key, snapshot, lambda cached: cached.progressive is self)
            return snapshot

    def complete(self) -> VideoIndex:
        """The complete index (a full demux scan, once), which then replaces the cached snapshots."""
        with self._lock:
            return self._complete_locked()

    def _complete_locked(self) -> VideoIndex:
        if self._complete is None:
            index = self._scan()
            index.nonref_skipping = self._current.nonref_skipping
            index.torchcodec_seeks_ok = self._current.torchcodec_seeks_ok
            index.decoder_draining = self._current.decoder_draining
            index.version = self.version
            if self.version is not None:
                store_index(cast(tuple, self.key), self.version, index)
            self._complete = index
            self._blocks.clear()
            replace_index(self.key, index, lambda cached: cached.progressive is self)
        return self._complete

    # ------------------------------------------------------------------ demuxing one block
    def _container(self, top: bool) -> tuple[Hashable, OpenedVideo]:
        """An open container of the source, owned by the caller, and the cache key to give it back under: the
        fresh one (never decoded; ``top``: never demuxed either), else an idle one of a finished decode, else
        a new one."""
        fresh = fresh_key(cast(tuple, self.key))
        video = cast("OpenedVideo | None", decoder_cache.take(fresh))
        if video is not None and top and was_demuxed(video):
            decoder_cache.offer(fresh, video)
            video = None
        if video is not None:
            return fresh, self._checked(video)
        if not top:  # a container a decode gave back (any codec threads): demuxing does not touch its codec
            found = decoder_cache.take_matching(
                lambda k, _: isinstance(k, tuple) and len(k) == 3 and k[0] == "pyav" and k[1] == self.key
            )
            if found is not None:
                return found[0], self._checked(cast(OpenedVideo, found[1]))
        return fresh, self._checked(self._open_fresh())

    def _checked(self, video: OpenedVideo) -> OpenedVideo:
        video.resume_point = None  # demuxing moves the container: no decoding on from its last span
        try:
            check_same_version(self.version, video.version, self.uri)
        except RemoteChangedError:
            video.close()
            raise
        return video

    def _demux(self, j: int, probe_ns: int) -> _Block:
        """Demux block ``j`` (checked against the Cues) far enough to know the frame on screen at
        ``probe_ns``; raises :class:`~._mkv.Unsupported` on a mismatch."""
        top = j == 0  # from the first packet: nothing may come before the first cue
        cache_key, video = self._container(top)
        ok = False
        try:
            block = self._read_block(video, j, top, probe_ns)
            ok = True
        finally:
            hand_back(cache_key, video, ok)
        return block

    def _read_block(self, video: OpenedVideo, j: int, top: bool, probe_ns: int) -> _Block:
        """The frames of block ``j``: up to the next cue, or fewer once the frame on screen at ``probe_ns``
        and the one after it are known for sure. Packets come in decode order; a stream whose decoder
        reorders at most ``d`` frames (:attr:`reorder`) cannot bring a frame after ``d + 1`` packets that
        show later than it, so once :attr:`lead_check` (``2 d + 2``) packets above ``probe_ns`` came,
        every frame before the ``d + 1``-th latest of them has come."""
        cue = int(self.cue_pts[j])
        nxt = int(self.cue_pts[j + 1]) if j + 1 < self.cue_pts.size else None
        tb = self.time_base
        # the largest pts whose frame_ns (floored, as VideoIndex's) is <= probe_ns
        probe_ticks = ((probe_ns + 1) * tb.denominator - 1) // (tb.numerator * NS_PER_SECOND)
        record = getattr(video.source, "record_next", None)
        if record is not None:
            record(MAX_RECORDED_BLOCK)
        if not top:
            video.container.seek(cue, stream=video.stream, backward=True, any_frame=False)
        pts: list[int] = []
        keys: list[bool] = []
        sizes: list[int] = []
        offsets: list[int] = []
        durations: list[int] = []
        lead: int | None = None  # packets left to check after the next cue's keyframe
        later = 0  # packets showing after probe_ns
        seen: list[int] = []  # pts so far, sorted
        partial = False
        total = 0
        for packet in video.container.demux(video.stream):
            if packet.size == 0:
                continue
            total += packet.size
            ts = packet.pts if packet.pts is not None else packet.dts
            if ts is None or packet.is_discard:
                continue
            ts = int(ts)
            if not pts and lead is None and not (packet.is_keyframe and ts == cue):
                raise mkv.Unsupported(
                    f"block {j} starts at pts {ts}, not at a keyframe at its cue time {cue}"
                )
            if lead is not None:
                if ts < cast(int, nxt):
                    raise mkv.Unsupported(f"a frame at pts {ts} follows the keyframe at {nxt} (an open GOP)")
                lead -= 1
                if lead == 0 or (packet.is_keyframe and ts > cast(int, nxt)):
                    break
                continue
            if nxt is not None and ts >= nxt:
                if not (packet.is_keyframe and ts == nxt):
                    raise mkv.Unsupported(f"block {j} runs past the next cue time {nxt} (pts {ts})")
                lead = self.lead_check
                continue
            if ts < cue:
                raise mkv.Unsupported(f"a frame at pts {ts} shows before its block's cue time {cue}")
            earlier = len(seen) - bisect.bisect_right(seen, ts)  # decoded before it, shown after it
            if earlier > self.reorder:
                raise mkv.Unsupported(
                    f"frames are reordered by {earlier}, more than the decoder's delay of {self.reorder}"
                )
            bisect.insort(seen, ts)
            pts.append(ts)
            keys.append(bool(packet.is_keyframe))
            sizes.append(int(packet.size))
            offsets.append(-1 if packet.pos is None else int(packet.pos))
            durations.append(int(packet.duration or 0))
            if ts > probe_ticks:
                later += 1
                if later >= self.lead_check:
                    partial = True
                    break
        else:  # the end of the file (the last block, or the packets after the next cue's keyframe)
            if nxt is not None and lead is None:
                raise mkv.Unsupported(f"the file ends in block {j}, before the cue at {nxt}")
        stats.record(bytes_read=total if video.counts_packet_bytes else 0)
        if not pts:
            raise mkv.Unsupported(f"block {j} has no frames")
        if len(keys) > 2 and all(keys) and not self.facts["intra_only"]:
            raise mkv.Unsupported("every packet is flagged as a keyframe (real keyframes need a decode)")
        order, sorted_pts = presentation_order(pts)
        upto = None
        if partial:  # keep the frames before the (d + 1)-th latest packet above the probe: all have come
            above = sorted_pts[sorted_pts > probe_ticks]
            upto = int(above[above.size - self.reorder - 1])
            keep = sorted_pts < upto
            order, sorted_pts = order[keep], sorted_pts[keep]
        return _Block(
            sorted_pts,
            np.asarray(keys, dtype=bool)[order],
            np.asarray(sizes, dtype=np.int64)[order],
            np.asarray(offsets, dtype=np.int64)[order],
            int(np.asarray(durations, dtype=np.int64)[order][-1]),
            upto,
            self.time_base,
        )


def from_cues(
    uri: str,
    key: Hashable,
    video: OpenedVideo,
    read_at: Callable[[int, int], bytes],
    file_size: int,
    version: str | None,
    open_fresh: Callable[[], OpenedVideo],
) -> VideoIndex | None:
    """The first snapshot of a progressive index of ``video`` (a fresh Matroska/WebM container) from its
    Cues; None (logged) where they cannot serve."""
    stream = video.stream
    ctx = stream.codec_context
    intra_only = bool(ctx.codec.intra_only)
    try:
        cues = mkv.read_cues(read_at, file_size, int(stream.index), len(video.container.streams))
        time_base = Fraction(stream.time_base)
        if time_base != Fraction(cues.timestamp_scale, NS_PER_SECOND):
            raise mkv.Unsupported("the stream's time base is not the segment's TimestampScale")
        # a remote open estimates no average rate (fpsprobesize=0): the codec's timing, else FFmpeg's guess
        rate = stream.average_rate or ctx.framerate or stream.guessed_rate or stream.base_rate
        if not intra_only:
            # a cue on (nearly) every frame: a muxer that flags every packet as a keyframe (the real ones
            # need a decode, as the scan does)
            if cues.duration is None or not rate:
                raise mkv.Unsupported("no Duration or frame rate to check the cue density against")
            frames = cues.duration * float(Fraction(cues.timestamp_scale, NS_PER_SECOND) * Fraction(rate))
            if 2 * cues.times.size > frames:
                raise mkv.Unsupported(f"{cues.times.size} cues for about {frames:.0f} frames")
    except mkv.Unsupported as exc:
        logger.info("indexing %s by a scan: its Cues are not used (%s)", describe_uri(uri), exc)
        return None

    def scan() -> VideoIndex:
        with contextlib.closing(open_fresh()) as fresh:
            check_same_version(version, fresh.version, uri)
            return scan_index(fresh.container, fresh.stream, count_packet_bytes=fresh.counts_packet_bytes)

    facts = {
        "stream_index": int(stream.index),
        "time_base": str(time_base),
        "end_pts": 0,
        "width": int(ctx.width or stream.width),
        "height": int(ctx.height or stream.height),
        "codec": ctx.codec.name,
        "pixel_format": ctx.pix_fmt,
        "keyframes_verified": False,
        "intra_only": intra_only,
    }
    # FFmpeg's has_b_frames (PyAV >= 18 gives the number; older ones a bool) can be an estimate that grows
    # while decoding (H.264 without bitstream restrictions): twice it and 1 more, and every demuxed packet is
    # checked against it
    depth = getattr(ctx, "reorder_depth", None)
    delay = int(depth) if depth is not None else (MAX_REORDER if ctx.has_b_frames else 0)
    progressive = ProgressiveIndex(
        uri=uri,
        key=key,
        cue_pts=cues.times,
        reorder=max(2, 2 * delay + 1),
        facts=facts,
        average_rate=rate,
        version=version,
        open_fresh=open_fresh,
        scan=scan,
        cluster_positions=cues.cluster_positions,
        file_size=file_size,
    )
    logger.debug("index of %s from its %d cues (demuxed block by block)", describe_uri(uri), cues.times.size)
    return progressive.current
