"""The engine's process-wide caches: open decoders (PyAV containers, TorchCodec decoders), leased to one
thread at a time, and keyframe indexes; :func:`cleanup_cache` empties both.

Open decoders:

* Keyed by source (see :mod:`._identity`) and decoder settings; the cache
  opens and owns each file object (never keyed by a file object's ``str``, which goes stale).
* A lease gives a thread exclusive use of one open decoder: two threads decoding the same video get two
  decoders (FFmpeg demuxers and codecs are not thread-safe). ``refs`` counts the leases out per key.
* Idle decoders are kept LRU, at most :data:`CACHE_SIZE` (env ``AV_CACHE_SIZE``, default 32); the least
  recently used ones are closed beyond that. 32: a DataLoader worker reading random rows of 8-16 videos keeps
  a container per video and the ones holding resume points (2 per video), instead of opening one per
  video per batch (at 320x240, an open cost a fifth of a batch's CPU time). Leased decoders are never
  closed under their user. A decoder left alone for its resume point (``avoid`` in :meth:`LeaseCache.lease`)
  is taken anyway once the cache is full, rather than open another and close one that is needed next (32
  videos x 8 frames per batch, AV1: one re-open per video per batch before).
* Fork-safe: a forked child never touches its parent's decoders. They are dropped without being closed
  (closing would free codec threads that do not exist in the child); the child opens its own.

Keyframe indexes: the last :data:`INDEX_CACHE_SIZE` indexes built, by source key.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import threading
import weakref
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:  # pragma: no cover
    from ._index import VideoIndex

logger = logging.getLogger(__name__)

__all__ = [
    "CACHE_SIZE",
    "INDEX_CACHE_SIZE",
    "LeaseCache",
    "cached_index",
    "cleanup_cache",
    "clear_index_cache",
    "decoder_cache",
    "forget_index",
    "replace_index",
]

CACHE_SIZE = int(os.environ.get("AV_CACHE_SIZE", "32") or 32)
#: Keyframe indexes kept in memory.
INDEX_CACHE_SIZE = 256


class Closeable(Protocol):
    def close(self) -> None: ...


def _close_quietly(obj: Closeable) -> None:
    try:
        obj.close()
    except Exception:  # closing must never mask the caller's result or error
        logger.debug("error while closing %r", obj, exc_info=True)


_ALL = object()  # take_matching: look at every idle decoder


def _untagged(key: Hashable) -> Hashable:
    return None


class LeaseCache:
    """A pool of open decoders keyed by source; see the module docstring.

    ``tag(key)``: the group of a key (the decoder cache: its source); :meth:`lease` and :meth:`take` look only
    at the idle decoders of their key's group, so that a lease costs the same with 1 or 32 sources cached.
    """

    def __init__(self, max_idle: int = CACHE_SIZE, tag: Callable[[Hashable], Hashable] = _untagged):
        self.max_idle = max_idle
        self._tag = tag
        self._lock = threading.Lock()
        self._idle: OrderedDict[tuple[Hashable, int], Closeable] = OrderedDict()
        self._tagged: dict[Hashable, dict[tuple[Hashable, int], None]] = {}  # group -> its idle slots, LRU
        self._refs: dict[Hashable, int] = {}
        self._generation = 0
        self._pid = os.getpid()
        self._orphans: list[Closeable] = []  # inherited across fork: kept alive, never closed
        _instances.add(self)

    def refs(self, key: Hashable) -> int:
        """How many leases of ``key`` are out."""
        with self._lock:
            return self._refs.get(key, 0)

    def __len__(self) -> int:
        """Number of idle (cached) decoders."""
        with self._lock:
            return len(self._idle)

    def lease(
        self,
        key: Hashable,
        open_: Callable[[], Closeable],
        *,
        prefer: Callable[[Hashable, Any], bool] | None = None,
        avoid: Callable[[Any], bool] | None = None,
    ) -> contextlib.AbstractContextManager[Any]:
        """Exclusive use of an open decoder for ``key`` (a cached idle one, else ``open_()``).

        ``prefer(slot_key, decoder)``: an idle decoder it accepts, of any key of ``key``'s group (``tag``),
        is taken before the most recent one of ``key`` (and goes back under its own key).
        ``avoid(decoder)``: idle decoders of ``key`` it accepts are left for others (a new one is opened
        rather than taking them) while the cache has room for one more; once it is full, opening one would
        close another idle decoder (of this or another source) that its own next use would open again, so
        the most recent avoided one is taken instead. Both are called under the cache's lock: keep them
        cheap.
        On normal exit the decoder goes back to the cache; after an error it is closed, since its state
        is unknown.
        """
        return _Lease(self, key, open_, prefer, avoid)

    def _check_out(
        self,
        key: Hashable,
        open_: Callable[[], Closeable],
        prefer: Callable[[Hashable, Any], bool] | None,
        avoid: Callable[[Any], bool] | None,
    ) -> tuple[Hashable, Closeable, int]:
        """Take or open the decoder of a lease: its key (a preferred one's own), it, the generation."""
        group = self._tag(key)
        with self._lock:  # one pass under one lock: a preferred decoder, else one of ``key`` (most leases)
            found = self._take_preferred(group, prefer) if prefer is not None else None
            if found is None:
                found = self._take_unavoided(key, group, avoid)
            if found is not None:
                key, obj = found  # a preferred decoder goes back under its own key
                self._refs[key] = self._refs.get(key, 0) + 1
                return key, obj, self._generation
        obj = open_()
        with self._lock:
            self._refs[key] = self._refs.get(key, 0) + 1
            return key, obj, self._generation

    def lease_preferred(
        self, key: Hashable, prefer: Callable[[Hashable, Any], bool]
    ) -> contextlib.AbstractContextManager[Any] | None:
        """A lease, already entered, of the most recently idle decoder of ``key``'s group that ``prefer``
        accepts (see :meth:`lease`; its ``__exit__`` gives it back), or None: nothing is opened."""
        with self._lock:
            found = self._take_preferred(self._tag(key), prefer)
            if found is None:
                return None
            key, obj = found
            self._refs[key] = self._refs.get(key, 0) + 1
            lease = _Lease(self, key, _never_opened, None, None)
            lease._lease = (key, obj, self._generation)
            return lease

    def _take_preferred(
        self, group: Hashable, prefer: Callable[[Hashable, Any], bool]
    ) -> tuple[Hashable, Closeable] | None:
        """The most recently idle decoder of ``group`` that ``prefer`` accepts, with its key (under the
        lock)."""
        slots = self._tagged.get(group)
        if slots:
            for slot in reversed(slots):
                if prefer(slot[0], self._idle[slot]):
                    return slot[0], self._pop(slot)
        return None

    def _take_unavoided(
        self, key: Hashable, group: Hashable, avoid: Callable[[Any], bool] | None
    ) -> tuple[Hashable, Closeable] | None:
        """The most recent idle decoder of ``key`` that ``avoid`` does not reject; else, when the cache is
        full, the most recent one it rejects; else None (see :meth:`lease`; under the lock)."""
        slots = self._tagged.get(group)
        if not slots:
            return None
        avoided = None
        for slot in reversed(slots):
            if slot[0] != key:
                continue
            if avoid is None or not avoid(self._idle[slot]):
                return key, self._pop(slot)
            if avoided is None:
                avoided = slot
        if avoided is not None and len(self._idle) >= self.max_idle:
            return key, self._pop(avoided)
        return None

    def full(self) -> bool:
        """Whether the idle decoders fill the cache (one more given back closes the least recently used)."""
        with self._lock:
            return len(self._idle) >= self.max_idle

    def idle_count(
        self, match: Callable[[Hashable], bool], usable: Callable[[Any], bool] | None = None
    ) -> int:
        """How many idle decoders have a key that ``match`` accepts (and that ``usable`` accepts; called
        under the lock: keep it cheap)."""
        with self._lock:
            return sum(
                1 for slot, obj in self._idle.items() if match(slot[0]) and (usable is None or usable(obj))
            )

    def offer(self, key: Hashable, obj: Closeable) -> None:
        """Add ``obj``, opened elsewhere and not leased, to the idle decoders of ``key`` (as given back)."""
        with self._lock:
            self._refs[key] = self._refs.get(key, 0) + 1
            generation = self._generation
        self._give_back(key, obj, generation, True)

    def take(self, key: Hashable) -> Closeable | None:
        """Remove and return an idle decoder of ``key`` (the caller now owns it), or None."""
        return self._take(key)

    def take_matching(
        self, match: Callable[[Hashable, Any], bool], *, tag: Any = _ALL
    ) -> tuple[Hashable, Closeable] | None:
        """Remove and return the most recently idle decoder that ``match(key, decoder)`` accepts, with its key
        (the caller now owns it; :meth:`offer` gives it back), or None. ``tag``: look only at the keys of
        that group. ``match`` runs under the cache's lock: keep it cheap."""
        with self._lock:
            slots = self._idle if tag is _ALL else self._tagged.get(tag, {})
            for slot in reversed(slots):
                if match(slot[0], self._idle[slot]):
                    return slot[0], self._pop(slot)
        return None

    def _take(self, key: Hashable) -> Closeable | None:
        found = self.take_matching(lambda slot_key, _: slot_key == key, tag=self._tag(key))
        return None if found is None else found[1]

    def _pop(self, slot: tuple[Hashable, int]) -> Closeable:
        """Remove an idle slot (under the lock)."""
        group = self._tag(slot[0])
        slots = self._tagged[group]
        del slots[slot]
        if not slots:
            del self._tagged[group]
        return self._idle.pop(slot)

    def _give_back(self, key: Hashable, obj: Closeable, generation: int, reusable: bool) -> None:
        evicted: list[Closeable] = []
        with self._lock:
            if os.getpid() != self._pid:  # leased before a fork; not ours to close
                self._orphans.append(obj)
                return
            refs = self._refs.get(key, 1) - 1
            if refs:
                self._refs[key] = refs
            else:
                self._refs.pop(key, None)
            if reusable and generation == self._generation:
                slot = (key, id(obj))
                self._idle[slot] = obj
                self._tagged.setdefault(self._tag(key), {})[slot] = None
                while len(self._idle) > self.max_idle:
                    evicted.append(self._pop(next(iter(self._idle))))
            else:
                evicted.append(obj)
        for old in evicted:
            _close_quietly(old)

    def clear(self) -> None:
        """Close every idle decoder; leased ones are closed when given back."""
        with self._lock:
            idle = list(self._idle.values())
            self._idle.clear()
            self._tagged.clear()
            self._generation += 1
        for obj in idle:
            _close_quietly(obj)

    def discard(self, match: Callable[[Hashable], bool]) -> None:
        """Close the idle decoders whose key matches; leased ones (of any key) are closed when given back."""
        with self._lock:
            stale = [slot for slot in self._idle if match(slot[0])]
            dropped = [self._pop(slot) for slot in stale]
            self._generation += 1
        for obj in dropped:
            _close_quietly(obj)

    def _after_fork_in_child(self) -> None:
        self._lock = threading.Lock()
        self._orphans.extend(self._idle.values())
        self._idle.clear()
        self._tagged.clear()
        self._refs.clear()
        self._generation += 1
        self._pid = os.getpid()


def _after_fork_in_child() -> None:
    for cache in list(_instances):
        cache._after_fork_in_child()


_instances: weakref.WeakSet[LeaseCache] = weakref.WeakSet()
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


def _never_opened() -> Closeable:
    raise AssertionError("a lease of an idle decoder opens none")


class _Lease:
    """One lease of :meth:`LeaseCache.lease` (a plain context manager: one per decoded span, kept cheap)."""

    __slots__ = ("_avoid", "_cache", "_key", "_lease", "_open", "_prefer")

    def __init__(
        self,
        cache: LeaseCache,
        key: Hashable,
        open_: Callable[[], Closeable],
        prefer: Callable[[Hashable, Any], bool] | None,
        avoid: Callable[[Any], bool] | None,
    ):
        self._cache, self._key, self._open, self._prefer, self._avoid = cache, key, open_, prefer, avoid
        self._lease: tuple[Hashable, Closeable, int] | None = None

    def __enter__(self) -> Any:
        if self._lease is None:  # (one from lease_preferred comes checked out)
            self._lease = self._cache._check_out(self._key, self._open, self._prefer, self._avoid)
        return self._lease[1]

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        lease, self._lease = self._lease, None
        if lease is not None:  # back to the cache on normal exit; closed after an error (its state unknown)
            self._cache._give_back(lease[0], lease[1], lease[2], exc_type is None)


def _source_of(key: Hashable) -> Hashable:
    """The source key inside a decoder cache key (``("pyav", source, threads)``, ``("pyav-fresh", source)``,
    TorchCodec's ``(..., source, ...)``): the group :meth:`LeaseCache.lease` looks in."""
    return key[1] if isinstance(key, tuple) and len(key) > 1 else key


#: The process-wide cache shared by the PyAV and TorchCodec backends.
decoder_cache = LeaseCache(tag=_source_of)


_index_cache: OrderedDict[Hashable, VideoIndex] = OrderedDict()
_index_lock = threading.Lock()


def cached_index(key: Hashable, build: Callable[[], VideoIndex]) -> VideoIndex:
    """The index cached under ``key`` (a source key), building it on a miss."""
    with _index_lock:
        found = _index_cache.get(key)
        if found is not None:
            _index_cache.move_to_end(key)
            return found
    index = build()  # outside the lock: scans of different videos run in parallel
    with _index_lock:
        index = _index_cache.setdefault(key, index)
        _index_cache.move_to_end(key)
        while len(_index_cache) > INDEX_CACHE_SIZE:
            _index_cache.popitem(last=False)
    return index


def replace_index(key: Hashable, index: VideoIndex, replaces: Callable[[VideoIndex], bool]) -> None:
    """Cache ``index`` under ``key`` in place of the cached one, where ``replaces(cached)`` (a newer snapshot
    of a progressive index); nothing when ``key`` is not cached (forgotten since)."""
    with _index_lock:
        cached = _index_cache.get(key)
        if cached is not None and replaces(cached):
            _index_cache[key] = index


def forget_index(key: Hashable) -> None:
    """Forget the index cached under ``key``."""
    with _index_lock:
        _index_cache.pop(key, None)


def clear_index_cache() -> None:
    """Forget every keyframe index kept in memory."""
    with _index_lock:
        _index_cache.clear()


def cleanup_cache() -> None:
    """Close every cached decoder and forget the cached keyframe indexes.

    Decoders leased by running decodes are closed when given back. Indexes stored on disk for remote videos
    (see ``HF_MEDIAREF_CACHE_DIR``) stay.

    Example:
        ```python
        >>> import hf_mediaref
        >>> hf_mediaref.cleanup_cache()
        ```
    """
    decoder_cache.clear()
    clear_index_cache()
    _release_free_memory()


def _release_free_memory() -> None:
    """Hand the heap's free pages back to the OS (glibc ``malloc_trim``; nothing elsewhere).

    Decoding in threads leaves freed codec and frame buffers in glibc's per-thread arenas, so RSS rises over a
    long run and levels off (measured: +45 MB over 24,000 frames of 60 videos, back to the warm baseline after
    a trim); none of it is live data.
    """
    try:
        libc = ctypes.CDLL(None)
        trim = libc.malloc_trim
    except (OSError, AttributeError):  # not glibc
        return
    trim(0)
