"""Keyframe index of a video stream, built by demuxing packets (no decoding) and cached per source.

The index lists every frame in presentation order (pts, packet size) and the frames a decode can start
from. It is what the planner works on, so it must not lie:

* B-frames: frames are sorted by pts, not by decode order.
* Streams whose first pts is above 0 and variable frame rates: times come from the packets themselves.
* Demuxers that flag every packet as a keyframe (seen with HEVC in Matroska): when all packets of a
  non-intra codec are flagged, the real keyframes are found by a keyframe-only decode pass
  (``skip_frame="NONKEY"``). Any keyframe a later decode proves wrong (a seek that lands after the target
  or decodes nothing) is dropped with :meth:`VideoIndex.distrust`.
* Missing or wrong container indexes (Matroska without cues): the scan reads the packets, so the demuxer
  has seen every keyframe before the first seek.

The end of the video is the last frame's pts plus its duration (the packet duration, else the median frame
interval, else one frame at the stream's average rate).
"""

from __future__ import annotations

import bisect
import dataclasses
import itertools
import logging
import threading
from collections.abc import Sequence
from fractions import Fraction
from typing import Any

import numpy as np

from .._fields import NS_PER_SECOND
from . import _stats as stats
from ._planning import frames_played_at, playback_tolerance_ns

logger = logging.getLogger(__name__)

__all__ = ["VideoIndex", "end_pts", "presentation_order", "scan_index"]


@dataclasses.dataclass(eq=False)
class VideoIndex:
    """Frames of one video stream in presentation order, with their seekable keyframes."""

    time_base: Fraction
    pts: np.ndarray  # int64 stream ticks, strictly increasing
    packet_sizes: np.ndarray  # int64 bytes per frame
    keyframe_positions: list[int]  # sorted positions (into ``pts``) a decode may start from
    end_pts: int  # last pts + last frame duration, in ticks
    width: int
    height: int
    codec: str
    pixel_format: str | None
    stream_index: int
    keyframes_verified: bool = False  # True when the keyframes came from a keyframe-only decode
    nonref_skipping: bool = True  # False once skipping non-reference frames lost a requested frame
    decoder_draining: bool = True  # False once draining the decoder at a span's last packet lost a frame
    version: str | None = None  # the remote object's version the index was built from (None: local, data:)
    torchcodec_seeks_ok: bool = True  # False once TorchCodec returned frames of other times
    packet_offsets: np.ndarray | None = None  # int64 byte offset of each frame's packet (-1: unknown)
    #: True for an index built by a demux scan of the container (:func:`scan_index`), which decodes are
    #: judged by; every other source (a sidecar, the on-disk store, MP4 ``moov`` tables, Matroska Cues) is a
    #: hint that decodes check (:mod:`._truth`).
    scanned: bool = False
    #: True for an index read from the MP4/MOV sample tables, which the demuxer itself reads (a decode checks
    #: what it produces against them, but does not decode on for the frame after its last target)
    moov_tables: bool = False
    #: Set on a partial index built from Matroska Cues (``_progressive.ProgressiveIndex``): its blocks not
    #: demuxed yet hold one placeholder frame each; never stored or written to a sidecar.
    progressive: Any = None
    _lock: threading.Lock = dataclasses.field(default_factory=threading.Lock, repr=False)

    def __post_init__(self) -> None:
        keys = self.keyframe_positions
        if any(b <= a for a, b in itertools.pairwise(keys)):  # planning bisects it
            self.keyframe_positions = sorted(set(keys))
        tb = self.time_base
        self.frame_ns = (self.pts * tb.numerator * NS_PER_SECOND) // tb.denominator
        self.end_ns = self.end_pts * tb.numerator * NS_PER_SECOND // tb.denominator
        self.tolerance_ns = playback_tolerance_ns(tb)

    # ------------------------------------------------------------------ facts
    @property
    def num_frames(self) -> int:
        return int(self.pts.size)

    @property
    def begin_ns(self) -> int:
        return int(self.frame_ns[0])

    @property
    def duration_ns(self) -> int:
        """From the first frame's pts to the end of the last frame."""
        return self.end_ns - self.begin_ns

    def to_seconds(self, ticks: int) -> Fraction:
        return Fraction(int(ticks)) * self.time_base

    def frame_duration_ticks(self, position: int) -> int:
        nxt = self.pts[position + 1] if position + 1 < self.num_frames else self.end_pts
        return int(nxt - self.pts[position])

    # ------------------------------------------------------------------ planning inputs
    def frames_at(self, times_ns: Sequence[int]) -> np.ndarray:
        """Frame position on screen at each time; -1 at or past the end (see
        ``planning.frames_played_at``)."""
        return frames_played_at(self.frame_ns, self.end_ns, times_ns, self.tolerance_ns)

    def position_of(self, pts: int) -> int:
        """The position of the frame whose pts is ``pts``; -1 when the index lists no such frame."""
        i = int(np.searchsorted(self.pts, pts))
        return i if i < self.pts.size and int(self.pts[i]) == pts else -1

    def keyframes(self) -> list[int]:
        """The trusted keyframe positions, sorted: the list itself, not a copy (:meth:`distrust` replaces it
        rather than change it, so a reader's list never changes under it). Do not modify it."""
        return self.keyframe_positions

    def previous_keyframe(self, position: int) -> int:
        """The last trusted keyframe strictly before ``position`` (0 when there is none)."""
        keys = self.keyframe_positions
        i = bisect.bisect_left(keys, position)
        return int(keys[i - 1]) if i else 0

    def distrust(self, position: int) -> None:
        """Stop using ``position`` as a decode start (a decode showed it is not a usable keyframe)."""
        if position == 0:
            return
        with self._lock:
            keys = self.keyframe_positions
            i = bisect.bisect_left(keys, position)
            if i < len(keys) and keys[i] == position:
                self.keyframe_positions = keys[:i] + keys[i + 1 :]  # a new list: readers keep theirs
                logger.debug(
                    "keyframe at pts %d is not a usable seek point; dropped", int(self.pts[position])
                )

    # ------------------------------------------------------------------ persistence
    def stream_facts(self) -> dict[str, Any]:
        """The index's facts besides its per-frame arrays, as JSON values (the on-disk store and the sidecar
        write them; :meth:`from_stream_facts` reads them back)."""
        return {
            "stream_index": self.stream_index,
            "time_base": str(self.time_base),
            "end_pts": int(self.end_pts),
            "width": self.width,
            "height": self.height,
            "codec": self.codec,
            "pixel_format": self.pixel_format,
            "keyframes_verified": self.keyframes_verified,
        }

    @classmethod
    def from_stream_facts(
        cls,
        facts: dict[str, Any],
        *,
        pts: np.ndarray,
        packet_sizes: np.ndarray,
        keyframe_positions: list[int],
        packet_offsets: np.ndarray | None,
    ) -> VideoIndex:
        """An index from :meth:`stream_facts` and its per-frame arrays.

        Raises:
            KeyError, TypeError, ValueError: ``facts`` lacks a fact or holds a malformed one.
        """
        pixel_format = facts["pixel_format"]
        return cls(
            time_base=Fraction(facts["time_base"]),
            pts=pts,
            packet_sizes=packet_sizes,
            keyframe_positions=keyframe_positions,
            end_pts=int(facts["end_pts"]),
            width=int(facts["width"]),
            height=int(facts["height"]),
            codec=str(facts["codec"]),
            pixel_format=None if pixel_format is None else str(pixel_format),
            stream_index=int(facts["stream_index"]),
            keyframes_verified=bool(facts["keyframes_verified"]),
            packet_offsets=packet_offsets,
        )

    def frame_mappings(self) -> dict[str, Any]:
        """The index as ffprobe-style JSON data (TorchCodec's ``custom_frame_mappings``)."""
        keys = set(self.keyframes())
        return {
            "frames": [
                {"pts": int(p), "duration": self.frame_duration_ticks(i), "key_frame": int(i in keys)}
                for i, p in enumerate(self.pts.tolist())
            ]
        }


def end_pts(pts: np.ndarray, last_duration: int, average_rate: Fraction | None, time_base: Fraction) -> int:
    """The end of the last frame: its pts plus its duration (else the median interval, else one frame)."""
    last = int(pts[-1])
    if last_duration > 0:
        return last + last_duration
    if pts.size >= 2:
        return last + max(1, int(np.median(np.diff(pts))))
    if average_rate:
        return last + max(1, round(1 / (Fraction(average_rate) * time_base)))
    return last + 1


def presentation_order(pts_list: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
    """Packets' pts (in decode order) to presentation order: ``(order, pts)``, the packet indices sorted by
    pts (stable) with repeated pts dropped (the first packet of each kept), and their pts."""
    all_pts = np.asarray(pts_list, dtype=np.int64)
    order = np.argsort(all_pts, kind="stable")
    pts = all_pts[order]
    unique = np.concatenate([[True], np.diff(pts) > 0])
    return order[unique], pts[unique]


def _real_keyframe_pts(container: Any, stream: Any) -> set[int]:
    """Pts of the frames a keyframe-only decode produces (the stream's real random-access points)."""
    ctx = stream.codec_context
    ctx.skip_frame = "NONKEY"
    found: set[int] = set()
    try:
        container.seek(0, backward=True, any_frame=False)
        for packet in container.demux(stream):
            for frame in packet.decode():
                if frame.pts is not None:
                    found.add(int(frame.pts))
    finally:
        ctx.skip_frame = "DEFAULT"
    stats.record(decoded_frames=len(found))
    return found


def _is_animated_webp(head: bytes) -> bool:
    """Whether a WebP file (its first bytes) has the VP8X chunk's animation flag set."""
    return head[:4] == b"RIFF" and head[8:16] == b"WEBPVP8X" and len(head) > 20 and bool(head[20] & 0x02)


def scan_index(container: Any, stream: Any, *, count_packet_bytes: bool = True) -> VideoIndex:
    """Build the index of ``stream`` (a PyAV video stream of the open ``container``) by demuxing it.

    Raises ValueError when the stream has no timestamped frames.
    """
    pts_list: list[int] = []
    keys: list[bool] = []
    sizes: list[int] = []
    offsets: list[int] = []
    durations: list[int] = []
    total_bytes = 0
    webp = stream.codec_context.name == "webp"
    if stream.codec_context.name == "webp_anim":  # FFmpeg >= 8 (PyAV 19) demuxes and decodes its frames...
        raise ValueError(  # ... but a seek in it yields no packet: no frame can be found by time
            "an animated WebP: FFmpeg cannot seek in it, so its frames cannot be addressed by time; a ref "
            "with pts_ns=None loads its first frame (convert it to a video or a GIF)"
        )
    for packet in container.demux(stream):
        size = packet.size
        if size == 0:
            continue
        if webp and _is_animated_webp(bytes(packet)[:21]):
            raise ValueError(
                "an animated WebP: FFmpeg has no decoder for its frames, so they cannot be addressed by "
                "time; a ref with pts_ns=None loads its first frame (convert it to a video or a GIF)"
            )
        total_bytes += size
        ts = packet.pts if packet.pts is not None else packet.dts
        if ts is None or packet.is_discard:
            continue
        pts_list.append(int(ts))
        keys.append(bool(packet.is_keyframe))
        sizes.append(size)
        offsets.append(-1 if packet.pos is None else int(packet.pos))
        durations.append(int(packet.duration or 0))
    stats.record(index_scans=1, bytes_read=total_bytes if count_packet_bytes else 0)
    if not pts_list:
        raise ValueError("the video stream has no timestamped frames")

    order, pts = presentation_order(pts_list)
    is_key = np.asarray(keys, dtype=bool)[order]
    time_base = Fraction(stream.time_base)
    ctx = stream.codec_context
    codec = ctx.codec
    verified = False
    if is_key.all() and pts.size > 2 and not codec.intra_only:
        real = _real_keyframe_pts(container, stream)
        logger.info(
            "every packet of a %s stream is flagged as a keyframe; %d real keyframes found by decoding",
            codec.name,
            len(real),
        )
        is_key = np.isin(pts, np.fromiter(real, dtype=np.int64, count=len(real)))
        verified = True
    positions = [0] + [int(p) for p in np.flatnonzero(is_key) if p > 0]
    return VideoIndex(
        time_base=time_base,
        pts=pts,
        packet_sizes=np.asarray(sizes, dtype=np.int64)[order],
        keyframe_positions=positions,
        end_pts=end_pts(pts, int(np.asarray(durations)[order][-1]), stream.average_rate, time_base),
        width=int(ctx.width or stream.width),
        height=int(ctx.height or stream.height),
        codec=codec.name,
        pixel_format=ctx.pix_fmt,
        stream_index=int(stream.index),
        keyframes_verified=verified,
        packet_offsets=np.asarray(offsets, dtype=np.int64)[order],
        scanned=True,
    )
