"""Typed errors. Every error raised for a bad ref names the ref (long data URIs are shortened).

Every :class:`MediaRefError` survives pickling with its message, ``uri`` and notes (``__reduce__``), and can
be built from a single positional message, as torch's DataLoader does when it re-raises an error from a worker
process (``ExceptionWrapper.reraise``: ``exc_type(message)``, where the message is the worker's formatted
traceback). Inside a DataLoader worker an error with a ``uri`` (of at most 4,096 characters) adds the note
``hf_mediaref uri: "<the uri as JSON>"`` to itself; the traceback text carries the note to the main process,
where the error built from that text reads its ``uri`` back from the last such line. (Python 3.10 does not
print notes in tracebacks: there, and for longer URIs such as big ``data:`` URIs, the re-raised error's
``uri`` is ``None``; its message still names the ref.)
"""

from __future__ import annotations

import json
import re
from typing import Any

from ._torch_job import dataloader_worker_info

__all__ = [
    "DecodeTimeoutError",
    "FrameOutOfRangeError",
    "InvalidDataURIError",
    "InvalidRefError",
    "MediaDecodeError",
    "MediaNotFoundError",
    "MediaRefError",
    "MissingDependencyError",
    "PathEscapeError",
    "RemoteAccessError",
    "RemoteChangedError",
    "UndecodedRefError",
    "UnreadableMediaError",
    "UnresolvedPathError",
    "UnsupportedURIError",
    "UntrustedRefError",
    "WindowError",
    "describe_uri",
]

_MAX_URI_CHARS = 96


def describe_uri(uri: object, limit: int = _MAX_URI_CHARS) -> str:
    """Return ``uri`` quoted for an error message, shortened when long (data URIs can be megabytes)."""
    text = str(uri)
    if len(text) <= limit:
        return repr(text)
    return f"{text[:limit]!r}... ({len(text):,} chars)"


#: The note that carries a ``uri`` through a DataLoader worker's traceback text (see the module docstring).
_URI_NOTE = "hf_mediaref uri: "
_URI_NOTE_MAX_CHARS = 4096
_URI_NOTE_RE = re.compile(r'^hf_mediaref uri: (".*")$', re.MULTILINE)


def _uri_from_note(message: str) -> str | None:
    """The ``uri`` of the last ``hf_mediaref uri:`` note in a re-raised worker traceback, if any."""
    if _URI_NOTE not in message:
        return None
    found = _URI_NOTE_RE.findall(message)
    if not found:
        return None
    try:
        uri = json.loads(found[-1])
    except ValueError:
        return None
    return uri if isinstance(uri, str) else None


class MediaRefError(Exception):
    """Base class of hf_mediaref errors about a specific media reference.

    Args:
        message: what went wrong, naming the ref (its URI shortened with :func:`describe_uri`).
        uri: the URI of the ref the error is about (kept whole in :attr:`uri`), or ``None``.

    Built from a message alone (``uri`` left out), as torch's DataLoader re-raises worker errors, the ``uri``
    is read back from the message's ``hf_mediaref uri:`` note where it has one (see the module docstring).
    """

    uri: str | None

    def __init__(self, message: str = "", *, uri: object = None):
        if uri is None and isinstance(message, str):
            uri = _uri_from_note(message)
        self.uri = None if uri is None else str(uri)
        super().__init__(message)
        short = self.uri is not None and len(self.uri) <= _URI_NOTE_MAX_CHARS
        if short and dataloader_worker_info() is not None:
            # BaseException.add_note (Python 3.11+) does just this; 3.10's tracebacks do not print notes
            self.__dict__.setdefault("__notes__", []).append(_URI_NOTE + json.dumps(self.uri))

    def __reduce__(self) -> tuple[Any, ...]:
        """Pickle as ``(type, (message,), state)``: the message, ``uri`` and notes come back, whatever
        keyword-only arguments a subclass's ``__init__`` has."""
        message = self.args[0] if self.args else ""
        return (type(self), (message,), dict(self.__dict__))


class MediaNotFoundError(MediaRefError, FileNotFoundError):
    """The media a ref points at does not exist (missing file, HTTP 404, missing object)."""


class MediaDecodeError(MediaRefError, ValueError):
    """The bytes exist but cannot be decoded (corrupt or truncated image/video, wrong format, bomb)."""


class UnsupportedURIError(MediaRefError, ValueError):
    """The URI's scheme (or form) is not one hf_mediaref can read."""


class InvalidDataURIError(MediaRefError, ValueError):
    """A ``data:`` URI that does not follow RFC 2397."""


class UntrustedRefError(MediaRefError, ValueError):
    """A ref of a dataset with a media root (loaded from a repo or folder) that points outside that root: an
    absolute path, ``file://``, ``~``, a symlink leaving the root, another Hub repo or revision, another
    scheme, or a network address that is not public. Nothing is read. The message names the ref and how to
    allow it (``allow_uris=``, or an access that allows it: :class:`hf_mediaref.MediaAccess`)."""


class PathEscapeError(UntrustedRefError):
    """A relative path that escapes the root it is resolved against (``../``): the plainest untrusted
    ref, so ``except UntrustedRefError`` catches it too."""


class UnresolvedPathError(MediaRefError, ValueError):
    """A relative path was used without a base to resolve it against."""


class FrameOutOfRangeError(MediaRefError, ValueError):
    """A requested timestamp lies past the end of the video."""


class RemoteAccessError(MediaRefError, OSError):
    """A remote read failed (HTTP 4xx other than 404, persistent 5xx, timeouts, refused connections)."""


class InvalidRefError(MediaRefError, ValueError):
    """A malformed media reference: an empty, null or non-string ``uri``, a ``uri`` with a NUL byte, a bool,
    string, fractional, negative or beyond-int64 ``pts_ns``, or fields other than ``uri`` and ``pts_ns``.

    Raised where the ref is built or read: ``MediaRef(...)``, ``batch_decode`` given dicts, and when a stored
    row is read (``ds[i]``, the ``"mediaref"`` format, ``decode_transform``). The message names the row where
    it is known and the offending value; :attr:`uri` is the stored ``uri`` when it is a string.
    """


class UnreadableMediaError(MediaRefError, OSError):
    """The path exists but is not a readable media file: a directory, a FIFO, a socket, a device, or a file
    without read permission."""


class MissingDependencyError(ImportError):
    """An optional dependency is missing; the message says which ``pip install`` fixes it."""


class RemoteChangedError(RemoteAccessError):
    """The remote file changed while it was being read: a later response carried another ETag, Last-Modified
    or size than the one the file was opened at. The bytes read so far belong to two versions; whatever was
    learned from them (an index, frames) must be dropped and the file opened again. ``uri`` names the file."""


class DecodeTimeoutError(MediaRefError, TimeoutError):
    """A decode did not finish within its ``timeout`` (``DecodeOptions.timeout``): no task starts after the
    deadline and no HTTP request outlives it."""


class WindowError(ValueError):
    """Temporal windows (``windows=``, :class:`~hf_mediaref.hf.FrameWindows`) asked of what they cannot apply
    to: a column the dataset does not have, a column type that has no windows (strings, structs), a value
    column without the dataset's other rows (build the windows with ``FrameWindows.from_dataset``), or offsets
    that are not numbers of seconds."""


class UndecodedRefError(TypeError):
    """A :class:`~hf_mediaref.MediaRef` was used as an array (``np.asarray(ref)``, a ref column under
    ``ds.with_format("torch")`` or ``"numpy"``): a ref is a pointer, not pixels. Decode it a batch at a time
    with the ``"mediaref"`` format (``ds.with_format("mediaref", output="torch")``), ``batch_decode``, or
    ``ref.to_rgb_array()``."""
