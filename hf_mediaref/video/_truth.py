"""Indexes are hints; decoding is the truth.

An index read from anywhere but a demux scan of the container (a sidecar, the on-disk store, MP4 ``moov``
tables, Matroska Cues) may describe other frames than the file holds: a tampered or buggy sidecar drops a
frame or shifts a pts while its content key still matches. Every decoded span is checked against the index it
was planned from (the backends raise :class:`IndexMismatch`): a decoded pts the index does not list, or a
listed pts the decoder never produced. The index is then discarded (a warning naming the video), rebuilt from
the container by :func:`rescan_index` (a demux scan, which replaces it in the process cache and the on-disk
store), and the whole request of that video is decoded again with the new index (:class:`Stale` marks the
results to throw away). A scanned index is never rescanned: where a decode disagrees with it, the typed
:class:`~hf_mediaref.errors.MediaDecodeError` is raised as before.

The checks compare pts the demuxer and the decoder produce anyway; nothing is decoded for them. The
TorchCodec backend does not expose the frames it decodes on the way to a target, so its spans of a hinted
index are checked by demuxing the span's packets (:func:`check_span_packets`), no decode.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import weakref
from collections.abc import Iterator

import numpy as np

from ..errors import describe_uri
from ._cache import decoder_cache, replace_index
from ._container import OpenedVideo
from ._errors import check_same_version, decode_errors
from ._index import VideoIndex, scan_index
from ._index_store import local_store_version, store_index
from ._planning import Span

logger = logging.getLogger(__name__)

__all__ = [
    "IndexMismatch",
    "Stale",
    "check_span_bytes",
    "check_span_packets",
    "is_replaced",
    "replacement",
    "rescan_index",
    "span_checked",
]


class IndexMismatch(Exception):
    """A decode disagrees with the hinted index ``index`` it was planned from (``why`` says how)."""

    def __init__(self, index: VideoIndex, why: str):
        super().__init__(why)
        self.index, self.why = index, why


class Stale(dict):
    """The (empty) result of a span whose index turned out wrong: the request is decoded again."""


_lock = threading.Lock()  # guards the two maps, held briefly (never during a scan)
#: A discarded index -> the scanned index that replaced it (one rescan per index, whoever asks first).
_replaced: weakref.WeakKeyDictionary[VideoIndex, VideoIndex] = weakref.WeakKeyDictionary()
#: A discarded index -> the lock its rescan runs under (other videos' decodes and rescans do not wait).
_scanning: weakref.WeakKeyDictionary[VideoIndex, threading.Lock] = weakref.WeakKeyDictionary()
#: A hinted index -> {a span's keyframe position: the furthest position its packets were checked through}. An
#: index belongs to one version of its file, so a range checked once holds for every later span inside it.
_checked: weakref.WeakKeyDictionary[VideoIndex, dict[int, int]] = weakref.WeakKeyDictionary()


def _after_fork_in_child() -> None:
    global _lock, _scanning
    _lock, _scanning = threading.Lock(), weakref.WeakKeyDictionary()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


def is_replaced(index: VideoIndex) -> bool:
    """Whether ``index`` was discarded (a decode disagreed with it) and rescanned."""
    with _lock:
        return index in _replaced


def replacement(index: VideoIndex) -> VideoIndex | None:
    """The scanned index that replaced ``index``, or None when it was not discarded."""
    with _lock:
        return _replaced.get(index)


def rescan_index(uri: str, storage_options: dict | None, key: tuple, bad: VideoIndex, why: str) -> VideoIndex:
    """The index of ``uri`` rebuilt by a demux scan in place of ``bad``, which a decode contradicted.

    Called once per discarded index: later callers get the same replacement. The new index replaces ``bad``
    in the process's index cache and in the on-disk store (where ``bad`` may have come from), and TorchCodec
    decoders built from ``bad``'s frame mappings are dropped.

    Raises:
        RemoteChangedError: the remote file changed since ``bad`` was built.
        MediaDecodeError: the video cannot be scanned.
    """
    with _lock:
        done = _replaced.get(bad)
        if done is not None:
            return done
        scan_lock = _scanning.setdefault(bad, threading.Lock())
    with scan_lock:
        with _lock:
            done = _replaced.get(bad)
        if done is not None:
            return done
        logger.warning(
            "the keyframe index of video %s disagrees with its decode (%s); discarding it and indexing the "
            "video again by a demux scan",
            describe_uri(uri),
            why,
        )
        with (
            decode_errors(uri, "index"),
            contextlib.closing(OpenedVideo(uri, storage_options=storage_options)) as video,
        ):
            check_same_version(bad.version, video.version, uri)
            index = scan_index(video.container, video.stream, count_packet_bytes=video.counts_packet_bytes)
        index.version = bad.version
        with _lock:
            _replaced[bad] = index
    replace_index(key, index, lambda cached: True)
    if bad.version is not None:
        store_index(key, bad.version, index)
    else:
        local = local_store_version(uri, key)
        if local is not None:
            store_index(key, local, index)
    decoder_cache.discard(
        lambda cache_key: isinstance(cache_key, tuple) and cache_key[:2] == ("torchcodec", key)
    )
    return index


#: Packets past the frame after a span's last target demuxed before the check ends: a frame whose pts is
#: within the span comes this far after it in decode order at most (B-frame reordering), whatever the
#: container says of decode times (Matroska gives none).
_REORDER_MARGIN = 16


def _packet_pts_from(video: OpenedVideo, pts: int) -> Iterator[int]:
    """The pts of the stream's packets, in decode order, from a seek to the keyframe at ``pts``; from the
    file's start where the seek lands after it (MPEG-TS seeks by byte estimates)."""
    try:
        video.container.seek(pts, stream=video.stream, backward=True, any_frame=False)
    except Exception:
        video.container.seek(0, backward=True, any_frame=False)
    first = True
    for packet in video.container.demux(video.stream):
        if not packet.size or packet.is_discard:
            continue
        ts = packet.pts if packet.pts is not None else packet.dts
        if ts is None:
            continue
        if first and int(ts) > pts:  # landed late: demux from the start of the file instead
            video.container.seek(0, backward=True, any_frame=False)
            for again in video.container.demux(video.stream):
                at = again.pts if again.pts is not None else again.dts
                if again.size and not again.is_discard and at is not None:
                    yield int(at)
            return
        first = False
        yield int(ts)


#: Bytes kept in memory at most of what one packet check reads (for the TorchCodec open that follows).
_MAX_RECORDED_CHECK = 16 << 20


#: Bytes before a keyframe's packet that a seek to it may read first (a Matroska cluster's header), and after
#: a packet's data that its demuxer reads with it (a block's header): as in ``._pyav``.
_LEAD, _TAIL = 64 << 10, 64


def check_span_range(index: VideoIndex, span: Span) -> tuple[int, int] | None:
    """The bytes :func:`check_span_packets` of ``span`` reads (where ``index`` is right): from its keyframe's
    packet (less what a seek may read before it) to the end of the last packet it demuxes, the
    :data:`_REORDER_MARGIN`-th after the span in the file. None when the index does not know the offsets."""
    offsets, sizes = index.packet_offsets, index.packet_sizes
    limit_pos = min(span.targets[-1] + 1, index.num_frames - 1)
    if offsets is None or int(offsets.min(initial=0)) < 0:
        return None
    first = int(offsets[span.start])
    ends = offsets + sizes
    end = int(ends[span.start : limit_pos + 1].max())
    later = np.flatnonzero(offsets[limit_pos + 1 :] > first) + limit_pos + 1  # after the keyframe in the file
    if later.size:
        nth = later[np.argsort(offsets[later], kind="stable")][:_REORDER_MARGIN]
        end = max(end, int(ends[nth].max()))
    return max(0, first - _LEAD), end + _TAIL


def check_span_bytes(index: VideoIndex, span: Span) -> int:
    """About how many bytes :func:`check_span_packets` of ``span`` reads, to keep for the decoder that reads
    them next: the file range of its packets through the margin past it (the sum of their sizes where the
    index knows no offsets), a few blocks' headers more, at most :data:`_MAX_RECORDED_CHECK`."""
    stop = min(span.targets[-1] + 2 + _REORDER_MARGIN, index.num_frames)
    sizes, offsets = index.packet_sizes[span.start : stop], index.packet_offsets
    if offsets is None or offsets[span.start : stop].min(initial=0) < 0:
        nbytes = int(sizes.sum())
    else:
        ends = offsets[span.start : stop] + sizes
        nbytes = int(ends.max() - offsets[span.start : stop].min())
    return min(nbytes + (256 << 10), _MAX_RECORDED_CHECK)


def _checked_through(index: VideoIndex, span: Span) -> int:
    """The position through which :func:`check_span_packets` of ``span`` compares packets with ``index``."""
    return min(span.targets[-1] + 1, index.num_frames - 1)


def span_checked(index: VideoIndex, span: Span) -> bool:
    """Whether this process already checked ``span``'s packets against ``index`` (the same keyframe, at
    least as far): then the container says nothing new, and the check is not read again."""
    with _lock:
        return _checked.get(index, {}).get(span.start, -1) >= _checked_through(index, span)


def check_span_packets(video: OpenedVideo, index: VideoIndex, span: Span) -> None:
    """Demux (no decode) ``span``'s packets from its keyframe past the frame after its last target, and check
    them against ``index``: every packet's pts up to that frame listed, every listed pts in that range there.

    Raises:
        IndexMismatch: they disagree.
    """
    limit_pos = _checked_through(index, span)
    limit = int(index.pts[limit_pos])
    seen: set[int] = set()
    past = 0
    if video.takes_read_hints:  # HTTP: fetch the span's range, not a read-ahead that doubles past it
        where = check_span_range(index, span)
        if where is None or not video.announce_read(*where):
            video.expect_read(check_span_bytes(index, span))
    for ts in _packet_pts_from(video, int(index.pts[span.start])):
        if ts > limit:
            past += 1
            if past >= _REORDER_MARGIN:
                break
            continue
        if index.position_of(ts) < 0:
            raise IndexMismatch(
                index, f"the container holds a frame at pts {ts} that the index does not list"
            )
        seen.add(ts)
    for pts in index.pts[span.start : limit_pos + 1].tolist():
        if pts not in seen:
            raise IndexMismatch(index, f"the index lists a frame at pts {pts} that the container lacks")
    with _lock:
        checked = _checked.setdefault(index, {})
        checked[span.start] = max(checked.get(span.start, -1), limit_pos)
