"""Real-world media beyond the codec zoo's frame checks (those run on every zoo entry in test_accuracy.py):
the zoo entries are what they claim to be, rotation display matrices (displayed or stored orientation),
animated images, and TorchCodec's timeline in AVI."""

from __future__ import annotations

import logging

import numpy as np
import pytest

from hf_mediaref import DecodeOptions, MediaRef, batch_decode
from hf_mediaref.errors import MediaDecodeError
from hf_mediaref.testing import read_index, write_animated_image, write_image
from hf_mediaref.video import PyAVVideoDecoder

TORCHCODEC = pytest.param("torchcodec", marks=pytest.mark.torchcodec)
DECODERS = ["pyav", TORCHCODEC]


def _streams(path):
    import av

    with av.open(str(path)) as container:
        video = container.streams.video[0]
        first = next(container.decode(video))
        return {
            "format": container.format.name,
            "codec": {"libdav1d": "av1"}.get(video.codec_context.name, video.codec_context.name),
            "pix_fmt": video.codec_context.pix_fmt,
            "size": (first.height, first.width),
            "rotation": first.rotation,
            "types": [s.type for s in container.streams],
        }


@pytest.mark.parametrize(
    ("name", "facts"),
    [
        ("av1_mp4", {"codec": "av1"}),
        ("av1_10bit_mkv", {"codec": "av1", "pix_fmt": "yuv420p10le"}),
        ("h264_10bit_mp4", {"codec": "h264", "pix_fmt": "yuv420p10le"}),
        ("h264_yuv444_mkv", {"pix_fmt": "yuv444p"}),
        ("vp9_33x17_webm", {"codec": "vp9", "size": (17, 33), "format": "matroska,webm"}),
        ("h264_yuv444_65x33_mp4", {"size": (33, 65), "pix_fmt": "yuv444p"}),
        ("h264_rotated_mp4", {"rotation": 90, "size": (64, 128)}),
        ("audio_first_mp4", {"types": ["audio", "video"]}),
        ("h264_mov", {"format": "mov,mp4,m4a,3gp,3g2,mj2"}),
        ("mpeg4_avi", {"format": "avi", "codec": "mpeg4"}),
        ("h264_avi", {"format": "avi", "codec": "h264"}),
        ("animated_gif", {"format": "gif", "codec": "gif"}),
        ("h264_ts", {"format": "mpegts"}),
    ],
)
def test_zoo_media_are_what_they_claim(build_case, name, facts):
    found = _streams(build_case(name).path)
    assert {k: found[k] for k in facts} == facts


def test_open_gop_stream_really_is_open(build_case):
    """Open GOP: a B-frame after a keyframe in decode order is shown before it (it refers across the GOP)."""
    import av

    with av.open(build_case("h264_open_gop_mp4").uri) as container:
        packets = [(p.pts, p.is_keyframe) for p in container.demux(video=0) if p.size]
    keys = [i for i, (_, key) in enumerate(packets) if key]
    second = keys[1]
    assert any(pts < packets[second][0] for pts, _ in packets[second + 1 : second + 4])


# ---------------------------------------------------------------------------------------------- rotation


@pytest.mark.parametrize("decoder", DECODERS)
def test_rotated_video_is_returned_as_displayed_or_as_stored(build_case, decoder):
    case = build_case("h264_rotated_mp4")  # stored 64x128 (H x W), display matrix: 90 degrees anticlockwise
    refs = [MediaRef(case.uri, case.spec.pts_ns[i]) for i in (0, 7, 29)]
    shown = batch_decode(refs, decoder=decoder)
    assert [np.asarray(f).shape for f in shown] == [(128, 64, 3)] * 3
    assert [read_index(np.rot90(np.asarray(f), -1)) for f in shown] == [0, 7, 29]
    stored = batch_decode(refs, decoder=decoder, orientation="stored")
    assert [np.asarray(f).shape for f in stored] == [(64, 128, 3)] * 3
    assert [read_index(np.asarray(f)) for f in stored] == [0, 7, 29]
    for a, b in zip(shown, stored):
        diff = np.abs(np.asarray(a).astype(int) - np.rot90(np.asarray(b), 1).astype(int)).mean()
        assert diff < (0.01 if decoder == "pyav" else 4)
    # size is the (height, width) of what is returned
    small = batch_decode(refs[:1], decoder=decoder, size=(96, 48), channels_first=True, output="numpy")
    assert small[0].shape == (3, 96, 48)
    assert batch_decode(refs[:1], decoder=decoder, size=(48, 96), orientation="stored")[0].shape == (
        48,
        96,
        3,
    )


def test_single_video_decoder_orientation(build_case):
    case = build_case("h264_rotated_mp4")
    shown = PyAVVideoDecoder(case.uri, dimension_order="NHWC").get_frame_at(5).data
    stored = PyAVVideoDecoder(case.uri, dimension_order="NHWC", orientation="stored").get_frame_at(5).data
    assert shown.shape == (128, 64, 3) and stored.shape == (64, 128, 3)
    np.testing.assert_array_equal(shown, np.rot90(stored, 1))
    with pytest.raises(ValueError, match="orientation"):
        PyAVVideoDecoder(case.uri, orientation="upright")
    with pytest.raises(ValueError, match="orientation"):
        DecodeOptions(orientation="upright")


def test_image_exif_orientation_follows_the_same_option(tmp_path):
    from PIL import Image

    path = write_image(tmp_path / "upright.png", 5, size=(64, 128))
    image = Image.open(path)
    exif = image.getexif()
    exif[0x0112] = 8  # EXIF orientation 8: shown rotated 90 degrees anticlockwise
    image.save(tmp_path / "phone.jpg", exif=exif, quality=95)
    ref = MediaRef(str(tmp_path / "phone.jpg"))
    shown, stored = batch_decode([ref])[0], batch_decode([ref], orientation="stored")[0]
    assert shown.shape == (128, 64, 3) and stored.shape == (64, 128, 3)
    assert read_index(np.rot90(shown, -1)) == 5 and read_index(stored) == 5


# ---------------------------------------------------------------------------------------------- images


def test_animated_gif_frames_by_time_and_its_first_frame_as_an_image(build_case):
    """An animated GIF is a video (frames by pts, each shown for its duration); as an image ref (no pts)
    it is its first frame."""
    case = build_case("animated_gif")
    times = [0, 149_000_000, 1_950_000_000]  # frames of 100 ms
    assert [read_index(f) for f in batch_decode([MediaRef(case.uri, t) for t in times])] == [0, 1, 19]
    assert read_index(batch_decode([MediaRef(case.uri)])[0]) == 0


def test_animated_webp_frames_by_time_raise_saying_why(tmp_path):
    spec = write_animated_image(tmp_path / "anim.webp", 6)
    with pytest.raises(MediaDecodeError, match="animated WebP") as info:
        batch_decode([MediaRef(str(spec.path), 0)])
    assert info.value.uri == str(spec.path)
    assert read_index(batch_decode([MediaRef(str(spec.path))])[0]) == 0  # as an image: its first frame
    still = write_image(tmp_path / "still.webp", 3, size=(64, 128))
    assert read_index(batch_decode([MediaRef(str(still), 0)])[0]) == 3  # a still WebP as a one-frame video


@pytest.mark.torchcodec
def test_torchcodec_timeline_other_than_the_index_falls_back_to_pyav(build_case, caplog, fresh_cache):
    """H.264 in AVI: packets' pts are one tick after their dts, and TorchCodec returned the next frame under
    the requested frame's pts (a wrong frame no pts check catches); the video is decoded with PyAV instead."""
    case = build_case("h264_avi")
    refs = [MediaRef(case.uri, case.spec.pts_ns[i]) for i in (19, 5, 0)]
    with caplog.at_level(logging.WARNING, logger="hf_mediaref.video._torchcodec"):
        out = batch_decode(refs, decoder="torchcodec")
    assert [read_index(f) for f in out] == [19, 5, 0]
    assert "timeline" in caplog.text
