"""The keyframe index of a video: from the in-memory cache, else from the on-disk store (remote videos), else
built by a demux scan of a freshly opened PyAV container (never a cached one, whose position is unknown)."""

from __future__ import annotations

import contextlib

from ..io import check_pixel_limit, open_media, source_version
from ._cache import cached_index
from ._container import OpenedVideo
from ._errors import decode_errors
from ._identity import source_key
from ._index import VideoIndex, scan_index
from ._index_store import load_stored_index, store_index

__all__ = ["load_index"]


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
            if version is not None:
                store_index(key, version, index)
            return index

    return cached_index(key, build)
