"""Source identity: the cache key of a media source, which changes when the media may have changed."""

from __future__ import annotations

import hashlib
import json
import os

from ..errors import MediaNotFoundError, describe_uri
from ..io import UriKind, classify_uri, local_path

__all__ = ["source_key"]


def _options_digest(storage_options: dict | None) -> str:
    if not storage_options:
        return ""
    text = json.dumps(storage_options, sort_keys=True, default=repr)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def source_key(uri: str, storage_options: dict | None = None) -> tuple:
    """A cache key that changes when the media may have changed: local files add their mtime and size.

    Raises :class:`~hf_mediaref.errors.MediaNotFoundError` for a missing local file.
    """
    if classify_uri(uri) in (UriKind.LOCAL, UriKind.FILE):
        path = local_path(uri)
        try:
            st = os.stat(path)
        except OSError:
            raise MediaNotFoundError(f"media file {describe_uri(uri)} does not exist", uri=uri) from None
        return (os.path.abspath(path), st.st_mtime_ns, st.st_size, st.st_ino)
    return (uri, _options_digest(storage_options))
