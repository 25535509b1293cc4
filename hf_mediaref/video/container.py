"""Open PyAV containers over any URI kind, lease them from the cache, and load (cached) keyframe indexes."""

from __future__ import annotations

import contextlib
import logging
import sys
from typing import IO, Any, Iterator

from .._optional import require
from ..errors import MediaDecodeError, MediaNotFoundError, MediaRefError, describe_uri
from ..io.sources import open_media, source_version
from . import stats
from .cache import decoder_cache, source_key
from .index import VideoIndex, cached_index, scan_index
from .index_store import load_stored_index, store_index

logger = logging.getLogger(__name__)

__all__ = ["OpenedVideo", "lease_video", "load_index", "decode_errors", "CountingReader", "import_av"]


def import_av() -> Any:
    return require("av", purpose="video decoding")


class CountingReader:
    """A pass-through binary file that reports the bytes read to :mod:`.stats`."""

    def __init__(self, raw: IO[bytes]):
        self._raw = raw

    def read(self, size: int = -1) -> bytes:
        data = self._raw.read(size)
        if stats.is_collecting():
            stats.record(bytes_read=len(data))
        return data

    def seek(self, offset: int, whence: int = 0) -> int:
        return self._raw.seek(offset, whence)

    def tell(self) -> int:
        return self._raw.tell()

    def seekable(self) -> bool:
        return True

    def readable(self) -> bool:
        return True

    def close(self) -> None:
        self._raw.close()


@contextlib.contextmanager
def decode_errors(uri: str, what: str = "decode") -> Iterator[None]:
    """Turn PyAV/FFmpeg/OS failures into typed errors that name ``uri``."""
    try:
        yield
    except MediaRefError:
        raise
    except FileNotFoundError as exc:
        raise MediaNotFoundError(f"media file {describe_uri(uri)} does not exist", uri=uri) from exc
    except Exception as exc:
        av_error = getattr(sys.modules.get("av.error"), "FFmpegError", ())
        if not isinstance(exc, (ValueError, OSError, EOFError, *((av_error,) if av_error else ()))):
            raise
        raise MediaDecodeError(f"cannot {what} video {describe_uri(uri)}: {type(exc).__name__}: {exc}",
                               uri=uri) from exc


class OpenedVideo:
    """One open container, its video stream and an RGB reformatter: used by one thread at a time."""

    def __init__(self, uri: str, *, storage_options: dict | None = None, threads: int = 1):
        av = import_av()
        from av.video.reformatter import VideoReformatter

        self.uri = uri
        self._stack = contextlib.ExitStack()
        try:
            source = self._stack.enter_context(open_media(uri, storage_options=storage_options))
            self._expect = getattr(getattr(source, "raw", None), "expect", None)  # HTTP read-ahead hint
            self.version = source_version(source)  # None for local files and data: URIs
            with decode_errors(uri, "open"):
                if isinstance(source, str):
                    self.container = av.open(source, "r", metadata_errors="ignore")
                    self.counts_packet_bytes = True
                else:
                    self.container = av.open(CountingReader(source), "r", metadata_errors="ignore")
                    self.counts_packet_bytes = False
                self._stack.callback(self.container.close)
                if not self.container.streams.video:
                    raise MediaDecodeError(f"{describe_uri(uri)} has no video stream", uri=uri)
        except BaseException:
            self._stack.close()
            raise
        stats.record(containers_opened=1)
        self.stream = self.container.streams.video[0]
        for other in self.container.streams:
            if other.index != self.stream.index:
                other.discard = av.stream.Discard.all  # the demuxer skips their packets' payloads where it can
        ctx = self.stream.codec_context
        ctx.thread_type = "FRAME" if threads > 1 else "SLICE"
        ctx.thread_count = threads
        self.reformatter = VideoReformatter()

    @property
    def takes_read_hints(self) -> bool:
        """Whether :meth:`expect_read` does anything (HTTP sources; others read ahead by themselves)."""
        return self._expect is not None

    def expect_read(self, nbytes: int) -> None:
        """Tell the source that the next read after a seek goes on for about ``nbytes``."""
        if self._expect is not None:
            self._expect(nbytes)

    def close(self) -> None:
        self._stack.close()


@contextlib.contextmanager
def lease_video(uri: str, *, storage_options: dict | None = None, threads: int = 1,
                key: tuple | None = None) -> Iterator[OpenedVideo]:
    """Exclusive use of an open container for ``uri`` (cached; opened on a miss)."""
    key = key or source_key(uri, storage_options)
    with decoder_cache.lease(("pyav", key, threads),
                             lambda: OpenedVideo(uri, storage_options=storage_options, threads=threads)) as video:
        yield video


def load_index(uri: str, *, storage_options: dict | None = None, key: tuple | None = None) -> VideoIndex:
    """The keyframe index of ``uri``'s first video stream: cached per source in memory, and for remote
    sources that report a version also on disk (:mod:`.index_store`); scanned on a miss."""
    key = key or source_key(uri, storage_options)

    def build() -> VideoIndex:
        with lease_video(uri, storage_options=storage_options, key=key) as video, decode_errors(uri, "index"):
            if video.version is not None:
                stored = load_stored_index(key, video.version)
                if stored is not None:
                    return stored
            index = scan_index(video.container, video.stream, count_packet_bytes=video.counts_packet_bytes)
            if video.version is not None:
                store_index(key, video.version, index)
            return index

    return cached_index(key, build)
