"""The keyframe index of a video: from the in-memory cache, else from the on-disk store (remote videos), else
built by a demux scan of a freshly opened PyAV container (never a cached one, whose position is unknown)."""

from __future__ import annotations

import contextlib

from ..errors import RemoteChangedError, describe_uri
from ..io import check_pixel_limit, open_media, source_version
from ._cache import cached_index, decoder_cache, forget_index
from ._container import OpenedVideo
from ._errors import decode_errors
from ._identity import source_key
from ._index import VideoIndex, scan_index
from ._index_store import load_stored_index, store_index

__all__ = ["check_version", "confirm_version", "forget_source", "load_index"]


def load_index(uri: str, *, storage_options: dict | None = None, key: tuple | None = None) -> VideoIndex:
    """The keyframe index of ``uri``'s first video stream: cached per source in memory, and for remote
    sources that report a version also on disk (:mod:`.index_store`); scanned on a miss."""
    key = key or source_key(uri, storage_options)

    def build() -> VideoIndex:
        with decode_errors(uri, "index"), open_media(uri, storage_options=storage_options) as source:
            version = source_version(source)  # None for local files and data: URIs
            if version is not None:
                stored = load_stored_index(key, version)
                if stored is not None:
                    stored.version = version
                    return stored
            # a fresh container: a scan reads from the first packet, whatever cached containers have done
            with contextlib.closing(OpenedVideo(uri, source=source)) as video:
                ctx = video.stream.codec_context
                check_pixel_limit(
                    ctx.width or video.stream.width, ctx.height or video.stream.height, uri, "video"
                )
                index = scan_index(
                    video.container, video.stream, count_packet_bytes=video.counts_packet_bytes
                )
            index.version = version
            if version is not None:
                store_index(key, version, index)  # reached only when the whole scan read one version
            return index

    return cached_index(key, build)


def check_version(index: VideoIndex, version: str | None, uri: str) -> None:
    """Refuse to decode with ``index`` a source opened at another remote version than its own.

    Raises:
        RemoteChangedError: the versions differ.
    """
    if version != index.version:
        raise RemoteChangedError(
            f"{describe_uri(uri)} changed since its keyframe index was built (version {index.version!r}, now "
            f"{version!r})",
            uri=uri,
        )


def confirm_version(index: VideoIndex, uri: str, storage_options: dict | None = None) -> None:
    """Check a remote source against the version its (cached) index was built from: one HEAD, or an fsspec
    ``info``. Called before trusting the index for an answer that reads nothing, such as "past the end".

    Raises:
        RemoteChangedError: the source changed since.
    """
    if index.version is None:
        return
    with open_media(uri, storage_options=storage_options) as source:
        check_version(index, source_version(source), uri)


def forget_source(uri: str, storage_options: dict | None = None) -> None:
    """Drop what the process caches hold of ``uri`` (its index, its open decoders): it changed remotely.

    Decoders leased by running decodes are closed when given back.
    """
    key = source_key(uri, storage_options)
    forget_index(key)
    decoder_cache.discard(lambda cache_key: isinstance(cache_key, tuple) and key in cache_key)
