"""MediaRef: validation, properties, serialization, path resolution, loading."""

from __future__ import annotations

import json
import pickle
import subprocess
import sys
import warnings

import numpy as np
import pytest
from pydantic import ValidationError

from hf_mediaref import DataURI, MediaRef
from hf_mediaref.errors import InvalidRefError, MediaNotFoundError, PathEscapeError, UnsupportedURIError
from hf_mediaref.testing import barcode_frame, read_index, write_image

BIG = 2**62 + 1


class TestValidation:
    def test_positional_and_keyword(self):
        assert MediaRef("a.mp4", 5) == MediaRef(uri="a.mp4", pts_ns=5)
        assert MediaRef("a.png").pts_ns is None

    @pytest.mark.parametrize("bad", [True, False, 1.5, -1, 2**63, "12", [1], float("nan")])
    def test_rejects_bad_pts(self, bad):
        with pytest.raises(InvalidRefError, match="pts_ns"):
            MediaRef("a.mp4", bad)

    def test_accepts_numpy_and_integral_float(self):
        assert MediaRef("a.mp4", np.int64(7)).pts_ns == 7
        assert MediaRef("a.mp4", np.uint32(7)).pts_ns == 7
        assert MediaRef("a.mp4", 3.0).pts_ns == 3
        assert type(MediaRef("a.mp4", np.int64(7)).pts_ns) is int

    def test_int64_max_and_zero(self):
        assert MediaRef("a.mp4", 2**63 - 1).pts_ns == 2**63 - 1
        assert MediaRef("a.mp4", 0).pts_ns == 0

    @pytest.mark.parametrize("bad", ["", 5, None])
    def test_rejects_bad_uri(self, bad):
        with pytest.raises(InvalidRefError):
            MediaRef(uri=bad)

    def test_rejects_a_nul_byte_in_the_uri(self):
        with pytest.raises(ValueError, match="NUL"):
            MediaRef("/data/a\x00.mp4", 0)

    @pytest.mark.parametrize(
        "kwargs",
        [
            {"uri": "/a\x00.mp4", "pts_ns": 0},
            {"uri": "", "pts_ns": 0},
            {"uri": "a.mp4", "pts_ns": -1},
            {"uri": "a", "pts": 3},
        ],
    )
    def test_construction_raises_invalid_ref_error(self, kwargs):
        with pytest.raises(InvalidRefError):
            MediaRef(**kwargs)

    def test_rejects_unknown_fields(self):
        with pytest.raises(InvalidRefError, match="pts"):
            MediaRef.model_validate({"uri": "a.mp4", "pts": 5})

    def test_accepts_dataur_and_path(self, tmp_path):
        d = DataURI.from_image(barcode_frame(3))
        assert MediaRef(d).uri == d.uri
        assert MediaRef(tmp_path / "x.png").uri == str(tmp_path / "x.png")

    def test_immutable(self):
        ref = MediaRef("a.mp4", 1)
        with pytest.raises(ValidationError):
            ref.pts_ns = 2


class TestSerialization:
    def test_big_pts_survives_json_and_dict(self):
        ref = MediaRef("v.mp4", BIG)
        assert ref.model_dump() == {"uri": "v.mp4", "pts_ns": BIG}
        text = ref.model_dump_json()
        assert json.loads(text)["pts_ns"] == BIG
        assert MediaRef.model_validate_json(text).pts_ns == BIG
        assert MediaRef.model_validate(ref.model_dump()).pts_ns == BIG

    def test_null_and_absent_pts_are_equal(self):
        assert MediaRef.model_validate_json('{"uri": "a.png"}') == MediaRef.model_validate_json(
            '{"uri": "a.png", "pts_ns": null}'
        )

    def test_hashable_comparable_picklable(self):
        a, b, c = MediaRef("v.mp4", 2), MediaRef("v.mp4", 2), MediaRef("v.mp4", 1)
        assert a == b and hash(a) == hash(b) and a != c
        assert len({a, b, c}) == 2
        assert sorted([a, c, MediaRef("v.mp4")]) == [MediaRef("v.mp4"), c, a]
        assert pickle.loads(pickle.dumps(a)) == a

    def test_repr_shortens_data_uris(self):
        ref = MediaRef(DataURI.from_image(np.zeros((200, 200, 3), np.uint8) + 7, format="bmp"))
        assert len(repr(ref)) < 200 and "chars" in repr(ref)


class TestKinds:
    @pytest.mark.parametrize(
        "uri, embedded, remote, relative",
        [
            ("frames/a.mp4", False, False, True),
            ("./a.png", False, False, True),
            ("/abs/a.png", False, False, False),
            ("file:///abs/a.png", False, False, False),
            ("https://host/a.png", False, True, False),
            ("http://host/a.png", False, True, False),
            ("hf://datasets/org/name@main/a.mp4", False, True, False),
            ("s3://bucket/a.mp4", False, True, False),
            ("memory://a.png", False, False, False),
            ("data:image/png;base64,AAAA", True, False, False),
        ],
    )
    def test_properties(self, uri, embedded, remote, relative):
        ref = MediaRef(uri)
        assert (ref.is_embedded, ref.is_remote, ref.is_relative_path) == (embedded, remote, relative)
        assert not ref.is_video and MediaRef(uri, 0).is_video


class TestResolve:
    @pytest.mark.parametrize(
        "base, expected",
        [
            ("/data/repo", "/data/repo/clips/a.mp4"),
            ("hf://datasets/org/name@abc123/", "hf://datasets/org/name@abc123/clips/a.mp4"),
            ("hf://datasets/org/name@abc123", "hf://datasets/org/name@abc123/clips/a.mp4"),
            ("https://host/dir/", "https://host/dir/clips/a.mp4"),
            ("s3://bucket/prefix", "s3://bucket/prefix/clips/a.mp4"),
        ],
    )
    def test_joins(self, base, expected):
        ref = MediaRef("clips/a.mp4", 10).resolve_relative_path(base)
        assert ref == MediaRef(expected, 10)

    def test_dot_segments_inside_base_are_fine(self):
        assert MediaRef("a/../b/./c.png").resolve_relative_path("/r").uri == "/r/b/c.png"

    def test_escape_is_refused(self):
        with pytest.raises(PathEscapeError, match=r"\.\./secret"):
            MediaRef("a/../../secret.png").resolve_relative_path("/r")

    def test_http_base_percent_encodes(self):
        assert (
            MediaRef("my clips/a b.mp4").resolve_relative_path("https://h/d").uri
            == "https://h/d/my%20clips/a%20b.mp4"
        )

    def test_absolute_unchanged(self):
        ref = MediaRef("/abs/a.png")
        assert ref.resolve_relative_path("/r") is ref

    @pytest.mark.parametrize("uri", ["https://h/a.png", "data:image/png;base64,AAAA", "s3://b/a.png"])
    def test_unresolvable(self, uri):
        ref = MediaRef(uri)
        with pytest.warns(UserWarning, match="cannot resolve"):
            assert ref.resolve_relative_path("/r") is ref
        with pytest.raises(UnsupportedURIError):
            ref.resolve_relative_path("/r", on_unresolvable="error")
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            assert ref.resolve_relative_path("/r", on_unresolvable="ignore") is ref


class TestLoading:
    def test_image_from_path_and_file_uri(self, tmp_path):
        path = write_image(tmp_path / "im 5.png", 5)
        assert read_index(MediaRef(str(path)).to_rgb_array()) == 5
        assert read_index(MediaRef(path.as_uri()).to_ndarray()) == 5
        pil = MediaRef(path.as_uri()).to_pil_image()
        assert pil.mode == "RGB" and read_index(np.asarray(pil)) == 5

    def test_image_from_data_uri(self):
        ref = MediaRef(DataURI.from_image(barcode_frame(11)))
        arr = ref.to_rgb_array()
        assert arr.shape == (96, 128, 3) and arr.dtype == np.uint8 and read_index(arr) == 11

    def test_video_frame(self, h264_video):
        for i in (0, 7, 29):
            ref = MediaRef(str(h264_video.path), h264_video.pts_ns[i])
            assert read_index(ref.to_rgb_array()) == i

    def test_video_frame_between_pts(self, h264_video):
        mid = (h264_video.pts_ns[12] + h264_video.pts_ns[13]) // 2
        assert read_index(MediaRef(str(h264_video.path), mid).to_rgb_array()) == 12

    def test_missing_file_names_the_ref(self, tmp_path):
        missing = tmp_path / "nope.png"
        with pytest.raises(MediaNotFoundError, match="nope.png"):
            MediaRef(str(missing)).to_rgb_array()
        with pytest.raises(FileNotFoundError):
            MediaRef(str(missing), 0).to_rgb_array()

    def test_validate_uri(self, tmp_path, png_image):
        assert MediaRef(str(png_image)).validate_uri()
        assert not MediaRef(str(tmp_path / "missing.png")).validate_uri()
        assert MediaRef(DataURI.from_image(barcode_frame(1))).validate_uri()


def test_import_is_light():
    code = (
        "import sys, hf_mediaref; "
        "print(sorted(m for m in ('av', 'torch', 'datasets', 'torchcodec', 'pyarrow') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_missing_extra_names_pip_install(monkeypatch):
    from hf_mediaref._optional import require
    from hf_mediaref.errors import MissingDependencyError

    monkeypatch.setitem(sys.modules, "av", None)  # makes `import av` fail
    with pytest.raises(MissingDependencyError, match=r"pip install 'hf-mediaref\[video\]'"):
        require("av")


def test_numpy_keeps_refs_as_objects():
    """``__array__`` answers datasets' writer with the stored dict; NumPy itself keeps refs as objects."""
    import numpy as np

    refs = [MediaRef("/a.mp4", 1), MediaRef("/b.png")]
    array = np.array(refs, dtype=object)
    assert array.dtype == object and list(array) == refs
    assert np.asarray(refs[0]).item() is refs[0]


def test_a_ref_resolved_against_an_access_carries_it_outside_its_value(tmp_path):
    """``resolve_relative_path(access)`` gives a ref carrying ``access`` (decoding it without ``access=``
    reads under its rules); the carried access is no part of the value: equality, hash, order, repr, dumps,
    copies' equality are those of the ref built in code (pydantic's own ``__eq__`` would compare it)."""
    from hf_mediaref import MediaAccess

    access = MediaAccess(str(tmp_path), ["https://media.example/"])
    ref = MediaRef("videos/a.mp4", 5).resolve_relative_path(access)
    code = MediaRef(str(tmp_path / "videos" / "a.mp4"), 5)
    assert ref._access is access and code._access is None
    assert ref == code and code == ref and hash(ref) == hash(code) and {ref: 1}[code] == 1
    assert sorted([MediaRef(code.uri, 6), ref, MediaRef(code.uri)]) == [
        MediaRef(code.uri),
        code,
        MediaRef(code.uri, 6),
    ]
    assert repr(ref) == repr(code) and ref.model_dump() == code.model_dump()
    assert json.loads(ref.model_dump_json()) == {"uri": code.uri, "pts_ns": 5}
    assert ref.model_copy() == code and ref.model_copy()._access is access
    assert pickle.loads(pickle.dumps(ref))._access == access
    assert ref != MediaRef(code.uri, 4) and ref != {"uri": code.uri, "pts_ns": 5}
    with pytest.raises(InvalidRefError):  # an access is never read from data
        MediaRef.model_validate({"uri": code.uri, "_access": access})
    other = MediaRef("videos/b.mp4", 5).resolve_relative_path(access)  # shares where the access is kept
    with pytest.raises(AttributeError):  # nor set afterwards (it would change the other refs' too)
        ref._access = MediaAccess(str(tmp_path), "*")
    assert ref._access is access and other._access is access
    assert MediaRef("videos/c.mp4", 5).resolve_relative_path(MediaAccess("/elsewhere"))._access != access
