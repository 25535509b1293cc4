"""batch_decode end to end: mixed batches over every URI kind, output options, and typed errors."""

from __future__ import annotations

import importlib.abc
import sys

import fsspec
import numpy as np
import pytest

from hf_mediaref import DataURI, MediaRef, batch_decode
from hf_mediaref.errors import (
    DecodeTimeoutError,
    FrameOutOfRangeError,
    MediaDecodeError,
    MediaNotFoundError,
    MissingDependencyError,
)
from hf_mediaref.testing import read_index, write_image, write_video
from hf_mediaref.video import collect_stats

from .conftest import SIZE

DECODERS = ["pyav", pytest.param("torchcodec", marks=pytest.mark.torchcodec)]


def _indices(frames) -> list[int]:
    return [read_index(np.asarray(f)) for f in frames]


@pytest.fixture(scope="module")
def media(media_dir):
    """Videos and images inside the loopback HTTP server's directory."""
    return {
        "mp4": write_video(media_dir / "batch_a.mp4", 30, fps=30, gop=10, bframes=2, size=SIZE),
        "mkv": write_video(media_dir / "batch_b.mkv", 24, fps=24, gop=8, size=SIZE, first_index=100),
        "webm": write_video(
            media_dir / "batch_c.webm", 20, fps=20, gop=5, codec="libvpx-vp9", size=SIZE, first_index=200
        ),
        "png": write_image(media_dir / "batch_img300.png", 300, size=SIZE),
        "jpg": write_image(media_dir / "batch_img301.jpg", 301, size=SIZE, quality=95),
    }


@pytest.fixture
def memfs():
    fs = fsspec.filesystem("memory")
    yield fs
    fs.store.clear()


@pytest.mark.parametrize("decoder", DECODERS)
def test_mixed_batch_of_videos_and_images_over_every_uri_kind(
    media, http_server, memfs, decoder, fresh_cache
):
    mp4, mkv, webm = media["mp4"], media["mkv"], media["webm"]
    memfs.pipe("/videos/c.webm", webm.path.read_bytes())
    video_uris = {
        "local": (str(mp4.path), mp4, 0),
        "file": (mp4.path.as_uri(), mp4, 0),
        "http": (f"{http_server.url}/{mkv.path.name}", mkv, 100),
        "memory": ("memory://videos/c.webm", webm, 200),
        "data": (DataURI.from_file(mkv.path).uri, mkv, 100),
    }
    image_uris = {
        "png": (str(media["png"]), 300),
        "http_jpg": (f"{http_server.url}/{media['jpg'].name}", 301),
        "data_png": (DataURI.from_file(media["png"]).uri, 300),
    }
    rng = np.random.default_rng(0)
    refs, expected = [], []
    for _ in range(60):
        if rng.random() < 0.2:
            uri, idx = list(image_uris.values())[rng.integers(len(image_uris))]
            refs.append(MediaRef(uri))
        else:
            uri, spec, base = list(video_uris.values())[rng.integers(len(video_uris))]
            i = int(rng.integers(spec.num_frames))
            refs.append(MediaRef(uri, spec.pts_ns[i]))
            idx = base + i
        expected.append(idx)
    refs += refs[:5]  # duplicates
    expected += expected[:5]
    out = batch_decode(refs, decoder=decoder)
    assert len(out) == len(refs)
    assert _indices(out) == expected
    assert all(f.shape == (*SIZE, 3) and f.dtype == np.uint8 for f in out)


def test_refs_may_be_dicts(media):
    spec = media["mp4"]
    refs = [{"uri": str(spec.path), "pts_ns": spec.pts_ns[4]}, {"uri": str(media["png"])}]
    assert _indices(batch_decode(refs)) == [4, 300]


def test_http_video_reads_only_part_of_a_large_file(media_dir, http_server, fresh_cache):
    spec = write_video(media_dir / "batch_long.mp4", 300, fps=30, gop=30, size=SIZE, noise=0.05)
    uri = f"{http_server.url}/{spec.path.name}"
    size = spec.path.stat().st_size
    batch_decode([MediaRef(uri, spec.pts_ns[0])])  # first use scans the index (reads the file once)
    sent = http_server.bytes_sent
    with collect_stats() as stats:
        out = batch_decode([MediaRef(uri, spec.pts_ns[i]) for i in (40, 45)])
    assert _indices(out) == [40, 45]
    assert 0 < stats.bytes_read < size / 2
    assert 0 < http_server.bytes_sent - sent < size / 2  # the network count, read-ahead included


def test_http_video_block_is_fetched_in_one_request(media_dir, http_server, fresh_cache):
    """The decoder tells the HTTP reader how many bytes the keyframe block holds (from the index), so a deep
    target costs one Range request instead of a read-ahead growing from 32 KiB."""
    spec = write_video(media_dir / "batch_one_block.mp4", 240, fps=30, gop=240, size=SIZE, noise=0.1)
    uri = f"{http_server.url}/{spec.path.name}"
    batch_decode([MediaRef(uri, spec.pts_ns[0])])  # index scan; its container stays cached
    start = len(http_server.log)
    assert _indices(batch_decode([MediaRef(uri, spec.pts_ns[230])])) == [230]
    gets = [r for m, _, r in http_server.log[start:] if m == "GET"]
    assert spec.path.stat().st_size > 8 * (32 << 10)  # without the hint this would take 4+ requests
    assert len(gets) <= 2, gets  # the block, and at most one small read past it


@pytest.mark.parametrize("decoder", DECODERS)
def test_output_options(media, decoder):
    spec = media["mp4"]
    refs = [
        MediaRef(str(spec.path), spec.pts_ns[7]),
        MediaRef(str(media["png"])),
        MediaRef(str(spec.path), spec.pts_ns[7]),
    ]
    torch = pytest.importorskip("torch")

    hwc = batch_decode(refs, decoder=decoder, output="torch")
    assert all(isinstance(t, torch.Tensor) and t.dtype == torch.uint8 and t.shape == (*SIZE, 3) for t in hwc)
    chw = batch_decode(refs, decoder=decoder, output="torch", channels_first=True)
    assert all(t.shape == (3, *SIZE) and t.is_contiguous() for t in chw)
    assert _indices(t.numpy() for t in chw) == [7, 300, 7]
    np_chw = batch_decode(refs, decoder=decoder, channels_first=True)
    assert all(a.shape == (3, *SIZE) and a.flags.c_contiguous for a in np_chw)
    big = batch_decode(refs, decoder=decoder, size=(128, 256))  # 2x keeps the barcode layout readable
    assert [a.shape for a in big] == [(128, 256, 3)] * 3
    assert _indices(big) == [7, 300, 7]
    assert [a.shape for a in batch_decode(refs, decoder=decoder, size=(30, 50))] == [(30, 50, 3)] * 3


def test_duplicates_are_independent_arrays(media):
    spec = media["mp4"]
    a, b = batch_decode([MediaRef(str(spec.path), spec.pts_ns[3])] * 2)
    assert a is not b
    a[:] = 0
    assert read_index(b) == 3


def test_to_rgb_array_and_pil_go_through_the_engine(media):
    spec = media["mkv"]
    ref = MediaRef(str(spec.path), spec.pts_ns[5])
    assert read_index(ref.to_rgb_array()) == 105
    assert read_index(np.asarray(ref.to_pil_image())) == 105
    assert read_index(ref.to_rgb_array(size=(128, 256))) == 105
    assert read_index(MediaRef(str(media["png"])).to_rgb_array()) == 300


class TestErrors:
    def test_missing_file_names_the_ref(self, tmp_path, media):
        missing = str(tmp_path / "nope.mp4")
        with pytest.raises(MediaNotFoundError, match="nope.mp4") as info:
            batch_decode([MediaRef(str(media["mp4"].path), 0), MediaRef(missing, 0)])
        assert info.value.uri == missing

    def test_missing_http_video(self, http_server):
        with pytest.raises(MediaNotFoundError, match="gone.mp4"):
            batch_decode([MediaRef(f"{http_server.url}/gone.mp4", 0)])

    def test_corrupt_file(self, tmp_path):
        bad = tmp_path / "corrupt.mkv"
        bad.write_bytes(bytes(np.random.default_rng(0).integers(0, 256, 5000, dtype=np.uint8)))
        with pytest.raises(MediaDecodeError, match="corrupt.mkv"):
            batch_decode([MediaRef(str(bad), 0)])

    def test_truncated_mp4(self, tmp_path, media):
        data = media["mp4"].path.read_bytes()
        cut = tmp_path / "cut.mp4"
        cut.write_bytes(data[: len(data) * 2 // 3])  # the moov index sits at the end: it is gone
        with pytest.raises(MediaDecodeError, match="cut.mp4"):
            batch_decode([MediaRef(str(cut), 0)])

    def test_truncated_mkv_keeps_what_survives_and_refuses_the_rest(self, tmp_path):
        spec = write_video(tmp_path / "whole.mkv", 60, fps=30, gop=10, size=SIZE, noise=0.05)
        data = spec.path.read_bytes()
        cut = tmp_path / "cut.mkv"
        cut.write_bytes(data[: len(data) // 2])
        early = [MediaRef(str(cut), spec.pts_ns[i]) for i in (0, 5, 12)]
        assert _indices(batch_decode(early)) == [0, 5, 12]
        with pytest.raises((FrameOutOfRangeError, MediaDecodeError), match="cut.mkv"):
            batch_decode([MediaRef(str(cut), spec.pts_ns[59])])

    @pytest.mark.parametrize("decoder", DECODERS)
    def test_video_bomb_is_refused_before_any_frame_is_decoded(self, tmp_path, monkeypatch, decoder):
        from PIL import Image

        spec = write_video(tmp_path / "wide.mkv", 10, fps=10, gop=5, size=(96, 256))
        ref = MediaRef(str(spec.path), spec.pts_ns[3])
        monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 96 * 256 - 1)  # the one limit of images and videos
        with collect_stats() as stats:
            with pytest.raises(MediaDecodeError, match=r"wide.mkv.*256x96.*MAX_IMAGE_PIXELS"):
                batch_decode([ref], decoder=decoder)
        assert stats.decoded_frames == 0
        monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 96 * 256)
        assert _indices(batch_decode([ref], decoder=decoder)) == [3]

    def test_a_video_ref_without_pts_ns_says_it_is_a_video(self, media):
        with pytest.raises(MediaDecodeError, match=r"batch_a.mp4.* is a video, not an image.*pts_ns") as info:
            batch_decode([MediaRef(str(media["mp4"].path))])
        assert "BytesIO" not in str(info.value)
        with pytest.raises(MediaDecodeError, match=r"batch_b.mkv.* is a video"):
            MediaRef(str(media["mkv"].path)).to_rgb_array()

    def test_the_last_frame_is_on_screen_until_the_end_and_the_message_is_exact(self, media):
        from hf_mediaref.video import PyAVVideoDecoder

        spec = media["mp4"]
        end_ns = round(PyAVVideoDecoder(str(spec.path)).metadata.end_stream_seconds * 1e9)
        last = len(spec.pts_ns) - 1
        assert _indices(
            batch_decode([MediaRef(str(spec.path), t) for t in (end_ns - 1, end_ns - 400_000)])
        ) == [
            last,
            last,
        ]
        with pytest.raises(FrameOutOfRangeError) as info:
            batch_decode([MediaRef(str(spec.path), end_ns)])
        assert f"({end_ns} ns) is at or past the end" in str(info.value)
        assert f"until {end_ns / 1e9:.9f} s ({end_ns} ns)" in str(info.value)

    def test_image_given_a_timestamp_is_a_one_frame_video(self, media):
        assert _indices(batch_decode([MediaRef(str(media["png"]), 0)])) == [300]
        with pytest.raises(FrameOutOfRangeError):
            batch_decode([MediaRef(str(media["png"]), 10**10)])

    def test_bad_arguments(self, media):
        ref = MediaRef(str(media["mp4"].path), 0)
        with pytest.raises(TypeError):
            batch_decode(ref)
        with pytest.raises(TypeError):
            batch_decode("video.mp4")
        with pytest.raises(ValueError, match=r"refs\[1\] is None"):
            batch_decode([ref, None])
        with pytest.raises(ValueError, match="unknown decoder"):
            batch_decode([ref], decoder="opencv")
        with pytest.raises(ValueError, match="output"):
            batch_decode([ref], output="jax")
        with pytest.raises(ValueError, match="size"):
            batch_decode([ref], size=(0, 10))
        with pytest.raises(ValueError):
            batch_decode([ref], strategy="fastest")
        with pytest.raises(ValueError, match="max_workers"):
            batch_decode([ref], max_workers=0)
        assert batch_decode([]) == []


class _Broken(importlib.abc.MetaPathFinder):
    """Makes ``import torchcodec.decoders`` fail the way a broken native library does."""

    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] == "torchcodec":  # torchcodec itself too, where it is not installed
            raise OSError("libtorchcodec_core5.so: cannot open shared object file")
        return None


def test_torchcodec_that_cannot_load_is_a_missing_dependency(media, monkeypatch):
    ref = MediaRef(str(media["mp4"].path), 0)
    monkeypatch.setitem(sys.modules, "torchcodec.decoders", None)  # not installed
    with pytest.raises(MissingDependencyError, match="torchcodec"):
        batch_decode([ref], decoder="torchcodec")
    monkeypatch.delitem(sys.modules, "torchcodec.decoders")
    monkeypatch.setattr(sys, "meta_path", [_Broken(), *sys.meta_path])
    with pytest.raises(MissingDependencyError, match="cannot load its libraries.*OSError"):
        batch_decode([ref], decoder="torchcodec")
    assert isinstance(MissingDependencyError("x"), ImportError)


@pytest.mark.parametrize(
    "name, kw",
    [
        ("plain", {}),
        ("rotated", {"rotation": 90}),
        ("10-bit", {"pix_fmt": "yuv420p10le"}),
        ("4:4:4", {"pix_fmt": "yuv444p"}),
        ("width not a multiple of 16", {"size": (74, 130)}),
        ("width a multiple of 16, not of 32", {"size": (72, 176)}),
    ],
)
def test_channels_first_is_the_same_pixels_as_channels_last(tmp_path, name, kw):
    """channels_first frames (converted straight to planes where that is exact) hold the very values of the
    (H, W, 3) frames, transposed: every pixel, resized or not, numpy and torch, duplicates included."""
    torch = pytest.importorskip("torch")

    size = kw.pop("size", (96, 128))
    spec = write_video(tmp_path / "v.mp4", 20, fps=10, gop=5, bframes=2, size=size, noise=0.05, **kw)
    refs = [MediaRef(str(spec.path), spec.pts_ns[i]) for i in (0, 3, 7, 7, 19)]
    for resize in (None, (37, 50)):
        hwc = batch_decode(refs, size=resize)
        for output in ("numpy", "torch"):
            chw = batch_decode(refs, size=resize, channels_first=True, output=output)
            arrays = [t.numpy() if isinstance(t, torch.Tensor) else t for t in chw]
            assert all(type(a) is np.ndarray and a.flags.c_contiguous for a in arrays)
            for a, b in zip(hwc, arrays):
                assert np.array_equal(b, a.transpose(2, 0, 1)), (name, resize, output)
            assert len({id(a) for a in arrays}) == len(arrays)  # a duplicate is its own frame
        if resize is None and name != "rotated":  # (a rotated barcode does not read)
            assert _indices(hwc) == [0, 3, 7, 7, 19]


def test_one_core_starts_no_span_of_a_video_after_the_deadline(tmp_path, monkeypatch):
    """On one core a video's spans run as one task; each span, as each task, starts only before the call's
    deadline: a slow video raises DecodeTimeoutError instead of running every span to the end."""
    import time

    from hf_mediaref.video import PyAVVideoDecoder

    spec = write_video(tmp_path / "v.mp4", 60, fps=30, gop=6, size=SIZE)
    started = []
    decode_span = PyAVVideoDecoder._decode_span

    def slow(self, span, **kw):
        started.append(span.start)
        time.sleep(0.4)
        return decode_span(self, span, **kw)

    monkeypatch.setattr(PyAVVideoDecoder, "_decode_span", slow)
    refs = [MediaRef(str(spec.path), spec.pts_ns[i]) for i in (1, 13, 25, 37, 49)]  # 5 keyframe blocks
    with pytest.raises(DecodeTimeoutError):
        batch_decode(refs, max_workers=1, timeout=1.0)
    assert 1 <= len(started) < 5, started
