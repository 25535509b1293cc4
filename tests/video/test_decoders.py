"""The TorchCodec-like single-video surface of both decoders, and the lazy public modules."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from hf_mediaref.testing import read_index
from hf_mediaref.video import BatchDecodingStrategy, FrameBatch, VideoStreamMetadata

DECODERS = ["pyav", pytest.param("torchcodec", marks=pytest.mark.torchcodec)]


def _decoder(kind: str, source, **kw):
    from hf_mediaref import video_decoder

    cls = video_decoder.PyAVVideoDecoder if kind == "pyav" else video_decoder.TorchCodecVideoDecoder
    return cls(source, **kw)


def _as_numpy(data):
    return data.numpy() if hasattr(data, "numpy") else np.asarray(data)


@pytest.mark.parametrize("decoder", DECODERS)
def test_metadata(build_case, decoder):
    case = build_case("offset_audio_mp4")  # 25 fps, first frame at 280 ms, a keyframe every 10 frames
    with _decoder(decoder, case.path) as dec:
        meta = dec.metadata
    assert isinstance(meta, VideoStreamMetadata)
    assert meta.num_frames == 40 and len(dec) == 40
    assert (meta.width, meta.height) == (128, 64)
    assert meta.begin_stream_seconds == pytest.approx(0.28)
    assert meta.end_stream_seconds == pytest.approx(0.28 + 40 / 25)
    assert meta.duration_seconds == pytest.approx(40 / 25)
    assert meta.average_fps == pytest.approx(25)
    assert meta.keyframe_seconds == pytest.approx((0.28, 0.68, 1.08, 1.48))
    assert meta.codec == "h264" and meta.pixel_format == "yuv420p"


@pytest.mark.parametrize("decoder", DECODERS)
@pytest.mark.parametrize("strategy", [None, *BatchDecodingStrategy])
def test_get_frames_played_at(build_case, decoder, strategy):
    case = build_case("vfr_mkv")
    pts = case.spec.pts_ns
    seconds = [pts[9] / 1e9, 0.0, pts[30] / 1e9 + 0.001, pts[9] / 1e9]
    with _decoder(decoder, case.uri) as dec:
        batch = dec.get_frames_played_at(seconds, strategy=strategy)
    assert isinstance(batch, FrameBatch) and len(batch) == 4
    data = _as_numpy(batch.data)
    assert data.shape == (4, 3, 64, 128)  # NCHW by default
    assert [read_index(f) for f in data] == [9, 0, 30, 9]
    assert batch.pts_seconds.tolist() == pytest.approx([pts[9] / 1e9, 0.0, pts[30] / 1e9, pts[9] / 1e9])
    assert batch.duration_seconds[0] == pytest.approx((pts[10] - pts[9]) / 1e9)


@pytest.mark.parametrize("decoder", DECODERS)
def test_frame_indexing_and_nhwc(build_case, decoder):
    case = build_case("h264_bframes_mp4")
    with _decoder(decoder, case.uri, dimension_order="NHWC") as dec:
        assert read_index(_as_numpy(dec[5])) == 5
        assert read_index(_as_numpy(dec[-1])) == 47
        batch = dec.get_frames_at([47, 0, 13])
        assert _as_numpy(batch.data).shape == (3, 64, 128, 3)
        assert [read_index(f) for f in _as_numpy(batch.data)] == [47, 0, 13]
        assert read_index(_as_numpy(dec.get_frame_played_at(case.spec.pts_ns[20] / 1e9).data)) == 20
        assert len(dec.get_frames_at([])) == 0
        with pytest.raises(IndexError):
            dec[48]
        with pytest.raises(TypeError):
            dec["1"]
        with pytest.raises(ValueError):
            dec.get_frames_played_at([-1.0])
    with pytest.raises(RuntimeError, match="closed"):
        dec.get_frames_at([0])


@pytest.mark.parametrize("decoder", DECODERS)
def test_frame_and_range_getters_match_torchcodec_surface(build_case, decoder):
    from hf_mediaref.video import Frame

    case = build_case("h264_bframes_mp4")
    pts = case.spec.pts_ns
    with _decoder(decoder, case.uri, dimension_order="NHWC") as dec:
        frame = dec.get_frame_at(7)
        assert isinstance(frame, Frame)
        data, pts_seconds, duration = frame  # unpacks like TorchCodec's Frame
        assert read_index(_as_numpy(data)) == 7
        assert pts_seconds == pytest.approx(pts[7] / 1e9) and duration == pytest.approx(
            (pts[8] - pts[7]) / 1e9
        )
        played = dec.get_frame_played_at(pts[20] / 1e9 + 0.001)
        assert isinstance(played, Frame) and read_index(_as_numpy(played.data)) == 20
        assert played.pts_seconds == pytest.approx(pts[20] / 1e9)

        in_range = dec.get_frames_in_range(10, 20, 3)
        assert [read_index(f) for f in _as_numpy(in_range.data)] == [10, 13, 16, 19]
        assert [read_index(f) for f in _as_numpy(dec[-3:])] == [45, 46, 47]
        assert [read_index(f) for f in _as_numpy(dec[2:8:2])] == [2, 4, 6]

        # frames on screen during [start, stop): the one playing at start, then each whose pts is before stop
        start, stop = pts[4] / 1e9 + 0.002, pts[9] / 1e9
        played_range = dec.get_frames_played_in_range(start, stop)
        assert [read_index(f) for f in _as_numpy(played_range.data)] == [4, 5, 6, 7, 8]
        assert len(dec.get_frames_played_in_range(start, start)) == 0
        with pytest.raises(ValueError):
            dec.get_frames_played_in_range(stop, start)

        batch = dec.get_frames_at([3, 1, 2])
        assert isinstance(batch[0], Frame) and read_index(_as_numpy(batch[0].data)) == 3
        assert [read_index(f) for f in _as_numpy(batch[1:].data)] == [1, 2]
        assert [read_index(_as_numpy(f.data)) for f in batch] == [3, 1, 2]


def test_pyav_output_is_numpy_and_torchcodec_is_torch(build_case):
    from hf_mediaref.video_decoder import PyAVVideoDecoder

    case = build_case("h264_mp4")
    assert isinstance(PyAVVideoDecoder(case.uri).get_frames_at([1]).data, np.ndarray)


@pytest.mark.torchcodec
def test_torchcodec_returns_tensors_and_checks_device(build_case):
    import torch

    from hf_mediaref.video_decoder import TorchCodecVideoDecoder

    case = build_case("h264_mp4")
    assert isinstance(TorchCodecVideoDecoder(case.uri).get_frames_at([1]).data, torch.Tensor)
    with pytest.raises(ValueError, match="device"):
        TorchCodecVideoDecoder(case.uri, device="tpu")


@pytest.mark.torchcodec
def test_torchcodec_cuda(build_case):
    if not pytest.importorskip("torch").cuda.is_available():
        pytest.skip("needs a CUDA device")
    from hf_mediaref import MediaRef, batch_decode

    case = build_case("h264_bframes_mp4")
    refs = [MediaRef(case.uri, case.spec.pts_ns[i]) for i in (3, 30)]
    out = batch_decode(refs, decoder="torchcodec", device="cuda", output="torch")
    assert all(t.is_cuda for t in out)
    assert [read_index(t.cpu().numpy()) for t in out] == [3, 30]


def test_source_must_be_a_uri(build_case):
    from hf_mediaref import MediaRef
    from hf_mediaref.video_decoder import PyAVVideoDecoder

    case = build_case("h264_mp4")
    assert len(PyAVVideoDecoder(MediaRef(case.uri, 0))) == 40  # a MediaRef names its video
    with pytest.raises(TypeError):
        PyAVVideoDecoder(b"bytes")
    with pytest.raises(ValueError, match="dimension_order"):
        PyAVVideoDecoder(case.uri, dimension_order="CHW")


def test_public_modules_import_no_heavy_dependency():
    code = (
        "import sys, hf_mediaref, hf_mediaref.video, hf_mediaref.video_decoder as vd\n"
        "from hf_mediaref import batch_decode, cleanup_cache\n"
        "from hf_mediaref.video import BatchDecodingStrategy, FrameBatch\n"
        "cleanup_cache()\n"
        "assert not {'av', 'torch', 'torchcodec'} & set(sys.modules), sorted(sys.modules)\n"
        "vd.PyAVVideoDecoder\n"
        "vd.TorchCodecVideoDecoder  # resolving the class must not load torchcodec\n"
        "assert 'torchcodec' not in sys.modules\n"
        "print('ok')\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"
