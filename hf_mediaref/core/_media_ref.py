"""MediaRef: a lazy reference to an image or to one frame of a video."""

from __future__ import annotations

import os
import warnings
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, ValidationError, field_validator

from .._fields import coerce_pts_ns, coerce_uri, describe_ref, invalid_ref, stored_array
from ..decode import DecodeOptions, batch_decode
from ..errors import InvalidRefError, UnsupportedURIError, describe_uri
from ..io import (
    MediaAccess,
    UriKind,
    classify_uri,
    is_absolute_uri,
    is_remote_uri,
    reading_with,
    uri_exists,
)

if TYPE_CHECKING:  # pragma: no cover
    from PIL import Image

__all__ = ["MediaRef"]

#: The last access :meth:`MediaRef._checked` attached and the private-attribute dict its refs share.
_carrying: tuple[Any, dict[str, Any]] = (None, {"_access": None})


def _private_of(access: MediaAccess) -> dict[str, Any]:
    """The private state of a ref carrying ``access`` (what pydantic keeps in ``__pydantic_private__``): one
    dict shared by the refs checked in a row by the same access (never changed: ``MediaRef._access`` is
    read-only). A dict per ref holding the access would be one more object per row read for the garbage
    collector to track (measured: ``ds[i:j]`` of refs ~25% slower; ``scripts/bench_ref_rows.py``)."""
    global _carrying
    last, private = _carrying
    if last is not access:
        private = {"_access": access}
        _carrying = (access, private)
    return private


class MediaRef(BaseModel):
    """A reference to an image (``pts_ns=None``) or to the video frame on screen at ``pts_ns`` nanoseconds.

    Nothing is read until :meth:`to_rgb_array` / :meth:`to_pil_image`. Refs are immutable, hashable, compare
    by value, sort by ``(uri, pts_ns)`` (images first) and serialize to ``{"uri": ..., "pts_ns": ...}``.

    A ref a dataset hands out (``ds[i]["frame"]``) was resolved and checked against the dataset's
    :class:`~hf_mediaref.MediaAccess`, and carries it: decoding it without ``access=`` reads under that
    access's rules (its ``http(s)`` connections reach public addresses only, unless the access allows the
    host), as the ``"mediaref"`` format does. The access is no part of the ref's value (equality, hashing,
    order, ``repr``, dumps and what a table stores are ``uri`` and ``pts_ns`` only); a ref built in code
    carries none.

    Args:
        uri: a local path (relative or absolute), a ``file://``, ``http(s)://`` or fsspec URL (``hf://``,
            ``s3://``...), an RFC 2397 ``data:`` URI, an ``os.PathLike`` or a :class:`DataURI`.
        pts_ns: the presentation time of a video frame in integer nanoseconds (numpy integers and integral
            floats accepted), or ``None`` for an image.

    Raises:
        InvalidRefError: for an empty or non-string ``uri`` or one with a NUL byte, a bool, fractional,
            negative or beyond-int64 ``pts_ns``, or an unknown field (a ``ValueError``; the message says why).

    Example:
        ```python
        >>> from hf_mediaref import MediaRef
        >>> ref = MediaRef("videos/ep0.mp4", pts_ns=1_500_000_000)
        >>> ref.is_video, ref.is_relative_path
        (True, True)
        >>> ref.model_dump()
        {'uri': 'videos/ep0.mp4', 'pts_ns': 1500000000}
        ```
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    uri: str
    pts_ns: int | None = None

    def __init__(self, uri: Any = None, pts_ns: Any = None, **kw: Any):
        if uri is not None:
            kw["uri"] = uri
        if pts_ns is not None:
            kw["pts_ns"] = pts_ns
        try:
            super().__init__(**kw)
        except ValidationError as exc:
            raise _invalid(exc, kw) from None

    @classmethod
    def model_validate(cls, obj: Any, *args: Any, **kwargs: Any) -> MediaRef:
        """Build a ref from a mapping (``{"uri", "pts_ns"}``) or another ref, as pydantic does.

        Raises:
            InvalidRefError: the value is not a valid ref (the message names it and says why).
        """
        try:
            return super().model_validate(obj, *args, **kwargs)
        except ValidationError as exc:
            raise _invalid(exc, obj if isinstance(obj, Mapping) else {}) from None

    @classmethod
    def model_validate_json(cls, json_data: Any, *args: Any, **kwargs: Any) -> MediaRef:
        """Build a ref from its JSON, as pydantic does.

        Raises:
            InvalidRefError: the JSON is not a valid ref.
        """
        try:
            return super().model_validate_json(json_data, *args, **kwargs)
        except ValidationError as exc:
            raise _invalid(exc, {}) from None

    @field_validator("uri", mode="before")
    @classmethod
    def _check_uri(cls, value: Any) -> str:
        return coerce_uri(value)

    @field_validator("pts_ns", mode="before")
    @classmethod
    def _check_pts(cls, value: Any) -> int | None:
        return coerce_pts_ns(value)

    @classmethod
    def _checked(cls, uri: str, pts_ns: int | None, access: MediaAccess) -> MediaRef:
        """The ref ``access`` resolved (``uri``, valid fields) and checked, carrying ``access``: decoding it
        without ``access=`` reads under its rules (:func:`hf_mediaref.batch_decode`). For the code that
        resolves stored refs against an access (a dataset's rows, :meth:`resolve_relative_path`)."""
        ref = cls.model_construct(uri=uri, pts_ns=pts_ns)
        object.__setattr__(ref, "__pydantic_private__", _private_of(access))  # as pydantic sets it
        return ref

    @property
    def _access(self) -> MediaAccess | None:
        """The access that resolved and checked this ref (a dataset's), or ``None`` (a ref built in code).

        Runtime state, no part of the value (see ``__eq__`` / ``__hash__``), never serialized, read-only: kept
        in the model's private-state slot (``__pydantic_private__``), which pydantic pickles (DataLoader
        workers read under it) and copies with the ref but never dumps or validates. Not a pydantic
        ``PrivateAttr``: one makes pydantic build a private dict for every ref constructed (~1 us a ref, paid
        by every row read; ``scripts/bench_ref_rows.py``)."""
        private = self.__pydantic_private__
        return private.get("_access") if private else None

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
            MediaRefError: the typed errors of :func:`hf_mediaref.batch_decode` (``MediaNotFoundError``,
                ``MediaDecodeError``, ``FrameOutOfRangeError``, ``UnsupportedURIError``...).

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
        self,
        base_path: str | os.PathLike | MediaAccess,
        on_unresolvable: Literal["warn", "error", "ignore"] = "warn",
    ) -> MediaRef:
        """Join a relative path onto ``base_path``; absolute paths and URLs are returned unchanged.

        Args:
            base_path: a local directory or a URL such as ``hf://datasets/org/name@rev/``,
                ``https://host/dir/`` or ``s3://bucket/prefix/`` (a relative path is resolved and checked by
                the one resolver, :meth:`hf_mediaref.MediaAccess.resolve`: it must stay inside it, symlinks
                followed), or a :class:`~hf_mediaref.MediaAccess` (every ref, absolute ones too, is checked).
            on_unresolvable: what to do with embedded (``data:``) and remote refs, which cannot be resolved:
                return them unchanged with a warning (``"warn"``), silently (``"ignore"``), or raise
                (``"error"``).

        Returns:
            A new ``MediaRef`` (or ``self`` when nothing changes); resolved against a ``MediaAccess``, one
            that carries it (decoding it without ``access=`` reads under its rules).

        Raises:
            PathEscapeError: the path leaves ``base_path`` with ``..``.
            UntrustedRefError: the path leads out of ``base_path`` (a symlink), or, with a ``MediaAccess``,
                the ref reads outside it.
            UnsupportedURIError: an embedded or remote ref with ``on_unresolvable="error"``.

        Example:
            ```python
            >>> MediaRef("videos/ep0.mp4", 0).resolve_relative_path("hf://datasets/org/name@main/")
            MediaRef(uri='hf://datasets/org/name@main/videos/ep0.mp4', pts_ns=0)
            ```
        """
        if isinstance(base_path, MediaAccess):  # every ref checked against the access, and carrying it
            return MediaRef._checked(base_path.resolve(self.uri), self.pts_ns, base_path)
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
        return MediaRef(MediaAccess(os.fspath(base_path)).resolve(self.uri), self.pts_ns)

    def validate_uri(self, *, storage_options: dict | None = None) -> bool:
        """Whether the target exists: a local ``stat``, an HTTP ``HEAD`` (a 1-byte ranged GET where HEAD is
        refused) or fsspec's ``exists``; never a download.

        Args:
            storage_options: fsspec options for remote URIs.

        Raises:
            InvalidDataURIError: a malformed ``data:`` URI.
            UnsupportedURIError: a scheme that cannot be read.
        """
        with reading_with(self._access):  # a dataset's ref: its access's public-address rule
            return uri_exists(self.uri, storage_options=storage_options)

    # ------------------------------------------------------------------ value semantics
    def __array__(self, dtype: Any = None, copy: Any = None) -> Any:
        """For ``datasets``' writer, a 0-d object array holding the stored ``{"uri", "pts_ns"}`` dict (how
        ``Dataset.map`` stores a returned ref); for NumPy, the ref itself in a 0-d object array (object
        arrays hold refs as they are: ``np.array(refs)``). A ref is not pixels: ``datasets``' ``"numpy"`` /
        ``"torch"`` / ``"jax"`` / ``"tensorflow"`` formats and any numeric ``dtype`` get
        :class:`~hf_mediaref.errors.UndecodedRefError` naming the ``"mediaref"`` format. See
        :func:`hf_mediaref._fields.stored_array`.

        Raises:
            UndecodedRefError: (a ``TypeError``) for ``datasets``' tensor formats and numeric dtypes.
        """
        return stored_array(self, self.uri, self.pts_ns, "MediaRef", dtype)

    def _key(self) -> tuple:
        return (self.uri, -1 if self.pts_ns is None else self.pts_ns)

    def __eq__(self, other: object) -> bool:
        """Equal refs name the same media and time; the access a ref carries is not compared (pydantic's own
        equality would compare it)."""
        if type(other) is not type(self):
            return NotImplemented
        return self.uri == other.uri and self.pts_ns == other.pts_ns

    def __hash__(self) -> int:
        return hash((self.uri, self.pts_ns))

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

    def _repr_html_(self) -> str:
        """How a notebook shows a ref: what it names, never its pixels. Showing reads nothing (a ref alone
        has no access to read under, and a table of refs would read every file); ``ref.to_pil_image()``
        decodes it, and :func:`hf_mediaref.image_grid` / :func:`hf_mediaref.contact_sheet` show many."""
        import html

        uri = self.uri if len(self.uri) <= 120 else self.uri[:80] + "..." + self.uri[-30:]
        when = "image" if self.pts_ns is None else f"frame at {self.pts_ns / 1e9:.6f} s"
        return (
            f"<code>MediaRef</code> <b>{html.escape(when)}</b> of <code>{html.escape(uri)}</code> "
            "<small>(not decoded: <code>.to_pil_image()</code> shows it)</small>"
        )


def _invalid(exc: ValidationError, given: Mapping[str, Any]) -> InvalidRefError:
    """The typed error for a ref pydantic refused: the validators' own error, or one made from pydantic's."""
    first = exc.errors()[0]
    cause = (first.get("ctx") or {}).get("error")
    if isinstance(cause, InvalidRefError):
        return cause
    if first.get("type") == "extra_forbidden":
        extra = sorted(set(given) - {"uri", "pts_ns"})
        reason = f"a ref has fields 'uri' and 'pts_ns' only, got unexpected {extra}"
    elif first.get("type") == "missing":
        reason = "a ref needs a uri"
    else:
        reason = str(first.get("msg"))
    return invalid_ref(reason, given.get("uri"), given.get("pts_ns"))
