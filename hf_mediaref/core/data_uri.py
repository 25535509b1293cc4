"""DataURI: media embedded as a self-contained RFC 2397 ``data:`` URI."""

from __future__ import annotations

import base64
import binascii
import io
import mimetypes
import os
from typing import Any
from urllib.parse import unquote, unquote_to_bytes

import numpy as np
from pydantic import BaseModel, ConfigDict, PrivateAttr, ValidationError, model_validator

from ..errors import InvalidDataURIError, MediaDecodeError, MediaNotFoundError, describe_uri

__all__ = ["DataURI"]

_DEFAULT_QUALITY = {"JPEG": 90, "WEBP": 90}
_FORMATS = {"png": "PNG", "jpeg": "JPEG", "jpg": "JPEG", "webp": "WEBP", "bmp": "BMP", "tiff": "TIFF", "tif": "TIFF",
            "gif": "GIF"}
_MIME = {"PNG": "image/png", "JPEG": "image/jpeg", "WEBP": "image/webp", "BMP": "image/bmp", "TIFF": "image/tiff",
         "GIF": "image/gif"}


def _parse(uri: str) -> tuple[str, dict[str, str], bool, bytes]:
    """Split a data URI into (mimetype, parameters, is_base64, decoded bytes)."""
    if uri[:5].lower() != "data:":
        raise InvalidDataURIError(f"not a data: URI (wrong scheme): {describe_uri(uri, 48)}", uri=uri)
    comma = uri.find(",")
    if comma < 0:
        raise InvalidDataURIError(f"malformed data URI (no comma before the payload): {describe_uri(uri, 48)}", uri=uri)
    tokens = uri[5:comma].split(";")
    is_base64 = len(tokens) > 0 and tokens[-1].strip().lower() == "base64"
    if is_base64:
        tokens.pop()
    mediatype = tokens[0].strip().lower() if tokens else ""
    params: dict[str, str] = {}
    for token in tokens[1:]:
        key, sep, value = token.partition("=")
        if not sep or not key.strip():
            raise InvalidDataURIError(f"malformed media-type parameter {token!r} in {describe_uri(uri, 48)}", uri=uri)
        params[key.strip().lower()] = unquote(value.strip())
    if not mediatype:
        mediatype = "text/plain"
        params.setdefault("charset", "US-ASCII")
    elif "/" not in mediatype:
        raise InvalidDataURIError(f"malformed media type {mediatype!r} in {describe_uri(uri, 48)}", uri=uri)
    payload = uri[comma + 1 :]
    if is_base64:
        if "%" in payload:
            payload = unquote(payload)
        payload = "".join(payload.split())
        payload += "=" * (-len(payload) % 4)
        try:
            data = base64.b64decode(payload, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise InvalidDataURIError(f"bad base64 payload ({exc}) in {describe_uri(uri, 48)}", uri=uri) from exc
    else:
        data = unquote_to_bytes(payload)
    return mediatype, params, is_base64, data


def _pil_from_array(array: np.ndarray):
    from PIL import Image

    arr = np.asarray(array)
    if arr.ndim == 3 and arr.shape[-1] == 1:
        arr = arr[..., 0]
    if arr.dtype == np.uint16 and arr.ndim == 2:
        return Image.fromarray(arr)  # uint16 -> mode I;16
    if arr.dtype == np.bool_:
        arr = arr.astype(np.uint8) * 255
    if arr.dtype != np.uint8:
        raise ValueError(f"expected a uint8 image array (or uint16 grayscale), got dtype {arr.dtype}")
    modes = {2: "L", 3: "RGB", 4: "RGBA"}
    mode = modes.get(arr.ndim if arr.ndim == 2 else arr.shape[-1]) if arr.ndim in (2, 3) else None
    if mode is None:
        raise ValueError(f"expected an image array of shape (H, W), (H, W, 3) or (H, W, 4), got {arr.shape}")
    return Image.fromarray(np.ascontiguousarray(arr), mode)


class DataURI(BaseModel):
    """An RFC 2397 data URI. Build one with :meth:`from_image`, :meth:`from_file`, :meth:`from_bytes` or
    :meth:`from_uri`; ``str(d)`` is the URI and ``len(d)`` its length in characters."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    uri: str
    _mimetype: str = PrivateAttr()
    _params: dict = PrivateAttr()
    _is_base64: bool = PrivateAttr()
    _data: bytes = PrivateAttr()

    @model_validator(mode="after")
    def _validate(self) -> "DataURI":
        self._mimetype, self._params, self._is_base64, self._data = _parse(self.uri)
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
    def from_uri(cls, uri: str) -> "DataURI":
        """Parse ``uri``; a malformed URI raises :class:`~hf_mediaref.errors.InvalidDataURIError` (a ValueError)."""
        if isinstance(uri, DataURI):
            return uri
        if not isinstance(uri, str):
            raise TypeError(f"expected a str, got {type(uri).__name__}")
        return cls(uri=uri)

    @classmethod
    def from_bytes(cls, data: bytes, mimetype: str) -> "DataURI":
        """Embed raw ``data`` (base64) with the given media type."""
        return cls(uri=f"data:{mimetype};base64,{base64.b64encode(data).decode('ascii')}")

    @classmethod
    def from_image(cls, image: Any, format: str = "png", quality: int | None = None) -> "DataURI":
        """Encode a numpy array ((H, W), (H, W, 3) RGB or (H, W, 4) RGBA, uint8) or a PIL image.

        PNG is lossless (bit-exact round trip); ``quality`` (1-100) applies to JPEG and WebP (default 90).
        """
        from PIL import Image

        fmt = _FORMATS.get(format.lower())
        if fmt is None:
            raise ValueError(f"unsupported image format {format!r}; choose one of {sorted(set(_FORMATS))}")
        if quality is not None:
            if fmt not in _DEFAULT_QUALITY:
                raise ValueError(f"quality applies to lossy formats (jpeg, webp), not {format!r}")
            if not 1 <= int(quality) <= 100:
                raise ValueError(f"quality must be in 1..100, got {quality}")
        img = image if isinstance(image, Image.Image) else _pil_from_array(image)
        if fmt == "JPEG" and img.mode not in ("RGB", "L"):
            img = img.convert("RGB")
        options: dict[str, Any] = {}
        if fmt in _DEFAULT_QUALITY:
            options["quality"] = int(quality or _DEFAULT_QUALITY[fmt])
        buf = io.BytesIO()
        img.save(buf, format=fmt, **options)
        return cls.from_bytes(buf.getvalue(), _MIME[fmt])

    @classmethod
    def from_file(cls, path: str | os.PathLike, format: str | None = None) -> "DataURI":
        """Embed a local file. With ``format=None`` the bytes are embedded verbatim (media type from the
        extension, else sniffed); with a ``format`` the image is re-encoded into it."""
        path = os.fspath(path)
        try:
            with open(path, "rb") as f:
                data = f.read()
        except FileNotFoundError as exc:
            raise MediaNotFoundError(f"file {describe_uri(path)} does not exist", uri=path) from exc
        if format is not None:
            from PIL import Image, ImageOps

            return cls.from_image(ImageOps.exif_transpose(Image.open(io.BytesIO(data))), format=format)
        mimetype = mimetypes.guess_type(path)[0]
        if mimetype in (None, "application/octet-stream"):
            mimetype = _sniff_mimetype(data)
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
        return self._is_base64

    @property
    def data(self) -> bytes:
        """The decoded payload bytes."""
        return self._data

    @property
    def is_image(self) -> bool:
        return self._mimetype.startswith("image/")

    # ------------------------------------------------------------------ decoding
    def to_pil_image(self) -> "Any":
        """Decode to an RGB Pillow image."""
        from ..io.image import decode_image

        if not (self.is_image or self._mimetype == "application/octet-stream"):
            raise MediaDecodeError(
                f"data URI holds {self._mimetype!r}, not an image: {describe_uri(self.uri, 48)}", uri=self.uri)
        return decode_image(self._data, uri=self.uri)

    def to_rgb_array(self) -> np.ndarray:
        """Decode to an (H, W, 3) uint8 RGB array."""
        return np.array(self.to_pil_image(), dtype=np.uint8)

    to_ndarray = to_rgb_array

    def __str__(self) -> str:
        return self.uri

    def __len__(self) -> int:
        return len(self.uri)

    def __repr__(self) -> str:
        return f"DataURI({describe_uri(self.uri, 48)}, mimetype={self._mimetype!r})"


def _sniff_mimetype(data: bytes) -> str:
    from PIL import Image

    try:
        fmt = Image.open(io.BytesIO(data)).format
    except Exception:
        return "application/octet-stream"
    return _MIME.get(fmt or "", f"image/{(fmt or 'octet-stream').lower()}")
