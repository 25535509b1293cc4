"""Source identity: the cache key of a media source, which changes when the media may have changed."""

from __future__ import annotations

import hashlib
import json
import os

from ..errors import MediaNotFoundError, describe_uri
from ..io import UriKind, classify_uri, local_path, needs_public_address

__all__ = ["local_change_time", "source_key", "source_keys"]


def _options_digest(storage_options: dict | None) -> str:
    if not storage_options:
        return ""
    text = json.dumps(storage_options, sort_keys=True, default=repr)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def source_key(uri: str, storage_options: dict | None = None) -> tuple:
    """A cache key that changes when the media may have changed: local files add their mtime and size. A
    remote source adds its options' digest and whether the running call's rule holds it to public addresses
    (:func:`hf_mediaref.io.needs_public_address`): a container opened, and bytes read, under one dataset's
    allowance are never handed to a read that its own access holds to public addresses.

    Raises :class:`~hf_mediaref.errors.MediaNotFoundError` for a missing local file.
    """
    if classify_uri(uri) in (UriKind.LOCAL, UriKind.FILE):
        path = local_path(uri)
        try:
            st = os.stat(path)
        except OSError:
            raise MediaNotFoundError(f"media file {describe_uri(uri)} does not exist", uri=uri) from None
        return _local_key(path, st)
    return (uri, _options_digest(storage_options), needs_public_address(uri))


def source_keys(uri: str, storage_options: dict | None = None) -> list[tuple]:
    """Every key :func:`source_key` gives ``uri`` (a remote source: under either public-address rule)."""
    key = source_key(uri, storage_options)
    if classify_uri(uri) in (UriKind.LOCAL, UriKind.FILE):
        return [key]
    return [(*key[:-1], public) for public in (False, True)]


def _local_key(path: str, st: os.stat_result) -> tuple:
    return (os.path.abspath(path), st.st_mtime_ns, st.st_size, st.st_ino)


def local_change_time(uri: str, key: tuple) -> int | None:
    """``st_ctime_ns`` of the local file ``uri`` while it is still the file ``key`` (its source key) names,
    from the same ``stat``; None for other sources, or when the file is gone or changed. Every change of a
    file's content or metadata sets its ctime, and no tool can set it back (unlike mtime)."""
    if classify_uri(uri) not in (UriKind.LOCAL, UriKind.FILE):
        return None
    path = local_path(uri)
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_ctime_ns if _local_key(path, st) == tuple(key) else None
