"""Cache of open decoders (PyAV containers, TorchCodec decoders): leased to one thread at a time.

* Keyed by source (URI + storage options + the local file's mtime/size) and decoder settings; the cache
  opens and owns each file object (never keyed by a file object's ``str``, which goes stale).
* A lease gives a thread exclusive use of one open decoder: two threads decoding the same video get two
  decoders (FFmpeg demuxers and codecs are not thread-safe). ``refs`` counts the leases out per key.
* Idle decoders are kept LRU, at most :data:`CACHE_SIZE` (env ``AV_CACHE_SIZE``, default 10); the least
  recently used ones are closed beyond that. Leased decoders are never closed under their user.
* Fork-safe: a forked child never touches its parent's decoders. They are dropped without being closed
  (closing would free codec threads that do not exist in the child); the child opens its own.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import threading
import weakref
from collections import OrderedDict
from typing import Any, Callable, Hashable, Iterator, Protocol

from ..io.uri import UriKind, classify_uri, local_path

logger = logging.getLogger(__name__)

__all__ = ["LeaseCache", "decoder_cache", "source_key", "CACHE_SIZE", "cleanup_cache"]

CACHE_SIZE = int(os.environ.get("AV_CACHE_SIZE", "10") or 10)


class Closeable(Protocol):
    def close(self) -> None: ...


def _close_quietly(obj: Closeable) -> None:
    try:
        obj.close()
    except Exception:  # closing must never mask the caller's result or error
        logger.debug("error while closing %r", obj, exc_info=True)


class LeaseCache:
    """A pool of open decoders keyed by source; see the module docstring."""

    def __init__(self, max_idle: int = CACHE_SIZE):
        self.max_idle = max_idle
        self._lock = threading.Lock()
        self._idle: "OrderedDict[tuple[Hashable, int], Closeable]" = OrderedDict()
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

    @contextlib.contextmanager
    def lease(self, key: Hashable, open_: Callable[[], Closeable]) -> Iterator[Any]:
        """Exclusive use of an open decoder for ``key`` (a cached idle one, else ``open_()``).

        On normal exit the decoder goes back to the cache; after an error it is closed, since its state
        is unknown.
        """
        obj = self._take(key)
        if obj is None:
            obj = open_()
        with self._lock:
            self._refs[key] = self._refs.get(key, 0) + 1
            generation = self._generation
        ok = False
        try:
            yield obj
            ok = True
        finally:
            self._give_back(key, obj, generation, ok)

    def _take(self, key: Hashable) -> Closeable | None:
        with self._lock:
            for slot in reversed(self._idle):
                if slot[0] == key:
                    return self._idle.pop(slot)
        return None

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
                self._idle[(key, id(obj))] = obj
                while len(self._idle) > self.max_idle:
                    evicted.append(self._idle.popitem(last=False)[1])
            else:
                evicted.append(obj)
        for old in evicted:
            _close_quietly(old)

    def clear(self) -> None:
        """Close every idle decoder; leased ones are closed when given back."""
        with self._lock:
            idle = list(self._idle.values())
            self._idle.clear()
            self._generation += 1
        for obj in idle:
            _close_quietly(obj)

    def _after_fork_in_child(self) -> None:
        self._lock = threading.Lock()
        self._orphans.extend(self._idle.values())
        self._idle.clear()
        self._refs.clear()
        self._generation += 1
        self._pid = os.getpid()


def _after_fork_in_child() -> None:
    for cache in list(_instances):
        cache._after_fork_in_child()


_instances: "weakref.WeakSet[LeaseCache]" = weakref.WeakSet()
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)

#: The process-wide cache shared by the PyAV and TorchCodec backends.
decoder_cache = LeaseCache()


def _options_digest(storage_options: dict | None) -> str:
    if not storage_options:
        return ""
    text = json.dumps(storage_options, sort_keys=True, default=repr)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def source_key(uri: str, storage_options: dict | None = None) -> tuple:
    """A cache key that changes when the media may have changed: local files add their mtime and size.

    Raises :class:`~hf_mediaref.errors.MediaNotFoundError` for a missing local file.
    """
    if classify_uri(uri) in (UriKind.LOCAL, UriKind.FILE):
        from ..errors import MediaNotFoundError, describe_uri

        path = local_path(uri)
        try:
            st = os.stat(path)
        except OSError:
            raise MediaNotFoundError(f"media file {describe_uri(uri)} does not exist", uri=uri) from None
        return (os.path.abspath(path), st.st_mtime_ns, st.st_size, st.st_ino)
    return (uri, _options_digest(storage_options))


def cleanup_cache() -> None:
    """Close every cached decoder and forget the cached keyframe indexes."""
    from .index import clear_index_cache

    decoder_cache.clear()
    clear_index_cache()
