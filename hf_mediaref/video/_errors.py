"""Map what decoding libraries raise (PyAV/FFmpeg, TorchCodec, the OS) to typed errors that name the media."""

from __future__ import annotations

import sys
from typing import Any

from ..errors import MediaDecodeError, MediaNotFoundError, MediaRefError, RemoteChangedError, describe_uri

__all__ = ["check_same_version", "decode_errors"]


class decode_errors:  # used as a function: ``with decode_errors(uri):``
    """Turn PyAV/FFmpeg/OS failures raised inside the block into typed errors that name ``uri``.

    Errors of this package pass through; ``FileNotFoundError`` becomes
    :class:`~hf_mediaref.errors.MediaNotFoundError`; FFmpeg errors, ``ValueError``, ``OSError`` and
    ``EOFError`` become :class:`~hf_mediaref.errors.MediaDecodeError`; anything else (a bug) passes through.
    (A plain context manager, not a generator: one is entered per decoded span.)
    """

    __slots__ = ("uri", "what")

    def __init__(self, uri: str, what: str = "decode"):
        self.uri, self.what = uri, what

    def __enter__(self) -> None:
        return None

    def __exit__(self, exc_type: Any, exc: BaseException | None, tb: Any) -> None:
        if exc is None or isinstance(exc, MediaRefError) or not isinstance(exc, Exception):
            return
        uri = self.uri
        if isinstance(exc, FileNotFoundError):
            raise MediaNotFoundError(f"media file {describe_uri(uri)} does not exist", uri=uri) from exc
        av_error = getattr(sys.modules.get("av.error"), "FFmpegError", None)
        known: tuple[type[BaseException], ...] = (ValueError, OSError, EOFError)
        if av_error is not None:
            known += (av_error,)
        if not isinstance(exc, known):
            return
        raise MediaDecodeError(
            f"cannot {self.what} video {describe_uri(uri)}: {type(exc).__name__}: {exc}", uri=uri
        ) from exc


def check_same_version(built: str | None, now: str | None, uri: str) -> None:
    """Refuse a source of ``uri`` opened at remote version ``now`` where what is known of it (its keyframe
    index) was learned at version ``built``.

    Raises:
        RemoteChangedError: the versions differ.
    """
    if now != built:
        raise RemoteChangedError(
            f"{describe_uri(uri)} changed since its keyframe index was built (version {built!r}, now "
            f"{now!r})",
            uri=uri,
        )
