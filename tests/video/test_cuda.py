"""TorchCodec on a CUDA device (NVDEC): the zoo's frames, checked by their barcodes, as on the CPU.

These tests run only where torch sees a CUDA device (a GPU machine; CI has none, so they skip there).
NVDEC refuses some streams (sizes under its minimum, codecs it lacks); TorchCodec then decodes on the CPU
and moves the frames to the device, or the engine falls back to PyAV. Whatever the route, the frames
must be the right ones, on the device asked for.
"""

from __future__ import annotations

import numpy as np
import pytest

from hf_mediaref import MediaRef, batch_decode
from hf_mediaref.testing import read_index, write_video
from hf_mediaref.video import BatchDecodingStrategy

pytestmark = [
    pytest.mark.torchcodec,
    pytest.mark.skipif("not _cuda()", reason="needs torch and a CUDA device"),
]


def _cuda() -> bool:
    """torch is importable (make test-pythons' venvs have none) and sees a CUDA device."""
    try:
        import torch
    except ImportError:
        return False
    return torch.cuda.is_available()


def _indices(frames, case=None) -> list[int]:
    """Barcodes; a rotated case's frames (returned as displayed) are turned back first."""
    turns = case.rotation // 90 if case is not None else 0
    return [read_index(np.rot90(frame.cpu().numpy(), -turns)) for frame in frames]


@pytest.mark.parametrize("strategy", list(BatchDecodingStrategy), ids=lambda s: s.value)
def test_every_frame_of_the_zoo_on_cuda(case, strategy):
    n = case.spec.num_frames
    rng = np.random.default_rng(len(case.name))
    order = rng.permutation(n).tolist() + rng.integers(0, n, 5).tolist()
    refs = [MediaRef(case.uri, case.spec.pts_ns[i]) for i in order]
    out = batch_decode(refs, decoder="torchcodec", device="cuda", strategy=strategy, output="torch")
    assert all(t.is_cuda for t in out)
    assert _indices(out, case) == order


def test_cuda_pixels_close_to_pyav(case):
    n = case.spec.num_frames
    refs = [MediaRef(case.uri, case.spec.pts_ns[i]) for i in (0, n // 2, n - 1)]
    on_cpu = batch_decode(refs)
    on_gpu = batch_decode(refs, decoder="torchcodec", device="cuda", output="torch")
    for a, b in zip(on_cpu, on_gpu):  # colour conversion differs a little (NVDEC: BT.709 when unflagged)
        assert np.abs(a.astype(int) - b.cpu().numpy().astype(int)).mean() < 8


@pytest.mark.parametrize("codec", ["libx264", "libx265", "libvpx-vp9"])
def test_cuda_at_nvdec_sizes_with_resize(tmp_path, codec):
    """Sizes NVDEC accepts for every codec (at least 144x144), so the hardware path itself is exercised."""
    ext = "webm" if codec == "libvpx-vp9" else "mp4"
    spec = write_video(tmp_path / f"big.{ext}", 48, fps=24, gop=12, size=(256, 384), codec=codec)
    picks = [0, 7, 23, 24, 47, 5]
    refs = [MediaRef(str(spec.path), spec.pts_ns[i]) for i in picks]
    out = batch_decode(refs, decoder="torchcodec", device="cuda:0", output="torch")
    assert all(t.device.type == "cuda" for t in out)
    assert tuple(out[0].shape) == (256, 384, 3)
    assert _indices(out) == picks
    small = batch_decode(refs, decoder="torchcodec", device="cuda", output="torch", size=(128, 192))
    assert tuple(small[0].shape) == (128, 192, 3)
