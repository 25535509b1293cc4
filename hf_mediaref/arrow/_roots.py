"""Media roots and the one resolver: how a relative URI (``videos/a.mp4``) becomes one that can be read, and
whether a ref of a dataset with a root may be read at all (:mod:`._trust`)."""

from __future__ import annotations

import functools
import os
from collections.abc import Iterable
from typing import Any

from ..core import MediaRef
from ..errors import PathEscapeError, UnresolvedPathError, describe_uri
from ..io import UriKind, classify_uri, is_absolute_uri, join_uri
from ._trust import MediaRoot, parse_allow_uris

__all__ = ["media_root", "normalize_root", "resolve_ref", "resolve_uri", "unresolved_error"]


def normalize_root(root: str | os.PathLike[str]) -> str:
    """A media root in the form the resolver uses.

    Args:
        root: a local directory (made absolute, ``~`` expanded) or a URL such as
            ``hf://datasets/org/name@<rev>/``, ``https://host/dir/`` or ``s3://bucket/prefix/`` (kept as
            given).

    Returns:
        The root as a string.

    Raises:
        ValueError: for a ``data:`` URI.

    Example:
        ```python
        >>> from hf_mediaref.arrow import normalize_root
        >>> normalize_root("hf://datasets/org/name@abc/")
        'hf://datasets/org/name@abc/'
        ```
    """
    root = os.fspath(root)
    kind = classify_uri(root)
    if kind is UriKind.LOCAL:
        return os.path.abspath(os.path.expanduser(root))
    if kind is UriKind.DATA:
        raise ValueError("a data: URI cannot be a media root")
    return root


def media_root(
    root: str | os.PathLike[str], allow_uris: str | os.PathLike[str] | Iterable[Any] | None = None
) -> MediaRoot:
    """The root of a dataset loaded from a repo or folder: refs resolved against it must stay inside it.

    Args:
        root: as for :func:`normalize_root`; a :class:`~hf_mediaref.arrow.MediaRoot` keeps its allow-list.
        allow_uris: what refs may read beyond the root (see :func:`~hf_mediaref.arrow.parse_allow_uris`):
            URI prefixes, local folders, schemes, or ``"*"`` for everything.

    Returns:
        A :class:`~hf_mediaref.arrow.MediaRoot` (a ``str``).

    Raises:
        ValueError: a ``data:`` root or a bad allow-list entry.

    Example:
        ```python
        >>> from hf_mediaref.arrow import media_root
        >>> media_root("hf://datasets/org/name@abc/", allow_uris="https://cdn.example.com/").allow
        ('https://cdn.example.com/',)
        ```
    """
    allow = parse_allow_uris(allow_uris)
    if isinstance(root, MediaRoot):
        allow = root.allow + tuple(e for e in allow if e not in root.allow)
    return MediaRoot(normalize_root(root), allow)


def unresolved_error(uri: str) -> UnresolvedPathError:
    """The error for a relative URI that must be read but has no root to resolve against.

    Args:
        uri: the relative URI.

    Returns:
        An :class:`~hf_mediaref.errors.UnresolvedPathError` whose message names the URI and the fixes
        (``hf_mediaref.load_dataset``, ``set_media_root``, ``ref.resolve_relative_path``).
    """
    return UnresolvedPathError(
        f"relative media path {describe_uri(uri)} has no root to resolve against. Load the dataset with "
        "hf_mediaref.load_dataset(...) (which attaches the repo root), attach one with "
        "hf_mediaref.hf.set_media_root(ds, root), or resolve refs yourself with "
        "ref.resolve_relative_path(root)",
        uri=uri,
    )


@functools.lru_cache(maxsize=65536)
def _join(root: str, uri: str) -> str:
    return join_uri(root, uri)


def resolve_uri(uri: str, root: str | None) -> str:
    """The URI to read for ``uri``: a relative path joined onto ``root``, anything else unchanged; checked
    against the trust boundary when ``root`` is a :class:`~hf_mediaref.arrow.MediaRoot`.

    Args:
        uri: a stored URI (absolute path, URL, ``data:`` URI or a path relative to the root).
        root: a media root from :func:`normalize_root`, or ``None``.

    Returns:
        ``uri`` itself when it is absolute, else ``root`` joined with it.

    Raises:
        UnresolvedPathError: ``uri`` is relative and ``root`` is ``None``.
        PathEscapeError: ``uri`` leaves ``root`` with ``..`` (unless a
            :class:`~hf_mediaref.arrow.MediaRoot` ``root`` allows where it leads).
        UntrustedRefError: ``root`` is a :class:`~hf_mediaref.arrow.MediaRoot` (a loader set it) and ``uri``
            (relative or absolute) reads outside it and is not allowed.

    Example:
        ```python
        >>> from hf_mediaref.arrow import resolve_uri
        >>> resolve_uri("videos/a.mp4", "hf://datasets/org/name@abc/")
        'hf://datasets/org/name@abc/videos/a.mp4'
        ```
    """
    if is_absolute_uri(uri):
        resolved = uri
    elif root is None:
        raise unresolved_error(uri)
    elif isinstance(root, MediaRoot):
        try:
            resolved = _join(root, uri)
        except PathEscapeError:
            return root.escaped(uri)  # `..` out of the root: only where allowed
    else:
        resolved = _join(root, uri)
    if isinstance(root, MediaRoot):
        root.check(uri, resolved)
    return resolved


def resolve_ref(ref: MediaRef, root: str | None) -> MediaRef:
    """``ref`` with its URI resolved by :func:`resolve_uri` (the same object when nothing changes).

    Args:
        ref: a :class:`~hf_mediaref.MediaRef`.
        root: a media root from :func:`normalize_root`, or ``None``.

    Returns:
        A ``MediaRef`` whose URI can be read.

    Raises:
        UnresolvedPathError: the URI is relative and ``root`` is ``None``.
        PathEscapeError: the URI leaves ``root`` with ``..``.
        UntrustedRefError: the URI reads outside a :class:`~hf_mediaref.arrow.MediaRoot` ``root``.

    Example:
        ```python
        >>> from hf_mediaref import MediaRef
        >>> from hf_mediaref.arrow import resolve_ref
        >>> resolve_ref(MediaRef("videos/a.mp4", 0), "/data/repo")
        MediaRef(uri='/data/repo/videos/a.mp4', pts_ns=0)
        ```
    """
    uri = resolve_uri(ref.uri, root)
    return ref if uri is ref.uri else MediaRef(uri, ref.pts_ns)
