"""Map what decoding libraries raise (PyAV/FFmpeg, TorchCodec, the OS) to typed errors that name the media."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator

from ..errors import MediaDecodeError, MediaNotFoundError, MediaRefError, RemoteChangedError, describe_uri

__all__ = ["check_same_version", "decode_errors"]


@contextlib.contextmanager
def decode_errors(uri: str, what: str = "decode") -> Iterator[None]:
    """Turn PyAV/FFmpeg/OS failures raised inside the block into typed errors that name ``uri``.

    Errors of this package pass through; ``FileNotFoundError`` becomes
    :class:`~hf_mediaref.errors.MediaNotFoundError`; FFmpeg errors, ``ValueError``, ``OSError`` and
    ``EOFError`` become :class:`~hf_mediaref.errors.MediaDecodeError`; anything else (a bug) passes through.
    """
    try:
        yield
    except MediaRefError:
        raise
    except FileNotFoundError as exc:
        raise MediaNotFoundError(f"media file {describe_uri(uri)} does not exist", uri=uri) from exc
    except Exception as exc:
        av_error = getattr(sys.modules.get("av.error"), "FFmpegError", None)
        known: tuple[type[BaseException], ...] = (ValueError, OSError, EOFError)
        if av_error is not None:
            known += (av_error,)
        if not isinstance(exc, known):
            raise
        raise MediaDecodeError(
            f"cannot {what} video {describe_uri(uri)}: {type(exc).__name__}: {exc}", uri=uri
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
