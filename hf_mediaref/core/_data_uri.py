"""DataURI: media embedded as a self-contained RFC 2397 ``data:`` URI."""

from __future__ import annotations

import base64
import io
import mimetypes
import os
from typing import Any

import numpy as np
from PIL import Image, ImageOps
from pydantic import BaseModel, ConfigDict, PrivateAttr, ValidationError, model_validator

from .._fields import stored_array
from ..errors import InvalidDataURIError, MediaDecodeError, MediaNotFoundError, describe_uri
from ..io import decode_image, encode_image, parse_data_uri, sniff_mimetype

__all__ = ["DataURI"]


class DataURI(BaseModel):
    """Media embedded in an RFC 2397 ``data:`` URI: a self-contained value for a :class:`MediaRef`.

    ``str(d)`` is the URI and ``len(d)`` its length in characters. Build one with :meth:`from_image`,
    :meth:`from_file`, :meth:`from_bytes` or :meth:`from_uri` (strict parsing).

    Args:
        uri: the ``data:`` URI.

    Raises:
        InvalidDataURIError: a malformed URI (the message shows only its first characters).

    Example:
        ```python
        >>> import numpy as np
        >>> from hf_mediaref import DataURI, MediaRef
        >>> d = DataURI.from_image(np.zeros((4, 4, 3), np.uint8))   # PNG, lossless
        >>> d.mimetype, d.is_image
        ('image/png', True)
        >>> MediaRef(d).to_rgb_array().shape
        (4, 4, 3)
        ```
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    uri: str
    _mimetype: str = PrivateAttr()
    _params: dict = PrivateAttr()
    _is_base64: bool = PrivateAttr()
    _data: bytes = PrivateAttr()

    @model_validator(mode="after")
    def _validate(self) -> DataURI:
        self._mimetype, self._params, self._is_base64, self._data = parse_data_uri(self.uri)
        return self

    def __init__(self, uri: str | None = None, **kw: Any):
        if uri is not None:
            kw["uri"] = uri
        try:
            super().__init__(**kw)
        except ValidationError as exc:  # surface our typed error rather than pydantic's wrapper
            for err in exc.errors():
                cause = (err.get("ctx") or {}).get("error")
                if isinstance(cause, InvalidDataURIError):
                    raise cause from None
            raise

    # ------------------------------------------------------------------ constructors
    @classmethod
    def from_uri(cls, uri: str) -> DataURI:
        """Parse ``uri`` (a ``DataURI`` is returned as it is).

        Raises:
            InvalidDataURIError: a malformed URI (a ``ValueError``).
            TypeError: ``uri`` is not a string.
        """
        if isinstance(uri, DataURI):
            return uri
        if not isinstance(uri, str):
            raise TypeError(f"expected a str, got {type(uri).__name__}")
        return cls(uri=uri)

    @classmethod
    def from_bytes(cls, data: bytes, mimetype: str) -> DataURI:
        """Embed raw ``data`` (base64) with the media type ``mimetype`` (e.g. ``"image/png"``)."""
        return cls(uri=f"data:{mimetype};base64,{base64.b64encode(data).decode('ascii')}")

    @classmethod
    def from_image(cls, image: Any, format: str = "png", quality: int | None = None) -> DataURI:
        """Encode pixels as an image data URI.

        Args:
            image: a numpy array ((H, W), (H, W, 3) RGB or (H, W, 4) RGBA uint8; (H, W) uint16) or a
                PIL image.
            format: ``"png"`` (lossless: bit-exact round trip), ``"jpeg"``, ``"webp"``, ``"bmp"``, ``"tiff"``,
                ``"gif"``.
            quality: 1-100 for JPEG and WebP (default 90).

        Raises:
            ValueError: an unknown format, ``quality`` for a lossless format or out of range, or an array
                of an unsupported shape or dtype.
        """
        data, mimetype = encode_image(image, format=format, quality=quality)
        return cls.from_bytes(data, mimetype)

    @classmethod
    def from_file(cls, path: str | os.PathLike, format: str | None = None) -> DataURI:
        """Embed a local file.

        Args:
            path: the file.
            format: ``None`` to embed the bytes verbatim (media type from the extension, else sniffed), or an
                image format to re-encode into (EXIF orientation applied).

        Raises:
            MediaNotFoundError: the file does not exist.
        """
        path = os.fspath(path)
        try:
            with open(path, "rb") as f:
                data = f.read()
        except FileNotFoundError as exc:
            raise MediaNotFoundError(f"file {describe_uri(path)} does not exist", uri=path) from exc
        if format is not None:
            return cls.from_image(ImageOps.exif_transpose(Image.open(io.BytesIO(data))), format=format)
        mimetype = mimetypes.guess_type(path)[0]
        if mimetype in (None, "application/octet-stream"):
            mimetype = sniff_mimetype(data)
        return cls.from_bytes(data, mimetype)

    # ------------------------------------------------------------------ properties
    @property
    def mimetype(self) -> str:
        """The media type, e.g. ``image/png`` (``text/plain`` when the URI names none)."""
        return self._mimetype

    @property
    def parameters(self) -> dict[str, str]:
        """Media-type parameters, e.g. ``{"charset": "US-ASCII"}``."""
        return dict(self._params)

    @property
    def is_base64(self) -> bool:
        """Whether the payload is base64-encoded (else percent-encoded)."""
        return self._is_base64

    @property
    def data(self) -> bytes:
        """The decoded payload bytes."""
        return self._data

    @property
    def is_image(self) -> bool:
        """Whether the media type is ``image/*``."""
        return self._mimetype.startswith("image/")

    # ------------------------------------------------------------------ decoding
    def to_pil_image(self) -> Image.Image:
        """Decode to an RGB Pillow image (alpha dropped, 16-bit scaled, EXIF orientation applied).

        Raises:
            MediaDecodeError: the payload is not an image, is corrupt, or is a decompression bomb.
        """
        if not (self.is_image or self._mimetype == "application/octet-stream"):
            raise MediaDecodeError(
                f"data URI holds {self._mimetype!r}, not an image: {describe_uri(self.uri, 48)}", uri=self.uri
            )
        return decode_image(self._data, uri=self.uri)

    def to_rgb_array(self) -> np.ndarray:
        """Decode to an (H, W, 3) uint8 RGB array."""
        return np.array(self.to_pil_image(), dtype=np.uint8)

    to_ndarray = to_rgb_array

    def __str__(self) -> str:
        return self.uri

    def __len__(self) -> int:
        return len(self.uri)

    def __array__(self, dtype: Any = None, copy: Any = None) -> Any:
        """As :meth:`hf_mediaref.MediaRef.__array__` (the stored ``{"uri", "pts_ns": None}`` for ``datasets``'
        writer); pixels come from :meth:`to_rgb_array`."""
        return stored_array(self, self.uri, None, "DataURI", dtype)

    def __repr__(self) -> str:
        return f"DataURI({describe_uri(self.uri, 48)}, mimetype={self._mimetype!r})"
