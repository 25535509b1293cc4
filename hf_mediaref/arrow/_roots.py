"""Media roots and the one resolver: how a relative URI (``videos/a.mp4``) becomes one that can be read."""

from __future__ import annotations

import functools
import os

from ..core import MediaRef
from ..errors import UnresolvedPathError, describe_uri
from ..io import UriKind, classify_uri, is_absolute_uri, join_uri

__all__ = ["normalize_root", "resolve_ref", "resolve_uri", "unresolved_error"]


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
    """The URI to read for ``uri``: a relative path joined onto ``root``, anything else unchanged.

    Args:
        uri: a stored URI (absolute path, URL, ``data:`` URI or a path relative to the root).
        root: a media root from :func:`normalize_root`, or ``None``.

    Returns:
        ``uri`` itself when it is absolute, else ``root`` joined with it.

    Raises:
        UnresolvedPathError: ``uri`` is relative and ``root`` is ``None``.
        PathEscapeError: ``uri`` leaves ``root`` with ``..``.

    Example:
        ```python
        >>> from hf_mediaref.arrow import resolve_uri
        >>> resolve_uri("videos/a.mp4", "hf://datasets/org/name@abc/")
        'hf://datasets/org/name@abc/videos/a.mp4'
        ```
    """
    if is_absolute_uri(uri):
        return uri
    if root is None:
        raise unresolved_error(uri)
    return _join(root, uri)


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
