"""Classify URIs and join relative paths onto a base (pure string logic, no I/O)."""

from __future__ import annotations

import enum
import ntpath
import os
import posixpath
import re
from urllib.parse import quote, urlsplit
from urllib.request import url2pathname

from ..errors import PathEscapeError, UnsupportedURIError, describe_uri

__all__ = [
    "UriKind",
    "classify_uri",
    "is_absolute_uri",
    "is_remote_uri",
    "join_uri",
    "local_path",
    "uri_scheme",
]

_SCHEME_RE = re.compile(r"^([A-Za-z][A-Za-z0-9+.\-]*)://")
# fsspec protocols that never leave the machine (everything else with a scheme counts as remote).
_LOCAL_FSSPEC = frozenset({"memory", "local", "file"})


class UriKind(enum.Enum):
    """Where the bytes of a URI come from."""

    LOCAL = "local"  # a plain filesystem path, absolute or relative
    FILE = "file"  # file:// URL
    HTTP = "http"  # http:// or https://
    DATA = "data"  # RFC 2397 data: URI (embedded bytes)
    FSSPEC = "fsspec"  # any other scheme://, read through fsspec (hf://, s3://, gs://, memory://, ...)


def uri_scheme(uri: str) -> str | None:
    """The lower-cased scheme of ``uri`` (``"data"`` for data URIs), or None for plain paths."""
    if uri[:5].lower() == "data:":
        return "data"
    m = _SCHEME_RE.match(uri)
    if m is None or len(m.group(1)) == 1:  # "C://x" is a Windows drive, not a scheme
        return None
    return m.group(1).lower()


def classify_uri(uri: str) -> UriKind:
    """Return the :class:`UriKind` of ``uri``."""
    scheme = uri_scheme(uri)
    if scheme is None:
        return UriKind.LOCAL
    if scheme == "data":
        return UriKind.DATA
    if scheme == "file":
        return UriKind.FILE
    if scheme in ("http", "https"):
        return UriKind.HTTP
    return UriKind.FSSPEC


def is_remote_uri(uri: str) -> bool:
    """True for http(s) and fsspec network schemes (``memory://`` and ``file://`` are not remote)."""
    kind = classify_uri(uri)
    return kind is UriKind.HTTP or (kind is UriKind.FSSPEC and uri_scheme(uri) not in _LOCAL_FSSPEC)


def is_absolute_uri(uri: str) -> bool:
    """True unless ``uri`` is a relative filesystem path."""
    if classify_uri(uri) is not UriKind.LOCAL:
        return True
    return posixpath.isabs(uri) or ntpath.isabs(uri) or uri.startswith("~")


def local_path(uri: str) -> str:
    """The filesystem path of a LOCAL or FILE uri (``file://`` URLs are percent-decoded; ``~`` is
    expanded)."""
    kind = classify_uri(uri)
    if kind is UriKind.LOCAL:
        return os.path.expanduser(uri)
    if kind is UriKind.FILE:
        parts = urlsplit(uri)
        if parts.netloc not in ("", "localhost"):
            raise UnsupportedURIError(
                f"file:// URI with a remote host {parts.netloc!r} is not supported: {describe_uri(uri)}",
                uri=uri,
            )
        return url2pathname(parts.path)
    raise UnsupportedURIError(f"not a local path or file:// URI: {describe_uri(uri)}", uri=uri)


def _normalized_relative(relative: str) -> str:
    rel = relative.replace("\\", "/") if os.sep == "\\" else relative
    norm = posixpath.normpath(rel)
    if norm == ".." or norm.startswith("../"):
        raise PathEscapeError(
            f"relative path {describe_uri(relative)} escapes its base directory", uri=relative
        )
    return "" if norm == "." else norm


def join_uri(base: str, relative: str) -> str:
    """Join a relative path onto a base directory: a local path or a URL (``hf://``, ``https://``,
    ``s3://``...).

    ``..`` segments are allowed only while they stay inside ``base``; escaping raises
    :class:`PathEscapeError`."""
    if is_absolute_uri(relative):
        raise ValueError(f"expected a relative path, got {describe_uri(relative)}")
    rel = _normalized_relative(relative)
    base = os.fspath(base)
    kind = classify_uri(base)
    if kind is UriKind.LOCAL:
        return os.path.join(base, rel) if rel else base
    if kind is UriKind.DATA:
        raise UnsupportedURIError(f"a data: URI cannot be a base path: {describe_uri(base)}", uri=base)
    parts = urlsplit(base)
    path = parts.path if parts.path.endswith("/") else parts.path + "/"
    if kind in (UriKind.HTTP, UriKind.FILE):
        rel = quote(rel, safe="/")
        # the base path of a URL is percent-encoded already; keep it as given
    joined_path = path + rel
    head = base[: len(base) - len(base.split("://", 1)[1])] + parts.netloc
    tail = ("?" + parts.query if parts.query else "") + ("#" + parts.fragment if parts.fragment else "")
    return head + joined_path + tail
