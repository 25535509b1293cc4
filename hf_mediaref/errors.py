"""Typed errors. Every error raised for a bad ref names the ref (long data URIs are shortened)."""

from __future__ import annotations

__all__ = [
    "DecodeTimeoutError",
    "FrameOutOfRangeError",
    "InvalidDataURIError",
    "MediaDecodeError",
    "MediaNotFoundError",
    "MediaRefError",
    "MissingDependencyError",
    "PathEscapeError",
    "RemoteAccessError",
    "RemoteChangedError",
    "UnresolvedPathError",
    "UnsupportedURIError",
    "describe_uri",
]

_MAX_URI_CHARS = 96


def describe_uri(uri: object, limit: int = _MAX_URI_CHARS) -> str:
    """Return ``uri`` quoted for an error message, shortened when long (data URIs can be megabytes)."""
    text = str(uri)
    if len(text) <= limit:
        return repr(text)
    return f"{text[:limit]!r}... ({len(text):,} chars)"


class MediaRefError(Exception):
    """Base class of hf_mediaref errors about a specific media reference."""

    def __init__(self, message: str, *, uri: object = None):
        self.uri = None if uri is None else str(uri)
        super().__init__(message)


class MediaNotFoundError(MediaRefError, FileNotFoundError):
    """The media a ref points at does not exist (missing file, HTTP 404, missing object)."""


class MediaDecodeError(MediaRefError, ValueError):
    """The bytes exist but cannot be decoded (corrupt or truncated image/video, wrong format, bomb)."""


class UnsupportedURIError(MediaRefError, ValueError):
    """The URI's scheme (or form) is not one hf_mediaref can read."""


class InvalidDataURIError(MediaRefError, ValueError):
    """A ``data:`` URI that does not follow RFC 2397."""


class PathEscapeError(MediaRefError, ValueError):
    """A relative path that escapes the root it is resolved against (``../``)."""


class UnresolvedPathError(MediaRefError, ValueError):
    """A relative path was used without a base to resolve it against."""


class FrameOutOfRangeError(MediaRefError, ValueError):
    """A requested timestamp lies past the end of the video."""


class RemoteAccessError(MediaRefError, OSError):
    """A remote read failed (HTTP 4xx other than 404, persistent 5xx, timeouts, refused connections)."""


class MissingDependencyError(ImportError):
    """An optional dependency is missing; the message says which ``pip install`` fixes it."""


class RemoteChangedError(RemoteAccessError):
    """The remote file changed while it was being read: a later response carried another ETag, Last-Modified
    or size than the one the file was opened at. The bytes read so far belong to two versions; whatever was
    learned from them (an index, frames) must be dropped and the file opened again. ``uri`` names the file."""


class DecodeTimeoutError(MediaRefError, TimeoutError):
    """A decode did not finish within its ``timeout`` (``DecodeOptions.timeout``): no task starts after the
    deadline and no HTTP request outlives it."""
