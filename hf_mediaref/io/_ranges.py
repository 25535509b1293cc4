"""Byte ranges of remote files fetched ahead, many requests in flight, for the files that read them next.

A batch knows, before it decodes, which bytes it will read: each video's head and the keyframe blocks of its
spans (``video/_batch`` plans them from the index). :func:`prefetch` sends those requests together, at most
``concurrency`` in flight per host (an HTTP/1.1 connection each, on threads of their own: network waits never
take a decode thread), after merging ranges that lie closer than :data:`COALESCE_GAP`. The Range files of the
batch (:class:`~._http._RangeReader`) then serve a read at a position a fetched range holds from it,
waiting for it while it is in flight, instead of sending their own request; a read nothing was fetched for
goes to the server as before. The same store serves ``gs://`` files read through their filesystem
(:mod:`._pinned`): their ranges are fetched with the filesystem's own ranged reads, pinned to the object's
generation, and kept under the object's URL and a digest of the filesystem's options.

Guarantees kept: every request runs in a copy of the planning call's context, so under its deadline
(``timeout=``: :class:`~hf_mediaref.errors.DecodeTimeoutError`) and its public-address rule
(:mod:`._network`); ranges fetched under one rule are never served to a read under another. Every fetched
answer is a checked ``206`` (``Content-Range``, length) whose validators (ETag, Last-Modified, size) the
reading file compares with the version it opened: another version raises
:class:`~hf_mediaref.errors.RemoteChangedError`, as its own requests would. A range whose fetch failed is
dropped and read again by the file itself, which raises what a failure raises there. Fetched bytes are
kept until every planned read took them, for :data:`MAX_AGE` seconds at most, and :data:`MAX_BYTES` in all.
"""

from __future__ import annotations

import concurrent.futures
import contextvars
import dataclasses
import hashlib
import json
import logging
import os
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from ..errors import describe_uri
from ._network import needs_public_address

logger = logging.getLogger(__name__)

__all__ = [
    "COALESCE_GAP",
    "DEFAULT_CONCURRENCY",
    "EVERY_OPEN",
    "Fetch",
    "adopt",
    "coalesce",
    "filesystem_token",
    "forget",
    "prefetch",
    "release",
    "store_key",
    "take",
]


def store_key(location: str, credentials: dict[str, str] | None = None) -> str:
    """What ranges of ``location`` fetched with ``credentials`` are kept under: ``location`` itself without
    them, else ``location`` marked with a digest of them (the request headers of an HTTP read, or
    :func:`filesystem_token` of the fsspec filesystem that signs or reads), so that bytes fetched with one
    token or one user's filesystem are never served to a file read with another (or none). The mark is a
    fragment: the host (the per-host limit) is the same."""
    if not credentials:
        return location
    digest = hashlib.sha256(json.dumps(sorted(credentials.items())).encode()).hexdigest()[:16]
    return f"{location}#hf_mediaref-headers-{digest}"


def filesystem_token(fs: Any) -> str:
    """A digest of an fsspec filesystem's class and options (``hash(fs)``: fsspec's token of them): the same
    for every file of one user's filesystem, another for other credentials or endpoints."""
    return hashlib.sha256(f"{type(fs).__module__}.{type(fs).__name__}:{hash(fs)}".encode()).hexdigest()[:16]


#: Fetches ``[start, end)`` of a URL: ``(the bytes from start, possibly fewer; the answer's validators)``.
Fetch = Callable[[str, int, int], tuple[bytes, Any]]

#: Requests in flight per host by default (``DecodeOptions.io_concurrency``).
DEFAULT_CONCURRENCY = 16
#: Two ranges closer than this are fetched in one request: fewer round trips for a few unread bytes.
COALESCE_GAP = 64 << 10
#: The largest request a merge makes.
MAX_REQUEST = 32 << 20
#: Fetched bytes kept in all (oldest first out) and the longest they wait for their read.
MAX_BYTES = 256 << 20
MAX_AGE = 60.0
#: The ``uses`` of a range that every open of the file reads (its head, an index at its end): kept for every
#: container the batch opens, however many that turns out to be, until the batch releases it (or it ages out).
EVERY_OPEN = 1 << 30


@dataclasses.dataclass(eq=False)
class _Entry:
    start: int
    end: int  # exclusive
    future: concurrent.futures.Future
    uses: int  # planned reads left to take it
    created: float
    owner: object  # what planned it (a batch): :func:`release` drops what it left untaken
    #: the other calls that planned reads of it since (a batch running now, and the next one fetched
    #: ahead, often read the same block): its owner's release hands it to the first of them
    claimants: list[object] = dataclasses.field(default_factory=list)


_lock = threading.Lock()
_entries: dict[tuple[str, bool], list[_Entry]] = {}
_pools: dict[tuple[int, str, int], concurrent.futures.ThreadPoolExecutor] = {}


def _pool(url: str, concurrency: int) -> concurrent.futures.ThreadPoolExecutor:
    host = urllib.parse.urlsplit(url).netloc.lower()
    key = (os.getpid(), host, concurrency)  # a forked child (a DataLoader worker) starts its own threads
    pool = _pools.get(key)
    if pool is None:
        pool = _pools[key] = concurrent.futures.ThreadPoolExecutor(
            concurrency, thread_name_prefix="hf_mediaref-io"
        )
    return pool


def coalesce(
    ranges: Iterable[tuple[int, int] | tuple[int, int, int]], gap: int = COALESCE_GAP
) -> list[tuple[int, int, int]]:
    """``[start, end)`` ranges (with how many reads take each, default 1; :data:`EVERY_OPEN`: all of them)
    merged where closer than ``gap`` (and no larger than :data:`MAX_REQUEST`), sorted, each with the reads
    of the ranges it holds.

    The default gap is about what FFmpeg reads through rather than seek over (a forward seek within its
    32 KiB buffer and 32 KiB short-seek threshold reads the bytes between): a merged range holds them."""
    merged: list[list[int]] = []
    for start, end, uses in sorted((int(r[0]), int(r[1]), int(r[2]) if len(r) > 2 else 1) for r in ranges):
        if end <= start:
            continue
        last = merged[-1] if merged else None
        if last is not None and start - last[1] <= gap and max(end, last[1]) - last[0] <= MAX_REQUEST:
            last[1], last[2] = max(last[1], end), min(last[2] + uses, EVERY_OPEN)
        else:
            merged.append([start, end, uses])
    return [(a, b, n) for a, b, n in merged]


def _expire(now: float) -> None:
    """Drop entries past :data:`MAX_AGE`, then the oldest done ones past :data:`MAX_BYTES` (lock held)."""
    total = 0
    everything = []
    for key, entries in list(_entries.items()):
        kept = [e for e in entries if now - e.created < MAX_AGE]
        if kept:
            _entries[key] = kept
            everything += [(e.created, key, e) for e in kept]
            total += sum(e.end - e.start for e in kept)
        else:
            del _entries[key]
    for _, key, entry in sorted(everything, key=lambda t: t[0]):
        if total <= MAX_BYTES:
            break
        if entry.future.done():
            _entries[key].remove(entry)
            total -= entry.end - entry.start


def prefetch(
    url: str,
    ranges: Sequence[tuple[int, int, int]],
    fetch: Fetch,
    concurrency: int = DEFAULT_CONCURRENCY,
    owner: object = None,
) -> int:
    """Fetch ``[start, end)`` byte ranges of ``url`` ahead, at most ``concurrency`` requests in flight per
    host; ``uses``: how many reads will take each (it is dropped after that many). What a pending fetch
    already holds is not fetched again (a range's start or end inside it: only the rest is). Returns the
    number of requests sent.

    Args:
        url: an ``http(s)://`` URL, or the key a file's ranges are kept under (:mod:`._remote`,
            :mod:`._pinned`): its host part (a bucket) is what ``concurrency`` limits.
        ranges: ``(start, end, uses)`` triples (see :func:`coalesce`).
        fetch: what fetches one range (``_http``: a checked ranged GET; ``_pinned``: a pinned ranged read of
            the filesystem).
        concurrency: the most requests in flight to the URL's host.
        owner: what the ranges are fetched for; :func:`release` of it drops those left untaken.
    """
    key = (url, needs_public_address(url))
    now = time.monotonic()
    sent = 0
    with _lock:
        _expire(now)
        entries = _entries.setdefault(key, [])
        for start, end, uses in ranges:
            if end <= start or uses <= 0:
                continue
            # what a pending fetch holds is not asked for again, only the rest: fetched for this call (a
            # head asked before the blocks merged with it), its reads are counted once; fetched for another
            # call (the batch decoding now, a later one fetched ahead: consecutive batches often read the
            # same block), this call's reads are added, and the range stays until both took it
            for held in sorted(entries, key=lambda e: e.start):
                if held.start <= start < held.end or held.start < end <= held.end:
                    if held.owner is owner:
                        held.uses = max(held.uses, uses)
                    else:
                        held.uses = min(held.uses + uses, EVERY_OPEN)
                        if owner not in held.claimants:
                            held.claimants.append(owner)
                    if held.start <= start:
                        start = max(start, held.end)
                    else:
                        end = min(end, held.start)
                if end <= start:
                    break
            if end <= start:
                continue
            context = contextvars.copy_context()  # the deadline and the public-address rule of this call
            future = _pool(url, concurrency).submit(context.run, fetch, url, start, end)
            entries.append(_Entry(start, end, future, uses, now, owner))
            sent += 1
    return sent


def take(url: str, pos: int, seen: set[int], timeout: float) -> tuple[int, bytes, Any] | None:
    """The bytes fetched ahead that hold position ``pos`` of ``url`` (waiting for them while in flight, at
    most ``timeout`` seconds): ``(start, data, validators)``, or None (nothing holds ``pos``, or its fetch
    failed). ``seen``: the ids of the ranges the reading file took before (each file counts once toward a
    range's planned reads).

    Raises:
        concurrent.futures.TimeoutError: the bytes did not come within ``timeout``.
    """
    key = (url, needs_public_address(url))
    with _lock:
        entries = _entries.get(key)
        if not entries:
            return None
        entry = next((e for e in entries if e.start <= pos < e.end), None)
    if entry is None:
        return None
    try:
        data, validators = entry.future.result(timeout=max(0.0, timeout))
    except concurrent.futures.TimeoutError:
        raise
    except (Exception, concurrent.futures.CancelledError) as exc:  # the file reads (and raises) itself
        logger.debug(
            "fetching bytes %d-%d of %s ahead failed: %s", entry.start, entry.end - 1, describe_uri(url), exc
        )
        _drop(key, entry)
        return None
    if not entry.start <= pos < entry.start + len(data):  # a shorter answer than asked
        return None
    if id(entry) not in seen:
        seen.add(id(entry))
        with _lock:
            entry.uses -= 1
            if entry.uses <= 0 and key in _entries and entry in _entries[key]:
                _entries[key].remove(entry)
    return entry.start, data, validators


def _drop(key: tuple[str, bool], entry: _Entry) -> None:
    with _lock:
        if key in _entries and entry in _entries[key]:
            _entries[key].remove(entry)


def release(owner: object) -> None:
    """Drop the ranges fetched for ``owner`` that no read took (its batch is done); those not sent yet are
    not sent. A range another call planned reads of too is handed to that call instead."""
    with _lock:
        for key, entries in list(_entries.items()):
            kept = []
            for entry in entries:
                if owner in entry.claimants:
                    entry.claimants.remove(owner)
                if entry.owner is not owner:
                    kept.append(entry)
                elif entry.claimants:
                    entry.owner = entry.claimants.pop(0)
                    kept.append(entry)
                else:
                    entry.future.cancel()
            if kept:
                _entries[key] = kept
            else:
                del _entries[key]


def adopt(planned_for: object, owner: object) -> None:
    """The ranges fetched ahead for a call (``planned_for``: what :func:`prefetch` was given as its owner)
    become ``owner``'s, the call that now runs: its reads of them count once, and its :func:`release` drops
    what they left."""
    with _lock:
        for entries in _entries.values():
            for entry in entries:
                if entry.owner is planned_for:
                    entry.owner = owner
                if planned_for in entry.claimants:
                    entry.claimants.remove(planned_for)
                    if entry.owner is not owner and owner not in entry.claimants:
                        entry.claimants.append(owner)


def forget(url: str) -> None:
    """Drop every range of ``url`` fetched ahead (it changed)."""
    with _lock:
        for key in [k for k in _entries if k[0] == url]:
            for entry in _entries.pop(key):
                entry.future.cancel()


def _after_fork_in_child() -> None:
    """A forked child (a DataLoader worker) has none of the parent's I/O threads: their fetches never end
    there. It starts with an empty store and a fresh lock."""
    global _lock
    _lock = threading.Lock()
    _entries.clear()
    _pools.clear()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


def pending(url: str) -> int:
    """Ranges of ``url`` fetched ahead and not taken yet (for tests)."""
    with _lock:
        return sum(len(v) for k, v in _entries.items() if k[0] == url)
