"""Matroska/WebM seek index (``Cues``): the keyframe times of one track and where their clusters are, read
without a byte of the media data (pure parsing; bytes come from a ``read_at(offset, size)`` callable).

Read: the EBML header (DocType ``matroska`` or ``webm``), the ``Segment``, the top-level elements before the
first ``Cluster`` and the ``SeekHead`` (one level of a ``SeekHead`` pointing to another), ``Info``
(``TimestampScale``, ``Duration``), ``Tracks`` (the track's ``TrackTimestampScale`` must be 1) and ``Cues``:
each ``CuePoint``'s ``CueTime`` and, for the track, its ``CueClusterPosition`` (from the Segment's data) and
``CueRelativePosition``.

Cues say where a decode may start, not which frames exist: the caller demuxes the blocks between cues and
checks each against its cue (see :mod:`._progressive`). Anything odd is refused with :class:`Unsupported`
(the caller then scans the file): no Cues, elements of unknown size before the Cues, cue times that do not
increase, cluster positions that go back or lie outside the file, Cues larger than :data:`MAX_CUES`.
"""

from __future__ import annotations

import dataclasses
import struct
from collections.abc import Callable

import numpy as np

__all__ = ["MAX_CUES", "CueIndex", "Unsupported", "read_cues"]

#: The largest ``Cues`` element read (a 2-hour video with a cue per second: ~100 KB).
MAX_CUES = 16 << 20
#: Bytes read at once while walking element headers.
_HEAD = 64 << 10
#: Bytes read for the EBML header (tens of bytes; within what opening the container read anyway).
_EBML_HEAD = 4 << 10

ReadAt = Callable[[int, int], bytes]

_EBML = 0x1A45DFA3
_DOCTYPE = 0x4282
_SEGMENT = 0x18538067
_SEEKHEAD = 0x114D9B74
_SEEK = 0x4DBB
_SEEK_ID = 0x53AB
_SEEK_POSITION = 0x53AC
_INFO = 0x1549A966
_TIMESTAMP_SCALE = 0x2AD7B1
_DURATION = 0x4489
_TRACKS = 0x1654AE6B
_TRACK_ENTRY = 0xAE
_TRACK_NUMBER = 0xD7
_TRACK_TIMESTAMP_SCALE = 0x23314F
_CUES = 0x1C53BB6B
_CUE_POINT = 0xBB
_CUE_TIME = 0xB3
_CUE_TRACK_POSITIONS = 0xB7
_CUE_TRACK = 0xF7
_CUE_CLUSTER_POSITION = 0xF1
_CUE_RELATIVE_POSITION = 0xF0
_CLUSTER = 0x1F43B675


class Unsupported(Exception):
    """The file has no usable Cues, or something this parser does not read exactly; scan it instead."""


@dataclasses.dataclass
class CueIndex:
    """The cue points of one track: keyframe times and the byte positions of their clusters."""

    timestamp_scale: int  # nanoseconds per Matroska tick (the stream's time base is this / 1e9)
    duration: float | None  # Info's Duration in ticks, if given
    track_number: int
    times: np.ndarray  # int64 CueTime per cue, in ticks, strictly increasing
    cluster_positions: np.ndarray  # int64 absolute byte offset of each cue's Cluster
    relative_positions: np.ndarray  # int64 CueRelativePosition (-1: not given)
    first_cluster: int | None  # absolute byte offset of the first Cluster, when the walk reached it


def _vint(data: bytes, pos: int, *, keep_marker: bool) -> tuple[int, int, bool]:
    """``(value, length, all ones)`` of the EBML variable-size integer at ``data[pos]``."""
    if pos >= len(data):
        raise Unsupported("truncated EBML element")
    first = data[pos]
    if first == 0:
        raise Unsupported("an EBML integer longer than 8 bytes")
    length = 9 - first.bit_length()
    if pos + length > len(data):
        raise Unsupported("truncated EBML element")
    value = first if keep_marker else first & ((1 << (8 - length)) - 1)
    for b in data[pos + 1 : pos + length]:
        value = (value << 8) | b
    ones = (1 << (7 * length)) - 1
    return value, length, (not keep_marker and value == ones)


def _header(data: bytes, pos: int) -> tuple[int, int, int | None]:
    """``(element id, header length, data size or None when unknown)`` at ``data[pos]``."""
    eid, n_id, _ = _vint(data, pos, keep_marker=True)
    size, n_size, unknown = _vint(data, pos + n_id, keep_marker=False)
    return eid, n_id + n_size, None if unknown else size


def _children(data: bytes, start: int, end: int) -> list[tuple[int, int, int]]:
    """``(id, data start, data end)`` of the elements in ``data[start:end]`` (all of known size)."""
    out, pos = [], start
    while pos < end:
        eid, head, size = _header(data, pos)
        if size is None:
            raise Unsupported(f"an element of unknown size (0x{eid:X}) inside a master element")
        if pos + head + size > end:
            raise Unsupported(f"element 0x{eid:X} overruns its parent")
        out.append((eid, pos + head, pos + head + size))
        pos += head + size
    return out


def _uint(data: bytes, start: int, end: int) -> int:
    if end - start > 8:
        raise Unsupported("an unsigned integer longer than 8 bytes")
    return int.from_bytes(data[start:end], "big") if end > start else 0


def _float(data: bytes, start: int, end: int) -> float:
    if end - start == 4:
        return float(struct.unpack(">f", data[start:end])[0])
    if end - start == 8:
        return float(struct.unpack(">d", data[start:end])[0])
    if end == start:
        return 0.0
    raise Unsupported("a float of unexpected size")


def _element(read_at: ReadAt, pos: int, file_size: int) -> tuple[int, int, int | None]:
    """The header of the element at ``pos`` of the file."""
    head = read_at(pos, 12)
    if len(head) < 2:
        raise Unsupported(f"no element at byte {pos}")
    return _header(head, 0)


def _read_element(read_at: ReadAt, pos: int, file_size: int, limit: int) -> tuple[int, bytes]:
    """``(id, data)`` of the element at ``pos`` (of known size, at most ``limit`` bytes)."""
    eid, head, size = _element(read_at, pos, file_size)
    if size is None:
        raise Unsupported(f"element 0x{eid:X} at byte {pos} has an unknown size")
    if size > limit or pos + head + size > file_size:
        raise Unsupported(f"element 0x{eid:X} at byte {pos} is too large or overruns the file")
    data = read_at(pos + head, size)
    if len(data) != size:
        raise Unsupported(f"element 0x{eid:X} at byte {pos} is truncated")
    return eid, data


def read_cues(read_at: ReadAt, file_size: int, stream_index: int, stream_count: int) -> CueIndex:
    """The cue points of the track FFmpeg opens as stream ``stream_index`` of ``stream_count``: the
    ``stream_index``-th TrackEntry, where the file has exactly ``stream_count`` of them (FFmpeg skips tracks
    it cannot read, which would shift the others).

    Raises:
        Unsupported: not Matroska/WebM, no Cues for the track, or anything this parser does not read exactly.
    """
    head = read_at(0, min(_EBML_HEAD, file_size))
    if head[:4] != _EBML.to_bytes(4, "big"):
        raise Unsupported("not an EBML file")
    eid, hlen, size = _header(head, 0)
    if eid != _EBML or size is None or hlen + size > len(head):
        raise Unsupported("not an EBML file")
    doctype = b""
    for cid, s, e in _children(head, hlen, hlen + size):
        if cid == _DOCTYPE:
            doctype = head[s:e].rstrip(b"\0")
    if doctype not in (b"matroska", b"webm"):
        raise Unsupported(f"EBML DocType {doctype!r}")
    pos = hlen + size
    eid, hlen, seg_size = _element(read_at, pos, file_size)
    if eid != _SEGMENT:
        raise Unsupported("no Segment after the EBML header")
    seg_start = pos + hlen
    seg_end = file_size if seg_size is None else min(file_size, seg_start + seg_size)

    # the top-level elements before the first Cluster, and what the SeekHeads point to
    found: dict[int, int] = {}  # element id -> absolute position (the first one seen)
    first_cluster = None
    seekheads: list[int] = []
    pos = seg_start
    while pos < seg_end:
        eid, hlen, size = _element(read_at, pos, file_size)
        if eid == _CLUSTER:
            first_cluster = pos
            break
        if size is None:
            raise Unsupported(f"top-level element 0x{eid:X} of unknown size")
        found.setdefault(eid, pos)
        if eid == _SEEKHEAD:
            seekheads.append(pos)
        pos += hlen + size
    done: set[int] = set()
    while seekheads:
        at = seekheads.pop(0)
        if at in done:
            continue
        done.add(at)
        _, data = _read_element(read_at, at, file_size, _HEAD)
        for cid, s, e in _children(data, 0, len(data)):
            if cid != _SEEK:
                continue
            target, where = None, None
            for gid, gs, ge in _children(data, s, e):
                if gid == _SEEK_ID:
                    target = _uint(data, gs, ge)
                elif gid == _SEEK_POSITION:
                    where = seg_start + _uint(data, gs, ge)
            if target is None or where is None or where >= seg_end:
                continue
            if target == _SEEKHEAD and where not in done:
                seekheads.append(where)
            else:
                found.setdefault(target, where)
    for needed, name in ((_INFO, "Info"), (_TRACKS, "Tracks"), (_CUES, "Cues")):
        if needed not in found:
            raise Unsupported(f"no {name} element found")

    eid, info = _read_element(read_at, found[_INFO], file_size, _HEAD)
    if eid != _INFO:
        raise Unsupported("the SeekHead's Info position holds another element")
    scale, duration = 1_000_000, None
    for cid, s, e in _children(info, 0, len(info)):
        if cid == _TIMESTAMP_SCALE:
            scale = _uint(info, s, e)
        elif cid == _DURATION:
            duration = _float(info, s, e)
    if scale <= 0:
        raise Unsupported("TimestampScale 0")

    eid, tracks = _read_element(read_at, found[_TRACKS], file_size, _HEAD)
    if eid != _TRACKS:
        raise Unsupported("the SeekHead's Tracks position holds another element")
    entries: list[dict[int, tuple[int, int]]] = [
        {gid: (gs, ge) for gid, gs, ge in _children(tracks, s, e)}
        for cid, s, e in _children(tracks, 0, len(tracks))
        if cid == _TRACK_ENTRY
    ]
    if len(entries) != stream_count or not 0 <= stream_index < stream_count:
        raise Unsupported(f"{len(entries)} TrackEntries for {stream_count} streams")
    fields = entries[stream_index]
    if _TRACK_NUMBER not in fields:
        raise Unsupported("a TrackEntry without TrackNumber")
    track_number = _uint(tracks, *fields[_TRACK_NUMBER])
    if _TRACK_TIMESTAMP_SCALE in fields and _float(tracks, *fields[_TRACK_TIMESTAMP_SCALE]) != 1.0:
        raise Unsupported("a TrackTimestampScale other than 1")

    eid, cues = _read_element(read_at, found[_CUES], file_size, MAX_CUES)
    if eid != _CUES:
        raise Unsupported("the SeekHead's Cues position holds another element")
    times: list[int] = []
    clusters: list[int] = []
    relative: list[int] = []
    for cid, s, e in _children(cues, 0, len(cues)):
        if cid != _CUE_POINT:
            continue
        time = None
        mine: tuple[int, int] | None = None
        for gid, gs, ge in _children(cues, s, e):
            if gid == _CUE_TIME:
                time = _uint(cues, gs, ge)
            elif gid == _CUE_TRACK_POSITIONS:
                fields = {fid: (fs, fe) for fid, fs, fe in _children(cues, gs, ge)}
                if _CUE_TRACK in fields and _uint(cues, *fields[_CUE_TRACK]) == track_number:
                    if _CUE_CLUSTER_POSITION not in fields:
                        raise Unsupported("a CueTrackPositions without CueClusterPosition")
                    rel = fields.get(_CUE_RELATIVE_POSITION)
                    mine = (
                        seg_start + _uint(cues, *fields[_CUE_CLUSTER_POSITION]),
                        -1 if rel is None else _uint(cues, *rel),
                    )
        if mine is None:
            continue
        if time is None:
            raise Unsupported("a CuePoint without CueTime")
        times.append(time)
        clusters.append(mine[0])
        relative.append(mine[1])
    if not times:
        raise Unsupported(f"no cue point of track {track_number}")
    t = np.asarray(times, dtype=np.int64)
    c = np.asarray(clusters, dtype=np.int64)
    if (np.diff(t) <= 0).any():
        raise Unsupported("cue times do not increase")
    if (np.diff(c) < 0).any() or c.min() < seg_start or c.max() >= seg_end:
        raise Unsupported("cue cluster positions go back or lie outside the segment")
    if first_cluster is not None and c[0] < first_cluster:
        raise Unsupported("a cue before the first Cluster")
    return CueIndex(
        timestamp_scale=scale,
        duration=duration,
        track_number=track_number,
        times=t,
        cluster_positions=c,
        relative_positions=np.asarray(relative, dtype=np.int64),
        first_cluster=first_cluster,
    )
