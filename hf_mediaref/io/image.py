"""Decode still images (any Pillow format and mode) into RGB.

EXIF orientation is applied. Alpha is dropped (not composited). 16-bit and float images are scaled to 8 bits.
Decompression bombs are refused: images above ``PIL.Image.MAX_IMAGE_PIXELS`` pixels raise
:class:`~hf_mediaref.errors.MediaDecodeError`; raise that limit (or set it to ``None``) to allow larger images.
"""

from __future__ import annotations

import io

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from ..errors import MediaDecodeError, describe_uri
from .sources import read_bytes

__all__ = ["decode_image", "load_image", "load_image_rgb", "to_rgb", "resize_rgb"]


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


def _check_bomb(img: Image.Image, uri: str) -> None:
    limit = Image.MAX_IMAGE_PIXELS
    pixels = img.size[0] * img.size[1]
    if limit is not None and pixels > limit:
        raise MediaDecodeError(
            f"image {describe_uri(uri)} has {pixels:,} pixels, above the decompression-bomb limit of {limit:,}; "
            "raise PIL.Image.MAX_IMAGE_PIXELS to allow it", uri=uri)


def decode_image(data: bytes, *, uri: str = "<bytes>") -> Image.Image:
    """Decode encoded image bytes into an RGB Pillow image; ``uri`` names the source in errors."""
    try:
        img = Image.open(io.BytesIO(data))
        _check_bomb(img, uri)
        img = ImageOps.exif_transpose(img)
        img.load()
        return to_rgb(img)
    except MediaDecodeError:
        raise
    except Image.DecompressionBombError as exc:
        raise MediaDecodeError(f"image {describe_uri(uri)} refused by the decompression-bomb limit ({exc}); "
                               "raise PIL.Image.MAX_IMAGE_PIXELS to allow it", uri=uri) from exc
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as exc:
        raise MediaDecodeError(f"cannot decode image {describe_uri(uri)}: {exc}", uri=uri) from exc


def load_image(uri: str, *, storage_options: dict | None = None) -> Image.Image:
    """Load the image at ``uri`` as an RGB Pillow image."""
    return decode_image(read_bytes(uri, storage_options=storage_options), uri=uri)


def resize_rgb(img: Image.Image, size: tuple[int, int] | None) -> Image.Image:
    """Resize to ``size=(H, W)`` with bilinear filtering (no-op for None or the same size)."""
    if size is None:
        return img
    height, width = size
    if (width, height) == img.size:
        return img
    return img.resize((width, height), Image.Resampling.BILINEAR)


def load_image_rgb(uri: str, *, size: tuple[int, int] | None = None,
                   storage_options: dict | None = None) -> np.ndarray:
    """Load the image at ``uri`` as an (H, W, 3) uint8 RGB array, optionally resized to ``size=(H, W)``."""
    img = resize_rgb(load_image(uri, storage_options=storage_options), size)
    return np.array(img, dtype=np.uint8)
