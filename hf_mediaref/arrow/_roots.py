"""The resolver of stored URIs for Arrow data: a relative URI (``videos/a.mp4``) becomes one that can be read,
and every URI is checked against the access it is read with. The decision itself is
:meth:`hf_mediaref.MediaAccess.resolve` (the one resolver); this module applies it to refs."""

from __future__ import annotations

import os
import warnings
from collections.abc import Iterable
from typing import Any

from ..core import MediaRef
from ..io import MediaAccess, join_uri, unresolved_error
from ..io import is_absolute_uri as _is_absolute

__all__ = ["media_root", "resolve_ref", "resolve_uri"]


def resolve_uri(uri: str, access: MediaAccess | str | None) -> str:
    """The URI to read for a stored ``uri``.

    Args:
        uri: a stored URI (absolute path, URL, ``data:`` URI or a path relative to the root).
        access: a :class:`~hf_mediaref.MediaAccess` (the URI is resolved against its root and checked
            against it), a plain root string given in code (joined, not checked: refs you built), or
            ``None`` (absolute URIs as they are).

    Returns:
        The URI to read.

    Raises:
        UnresolvedPathError: ``uri`` is relative and there is no root.
        PathEscapeError: ``uri`` leaves the root with ``..``.
        UntrustedRefError: ``uri`` reads outside ``access`` and is not allowed.

    Example:
        ```python
        >>> from hf_mediaref import MediaAccess
        >>> from hf_mediaref.arrow import resolve_uri
        >>> resolve_uri("videos/a.mp4", MediaAccess("hf://datasets/org/name@abc/"))
        'hf://datasets/org/name@abc/videos/a.mp4'
        ```
    """
    if isinstance(access, MediaAccess):
        return access.resolve(uri)
    if _is_absolute(uri):
        return uri
    if access is None:
        raise unresolved_error(uri)
    return join_uri(access, uri)


def resolve_ref(ref: MediaRef, access: MediaAccess | str | None) -> MediaRef:
    """``ref`` with its URI resolved by :func:`resolve_uri` (the same object when nothing changes).

    Args:
        ref: a :class:`~hf_mediaref.MediaRef`.
        access: as for :func:`resolve_uri`.

    Returns:
        A ``MediaRef`` whose URI can be read.

    Raises:
        UnresolvedPathError, PathEscapeError, UntrustedRefError: as :func:`resolve_uri`.

    Example:
        ```python
        >>> from hf_mediaref import MediaAccess, MediaRef
        >>> from hf_mediaref.arrow import resolve_ref
        >>> resolve_ref(MediaRef("videos/a.mp4", 0), MediaAccess("/data/repo"))
        MediaRef(uri='/data/repo/videos/a.mp4', pts_ns=0)
        ```
    """
    uri = resolve_uri(ref.uri, access)
    return ref if uri is ref.uri else MediaRef(uri, ref.pts_ns)


def media_root(
    root: str | os.PathLike[str], allow_uris: str | os.PathLike[str] | Iterable[Any] | None = None
) -> MediaAccess:
    """Deprecated: ``hf_mediaref.MediaAccess(root, allow_uris)``.

    Args:
        root: a local folder or a URL (or a ``MediaAccess``, widened).
        allow_uris: as for :func:`hf_mediaref.parse_allow_uris`.

    Returns:
        The :class:`~hf_mediaref.MediaAccess`.
    """
    warnings.warn(
        "hf_mediaref.arrow.media_root is deprecated: use hf_mediaref.MediaAccess(root, allow_uris)",
        DeprecationWarning,
        stacklevel=2,
    )
    if isinstance(root, MediaAccess):
        return root.allowing(allow_uris)
    return MediaAccess(root, allow_uris)
