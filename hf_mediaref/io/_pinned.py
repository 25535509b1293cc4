"""fsspec files read at the version they opened, through the filesystem's own async API, with the byte ranges
a batch plans fetched ahead with many requests in flight (:mod:`._ranges`): ``gs://`` (``gcsfs``).

Some fsspec filesystems are not read over HTTP (:mod:`._remote`: their credentials cannot be handed to
another client), but can read a byte range of one version of an object: a ``version_aware`` ``gcsfs``
filesystem reads ``path#<generation>`` (``cat_file(path#generation, start=, end=)``, its zonal-bucket reads
included), with its own credentials, refreshed as it needs (:func:`pin_of`: the user's filesystem where it
is version-aware, else one of the same options that is). Such a file (:func:`open_pinned`) takes the version
its open saw (``info``: size and generation; an ``info`` of the object asked less than :data:`OPEN_AGE`
seconds before, by a fetch ahead or another open, stands: the containers of a batch ask once) and reads
every byte at that version:

- a read at a position that bytes fetched ahead hold is served from them (waited for within the running
  call's deadline); fetched bytes of another version are never served (they are dropped, and the file reads
  itself);
- any other read is one ranged ``cat_file`` of the version opened, sized as the HTTP road's Range files
  size theirs (:class:`~._readahead.AdaptiveRangeFile`, the class both share: the read-ahead, and the
  keyframe blocks the video code announces, so that it drains its decoder at a block's last target packet
  instead of reading on past it); an object that no longer has that version (overwritten or deleted since
  the open) raises :class:`~hf_mediaref.errors.RemoteChangedError`: never bytes of two versions.
  (``gcsfs``'s own file object reads whatever version is current: it does not pin its reads.)

:func:`prefetch_pinned` fetches planned ranges on :mod:`._ranges`'s I/O threads: each one ``cat_file`` run on
fsspec's event loop, so several threads keep several requests in flight. Each fetch is pinned to the version
the filesystem reported last for the object (asked once and kept :data:`VERSION_AGE` seconds; an open that
asks replaces it, a read that finds it gone drops it), and comes back marked with it. Every wait is
bounded: the fetches and reads run under the running call's deadline (``timeout=``:
:class:`~hf_mediaref.errors.DecodeTimeoutError`; else ``HF_MEDIAREF_HTTP_DEADLINE``), each call on the
event loop cancelled when it passes. Ranges are kept under the object's URL and a digest of the
filesystem's options (:func:`~._ranges.filesystem_token`): a file of other credentials never takes them.
A fetch that fails is dropped: the file reads those bytes itself.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import dataclasses
import io
import logging
import os
import threading
import time
from typing import Any

from ..errors import RemoteAccessError, RemoteChangedError, describe_uri
from . import _ranges
from ._http import _Deadline, settings
from ._network import public_address_rule
from ._readahead import AdaptiveRangeFile
from ._uri import uri_scheme

__all__ = [
    "OPEN_AGE",
    "VERSION_AGE",
    "Pin",
    "open_pinned",
    "pin_of",
    "pinned_reads",
    "prefetch_pinned",
]

logger = logging.getLogger(__name__)

#: Seconds the ``info`` a filesystem reported for an object (its version and size) pins the fetches ahead of
#: it (as long as fetched bytes are kept: :data:`._ranges.MAX_AGE`).
VERSION_AGE = _ranges.MAX_AGE
#: Seconds it stands for the object in a file opened meanwhile (the containers a batch opens, one round trip
#: each fewer), as a Range file opens on the head and validators fetched ahead for its batch.
OPEN_AGE = 5.0


@dataclasses.dataclass(frozen=True)
class Pin:
    """How a file is read at one version: ``fs``, a version-aware filesystem of the user's options, reads
    ``path#<version>`` (a path that names a version already is read as it is); ``field`` is the ``info``
    field that names the version."""

    fs: Any
    field: str

    def at(self, path: str, version: str) -> str:
        """``path`` pinned to ``version``."""
        return path if self.fs.split_path(path)[2] else f"{path}#{version}"


#: The ``info`` field of an object's version, by the URI schemes whose filesystems read one version of an
#: object given as ``path#<version>`` when ``version_aware`` (``gcsfs``: its generation).
_VERSION_FIELDS = {"gs": "generation", "gcs": "generation"}


def pinned_reads(uri: str) -> bool:
    """Whether files of ``uri``'s protocol are read at a pinned version (:func:`open_pinned`), which
    decides whether their byte ranges are planned and fetched ahead."""
    return uri_scheme(uri) in _VERSION_FIELDS


def pin_of(uri: str, fs: Any, path: str) -> Pin | None:
    """How the file ``path`` of ``fs`` (``uri``'s filesystem) is read at one version: through ``fs`` itself
    where it is ``version_aware``, else through a version-aware filesystem of the same options (fsspec keeps
    one instance per options: made once). None where it cannot be (another protocol, a filesystem without
    an async API, a path with ``#`` or ``?`` that a version-aware filesystem would read otherwise)."""
    field = _VERSION_FIELDS.get(uri_scheme(uri) or "")
    if field is None or not getattr(fs, "async_impl", False) or not hasattr(fs, "_cat_file"):
        return None
    if getattr(fs, "version_aware", False):
        return Pin(fs, field)
    if "#" in path or "?" in path:  # part of the object's name here, a version there
        return None
    try:
        aware = type(fs)(**{**fs.storage_options, "version_aware": True})
    except Exception as exc:  # a filesystem that takes no version_aware
        logger.debug("no version-aware %s filesystem (%s)", type(fs).__name__, type(exc).__name__)
        return None
    return Pin(aware, field) if getattr(aware, "version_aware", False) else None


def _store_key(fs: Any, path: str) -> str:
    """What ranges of ``path`` fetched with ``fs`` are kept under (:mod:`._ranges`)."""
    return _ranges.store_key(fs.unstrip_protocol(path), {"reader": _ranges.filesystem_token(fs)})


def _call(fs: Any, deadline: _Deadline, what: str, uri: str, method: Any, *args: Any, **kwargs: Any) -> Any:
    """``method`` (a coroutine function of ``fs``) run on fsspec's event loop, cancelled at ``deadline``.

    Raises:
        DecodeTimeoutError: the operation's deadline passed (``timeout=``).
        RemoteAccessError: ``HF_MEDIAREF_HTTP_DEADLINE`` passed.
    """
    import fsspec.asyn
    import fsspec.exceptions

    remaining = deadline.remaining()
    if remaining <= 0:
        raise deadline.error(what, uri)
    try:
        return fsspec.asyn.sync(fs.loop, method, *args, timeout=max(0.001, remaining), **kwargs)
    except fsspec.exceptions.FSTimeoutError:
        raise deadline.error(what, uri) from None


_lock = threading.Lock()
#: key -> (when it was asked, the ``info`` the filesystem reported: a future while it is being asked)
_versions: dict[str, tuple[float, concurrent.futures.Future]] = {}


def _remember(key: str, info: dict) -> None:
    future: concurrent.futures.Future = concurrent.futures.Future()
    future.set_result(info)
    now = time.monotonic()
    with _lock:
        for old in [k for k, (when, _) in _versions.items() if now - when >= VERSION_AGE]:
            del _versions[old]
        _versions[key] = (now, future)


def _info(pin: Pin, path: str, uri: str, key: str, deadline: _Deadline, age: float) -> dict:
    """The ``info`` of ``path`` (its version and size): the last one reported (within ``age`` seconds),
    else asked once, by whichever fetch or open asks first; the others wait for that answer (within
    ``deadline``)."""
    now = time.monotonic()
    with _lock:
        known = _versions.get(key)
        stale = known is None or now - known[0] >= age
        if not stale and known is not None and known[1].done() and known[1].exception() is not None:
            stale = True  # the last ask failed: ask again
        if stale:
            future: concurrent.futures.Future = concurrent.futures.Future()
            _versions[key] = (now, future)
        else:
            assert known is not None
            future = known[1]
    if stale:
        try:
            future.set_result(_call(pin.fs, deadline, "asking the version of", uri, pin.fs._info, path))
        except BaseException as exc:
            future.set_exception(exc)
            raise
    try:
        return dict(future.result(timeout=max(0.0, deadline.remaining())))
    except concurrent.futures.TimeoutError:
        raise deadline.error("asking the version of", uri) from None


def prefetch_pinned(
    uri: str, path: str, pin: Pin, ranges: list[tuple[int, int, int]], concurrency: int, owner: object = None
) -> int:
    """Fetch byte ranges of the fsspec file ``path`` (``uri``'s) ahead, through the filesystem of ``pin``
    (:func:`pin_of`), for the files :func:`open_pinned` opens next: ``(start, end, uses)`` triples (see
    :func:`._ranges.prefetch`), each one ranged ``cat_file`` of the object's current version, at most
    ``concurrency`` in flight. Returns the requests sent."""
    fs = pin.fs
    key = _store_key(fs, path)

    def fetch(_key: str, start: int, end: int) -> tuple[bytes, str]:
        deadline = _Deadline()  # the planning call's deadline: its context is copied (_ranges.prefetch)
        version = str(_info(pin, path, uri, key, deadline, VERSION_AGE)[pin.field])
        what = f"fetching bytes {start}-{end - 1} of"
        data = _call(fs, deadline, what, uri, fs._cat_file, pin.at(path, version), start=start, end=end)
        return bytes(data), version

    with public_address_rule(None):  # the filesystem's endpoint is the user's configuration, as for s3://
        return _ranges.prefetch(key, ranges, fetch, concurrency, owner)


def open_pinned(uri: str, path: str, pin: Pin) -> io.BufferedReader | None:
    """A seekable binary file over the fsspec file ``path`` (``uri``'s) that reads the version its open saw,
    through the filesystem of ``pin`` (:func:`pin_of`; see the module docstring), or None where its ``info``
    names no version of a file (fsspec's file object reads it, or says what is wrong).

    Returns:
        A buffered reader; its ``raw`` has ``version`` (the object's version and size, for keying what is
        learned from it: :func:`~._sources.source_version`), ``details`` (its ``info``), ``requests`` and
        ``bytes_read`` (of its own reads).

    Raises:
        FileNotFoundError: nothing at ``path`` (what ``fs`` raises).
        DecodeTimeoutError: the operation's deadline passed.
    """
    key = _store_key(pin.fs, path)
    info = _info(pin, path, uri, key, _Deadline(), OPEN_AGE)
    if info.get("type", "file") != "file" or not info.get(pin.field) or info.get("size") is None:
        return None
    return io.BufferedReader(_PinnedReader(uri, path, info, pin, key), buffer_size=32 << 10)


class _PinnedReader(AdaptiveRangeFile):
    """A raw file over one version of an fsspec object (see the module docstring): the read-ahead, the read
    hints and the ranges fetched ahead of :class:`~._readahead.AdaptiveRangeFile`, each fetch one ranged
    ``cat_file`` of the version opened; ``key``: what its ranges fetched ahead are kept under."""

    def __init__(self, uri: str, path: str, info: dict, pin: Pin, key: str):
        self.uri = uri
        self._pin = pin
        #: The object's ``info`` at the open.
        self.details = info
        self._version = str(info[pin.field])
        self._size = int(info["size"])
        #: Changes when the object changes: its version and size, written as the HTTP road's Range files
        #: write theirs (``"<validator>; <size>"``: what the batch planner reads a file's size from).
        self.version = f"{pin.field} {self._version}; {self._size}"
        self._path = pin.at(path, self._version)  # every read of it: that version
        self._key = key
        self._init_readahead(settings.readahead, settings.min_readahead, settings.small_read)

    def _new_deadline(self) -> _Deadline:
        return _Deadline()

    def _rule(self) -> contextlib.AbstractContextManager[None]:
        return public_address_rule(None)  # the filesystem's endpoint is the user's (as prefetch_pinned's)

    def take_ahead(self, pos: int, deadline: Any = None) -> bool:
        """Serve the read at ``pos`` from bytes fetched ahead of the version opened; False when none hold
        it (those of another version are dropped)."""
        deadline = deadline or _Deadline()
        try:
            hit = _ranges.take(self._key, pos, self.taken_ahead, deadline.remaining())
        except concurrent.futures.TimeoutError:
            raise deadline.error(f"waiting for byte {pos} of", self.uri) from None
        if hit is None:
            return False
        start, data, version = hit
        if version != self._version:  # fetched at another version: never served, and not fetched so again
            logger.debug(
                "%s: bytes fetched ahead at %s %s, opened at %s: read again",
                describe_uri(self.uri),
                self._pin.field,
                version,
                self._version,
            )
            _ranges.forget(self._key)
            _remember(self._key, self.details)  # fetches ahead from now on pin the file's
            return False
        self._took(data, start)
        return True

    def _fetch(self, start: int, length: int, deadline: Any = None) -> None:
        """One ranged ``cat_file`` of the version opened."""
        deadline = deadline or _Deadline()
        end = min(self._size or 0, start + length)
        what = f"reading bytes {start}-{end - 1} of"
        try:
            fs = self._pin.fs
            data = _call(fs, deadline, what, self.uri, fs._cat_file, self._path, start=start, end=end)
        except FileNotFoundError as exc:  # that version is gone: overwritten or deleted since the open
            with _lock:
                _versions.pop(self._key, None)  # the next open asks anew
            raise RemoteChangedError(
                f"{describe_uri(self.uri)} changed while it was read: opened at {self._pin.field} "
                f"{self._version}, which is no longer there",
                uri=self.uri,
            ) from exc
        except (RemoteAccessError, RemoteChangedError):
            raise
        except Exception as exc:  # fsspec backends raise many types
            raise RemoteAccessError(
                f"{what} {describe_uri(self.uri)} failed: {type(exc).__name__}: {exc}", uri=self.uri
            ) from exc
        self.requests += 1
        self.bytes_read += len(data)
        if not data or len(data) > end - start:
            raise RemoteAccessError(
                f"{describe_uri(self.uri)}: {len(data)} bytes for bytes {start}-{end - 1} of {self._size}",
                uri=self.uri,
            )
        self._buf, self._buf_start = bytes(data), start


def _after_fork_in_child() -> None:
    """A forked child (a DataLoader worker) asks its versions anew, under a fresh lock."""
    global _lock
    _lock = threading.Lock()
    _versions.clear()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)
