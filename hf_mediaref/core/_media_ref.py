"""MediaRef: a lazy reference to an image or to one frame of a video."""

from __future__ import annotations

import os
import warnings
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, field_validator

from .._fields import coerce_pts_ns, coerce_uri, describe_ref
from ..decode import DecodeOptions, batch_decode
from ..errors import UnsupportedURIError, describe_uri
from ..io import UriKind, classify_uri, is_absolute_uri, is_remote_uri, join_uri, uri_exists

if TYPE_CHECKING:  # pragma: no cover
    from PIL import Image

__all__ = ["MediaRef"]


class MediaRef(BaseModel):
    """A reference to an image (``pts_ns=None``) or to the video frame on screen at ``pts_ns`` nanoseconds.

    ``uri`` is a local path, a ``file://``, ``http(s)://`` or fsspec URL (``hf://``, ``s3://``...), or a
    ``data:`` URI. Nothing is read until :meth:`to_rgb_array` / :meth:`to_pil_image`. Refs are immutable,
    hashable, compare by value and serialize to ``{"uri": ..., "pts_ns": ...}``."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    uri: str
    pts_ns: int | None = None

    def __init__(self, uri: Any = None, pts_ns: Any = None, **kw: Any):
        if uri is not None:
            kw["uri"] = uri
        if pts_ns is not None:
            kw["pts_ns"] = pts_ns
        super().__init__(**kw)

    @field_validator("uri", mode="before")
    @classmethod
    def _check_uri(cls, value: Any) -> str:
        return coerce_uri(value)

    @field_validator("pts_ns", mode="before")
    @classmethod
    def _check_pts(cls, value: Any) -> int | None:
        return coerce_pts_ns(value)

    # ------------------------------------------------------------------ kinds
    @property
    def is_embedded(self) -> bool:
        """The media is inside the URI (``data:``)."""
        return classify_uri(self.uri) is UriKind.DATA

    @property
    def is_video(self) -> bool:
        """The ref points at a video frame (it has a ``pts_ns``)."""
        return self.pts_ns is not None

    @property
    def is_remote(self) -> bool:
        """The media is read over the network (http(s) or an fsspec network protocol)."""
        return is_remote_uri(self.uri)

    @property
    def is_relative_path(self) -> bool:
        """The URI is a relative filesystem path that needs a base (see :meth:`resolve_relative_path`)."""
        return not is_absolute_uri(self.uri)

    # ------------------------------------------------------------------ loading
    def to_rgb_array(self, options: DecodeOptions | None = None, **kwargs: Any) -> Any:
        """Load the image or decode the frame.

        Args:
            options: a :class:`~hf_mediaref.DecodeOptions`.
            **kwargs: its fields by name (``decoder``, ``size=(H, W)``, ``output``, ``storage_options``...),
                overriding ``options``.

        Returns:
            An ``(H, W, 3)`` uint8 RGB array by default; what ``output`` asks for otherwise.

        Raises:
            MediaNotFoundError, MediaDecodeError, FrameOutOfRangeError, UnsupportedURIError,
            RemoteAccessError:
                see :func:`hf_mediaref.batch_decode`.

        Example:
            ```python
            >>> ref = MediaRef("videos/ep0.mp4", pts_ns=1_500_000_000).resolve_relative_path("/data")
            >>> ref.to_rgb_array().shape
            (360, 640, 3)
            ```
        """
        return batch_decode([self], options=options, **kwargs)[0]

    to_ndarray = to_rgb_array

    def to_pil_image(self, options: DecodeOptions | None = None, **kwargs: Any) -> Image.Image:
        """Load as an RGB ``PIL.Image.Image`` (same arguments as :meth:`to_rgb_array`; ``output`` is
        ``"pil"``)."""
        kwargs.pop("output", None)
        kwargs.pop("channels_first", None)
        opts = DecodeOptions.resolve(options, **kwargs).replace(output="pil", channels_first=False)
        return batch_decode([self], options=opts)[0]

    # ------------------------------------------------------------------ paths
    def resolve_relative_path(
        self, base_path: str | os.PathLike, on_unresolvable: Literal["warn", "error", "ignore"] = "warn"
    ) -> MediaRef:
        """Join a relative path onto ``base_path`` (a local directory or a URL such as
        ``hf://datasets/org/name@rev/``, ``https://host/dir/``, ``s3://bucket/prefix/``).

        Absolute paths and URLs are returned unchanged. Embedded and remote refs cannot be resolved: they are
        returned unchanged with a warning (``"warn"``), silently (``"ignore"``) or raise (``"error"``). A path
        that escapes ``base_path`` with ``..`` raises :class:`~hf_mediaref.errors.PathEscapeError`.
        """
        if on_unresolvable not in ("warn", "error", "ignore"):
            raise ValueError(f"on_unresolvable must be 'warn', 'error' or 'ignore', got {on_unresolvable!r}")
        if self.is_embedded or self.is_remote:
            what = "an embedded data URI" if self.is_embedded else "a remote URI"
            msg = f"cannot resolve {what} against a base path: {describe_uri(self.uri)}"
            if on_unresolvable == "error":
                raise UnsupportedURIError(msg, uri=self.uri)
            if on_unresolvable == "warn":
                warnings.warn(msg, UserWarning, stacklevel=2)
            return self
        if not self.is_relative_path:
            return self
        return MediaRef(join_uri(os.fspath(base_path), self.uri), self.pts_ns)

    def validate_uri(self, *, storage_options: dict | None = None) -> bool:
        """Whether the target exists (local stat; HEAD or fsspec ``exists`` for remote URIs; never a
        download)."""
        return uri_exists(self.uri, storage_options=storage_options)

    # ------------------------------------------------------------------ value semantics
    def _key(self) -> tuple:
        return (self.uri, -1 if self.pts_ns is None else self.pts_ns)

    def __lt__(self, other: MediaRef) -> bool:
        if not isinstance(other, MediaRef):
            return NotImplemented
        return self._key() < other._key()

    def __le__(self, other: MediaRef) -> bool:
        if not isinstance(other, MediaRef):
            return NotImplemented
        return self._key() <= other._key()

    def __gt__(self, other: MediaRef) -> bool:
        if not isinstance(other, MediaRef):
            return NotImplemented
        return self._key() > other._key()

    def __ge__(self, other: MediaRef) -> bool:
        if not isinstance(other, MediaRef):
            return NotImplemented
        return self._key() >= other._key()

    def __repr__(self) -> str:
        return describe_ref(self.uri, self.pts_ns)

    __str__ = __repr__
