"""Image decoding: formats, modes, EXIF orientation, resize, corrupt files and decompression bombs."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from hf_mediaref.errors import MediaDecodeError
from hf_mediaref.io import load_image, load_image_rgb
from hf_mediaref.testing import barcode_frame, read_index, write_image


@pytest.mark.parametrize(
    "name, kw",
    [
        ("a.png", {}),
        ("a.jpg", dict(quality=95)),
        ("a.webp", dict(quality=95)),
        ("a.bmp", {}),
        ("a.tiff", {}),
        ("rgba.png", dict(mode="RGBA")),
        ("l.png", dict(mode="L")),
        ("p.png", dict(mode="P")),
        ("i16.png", dict(mode="I;16")),
        ("cmyk.jpg", dict(mode="CMYK", quality=95)),
    ],
)
def test_formats_and_modes_become_rgb(tmp_path, name, kw):
    path = write_image(tmp_path / name, 4321, **kw)
    arr = load_image_rgb(str(path))
    assert arr.shape == (96, 128, 3) and arr.dtype == np.uint8 and arr.flags.writeable
    assert read_index(arr) == 4321


def test_exif_orientation_is_honoured(tmp_path):
    frame = barcode_frame(99)
    rotated = Image.fromarray(frame).transpose(Image.Transpose.ROTATE_90)  # stored sideways
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 degrees clockwise to display"
    path = tmp_path / "exif.jpg"
    rotated.save(path, quality=95, exif=exif)
    arr = load_image_rgb(str(path))
    assert arr.shape == (96, 128, 3) and read_index(arr) == 99


def test_resize(tmp_path):
    path = write_image(tmp_path / "a.png", 17)
    arr = load_image_rgb(str(path), size=(192, 256))
    assert arr.shape == (192, 256, 3) and read_index(arr) == 17


def test_corrupt_and_truncated(tmp_path):
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"definitely not an image")
    with pytest.raises(MediaDecodeError, match="bad.png"):
        load_image(str(bad))
    good = write_image(tmp_path / "t.png", 1).read_bytes()
    trunc = tmp_path / "trunc.png"
    trunc.write_bytes(good[: len(good) // 2])
    with pytest.raises(MediaDecodeError, match="trunc.png"):
        load_image(str(trunc))


def test_decompression_bomb_is_refused(tmp_path, monkeypatch):
    path = write_image(tmp_path / "big.png", 3)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)
    with pytest.raises(MediaDecodeError, match="decompression-bomb limit.*MAX_IMAGE_PIXELS"):
        load_image(str(path))
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", None)
    assert read_index(load_image_rgb(str(path))) == 3
