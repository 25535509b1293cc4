"""The keyframe index of a video, from the cheapest place that has it:

1. the in-memory LRU (per source key);
2. the on-disk store (remote videos that report a version: :mod:`._index_store`);
3. the video's index sidecar (``<uri>.mrindex``, :mod:`._sidecar`), when it describes the same content;
4. MP4/MOV: the ``moov`` sample tables (:mod:`._mp4`), read while the container opens (no media data);
5. remote Matroska/WebM: its ``Cues`` (:mod:`._mkv`), as a progressive index whose keyframe blocks are demuxed
   when a decode needs them (:mod:`._progressive`);
6. local videos: the on-disk store, where an earlier process scanned the same file (:mod:`._index_store`);
7. a demux scan of the freshly opened container (every other case, and whatever 3 to 6 refuse); local files
   are scanned (fast from the page cache) and the scan is stored for the next process.

In cases 3 to 6 the container opened to read the header is fresh (nothing demuxed); it goes to the decoder
cache, so the first decode of a remote video reads its header once. Scans run on freshly opened containers
only, never on a cached one whose position is unknown.
"""

from __future__ import annotations

import contextlib
import functools
import io
import logging
import os
from collections.abc import Callable
from fractions import Fraction
from typing import IO, Any, cast

import numpy as np

from ..errors import describe_uri
from ..io import MediaSource, PositionedFile, check_pixel_limit, open_media, source_version
from . import _mp4 as mp4
from . import _progressive as progressive
from . import _stats as stats
from ._cache import cached_index, decoder_cache, forget_index
from ._container import OpenedVideo, fresh_key
from ._errors import check_same_version, decode_errors
from ._identity import source_key, source_keys
from ._index import VideoIndex, end_pts, scan_index
from ._index_store import load_stored_index, local_store_version, store_index
from ._sidecar import HEAD_BYTES, content_matches, fetch_sidecar

logger = logging.getLogger(__name__)

__all__ = ["check_version", "confirm_version", "forget_source", "load_index"]

_MP4_FORMATS = ("mov", "mp4")
_MATROSKA_FORMATS = ("matroska", "webm")
#: What a container opened for indexing keeps of the bytes it read (the head, the moov, the first packets).
_RECORD_LIMIT = 8 << 20
_KEEP_AFTER = 4 << 20


class _RecordingFile(PositionedFile):
    """A pass-through view of a binary file that keeps what is read through it until :meth:`stop_recording`
    (at most :data:`_RECORD_LIMIT` bytes) and serves later reads of them from memory, so that the index parses
    bytes the container read anyway (the ``moov``, the head) and the first decode re-reads the head without
    fetching it again. Once recording stopped, what it kept is freed after :data:`_KEEP_AFTER` bytes of other
    reads (the decodes moved on). It keeps its own position and shares the file's attributes (``raw``,
    ``details``)."""

    def __init__(self, f: Any):
        self._f = f
        self._pos = 0
        self._chunks: dict[int, bytes] = {}
        self._recorded = 0
        self._recording = True
        self._limit = _RECORD_LIMIT
        self._after = 0  # bytes read from the file since recording stopped
        self._block: list[int] | None = None  # starts of the chunks of the block recording (record_next)
        self._read1 = getattr(f, "read1", f.read)  # one read of the file: it may return fewer bytes

    def __getattr__(self, name: str) -> Any:
        return getattr(self._f, name)

    def _end(self) -> int:
        return int(self._f.seek(0, io.SEEK_END))

    def _cached(self, pos: int, end: int) -> bytes:
        for start, chunk in self._chunks.items():
            if start <= pos < start + len(chunk):
                return chunk[pos - start : end - start]
        return b""

    def read(self, size: int = -1) -> bytes:
        if size is not None and size > 0:
            cached = self._cached(self._pos, self._pos + size)
            if cached:
                self._pos += len(cached)
                return cached
        self._f.seek(self._pos)
        data = self._read1(size) if size is not None and size > 0 else self._f.read(size)
        if data and not self._recording:
            self._after += len(data)
            if self._after > _KEEP_AFTER and self._chunks:
                self._chunks.clear()  # the decodes moved on: the header is not read again
        elif data and self._recorded < self._limit:
            self._chunks[self._pos] = data
            self._recorded += len(data)
            if self._block is not None:
                self._block.append(self._pos)
        self._pos += len(data)
        return data

    def read1(self, size: int = -1) -> bytes:
        """One read: from what was kept, or one read of the file below (fewer bytes than asked is fine)."""
        return self.read(size)

    def readinto(self, buffer: Any) -> int:
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)

    def stop_recording(self) -> None:
        self._recording = False

    def record_next(self, nbytes: int) -> None:
        """Record the next ``nbytes`` bytes read (a keyframe block demuxed for the index, which the decode
        that follows reads again), in place of the block recorded before (the head stays)."""
        for start in self._block or ():
            self._recorded -= len(self._chunks.pop(start, b""))
        self._block = []
        self._recording, self._after = True, 0
        self._limit = self._recorded + max(0, int(nbytes))

    def resume_recording(self) -> None:
        """Record again (another decoder opens the file and reads its header): up to 1 MiB more."""
        self._recording, self._after, self._block = True, 0, None
        self._limit = min(_RECORD_LIMIT, self._recorded + (1 << 20))

    def read_at(self, offset: int, size: int) -> bytes:
        """``size`` bytes at ``offset`` (fewer at the end): from what was read when possible."""
        here, parts, pos = self._pos, [], offset
        try:
            self._pos = offset
            while pos < offset + size:
                chunk = self.read(offset + size - pos)
                if not chunk:
                    break
                parts.append(chunk)
                pos += len(chunk)
            return b"".join(parts)
        finally:
            self._pos = here


def _read_at(source: MediaSource, recorder: _RecordingFile | None) -> Any:
    if recorder is not None:
        return recorder.read_at

    def read_local(offset: int, size: int) -> bytes:
        with open(str(source), "rb") as f:
            f.seek(offset)
            return f.read(size)

    return read_local


def _file_size(source: MediaSource, recorder: _RecordingFile | None) -> int:
    if recorder is None:
        return os.stat(str(source)).st_size
    here = recorder.tell()
    try:
        return int(recorder.seek(0, io.SEEK_END))
    finally:
        recorder.seek(here)


#: A sidecar not fetched yet (None: fetched, there is none).
_NOT_FETCHED: Any = object()


def _from_sidecar(
    uri: str,
    storage_options: dict | None,
    video: OpenedVideo,
    source: Any,
    read_at: Any,
    found: Any = _NOT_FETCHED,
    media_size: int | None = None,
) -> VideoIndex | None:
    if found is _NOT_FETCHED:
        found = fetch_sidecar(uri, storage_options, media_size)
    if found is None:
        return None
    media, index = found
    if not content_matches(media, source, lambda: read_at(0, media.head_bytes)):
        logger.warning(
            "ignoring the index sidecar of %s: it describes other content (a stale sidecar)",
            describe_uri(uri),
        )
        return None
    if index.stream_index != video.stream.index or index.time_base != video.stream.time_base:
        logger.warning("ignoring the index sidecar of %s: it describes another stream", describe_uri(uri))
        return None
    logger.debug("index of %s from its sidecar", describe_uri(uri))
    return index


def _from_moov(uri: str, video: OpenedVideo, read_at: Any, file_size: Callable[[], int]) -> VideoIndex | None:
    """The index from the MP4/MOV sample tables; None (logged) where they do not give it exactly."""
    names = video.container.format.name.split(",")
    if not any(n in _MP4_FORMATS for n in names):
        return None
    stream = video.stream
    try:
        tracks = mp4.parse_moov(mp4.find_moov(read_at, file_size()))
        track = tracks[stream.index] if stream.index < len(tracks) else None
        if track is None or track.handler != "vide" or track.pts.size == 0:
            raise mp4.Unsupported("the video stream is not the track at its position")
        if stream.time_base != Fraction(1, track.timescale):
            raise mp4.Unsupported("the stream's time base is not the track's timescale")
        ctx = stream.codec_context
        if track.keyframes.all() and track.pts.size > 2 and not ctx.codec.intra_only:
            raise mp4.Unsupported("every sample is a sync sample (real keyframes need a decode)")
    except mp4.Unsupported as exc:
        logger.info("indexing %s by a scan: its moov tables are not used (%s)", describe_uri(uri), exc)
        return None
    time_base = stream.time_base
    return VideoIndex(
        time_base=time_base,
        pts=track.pts,
        packet_sizes=track.sizes,
        keyframe_positions=[0] + [int(p) for p in np.flatnonzero(track.keyframes) if p > 0],
        end_pts=end_pts(track.pts, int(track.durations[-1]), stream.average_rate, time_base),
        width=int(ctx.width or stream.width),
        height=int(ctx.height or stream.height),
        codec=ctx.codec.name,
        pixel_format=ctx.pix_fmt,
        stream_index=int(stream.index),
        packet_offsets=track.offsets,
        moov_tables=True,
    )


def _open_recorded(uri: str, storage_options: dict | None) -> OpenedVideo:
    """A fresh container over a new source of ``uri`` read through a :class:`_RecordingFile`."""
    with contextlib.ExitStack() as owner:
        source = owner.enter_context(open_media(uri, storage_options=storage_options, head=True))
        recorder = _RecordingFile(source)
        video = OpenedVideo(uri, source=cast(IO[bytes], recorder))
        recorder.stop_recording()
        video.adopt(owner.pop_all())
    return video


def _from_cues(
    uri: str,
    storage_options: dict | None,
    key: tuple,
    video: OpenedVideo,
    read_at: Any,
    file_size: Callable[[], int],
    version: str | None,
) -> VideoIndex | None:
    """A progressive index from the Matroska/WebM Cues (see :mod:`._progressive`); None where not Matroska
    or (logged) where the Cues cannot serve."""
    names = video.container.format.name.split(",")
    if not any(n in _MATROSKA_FORMATS for n in names):
        return None
    return progressive.from_cues(
        uri, key, video, read_at, file_size(), version, lambda: _open_recorded(uri, storage_options)
    )


#: Top-level MP4/MOV boxes a file may start with.
_MP4_HEADS = (b"ftyp", b"moov", b"mdat", b"free", b"skip", b"wide", b"pnot")
#: Bytes around the first packet that opening the container reads (a box or block header; 0 for MP4).
_FIRST_PACKET_SLACK = 64


def _announce_first_packet(
    uri: str, storage_options: dict | None, source: Any, read_at: Any, file_size: Callable[[], int]
) -> Any:
    """Before the container opens over HTTP, tell the reader the byte range of the video's first packet,
    which FFmpeg's open reads to learn the pixel format: one request of its size instead of a read-ahead.
    MP4/MOV: from the ``moov`` (read here; the open reads it again from what is recorded). Other
    containers: from the index sidecar, fetched here; it is returned for :func:`_from_sidecar`, which judges
    it (:data:`_NOT_FETCHED` when it was not fetched). Nothing is decided from either but read sizes."""
    raw = getattr(source, "raw", None)
    announce = getattr(raw, "announce", None)
    if raw is None or announce is None:
        return _NOT_FETCHED
    raw.short_reads = True  # the PyAV container opened next reads through read1 (stats.CountingReader)
    offsets, sizes = None, None
    if read_at(0, HEAD_BYTES)[4:8] in _MP4_HEADS:  # the head, recorded whole
        try:
            tracks = mp4.parse_moov(mp4.find_moov(read_at, file_size()))
        except (mp4.Unsupported, ValueError, IndexError):  # the open and the index judge the file, not this
            return _NOT_FETCHED
        video = [t for t in tracks if t is not None and t.handler == "vide" and t.offsets.size]
        if video:
            offsets, sizes = video[0].offsets, video[0].sizes
        found = _NOT_FETCHED
    else:
        found = fetch_sidecar(uri, storage_options, file_size())
        if found is not None:
            offsets, sizes = found[1].packet_offsets, found[1].packet_sizes
    if offsets is not None and sizes is not None and offsets.size and int(offsets.min()) >= 0:
        first = int(np.argmin(offsets))
        announce(int(offsets[first]), int(offsets[first] + sizes[first]) + _FIRST_PACKET_SLACK)
    return found


def load_index(uri: str, *, storage_options: dict | None = None, key: tuple | None = None) -> VideoIndex:
    """The keyframe index of ``uri``'s first video stream: cached per source in memory, and for remote
    sources that report a version also on disk (:mod:`._index_store`); else from the video's sidecar, its
    MP4 ``moov`` tables, or a scan (see the module doc)."""
    key = key or source_key(uri, storage_options)

    def build() -> VideoIndex:
        with decode_errors(uri, "index"), contextlib.ExitStack() as owner:
            source = owner.enter_context(open_media(uri, storage_options=storage_options, head=True))
            version = source_version(source)  # None for local files and data: URIs
            if version is not None:
                stored = load_stored_index(key, version)
                if stored is not None:
                    stored.version = version
                    return stored
            recorder = None if isinstance(source, str) else _RecordingFile(source)
            size = functools.partial(_file_size, source, recorder)
            sidecar = _NOT_FETCHED
            if recorder is not None:
                sidecar = _announce_first_packet(uri, storage_options, source, recorder.read_at, size)
            video = OpenedVideo(uri, source=source if recorder is None else cast(IO[bytes], recorder))
            try:
                ctx = video.stream.codec_context
                check_pixel_limit(
                    ctx.width or video.stream.width, ctx.height or video.stream.height, uri, "video"
                )
                read_at = _read_at(source, recorder)
                # MP4/MOV: the moov, read anyway to open the container, is exact and complete (what the
                # demuxer itself uses); the sidecar serves every other container and what moov cannot
                index = _from_moov(uri, video, read_at, size)
                if index is None:
                    index = _from_sidecar(uri, storage_options, video, source, read_at, sidecar, size())
                if index is None and recorder is not None:
                    index = _from_cues(uri, storage_options, key, video, read_at, size, version)
                if index is not None:
                    stats.record(index_scans=1)
                local = local_store_version(uri, key) if version is None and index is None else None
                if local is not None:  # a local video's earlier scan, instead of this one
                    index = load_stored_index(key, local)
                fresh = index is not None  # nothing demuxed yet: the container can serve the first decode
                if recorder is not None:
                    recorder.stop_recording()
                if index is None:
                    # a fresh container: a scan reads from the first packet, whatever cached ones have done
                    index = scan_index(
                        video.container, video.stream, count_packet_bytes=video.counts_packet_bytes
                    )
            except BaseException:
                video.close()
                raise
            index.version = version
            if version is not None and index.progressive is None:  # partial indexes are never stored
                store_index(key, version, index)
            elif local is not None and not fresh:  # a local video's scan
                store_index(key, local, index)
            if fresh:
                video.adopt(owner.pop_all())
                decoder_cache.offer(fresh_key(key), video)
            else:
                video.close()
            return index

    return cached_index(key, build)


def check_version(index: VideoIndex, version: str | None, uri: str) -> None:
    """Refuse to decode with ``index`` a source opened at another remote version than its own.

    Raises:
        RemoteChangedError: the versions differ.
    """
    check_same_version(index.version, version, uri)


def confirm_version(index: VideoIndex, uri: str, storage_options: dict | None = None) -> None:
    """Check a remote source against the version its (cached) index was built from: one HEAD, or an fsspec
    ``info``. Called before trusting the index for an answer that reads nothing, such as "past the end".

    Raises:
        RemoteChangedError: the source changed since.
    """
    if index.version is None:
        return
    with open_media(uri, storage_options=storage_options) as source:
        check_version(index, source_version(source), uri)


def forget_source(uri: str, storage_options: dict | None = None) -> None:
    """Drop what the process caches hold of ``uri`` (its index, its open decoders): it changed remotely.

    Decoders leased by running decodes are closed when given back.
    """
    keys = source_keys(uri, storage_options)  # what was opened under either public-address rule
    for key in keys:
        forget_index(key)
    decoder_cache.discard(lambda found: isinstance(found, tuple) and any(key in found for key in keys))
