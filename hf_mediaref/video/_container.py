"""Open PyAV containers over any URI kind and lease them from the decoder cache (one thread at a time)."""

from __future__ import annotations

import collections
import contextlib
import logging
import threading
import weakref
from collections.abc import Callable, Hashable
from typing import Any, cast

from .._optional import require
from ..errors import MediaDecodeError, describe_uri
from ..io import MediaSource, open_media, source_version
from . import _stats as stats
from ._cache import decoder_cache
from ._errors import decode_errors
from ._identity import source_key

logger = logging.getLogger(__name__)

__all__ = [
    "HeldVideo",
    "OpenedVideo",
    "fresh_key",
    "import_av",
    "lease_video",
    "mark_demuxed",
    "take_fresh_source",
    "was_demuxed",
]


_av: Any = None


def import_av() -> Any:
    """The ``av`` module, or :class:`~hf_mediaref.errors.MissingDependencyError` saying how to install it
    (imported once: every span asks)."""
    global _av
    if _av is None:
        _av = require("av", purpose="video decoding")
    return _av


#: FFmpeg options of a container read through a file object (remote media), so that its open reads no
#: packet past the first one, whose decode gives the codec's parameters: FFmpeg otherwise reads on until
#: packets carry decode timestamps (``max_ts_probe``: Matroska's never do) and, where the header has no frame
#: rate, enough packets to estimate one (``fpsprobesize``: 100 KB of a 30 fps Matroska file). Nothing here
#: uses what they would give (``start_time``, an ``average_rate`` estimated from packets): the index comes
#: from the packets.
_REMOTE_OPEN = {"max_ts_probe": "0", "fpsprobesize": "0"}


def _open_metadata_kwargs(av: Any) -> dict[str, str]:
    """How ``av.open`` is told that a tag that is not UTF-8 is no error: PyAV < 19 decodes tags with its
    ``metadata_errors`` ("strict" by default: one such tag fails the open); PyAV 19 has no such argument and
    always decodes them with ``surrogateescape``."""
    major = int(av.__version__.split(".")[0])
    return {"metadata_errors": "ignore"} if major < 19 else {}


class OpenedVideo:
    """One open container, its video stream and an RGB reformatter: used by one thread at a time.

    The container reads ``source`` when given (the caller keeps owning it), else a source it opens and closes.
    ``head``: the byte range the open reads (from the file's start to the end of its first packet, known
    from the index), announced to an HTTP source so that it is one request.
    """

    def __init__(
        self,
        uri: str,
        *,
        storage_options: dict | None = None,
        threads: int = 1,
        source: MediaSource | None = None,
        head: tuple[int, int] | None = None,
    ):
        av = import_av()
        from av.video.reformatter import VideoReformatter

        self.uri = uri
        self._stack = contextlib.ExitStack()
        self._owner: contextlib.ExitStack | None = None  # keeps a given source open (see adopt)
        self._given = source
        try:
            if source is None:
                source = self._stack.enter_context(
                    open_media(uri, storage_options=storage_options, head=True)
                )
            raw = getattr(source, "raw", None)
            self._expect = getattr(raw, "expect", None)  # HTTP read-ahead hints
            self._announce = getattr(raw, "announce", None)
            if raw is not None and hasattr(raw, "short_reads"):
                raw.short_reads = True  # FFmpeg reads through read1 (stats.CountingReader): short is fine
            if head is not None and self._announce is not None:
                self._announce(*head)
            self.version = source_version(source)  # None for local files and data: URIs
            with decode_errors(uri, "open"):
                metadata = _open_metadata_kwargs(av)
                if isinstance(source, str):
                    self.container = av.open(source, "r", **metadata)
                    self.counts_packet_bytes = True
                else:
                    self.container = av.open(
                        stats.CountingReader(source), "r", **metadata, options=_REMOTE_OPEN
                    )
                    self.counts_packet_bytes = False
                self._stack.callback(self.container.close)
                if not self.container.streams.video:
                    raise MediaDecodeError(f"{describe_uri(uri)} has no video stream", uri=uri)
        except BaseException:
            self._stack.close()
            raise
        stats.record(containers_opened=1)
        self.stream = self.container.streams.video[0]
        discard_all = getattr(getattr(av.stream, "Discard", None), "all", None)  # PyAV >= 16
        if discard_all is not None:  # an optimisation only: the demuxer skips other streams' payloads
            for other in self.container.streams:
                if other.index != self.stream.index:
                    other.discard = discard_all
        self.set_threads(threads)
        self.reformatter = VideoReformatter()
        #: Where a decode left the codec that the next one may continue from (see ``_pyav``): set only by
        #: the decode that last used this container, cleared by every lease (:func:`lease_video`).
        self.resume_point: Any = None

    def set_threads(self, threads: int) -> None:
        """Codec threads (FRAME threading above 1); before the first decode only."""
        ctx = self.stream.codec_context
        ctx.thread_type = "FRAME" if threads > 1 else "SLICE"
        ctx.thread_count = threads
        self.threads = threads

    @property
    def source(self) -> MediaSource | None:
        """The source given to the constructor (None: the container opened its own)."""
        return self._given

    @property
    def takes_read_hints(self) -> bool:
        """Whether :meth:`expect_read` does anything (HTTP sources; others read ahead by themselves)."""
        return self._expect is not None

    def expect_read(self, nbytes: int) -> None:
        """Tell the source that the next read after a seek goes on for about ``nbytes``."""
        if self._expect is not None:
            self._expect(nbytes)

    def announce_read(self, start: int, end: int) -> bool:
        """Tell the source that the next reads are of bytes ``[start, end)``; False when it takes no such
        hint (then :meth:`expect_read` may)."""
        if self._announce is None:
            return False
        self._announce(start, end)
        return True

    def adopt(self, owner: contextlib.ExitStack) -> None:
        """Take over ``owner`` (what keeps the given source open): closed after the container."""
        self._owner = owner

    def release_source(self) -> tuple[Any, contextlib.ExitStack] | None:
        """Close the container and hand over the adopted source with its owner (None: nothing adopted)."""
        if self._owner is None:
            return None
        self._stack.close()
        owner, self._owner = self._owner, None
        return self._given, owner

    def close(self) -> None:
        try:
            self._stack.close()
        finally:
            if self._owner is not None:
                self._owner.close()


def lease_video(
    uri: str,
    *,
    storage_options: dict | None = None,
    threads: int = 1,
    key: tuple | None = None,
    prefer: Callable[[Any], bool] | None = None,
    head: tuple[int, int] | None = None,
) -> contextlib.AbstractContextManager[tuple[OpenedVideo, Any]]:
    """Exclusive use of an open container for ``uri`` (cached; opened on a miss, ``head`` as for
    :class:`OpenedVideo`), with the resume point its last user left (None when there is none).

    The container's ``resume_point`` is cleared for the lease: a user that moves the container and sets none
    leaves none behind. ``prefer(resume_point)``: an idle container of this source (of any codec thread
    count) whose resume point it accepts is taken first. The containers whose resume points
    :func:`keep_resume_point` protects are taken only by a decode that accepts their point (another opens
    a new container rather than take them), while the decoder cache has room for one more.
    """
    return _VideoLease(uri, storage_options, threads, key or source_key(uri, storage_options), prefer, head)


class _VideoLease:
    """One lease of :func:`lease_video` (a plain context manager: one per decoded span, kept cheap)."""

    __slots__ = ("_lease", "_prefer", "head", "key", "storage_options", "threads", "uri")

    def __init__(
        self,
        uri: str,
        storage_options: dict | None,
        threads: int,
        key: tuple,
        prefer: Callable[[Any], bool] | None,
        head: tuple[int, int] | None,
    ):
        self.uri, self.storage_options, self.threads, self.key, self.head = (
            uri,
            storage_options,
            threads,
            key,
            head,
        )
        self._prefer = prefer
        self._lease: contextlib.AbstractContextManager[Any] | None = None

    def _avoid(self, video: Any) -> bool:
        return kept_for_its_resume_point(self.key, video)

    def _choose(self, slot: Any, video: Any) -> bool:
        return (  # a PyAV container of this source (other backends' decoders share its group)
            isinstance(slot, tuple)
            and len(slot) == 3
            and slot[0] == "pyav"
            and slot[1] == self.key
            and video.resume_point is not None
            and self._prefer is not None
            and self._prefer(video.resume_point)
        )

    def _open(self) -> OpenedVideo:
        fresh = cast("OpenedVideo | None", decoder_cache.take(fresh_key(self.key)))  # opened by the index
        if fresh is not None:  # nothing decoded yet: its codec threads can still be set
            fresh.set_threads(self.threads)
            return fresh
        return OpenedVideo(
            self.uri, storage_options=self.storage_options, threads=self.threads, head=self.head
        )

    def enter_preferred(self) -> tuple[OpenedVideo, Any] | None:
        """Enter the lease only with an idle container whose resume point ``prefer`` accepts (None: none
        is idle; nothing is opened)."""
        lease = decoder_cache.lease_preferred(("pyav", self.key, self.threads), self._choose)
        return None if lease is None else self._enter(lease)

    def __enter__(self) -> tuple[OpenedVideo, Any]:
        choose = self._choose if self._prefer is not None else None
        lease = decoder_cache.lease(
            ("pyav", self.key, self.threads), self._open, prefer=choose, avoid=self._avoid
        )
        return self._enter(lease)

    def _enter(self, lease: contextlib.AbstractContextManager[Any]) -> tuple[OpenedVideo, Any]:
        """The container of the cache's ``lease`` and its resume point, cleared on it for this lease."""
        video = cast(OpenedVideo, lease.__enter__())
        self._lease = lease
        point, video.resume_point = video.resume_point, None
        return video, point

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        lease, self._lease = self._lease, None
        if lease is not None:
            lease.__exit__(exc_type, exc, tb)


class HeldVideo:
    """A container of one source kept leased across a chain of spans decoded one after another on one thread
    (a video's spans of a batch on one core): the first :meth:`use` leases one as :func:`lease_video` does,
    the next ones hand the same container on, with the resume point the previous span left on it, instead
    of giving it back to the cache and leasing it again. Where that point does not serve a span (``prefer``)
    and another container of the source is kept for its resume point (:func:`keep_resume_point`: where an
    earlier call stopped), an idle one whose point serves is taken instead, as a lease would. A span that
    fails closes the held container (its state is unknown; the next use leases another); :meth:`release`
    gives it back when the chain ends. Not thread-safe."""

    __slots__ = ("_lease", "_point", "_video", "head", "key", "storage_options", "uri")

    def __init__(self, uri: str, storage_options: dict | None, key: tuple, head: tuple[int, int] | None):
        self.uri, self.storage_options, self.key, self.head = uri, storage_options, key, head
        self._lease: _VideoLease | None = None  # the lease of the held container (its threads, its exit)
        self._video: OpenedVideo | None = None
        self._point: Any = None  # the resume point the container was leased with, for the next span

    def use(self, threads: int, prefer: Callable[[Any], bool] | None) -> HeldVideo:
        """Use the held container for one span (a context manager giving ``(container, resume point)``, as a
        lease does)."""
        if self._lease is not None and self._lease.threads != threads:
            self.release()
        video = self._video
        if video is None:
            lease = _VideoLease(self.uri, self.storage_options, threads, self.key, prefer, self.head)
            self._hold(lease, *lease.__enter__())
        elif prefer is not None and not prefer(video.resume_point) and _kept_beside(self.key, video, prefer):
            lease = _VideoLease(self.uri, self.storage_options, threads, self.key, prefer, self.head)
            found = lease.enter_preferred()
            if found is not None:
                self.release()
                self._hold(lease, *found)
        return self

    def _hold(self, lease: _VideoLease, video: OpenedVideo, point: Any) -> None:
        self._lease, self._video, self._point = lease, video, point

    def __enter__(self) -> tuple[OpenedVideo, Any]:
        video = self._video
        assert video is not None, "use() first"
        point, self._point = self._point, None
        if point is None:  # held on from the previous span: the point it left
            point, video.resume_point = video.resume_point, None
        return video, point

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        if exc_type is not None:  # closed, as a lease closes its container after an error
            self._leave(exc_type, exc, tb)

    def release(self) -> None:
        """Give the held container back to the cache (with the resume point the last span left)."""
        self._leave(None, None, None)

    def _leave(self, exc_type: Any, exc: Any, tb: Any) -> None:
        lease, self._lease, self._video = self._lease, None, None
        if lease is not None:
            lease.__exit__(exc_type, exc, tb)


#: Per source, the containers whose resume points are kept for the call that continues them (the newest
#: :data:`_KEPT_PER_SOURCE`, as ``(id(container), weak reference to the point)``), for the
#: :data:`_KEPT_SOURCES` sources kept last. Values are tuples, replaced whole under :data:`_kept_lock`, so
#: that a lease reading them under the decoder cache's lock never sees one change.
_kept: collections.OrderedDict[tuple, tuple[tuple[int, weakref.ref[Any]], ...]] = collections.OrderedDict()
_kept_lock = threading.Lock()
_KEPT_PER_SOURCE = 2
_KEPT_SOURCES = 256  # far more than the idle containers the decoder cache keeps open


def kept_for_its_resume_point(key: tuple, video: Any) -> bool:
    """Whether the idle container ``video`` of the source ``key`` is kept for the decode that continues from
    its resume point (:func:`keep_resume_point`): a lease that cannot continue from there opens another
    container rather than take it, while the decoder cache has room."""
    return getattr(video, "resume_point", None) is not None and any(
        kept == id(video) for kept, _ in _kept.get(key, ())
    )


def _kept_beside(key: tuple, video: OpenedVideo, prefer: Callable[[Any], bool]) -> bool:
    """Whether a container of the source ``key`` other than ``video`` is kept for a resume point (still
    held by it) that ``prefer`` accepts."""
    for kept, point in _kept.get(key, ()):
        if kept != id(video):
            alive = point()
            if alive is not None and prefer(alive):
                return True
    return False


def keep_resume_point(key: tuple, video: OpenedVideo) -> None:
    """Keep the resume point ``video`` now holds for the decode that continues from it: it stops at the last
    target a call asked of the source ``key``, where the next call's first target of that video may
    continue. Leases that cannot use it open another container rather than take it (and lose the point),
    for the newest :data:`_KEPT_PER_SOURCE` of the source (two lanes decoding one video side by side),
    while the decoder cache has room for another container (see :meth:`._cache.LeaseCache.lease`).
    """
    if video.resume_point is None:
        return
    with _kept_lock:
        kept = tuple(pair for pair in _kept.pop(key, ()) if pair[0] != id(video))
        _kept[key] = (*kept, (id(video), weakref.ref(video.resume_point)))[-_KEPT_PER_SOURCE:]
        while len(_kept) > _KEPT_SOURCES:
            _kept.popitem(last=False)


def take_fresh_source(key: tuple) -> tuple[Any, contextlib.ExitStack] | None:
    """The source (and its owner) of a container opened for the index of ``key`` and not used since: what it
    read (header, ``moov``) is kept in memory, so another backend (TorchCodec) opens it without fetching it
    again. None when there is none."""
    fresh = cast("OpenedVideo | None", decoder_cache.take(fresh_key(key)))
    if fresh is None:
        return None
    released = fresh.release_source()
    if released is None:
        fresh.close()
    elif hasattr(released[0], "resume_recording"):  # the index's recording view: keep what the new open reads
        released[0].resume_recording()
    if released is not None and hasattr(getattr(released[0], "raw", None), "short_reads"):
        released[0].raw.short_reads = False  # TorchCodec fills its 64 KiB buffer whatever a read returns
    return released


#: Containers whose demuxer has read past the header (a Cues block demux, a packet check of an index): one
#: may go back under :func:`fresh_key` (its codec untouched, what it read kept for the next open), but a demux
#: that must start at the first packet needs one that has not moved.
_demuxed: weakref.WeakSet[OpenedVideo] = weakref.WeakSet()


def mark_demuxed(video: OpenedVideo) -> None:
    """Note that ``video``'s demuxer has read past its header."""
    _demuxed.add(video)


def hand_back(key: Hashable, video: OpenedVideo, ok: bool) -> None:
    """After reading packets from a container taken from the cache under ``key``: stop recording its reads,
    note that its demuxer moved past the header, and offer it back (``ok``), or close it (the read failed)."""
    stop = getattr(video.source, "stop_recording", None)
    if stop is not None:
        stop()
    mark_demuxed(video)
    if ok:  # the next decode of the source takes it, with the bytes it kept
        decoder_cache.offer(key, video)
    else:
        video.close()


def was_demuxed(video: OpenedVideo) -> bool:
    """Whether ``video``'s demuxer has read past its header (:func:`mark_demuxed`)."""
    return video in _demuxed


def fresh_key(key: tuple) -> tuple:
    """The cache key of a container of the source ``key`` opened to read its index, nothing decoded yet: the
    next lease of the source, whatever its codec threads, takes it."""
    return ("pyav-fresh", key)
