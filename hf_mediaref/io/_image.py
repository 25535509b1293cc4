"""Decode still images (any Pillow format and mode) into RGB.

EXIF orientation is applied. Alpha is dropped (not composited). 16-bit and float images are scaled to 8 bits.
Decompression bombs are refused: images above ``PIL.Image.MAX_IMAGE_PIXELS`` pixels raise
:class:`~hf_mediaref.errors.MediaDecodeError`; raise that limit (or set it to ``None``) to allow larger
images."""

from __future__ import annotations

import io
from typing import Any

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from ..errors import MediaDecodeError, describe_uri
from ._sources import read_bytes

__all__ = [
    "IMAGE_FORMATS",
    "check_pixel_limit",
    "decode_image",
    "encode_image",
    "load_image",
    "load_image_rgb",
    "resize_rgb",
    "sniff_mimetype",
    "to_rgb",
]

#: Formats :func:`encode_image` writes (name -> Pillow format).
IMAGE_FORMATS = {
    "png": "PNG",
    "jpeg": "JPEG",
    "jpg": "JPEG",
    "webp": "WEBP",
    "bmp": "BMP",
    "tiff": "TIFF",
    "tif": "TIFF",
    "gif": "GIF",
}
_MIME = {
    "PNG": "image/png",
    "JPEG": "image/jpeg",
    "WEBP": "image/webp",
    "BMP": "image/bmp",
    "TIFF": "image/tiff",
    "GIF": "image/gif",
}
_DEFAULT_QUALITY = {"JPEG": 90, "WEBP": 90}


def to_rgb(img: Image.Image) -> Image.Image:
    """Convert a Pillow image of any mode to RGB (high bit depths scaled, alpha dropped)."""
    if img.mode == "RGB":
        return img
    if img.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
        arr = np.asarray(img, dtype=np.float64)
        peak = 65535.0 if img.mode.startswith("I;16") or arr.max(initial=0) > 255 else 255.0
        gray = np.clip(np.rint(arr * (255.0 / peak)), 0, 255).astype(np.uint8)
        return Image.fromarray(gray).convert("RGB")
    if img.mode == "P" and "transparency" in img.info:
        img = img.convert("RGBA")
    return img.convert("RGB")


def check_pixel_limit(width: int, height: int, uri: str, what: str = "image") -> None:
    """Refuse media whose frames are larger than the decompression-bomb limit, before decoding them.

    One limit serves images and video frames: ``PIL.Image.MAX_IMAGE_PIXELS`` (Pillow's default, about 89.5
    megapixels); raise it, or set it to ``None``, to allow larger media.

    Raises:
        MediaDecodeError: ``width * height`` is above the limit.
    """
    limit = Image.MAX_IMAGE_PIXELS
    pixels = int(width) * int(height)
    if limit is not None and pixels > limit:
        raise MediaDecodeError(
            f"{what} {describe_uri(uri)} has {width}x{height} = {pixels:,} pixels per frame, above the "
            f"decompression-bomb limit of {limit:,}; raise PIL.Image.MAX_IMAGE_PIXELS to allow it",
            uri=uri,
        )


#: How video containers start (MP4/MOV ``ftyp``, Matroska/WebM EBML, AVI, FLV, MPEG-TS sync bytes, MPEG-PS).
_VIDEO_SIGNATURES = ((4, b"ftyp"), (0, b"\x1aE\xdf\xa3"), (8, b"AVI "), (0, b"FLV"), (0, b"\x00\x00\x01\xba"))


def _looks_like_video(data: bytes) -> bool:
    if any(data[at : at + len(sig)] == sig for at, sig in _VIDEO_SIGNATURES):
        return True
    return len(data) > 376 and data[0] == data[188] == data[376] == 0x47  # MPEG-TS packets


def decode_image(data: bytes, *, uri: str = "<bytes>", orientation: str = "display") -> Image.Image:
    """Decode encoded image bytes into an RGB Pillow image; ``uri`` names the source in errors.
    ``orientation="display"`` applies the EXIF orientation, ``"stored"`` keeps the pixels as stored."""
    try:
        img: Image.Image = Image.open(io.BytesIO(data))
        check_pixel_limit(img.size[0], img.size[1], uri)
        if orientation == "display":
            img = ImageOps.exif_transpose(img)
        img.load()
        return to_rgb(img)
    except MediaDecodeError:
        raise
    except Image.DecompressionBombError as exc:
        raise MediaDecodeError(
            f"image {describe_uri(uri)} refused by the decompression-bomb limit ({exc}); "
            "raise PIL.Image.MAX_IMAGE_PIXELS to allow it",
            uri=uri,
        ) from exc
    except UnidentifiedImageError:
        if _looks_like_video(data):
            raise MediaDecodeError(
                f"{describe_uri(uri)} is a video, not an image: a ref to one of its frames needs a pts_ns "
                "(the frame's time in nanoseconds), e.g. MediaRef(uri, pts_ns=0)",
                uri=uri,
            ) from None
        raise MediaDecodeError(
            f"cannot decode image {describe_uri(uri)}: not an image format Pillow can identify", uri=uri
        ) from None
    except (OSError, ValueError, SyntaxError) as exc:
        raise MediaDecodeError(f"cannot decode image {describe_uri(uri)}: {exc}", uri=uri) from exc


def load_image(uri: str, *, storage_options: dict | None = None, orientation: str = "display") -> Image.Image:
    """Load the image at ``uri`` as an RGB Pillow image (EXIF orientation applied unless ``"stored"``)."""
    return decode_image(read_bytes(uri, storage_options=storage_options), uri=uri, orientation=orientation)


def resize_rgb(img: Image.Image, size: tuple[int, int] | None) -> Image.Image:
    """Resize to ``size=(H, W)`` with bilinear filtering (no-op for None or the same size)."""
    if size is None:
        return img
    height, width = size
    if (width, height) == img.size:
        return img
    return img.resize((width, height), Image.Resampling.BILINEAR)


def load_image_rgb(
    uri: str,
    *,
    size: tuple[int, int] | None = None,
    storage_options: dict | None = None,
    orientation: str = "display",
) -> np.ndarray:
    """Load the image at ``uri`` as an (H, W, 3) uint8 RGB array, optionally resized to ``size=(H, W)``;
    ``orientation="display"`` applies the EXIF orientation first, ``"stored"`` does not."""
    img = resize_rgb(load_image(uri, storage_options=storage_options, orientation=orientation), size)
    return np.array(img, dtype=np.uint8)


# ------------------------------------------------------------------------------------------------ encoding
def _pil_from_array(array: np.ndarray) -> Image.Image:
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


def encode_image(image: Any, format: str = "png", quality: int | None = None) -> tuple[bytes, str]:
    """Encode a numpy array ((H, W), (H, W, 3) RGB or (H, W, 4) RGBA uint8; uint16 grayscale) or a PIL image.

    Args:
        image: the pixels.
        format: one of :data:`IMAGE_FORMATS` (``"png"``: lossless).
        quality: 1-100, for JPEG and WebP only (default 90).

    Returns:
        ``(encoded bytes, media type)``.

    Raises:
        ValueError: for an unknown format, a quality given for a lossless format or out of range, or an array
            of an unsupported shape or dtype.
    """
    fmt = IMAGE_FORMATS.get(format.lower())
    if fmt is None:
        raise ValueError(f"unsupported image format {format!r}; choose one of {sorted(set(IMAGE_FORMATS))}")
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
    return buf.getvalue(), _MIME[fmt]


def sniff_mimetype(data: bytes) -> str:
    """The media type of encoded image ``data`` (``application/octet-stream`` when Pillow cannot tell)."""
    try:
        fmt = Image.open(io.BytesIO(data)).format
    except Exception:
        return "application/octet-stream"
    return _MIME.get(fmt or "", f"image/{(fmt or 'octet-stream').lower()}")
