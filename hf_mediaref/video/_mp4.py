"""MP4/MOV sample tables (``moov``): every frame's pts, keyframe flag, byte offset and size, without reading
a byte of the media data (pure parsing; bytes come from a ``read_at(offset, size)`` callable).

The tables give decode order: ``stts`` (sample durations, so decode times), ``ctts`` (composition offsets:
pts = dts + offset; B-frame streams need it), ``stss`` (sync samples; absent: every sample is one),
``stsz``/``stz2`` (sizes), ``stsc`` + ``stco``/``co64`` (chunk offsets). The edit list (``elst``) moves the
timeline exactly the way FFmpeg's mov demuxer does (``mov_fix_index``, see :func:`_apply_edit`): empty
edits delay the track (each rounded to media ticks), a media edit starting at ``M`` keeps the frames that show
in ``[M, M + length)`` (a frame starting before ``M`` is dropped, even where ``M`` falls inside it), and the
first kept frame is moved to the delay. The packets from the keyframe before ``M`` are still demuxed (flagged
discard) so that a decode can start there; the index lists only the frames that come out.

Anything this module does not reproduce exactly is refused with :class:`Unsupported` (the caller then scans
the file): fragmented MP4 (``moof``/``mvex``), more than one media edit, edit rates other than 1, several
sample descriptions, partial sync samples (``stps``), random-access sample groups (open GOPs, ``rap``/
``sync`` ``sbgp``), ``stz2``-free tables of unexpected sizes, a moov larger than :data:`MAX_MOOV`.
"""

from __future__ import annotations

import dataclasses
import struct
from collections.abc import Callable, Iterator

import numpy as np

__all__ = ["MAX_MOOV", "TrackTables", "Unsupported", "find_moov", "parse_moov"]

#: The largest ``moov`` read (a 2-hour 60 fps track has ~430k samples: ~10 MB of tables).
MAX_MOOV = 64 << 20

ReadAt = Callable[[int, int], bytes]


class Unsupported(Exception):
    """The file uses something this parser does not reproduce exactly; scan it instead."""


@dataclasses.dataclass
class TrackTables:
    """One track's frames in presentation order, as FFmpeg's mov demuxer times them."""

    track_number: int  # the track's position among the moov's traks (FFmpeg's stream index)
    handler: str  # "vide", "soun", ...
    timescale: int
    codec_tag: str  # the sample description's fourcc ("avc1", "hvc1", ...)
    pts: np.ndarray  # int64 ticks, strictly increasing
    keyframes: np.ndarray  # bool per frame
    offsets: np.ndarray  # int64 byte offset of each frame's sample
    sizes: np.ndarray  # int64 bytes of each frame's sample
    durations: np.ndarray  # int64 stts duration of each frame's sample


def _boxes(data: bytes, start: int = 0, end: int | None = None) -> Iterator[tuple[str, int, int]]:
    """``(type, payload start, box end)`` of the boxes in ``data[start:end]``."""
    end = len(data) if end is None else end
    pos = start
    while pos + 8 <= end:
        size, kind = struct.unpack_from(">I4s", data, pos)
        header = 8
        if size == 1:
            if pos + 16 > end:
                raise Unsupported("truncated box header")
            (size,) = struct.unpack_from(">Q", data, pos + 8)
            header = 16
        elif size == 0:
            size = end - pos
        if size < header or pos + size > end:
            raise Unsupported(f"box {kind!r} overruns its parent")
        yield kind.decode("latin-1"), pos + header, pos + size
        pos += size


def _child(data: bytes, start: int, end: int, kind: str) -> tuple[int, int] | None:
    for k, s, e in _boxes(data, start, end):
        if k == kind:
            return s, e
    return None


def _children(data: bytes, start: int, end: int, kind: str) -> list[tuple[int, int]]:
    return [(s, e) for k, s, e in _boxes(data, start, end) if k == kind]


def find_moov(read_at: ReadAt, file_size: int) -> bytes:
    """The ``moov`` box of the file (header included), wherever it is (start or end), reading only box
    headers on the way.

    Raises:
        Unsupported: no ``moov``, a fragmented file (``moof`` before it), or a ``moov`` above MAX_MOOV.
    """
    pos = 0
    while pos + 8 <= file_size:
        head = read_at(pos, 16)
        if len(head) < 8:
            break
        size, kind = struct.unpack_from(">I4s", head, 0)
        if size == 1:
            if len(head) < 16:
                break
            (size,) = struct.unpack_from(">Q", head, 8)
        elif size == 0:
            size = file_size - pos
        if size < 8:
            raise Unsupported(f"top-level box {kind!r} of size {size}")
        if kind == b"moov":
            if size > MAX_MOOV:
                raise Unsupported(f"moov of {size:,} bytes")
            moov = read_at(pos, size)
            if len(moov) != size:
                raise Unsupported("truncated moov")
            return moov
        if kind == b"moof":
            raise Unsupported("fragmented MP4 (moof)")
        pos += size
    raise Unsupported("no moov box")


def _full_box(data: bytes, start: int) -> tuple[int, int]:
    """(version, payload start after the version/flags word)."""
    return data[start], start + 4


def _u32_table(data: bytes, start: int, end: int, columns: int) -> np.ndarray:
    _, pos = _full_box(data, start)
    (count,) = struct.unpack_from(">I", data, pos)
    pos += 4
    if pos + count * 4 * columns > end:
        raise Unsupported("table overruns its box")
    return np.frombuffer(data, dtype=">u4", count=count * columns, offset=pos).reshape(count, columns)


def _sample_sizes(data: bytes, box: tuple[int, int] | None, box2: tuple[int, int] | None) -> np.ndarray:
    if box is not None:
        start, end = box
        _, pos = _full_box(data, start)
        uniform, count = struct.unpack_from(">II", data, pos)
        if uniform:
            return np.full(count, uniform, dtype=np.int64)
        if pos + 8 + 4 * count > end:
            raise Unsupported("stsz overruns its box")
        return np.frombuffer(data, dtype=">u4", count=count, offset=pos + 8).astype(np.int64)
    if box2 is not None:
        start, end = box2
        _, pos = _full_box(data, start)
        field = data[pos + 3]
        (count,) = struct.unpack_from(">I", data, pos + 4)
        pos += 8
        if field == 16:
            return np.frombuffer(data, dtype=">u2", count=count, offset=pos).astype(np.int64)
        if field == 8:
            return np.frombuffer(data, dtype=">u1", count=count, offset=pos).astype(np.int64)
        raise Unsupported(f"stz2 with {field}-bit sizes")
    raise Unsupported("no sample sizes")


def _chunk_offsets(data: bytes, stco: tuple[int, int] | None, co64: tuple[int, int] | None) -> np.ndarray:
    if stco is not None:
        return _u32_table(data, *stco, 1)[:, 0].astype(np.int64)
    if co64 is not None:
        start, end = co64
        _, pos = _full_box(data, start)
        (count,) = struct.unpack_from(">I", data, pos)
        if pos + 4 + 8 * count > end:
            raise Unsupported("co64 overruns its box")
        return np.frombuffer(data, dtype=">u8", count=count, offset=pos + 4).astype(np.int64)
    raise Unsupported("no chunk offsets")


def _sample_offsets(stsc: np.ndarray, chunks: np.ndarray, sizes: np.ndarray) -> np.ndarray:
    """Byte offset of every sample from the sample-to-chunk runs and the chunk offsets."""
    n_chunks = chunks.size
    per_chunk = np.zeros(n_chunks, dtype=np.int64)
    first = stsc[:, 0].astype(np.int64) - 1
    counts = stsc[:, 1].astype(np.int64)
    if first.size == 0 or first[0] != 0 or np.any(np.diff(first) <= 0):
        raise Unsupported("malformed stsc")
    bounds = np.append(first, n_chunks)
    for i in range(first.size):
        per_chunk[bounds[i] : bounds[i + 1]] = counts[i]
    if int(per_chunk.sum()) != sizes.size:
        raise Unsupported("stsc and stsz disagree on the sample count")
    chunk_of = np.repeat(np.arange(n_chunks), per_chunk)
    starts = np.concatenate([[0], np.cumsum(per_chunk)[:-1]])
    size_cumsum = np.concatenate([[0], np.cumsum(sizes)])
    within = size_cumsum[np.arange(sizes.size)] - size_cumsum[starts[chunk_of]]
    return chunks[chunk_of] + within


def _rescale(ticks: int, to_scale: int, from_scale: int) -> int:
    """``ticks * to_scale / from_scale`` rounded to the nearest tick, halves away from zero (FFmpeg's
    ``av_rescale``, with which the mov demuxer converts edit durations to media ticks)."""
    num = ticks * to_scale
    return (num + from_scale // 2) // from_scale if num >= 0 else -((-num + from_scale // 2) // from_scale)


def _edit(
    data: bytes, trak: tuple[int, int], movie_scale: int, media_scale: int
) -> tuple[int, int, int] | None:
    """``(delay, media start, media length)`` in media ticks from the edit list (None: no edit list): optional
    empty edits, then at most one media edit at rate 1 (``media length`` -1: to the end, where the edit list
    has none). Durations are in the movie's timescale and are rounded to media ticks one edit at a time, as
    FFmpeg does; a media edit of duration 0 shows nothing (FFmpeg drops every frame)."""
    edts = _child(data, *trak, "edts")
    elst = _child(data, *edts, "elst") if edts else None
    if elst is None:
        return None
    if not movie_scale:
        raise Unsupported("an edit list with a movie timescale of 0")
    version, pos = _full_box(data, elst[0])
    (count,) = struct.unpack_from(">I", data, pos)
    pos += 4
    fmt = ">QqhH" if version == 1 else ">IihH"
    width = struct.calcsize(fmt)
    entries = [struct.unpack_from(fmt, data, pos + i * width) for i in range(count)]
    delay, media = 0, []  # type: tuple[int, list[tuple[int, int]]]
    for seg_duration, media_time, rate, rate_frac in entries:
        if media_time == -1:
            if media:
                raise Unsupported("an empty edit after a media edit")
            delay += _rescale(seg_duration, media_scale, movie_scale)
            continue
        if media_time < 0:
            raise Unsupported(f"a media edit starting at {media_time}")
        if (rate, rate_frac) != (1, 0):
            raise Unsupported("an edit with a rate other than 1")
        media.append((seg_duration, media_time))
    if len(media) > 1:
        raise Unsupported(f"{len(media)} media edits")
    if not media:
        return delay, 0, -1
    seg_duration, media_time = media[0]
    length = _rescale(seg_duration, media_scale, movie_scale)
    return delay, int(media_time), int(length)


def _apply_edit(
    dts: np.ndarray,
    raw_pts: np.ndarray,
    keys: np.ndarray,
    edit: tuple[int, int, int] | None,
    has_ctts: bool,
) -> tuple[np.ndarray, np.ndarray]:
    """``(kept, pts)``: the samples (decode-order indices) FFmpeg's mov demuxer outputs as frames under
    ``edit`` (see :func:`_edit`) and their pts, as its ``mov_fix_index`` computes them for a video track.

    The demuxer starts at the last sync sample whose dts and pts are at most the media start ``M`` (the first
    sample where there is none), walks forward in decode order, and flags as discard every sample whose
    pts (``raw_pts``: dts + composition offset) is not in ``[M, M + length)``; it stops at the first sync
    sample (with a ``ctts`` table, ``has_ctts``: the second) whose frame ends at or after ``M + length``.
    Kept samples are re-timed from the first kept one (in decode order, ``f``): dts run on from ``delay`` by
    the stts durations, and a video track is then moved so that its first pts is the delay. Hence
    ``pts = delay + raw_pts - max(dts[f], min(raw_pts[kept]))``.
    """
    n = dts.size
    if edit is None:  # no edit list: the demuxer keeps every sample with its own pts
        return np.arange(n), raw_pts.copy()
    delay, start, length = edit
    starts = np.flatnonzero(keys & (dts <= start) & (raw_pts <= start))
    first = int(starts[-1]) if starts.size else 0
    end = n
    if length >= 0:
        stop = start + length
        frame_end = np.append(dts[1:], dts[-1] + length) - dts + raw_pts  # raw_pts + the stts duration
        ends = np.flatnonzero(keys & (frame_end >= stop))
        ends = ends[ends >= first]
        wait = 1 if has_ctts else 0  # trailing B-frames after the first sync sample past the end
        if ends.size > wait:
            end = int(ends[wait]) + 1
    window = np.arange(first, end)
    inside = raw_pts[window] >= start
    if length >= 0:
        inside &= raw_pts[window] < start + length
    kept = window[inside]
    if kept.size == 0:
        return kept, np.empty(0, np.int64)
    shift = max(int(dts[kept[0]]), int(raw_pts[kept].min()))
    return kept, raw_pts[kept] - shift + delay


def _check_sample_groups(data: bytes, stbl: tuple[int, int]) -> None:
    for start, _end in _children(data, *stbl, "sbgp"):
        kind = data[start + 4 : start + 8]
        if kind in (b"rap ", b"sync"):
            raise Unsupported(f"random-access sample group {kind.decode('latin-1')!r}")


def _track(data: bytes, trak: tuple[int, int], number: int, movie_scale: int) -> TrackTables | None:
    mdia = _child(data, *trak, "mdia")
    if mdia is None:
        return None
    hdlr, mdhd = _child(data, *mdia, "hdlr"), _child(data, *mdia, "mdhd")
    if hdlr is None or mdhd is None:
        raise Unsupported("a track without hdlr or mdhd")
    handler = data[hdlr[0] + 8 : hdlr[0] + 12].decode("latin-1")
    if handler != "vide":
        return TrackTables(number, handler, 0, "", *(np.empty(0, np.int64) for _ in range(5)))
    version, pos = _full_box(data, mdhd[0])
    timescale = struct.unpack_from(">I", data, pos + (16 if version == 1 else 8))[0]
    minf = _child(data, *mdia, "minf")
    stbl = _child(data, *minf, "stbl") if minf else None
    if stbl is None or not timescale:
        raise Unsupported("a video track without sample tables")
    box = {kind: _child(data, *stbl, kind) for kind in ("stsd", "stts", "ctts", "stss", "stps")}
    box.update({kind: _child(data, *stbl, kind) for kind in ("stsz", "stz2", "stsc", "stco", "co64")})
    if box["stps"] is not None:
        raise Unsupported("partial sync samples (stps)")
    _check_sample_groups(data, stbl)
    stsd = box["stsd"]
    if stsd is None or struct.unpack_from(">I", data, stsd[0] + 4)[0] != 1:
        raise Unsupported("not exactly one sample description")
    codec_tag = data[stsd[0] + 12 : stsd[0] + 16].decode("latin-1")
    if box["stts"] is None or box["stsc"] is None:
        raise Unsupported("no stts or stsc")

    stts = _u32_table(data, *box["stts"], 2).astype(np.int64)
    durations = np.repeat(stts[:, 1], stts[:, 0])
    sizes = _sample_sizes(data, box["stsz"], box["stz2"])
    n = sizes.size
    if durations.size != n:
        raise Unsupported("stts and stsz disagree on the sample count")
    if n == 0:
        raise Unsupported("an empty video track")
    dts = np.concatenate([[0], np.cumsum(durations)[:-1]])
    cts = np.zeros(n, dtype=np.int64)
    if box["ctts"] is not None:
        ctts_version, _ = _full_box(data, box["ctts"][0])
        table = _u32_table(data, *box["ctts"], 2)
        offsets = table[:, 1].astype(np.uint32)
        offsets = offsets.view(np.int32).astype(np.int64) if ctts_version == 1 else offsets.astype(np.int64)
        cts = np.repeat(offsets, table[:, 0].astype(np.int64))
        if cts.size != n:
            raise Unsupported("ctts and stsz disagree on the sample count")
    if box["stss"] is not None:
        sync = _u32_table(data, *box["stss"], 1)[:, 0].astype(np.int64) - 1
        if sync.size == 0 or np.any((sync < 0) | (sync >= n)):
            raise Unsupported("an empty or out-of-range stss")
        keys = np.zeros(n, dtype=bool)
        keys[sync] = True
    else:
        keys = np.ones(n, dtype=bool)
    stsc = _u32_table(data, *box["stsc"], 3)
    offsets_ = _sample_offsets(stsc, _chunk_offsets(data, box["stco"], box["co64"]), sizes)

    kept, kept_pts = _apply_edit(
        dts, dts + cts, keys, _edit(data, trak, movie_scale, timescale), box["ctts"] is not None
    )
    by_pts = np.argsort(kept_pts, kind="stable")
    order, pts = kept[by_pts], kept_pts[by_pts]
    if pts.size == 0 or np.any(np.diff(pts) <= 0):
        raise Unsupported("no frames, or frames sharing a pts, after the edit list")
    return TrackTables(
        number,
        handler,
        timescale,
        codec_tag,
        pts,
        keys[order],
        offsets_[order],
        sizes[order],
        durations[order],
    )


def parse_moov(moov: bytes) -> list[TrackTables | None]:
    """The tables of every track of ``moov`` (the whole box, header included), in track order; non-video
    tracks come back without frames, tracks without media as None.

    Raises:
        Unsupported: a fragmented file or anything the tables do not describe exactly (see the module doc).
    """
    boxes = list(_boxes(moov))
    if len(boxes) != 1 or boxes[0][0] != "moov":
        raise Unsupported("not a moov box")
    _, start, end = boxes[0]
    if _child(moov, start, end, "mvex") is not None:
        raise Unsupported("fragmented MP4 (mvex)")
    mvhd = _child(moov, start, end, "mvhd")
    if mvhd is None:
        raise Unsupported("no mvhd")
    version, pos = _full_box(moov, mvhd[0])
    movie_scale = struct.unpack_from(">I", moov, pos + (16 if version == 1 else 8))[0]
    try:
        return [
            _track(moov, trak, number, movie_scale)
            for number, trak in enumerate(_children(moov, start, end, "trak"))
        ]
    except (struct.error, IndexError, ValueError) as exc:
        raise Unsupported(f"malformed tables: {exc}") from exc
