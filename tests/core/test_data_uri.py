"""DataURI: RFC 2397 parsing, encoding round trips, errors."""

from __future__ import annotations

import base64

import numpy as np
import pytest
from PIL import Image

from hf_mediaref import DataURI
from hf_mediaref.errors import InvalidDataURIError, MediaDecodeError, MediaNotFoundError
from hf_mediaref.testing import barcode_frame, read_index, write_image


class TestParse:
    def test_defaults_to_text_plain_us_ascii(self):
        d = DataURI.from_uri("data:,hello")
        assert d.mimetype == "text/plain" and d.parameters == {"charset": "US-ASCII"} and d.data == b"hello"
        assert not d.is_base64 and not d.is_image

    def test_percent_encoded_payload(self):
        assert DataURI.from_uri("data:text/plain;charset=utf-8,caf%C3%A9%20ok").data == "café ok".encode()

    def test_parameters_and_base64(self):
        d = DataURI.from_uri("data:image/PNG;name=a%20b.png;base64," + base64.b64encode(b"\x89PNG").decode())
        assert d.mimetype == "image/png" and d.parameters == {"name": "a b.png"} and d.is_base64
        assert d.data == b"\x89PNG" and d.is_image

    def test_charset_only(self):
        d = DataURI.from_uri("data:;charset=utf-8,x")
        assert d.mimetype == "text/plain" and d.parameters["charset"] == "utf-8"

    def test_missing_padding_and_percent_encoded_base64(self):
        raw = b"ab"
        enc = base64.b64encode(raw).decode().rstrip("=")
        assert DataURI.from_uri(f"data:application/octet-stream;base64,{enc}").data == raw
        assert DataURI.from_uri("data:;base64,%2B%2F8%3D").data == base64.b64decode("+/8=")

    @pytest.mark.parametrize(
        "uri, match",
        [
            ("data:image/png;base64", "no comma"),
            ("data:image/png;base64,@@@@", "bad base64"),
            ("https://example.com/a.png", "wrong scheme"),
            ("data:png;base64,AAAA", "media type"),
            ("data:image/png;oops;base64,AAAA", "parameter"),
        ],
    )
    def test_malformed(self, uri, match):
        with pytest.raises(InvalidDataURIError, match=match) as info:
            DataURI.from_uri(uri)
        assert isinstance(info.value, ValueError)

    def test_error_shows_only_the_start_of_a_huge_uri(self):
        uri = "data:image/png;base64," + "A" * 5_000_000 + "*"
        with pytest.raises(InvalidDataURIError) as info:
            DataURI.from_uri(uri)
        assert len(str(info.value)) < 300 and "5,000,023 chars" in str(info.value)

    def test_constructor_raises_typed_error(self):
        with pytest.raises(InvalidDataURIError):
            DataURI("data:nocomma")


class TestEncode:
    def test_png_is_bit_exact(self):
        rng = np.random.default_rng(0)
        arr = rng.integers(0, 256, (33, 47, 3), dtype=np.uint8)
        d = DataURI.from_image(arr)
        assert d.mimetype == "image/png" and str(d) == d.uri and len(d) == len(d.uri)
        assert np.array_equal(d.to_rgb_array(), arr)

    def test_from_pil_and_gray_and_rgba(self):
        rgba = np.dstack([barcode_frame(9), np.full((96, 128), 100, np.uint8)])
        assert read_index(DataURI.from_image(rgba).to_rgb_array()) == 9
        gray = np.asarray(Image.fromarray(barcode_frame(4)).convert("L"))
        out = DataURI.from_image(gray).to_rgb_array()
        assert out.shape == (96, 128, 3) and read_index(out) == 4
        assert read_index(DataURI.from_image(Image.fromarray(barcode_frame(6))).to_rgb_array()) == 6

    @pytest.mark.parametrize(
        "fmt, mime", [("jpeg", "image/jpeg"), ("jpg", "image/jpeg"), ("webp", "image/webp")]
    )
    def test_lossy_formats_honour_quality(self, fmt, mime):
        frame = barcode_frame(1234)
        low, high = (
            DataURI.from_image(frame, format=fmt, quality=10),
            DataURI.from_image(frame, format=fmt, quality=95),
        )
        assert low.mimetype == mime and len(low) < len(high)
        assert read_index(high.to_rgb_array()) == 1234
        err_low = np.abs(low.to_rgb_array().astype(int) - frame).mean()
        err_high = np.abs(high.to_rgb_array().astype(int) - frame).mean()
        assert err_high < err_low

    def test_jpeg_drops_alpha(self):
        rgba = np.dstack([barcode_frame(3), np.zeros((96, 128), np.uint8)])
        assert read_index(DataURI.from_image(rgba, format="jpeg").to_rgb_array()) == 3

    @pytest.mark.parametrize(
        "kw", [dict(format="png", quality=50), dict(format="jpeg", quality=0), dict(format="xyz")]
    )
    def test_bad_options(self, kw):
        with pytest.raises(ValueError):
            DataURI.from_image(barcode_frame(0), **kw)

    @pytest.mark.parametrize(
        "arr", [np.zeros((4, 4, 2), np.uint8), np.zeros((4, 4, 3), np.float32), np.zeros((4,), np.uint8)]
    )
    def test_bad_arrays(self, arr):
        with pytest.raises(ValueError):
            DataURI.from_image(arr)


class TestFromFile:
    def test_verbatim_bytes(self, tmp_path):
        path = write_image(tmp_path / "a.jpg", 77, quality=95)
        d = DataURI.from_file(path)
        assert d.mimetype == "image/jpeg" and d.data == path.read_bytes()
        assert read_index(d.to_rgb_array()) == 77

    def test_sniffs_unknown_extension(self, tmp_path):
        path = write_image(tmp_path / "a.bin", 5, format="PNG")
        assert DataURI.from_file(path).mimetype == "image/png"

    def test_reencode(self, tmp_path):
        path = write_image(tmp_path / "a.bmp", 21)
        d = DataURI.from_file(path, format="png")
        assert d.mimetype == "image/png" and read_index(d.to_rgb_array()) == 21

    def test_missing(self, tmp_path):
        with pytest.raises(MediaNotFoundError, match="missing.png"):
            DataURI.from_file(tmp_path / "missing.png")


def test_non_image_payload_is_refused():
    with pytest.raises(MediaDecodeError, match="text/plain"):
        DataURI.from_uri("data:,hello").to_rgb_array()
    with pytest.raises(MediaDecodeError, match="cannot decode"):
        DataURI.from_bytes(b"not an image", "image/png").to_rgb_array()
