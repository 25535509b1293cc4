"""Where bytes come from: local paths, ``file://``, ``http(s)://``, ``data:`` and every fsspec protocol."""

from __future__ import annotations

import contextlib
import io
import json
import logging
import os
import shutil
import stat
from collections.abc import Iterator
from typing import IO, Any, TypeAlias

from ..errors import (
    MediaNotFoundError,
    MediaRefError,
    RemoteAccessError,
    UnreadableMediaError,
    UnsupportedURIError,
    describe_uri,
)
from . import _http as http
from ._data_uri import parse_data_uri
from ._network import public_address_rule
from ._pinned import Pin, open_pinned, pin_of, pinned_reads, prefetch_pinned
from ._remote import RemoteLocation, reads_over_http, remote_location
from ._uri import UriKind, classify_uri, local_path, uri_scheme

__all__ = [
    "MediaSource",
    "fetches_ahead",
    "open_media",
    "place_file",
    "prefetch_media",
    "read_bytes",
    "source_version",
    "uri_exists",
]

logger = logging.getLogger(__name__)

#: What :func:`open_media` yields: a local filesystem path, or a seekable binary file object.
MediaSource: TypeAlias = "str | IO[bytes]"


def _fsspec_filesystem(uri: str, storage_options: dict | None):
    import fsspec

    scheme = uri_scheme(uri) or ""
    try:
        fs, path = fsspec.core.url_to_fs(uri, **(storage_options or {}))
    except Exception as exc:  # a filesystem that connects when it is built (ftp://) fails here
        if not isinstance(exc, (ValueError, ImportError)):
            raise _remote_error(uri, exc) from exc
        if scheme not in fsspec.available_protocols():
            raise UnsupportedURIError(
                f"unsupported URI scheme {scheme!r} in {describe_uri(uri)}; supported: local paths, file://, "
                f"http(s)://, data: and fsspec protocols",
                uri=uri,
            ) from exc
        raise UnsupportedURIError(
            f"cannot open {describe_uri(uri)}: the fsspec backend for {scheme!r} is unavailable ({exc})",
            uri=uri,
        ) from exc
    return fs, path


_SPECIAL_FILES = (
    (stat.S_ISDIR, "is a directory"),
    (stat.S_ISFIFO, "is a FIFO (named pipe)"),
    (stat.S_ISSOCK, "is a socket"),
    (stat.S_ISCHR, "is a character device"),
    (stat.S_ISBLK, "is a block device"),
)


def _local(uri: str) -> str:
    """The path of a local media file that exists and can be read; nothing is opened (a FIFO would block).

    Raises:
        UnsupportedURIError: a path with a NUL byte.
        MediaNotFoundError: nothing at the path.
        UnreadableMediaError: a directory, a FIFO, a socket, a device, or a file without read permission.
    """
    path = local_path(uri)
    if "\x00" in path:
        raise UnsupportedURIError(f"a path with a NUL byte cannot be read: {describe_uri(uri)}", uri=uri)
    try:
        mode = os.stat(path).st_mode
    except (FileNotFoundError, NotADirectoryError):
        raise MediaNotFoundError(f"media file {describe_uri(uri)} does not exist", uri=uri) from None
    except OSError as exc:
        raise _unreadable(uri, exc) from exc
    for test, what in _SPECIAL_FILES:
        if test(mode):
            raise UnreadableMediaError(f"media file {describe_uri(uri)} {what}, not a file", uri=uri)
    if not stat.S_ISREG(mode):
        raise UnreadableMediaError(f"media file {describe_uri(uri)} is not a regular file", uri=uri)
    if not os.access(path, os.R_OK):
        raise UnreadableMediaError(
            f"media file {describe_uri(uri)} is not readable (permission denied)", uri=uri
        )
    return path


def _unreadable(uri: str, exc: OSError) -> Exception:
    if isinstance(exc, FileNotFoundError):
        return MediaNotFoundError(f"media file {describe_uri(uri)} does not exist", uri=uri)
    reason = "permission denied" if isinstance(exc, PermissionError) else f"{type(exc).__name__}: {exc}"
    return UnreadableMediaError(f"media file {describe_uri(uri)} is not readable ({reason})", uri=uri)


def _remote_error(uri: str, exc: Exception) -> Exception:
    if isinstance(exc, FileNotFoundError):
        return MediaNotFoundError(f"no media at {describe_uri(uri)}", uri=uri)
    return RemoteAccessError(f"cannot read {describe_uri(uri)}: {type(exc).__name__}: {exc}", uri=uri)


def read_bytes(uri: str, *, storage_options: dict | None = None) -> bytes:
    """Read all bytes of ``uri``.

    Raises:
        MediaNotFoundError: nothing at ``uri``.
        UnreadableMediaError: a local path that is a directory, a FIFO, a socket, a device or unreadable.
        UnsupportedURIError: a scheme no reader handles, or a path with a NUL byte.
        RemoteAccessError: a remote read failed (a refused connection included).
        InvalidDataURIError: a malformed ``data:`` URI.
    """
    kind = classify_uri(uri)
    if kind is UriKind.DATA:
        return parse_data_uri(uri).data
    if kind in (UriKind.LOCAL, UriKind.FILE):
        try:
            with open(_local(uri), "rb") as f:
                return f.read()
        except OSError as exc:
            if isinstance(exc, (MediaNotFoundError, UnreadableMediaError)):
                raise
            raise _unreadable(uri, exc) from exc
    if kind is UriKind.HTTP:
        return http.http_get(uri)
    fs, path = _fsspec_filesystem(uri, storage_options)
    try:
        return fs.cat_file(path)
    except Exception as exc:  # fsspec backends raise many types
        raise _remote_error(uri, exc) from exc


@contextlib.contextmanager
def open_media(uri: str, *, storage_options: dict | None = None, head: bool = False) -> Iterator[MediaSource]:
    """Yield a local path (for local files) or a seekable binary file; close what was opened on exit.

    ``head``: the caller reads the file's head first (a container's header); an ``http(s)`` file then fetches
    it with its open, whose ranged GET also gives the size and version a HEAD would (one round trip fewer).

    Raises:
        MediaNotFoundError: nothing at ``uri``.
        UnreadableMediaError: a local path that is a directory, a FIFO, a socket, a device or unreadable.
        UnsupportedURIError: a scheme no reader handles, or a path with a NUL byte.
        RemoteAccessError: a remote open failed (a refused connection included).
        InvalidDataURIError: a malformed ``data:`` URI.
    """
    kind = classify_uri(uri)
    if kind in (UriKind.LOCAL, UriKind.FILE):
        yield _local(uri)
        return
    if kind is UriKind.DATA:
        yield io.BytesIO(parse_data_uri(uri).data)
        return
    if kind is UriKind.HTTP:
        f: Any = http.open_http(uri, head=head)
    else:
        fs, path = _fsspec_filesystem(uri, storage_options)
        where: RemoteLocation | None = None
        try:
            where = _location(uri, fs, path)
            if where is not None:  # an hf:// repo file, an s3:// object: read as any HTTP file
                f = http.open_http(
                    where.url,
                    head=head or where.query is not None,  # a presigned URL signs GET only: no HEAD
                    headers=where.headers,
                    configured=True,
                    query=where.query,
                    key=where.key,
                    renew=where.renew,
                )
            else:  # a gs:// object: read at the version it opened, through its filesystem (._pinned)
                pin = _pin(uri, fs, path)
                f = (pin and open_pinned(uri, path, pin)) or fs.open(path, "rb")
        except MediaRefError as exc:  # the HTTP road's errors say what went wrong already: at which ref too
            if where is not None and exc.uri == where.url:
                raise type(exc)(f"{describe_uri(uri)}: {exc}", uri=uri) from exc
            raise
        except Exception as exc:
            raise _remote_error(uri, exc) from exc
    with contextlib.closing(f):
        yield f


def walk_folder(folder: str | os.PathLike[str]) -> Iterator[tuple[str, list[str]]]:
    """``(dirpath, file names)`` of every folder under ``folder``, symlinked folders followed, each real
    folder once (a symlink loop or a folder linked twice is walked once), hidden folders left out, names
    sorted: the one walk of a folder of media (``hf-mediaref build``, ``from_videos``)."""
    seen: set[str] = set()
    for dirpath, dirnames, filenames in os.walk(folder, followlinks=True):
        real = os.path.realpath(dirpath)
        if real in seen:  # a symlink loop, or a folder linked twice
            dirnames[:] = []
            continue
        seen.add(real)
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        yield dirpath, sorted(filenames)


def place_file(source: str | os.PathLike[str], dest: str | os.PathLike[str], *, copy: bool = False) -> bool:
    """Put the local file ``source`` at ``dest``: a hard link to the file itself (a symlinked source: its
    target), or a copy where no hard link can be made (another file system) or ``copy`` asks for one. Never a
    symlink: a dataset folder is the boundary of what its refs may read, so the bytes are put inside.

    Returns:
        Whether it was hard-linked.
    """
    real = os.path.realpath(source)
    if not copy:
        try:
            os.link(real, dest)
            return True
        except OSError:  # another file system, or links not allowed: copy instead
            pass
    shutil.copy2(real, dest)
    return False


def uri_exists(uri: str, *, storage_options: dict | None = None) -> bool:
    """Whether the media at ``uri`` exists, without downloading it (HEAD / fsspec ``exists``)."""
    kind = classify_uri(uri)
    if kind is UriKind.DATA:
        parse_data_uri(uri)  # raises on a malformed URI
        return True
    if kind in (UriKind.LOCAL, UriKind.FILE):
        return "\x00" not in uri and os.path.isfile(local_path(uri))
    if kind is UriKind.HTTP:
        return http.http_exists(uri)
    fs, path = _fsspec_filesystem(uri, storage_options)
    try:
        return bool(fs.exists(path))
    except Exception as exc:
        raise _remote_error(uri, exc) from exc


# What fsspec backends put in a file's ``details`` that changes when the object changes (s3, gcs, hf, ...).
_VERSION_FIELDS = (
    "ETag",
    "etag",
    "md5",
    "md5Hash",
    "crc32c",
    "generation",
    "VersionId",
    "version_id",
    "blob_id",
    "LastModified",
    "last_modified",
    "mtime",
    "modified",
    "updated",
)


def source_version(source: MediaSource) -> str | None:
    """A string that changes whenever the remote object behind ``source`` (from :func:`open_media`) changes,
    for caching what was learned from it; None for local paths and in-memory data, and when the remote says
    nothing usable (no ETag, hash or modification time)."""
    if isinstance(source, str):
        return None
    # http.open_http: from its HEAD; a file read at a pinned version (._pinned): from its info()
    version = getattr(getattr(source, "raw", None), "version", None)
    if version:
        return str(version)
    details = getattr(source, "details", None)  # fsspec AbstractBufferedFile: the object's info()
    if not isinstance(details, dict):
        return None
    found = {k: str(details[k]) for k in _VERSION_FIELDS if details.get(k)}
    lfs = details.get("lfs")
    if isinstance(lfs, dict) and lfs.get("sha256"):
        found["lfs"] = str(lfs["sha256"])
    return json.dumps({**found, "size": details.get("size")}, sort_keys=True) if found else None


def _location(uri: str, fs: Any, path: str) -> RemoteLocation | None:
    """Where the fsspec file ``uri`` is read over HTTP (:mod:`._remote`: ``hf://``, ``s3://``); None where
    it is not (``gs://``: :func:`_pin`; others: fsspec's file object)."""
    return remote_location(uri, fs, path)


def _pin(uri: str, fs: Any, path: str) -> Pin | None:
    """How the fsspec file ``uri`` is read at one version (:mod:`._pinned`: ``gs://``); None where it stays
    on fsspec's file object."""
    return pin_of(uri, fs, path)


def fetches_ahead(uri: str) -> bool:
    """Whether byte ranges of ``uri`` may be fetched ahead (:func:`prefetch_media`): ``http(s)`` URLs,
    ``hf://`` and ``s3://`` files (read over HTTP: :mod:`._remote`), and ``gs://`` objects (read at the
    version they opened, through their filesystem: :mod:`._pinned`)."""
    return classify_uri(uri) is UriKind.HTTP or reads_over_http(uri) or pinned_reads(uri)


def prefetch_media(
    uri: str,
    ranges: list[tuple[int, int, int]],
    concurrency: int,
    owner: object = None,
    *,
    storage_options: dict | None = None,
) -> int:
    """Fetch byte ranges of ``uri`` ahead for the files :func:`open_media` opens next (see
    :func:`hf_mediaref.io._http.prefetch`): an ``http(s)`` URL itself, an ``hf://`` repo file at its resolve
    URL with the token of ``storage_options``, an ``s3://`` object at a URL presigned by its filesystem
    (:mod:`._remote`), a ``gs://`` object through its filesystem (:mod:`._pinned`). Returns the requests
    sent: none for other URIs, and none where the location cannot be known (the open that follows raises
    what is wrong)."""
    kind = classify_uri(uri)
    if kind is UriKind.HTTP:
        return http.prefetch(uri, ranges, concurrency, owner)
    if not fetches_ahead(uri):
        return 0
    try:
        fs, path = _fsspec_filesystem(uri, storage_options)
        where = _location(uri, fs, path)
        pin = None if where is not None else _pin(uri, fs, path)
        if pin is not None:
            return prefetch_pinned(uri, path, pin, ranges, concurrency, owner)
    except Exception as exc:  # the open reports it
        logger.debug("not fetching ranges of %s ahead: %s", describe_uri(uri), type(exc).__name__)
        return 0
    if where is None:
        return 0
    with public_address_rule(None):  # as the Range file that takes them (configured=True)
        return http.prefetch(
            where.url, ranges, concurrency, owner, headers=where.headers, query=where.query, key=where.key
        )
