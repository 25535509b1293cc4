"""Frame accuracy on real media: every codec/container of the zoo, every strategy, both decoders.

Each test asserts WHICH frame came back (its barcode), and the PyAV pixels are checked against a plain
sequential decode of the whole file.
"""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest

from hf_mediaref import MediaRef, batch_decode
from hf_mediaref.errors import FrameOutOfRangeError
from hf_mediaref.testing import read_index, write_video
from hf_mediaref.video import BatchDecodingStrategy, PyAVVideoDecoder

from .conftest import SIZE

STRATEGIES = list(BatchDecodingStrategy)
DECODERS = ["pyav", pytest.param("torchcodec", marks=pytest.mark.torchcodec)]


def _indices(refs_out, case=None) -> list[int]:
    """The frame numbers of decoded frames (their barcodes, less the first barcode a plain decode of an edited
    case shows); a rotated case's frames (returned as displayed) are turned back."""
    turns = case.rotation // 90 if case is not None else 0
    first = case.first_barcode if case is not None else 0
    return [read_index(np.rot90(np.asarray(frame), -turns)) - first for frame in refs_out]


def _sequential_decode(path) -> list[np.ndarray]:
    """Reference pixels: decode the whole file front to back, in presentation order."""
    import av

    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        frames = sorted(
            ((f.pts, f.to_ndarray(format="rgb24")) for f in container.decode(stream)), key=lambda x: x[0]
        )
    return [arr for _, arr in frames]


@pytest.mark.parametrize("decoder", DECODERS)
@pytest.mark.parametrize("strategy", STRATEGIES, ids=lambda s: s.value)
def test_every_frame_by_its_pts_shuffled_with_duplicates(case, strategy, decoder):
    n = case.spec.num_frames
    rng = np.random.default_rng(len(case.name))
    order = rng.permutation(n).tolist() + rng.integers(0, n, 10).tolist()
    refs = [MediaRef(case.uri, case.spec.pts_ns[i]) for i in order]
    assert _indices(batch_decode(refs, strategy=strategy, decoder=decoder), case) == order


def test_one_core_decodes_a_videos_spans_on_one_leased_container(case, monkeypatch):
    """On one core (a DataLoader worker's budget) a video's spans run one after another on one container,
    leased once per call instead of once per span (each span still seeks or decodes on from where the
    last one left the codec): every frame is still the one a plain decode shows."""
    from hf_mediaref.video._cache import decoder_cache

    leases, closed = [], []
    check_out, give_back = decoder_cache._check_out, decoder_cache._give_back
    monkeypatch.setattr(decoder_cache, "_check_out", lambda *a: leases.append(a[0][0]) or check_out(*a))
    monkeypatch.setattr(
        decoder_cache, "_give_back", lambda *a: closed.extend([a[0][0]] * (not a[3])) or give_back(*a)
    )
    n = case.spec.num_frames
    rng = np.random.default_rng(len(case.name) + 1)
    for _ in range(2):  # cold, then with the container (and its resume point) the first call left
        order = rng.permutation(n).tolist()[: max(4, n // 3)] + rng.integers(0, n, 3).tolist()
        refs = [MediaRef(case.uri, case.spec.pts_ns[i]) for i in order]
        leases.clear()
        closed.clear()
        assert _indices(batch_decode(refs, max_workers=1), case) == order
        # one lease for every span of the call, and at most one more after each retry that closed the
        # container (a seek that landed late in MPEG-TS; the last retry may decode a fresh one from the top)
        assert set(leases) == {"pyav"} and len(leases) <= 1 + len(closed), (leases, closed)


@pytest.mark.parametrize("decoder", DECODERS)
def test_random_times_inside_each_frame_interval(case, decoder):
    """Anywhere in [pts_i, pts_i+1) selects frame i, except the last millisecond before the next frame, which
    is within the rounding tolerance of the next frame (Matroska rounds pts to whole milliseconds)."""
    pts = case.spec.pts_ns
    rng = np.random.default_rng(7)
    times, expected = [], []
    for i in range(len(pts) - 1):
        times.append(int(rng.integers(pts[i], pts[i + 1] - 1_000_000)))
        expected.append(i)
    times.append(pts[-1] + 1_000_000)  # 1 ms into the last frame
    expected.append(len(pts) - 1)
    out = batch_decode([MediaRef(case.uri, t) for t in times], decoder=decoder)
    assert _indices(out, case) == expected


def test_pixels_equal_a_sequential_decode(case):
    """No strategy changes pixels: spans start at real keyframes and skipped frames are never references,
    whether the spans run on every core or, on one core, one after another on one held container. Frames
    come as displayed (a rotation display matrix applied), or as stored (``orientation="stored"``)."""
    reference = _sequential_decode(case.path)
    n = case.spec.num_frames
    picks = sorted(set(np.random.default_rng(3).integers(0, n, 12).tolist()) | {0, n - 1})
    refs = [MediaRef(case.uri, case.spec.pts_ns[i]) for i in picks]
    for strategy in STRATEGIES:
        for workers in (None, 1):
            for i, frame in zip(picks, batch_decode(refs, strategy=strategy, max_workers=workers)):
                expected = np.rot90(reference[i], case.rotation // 90)
                np.testing.assert_array_equal(
                    frame, expected, err_msg=f"{case.name} frame {i} {strategy} x{workers}"
                )
    for i, frame in zip(picks, batch_decode(refs, orientation="stored")):
        np.testing.assert_array_equal(frame, reference[i], err_msg=f"{case.name} frame {i} stored")


@pytest.mark.torchcodec
def test_torchcodec_pixels_close_to_pyav(case):
    n = case.spec.num_frames
    refs = [MediaRef(case.uri, case.spec.pts_ns[i]) for i in (0, n // 2, n - 1)]
    for a, b in zip(batch_decode(refs), batch_decode(refs, decoder="torchcodec")):
        assert np.abs(a.astype(int) - b.astype(int)).mean() < 4
    for a, b in zip(*(batch_decode(refs, decoder=d, orientation="stored") for d in ("pyav", "torchcodec"))):
        assert np.abs(a.astype(int) - b.astype(int)).mean() < 4


def test_times_before_the_first_frame_give_the_first_frame(case):
    first = case.spec.pts_ns[0]
    times = sorted({0, first // 2, max(first - 1, 0)})
    assert _indices(batch_decode([MediaRef(case.uri, t) for t in times]), case) == [0] * len(times)


def test_end_of_video_raises_naming_ref_and_duration(case):
    dec = PyAVVideoDecoder(case.uri)
    end_ns = round(dec.metadata.end_stream_seconds * 1e9)
    last = case.spec.pts_ns[-1]
    assert end_ns > last
    last_frame = batch_decode([MediaRef(case.uri, end_ns - 2_000_000)])
    assert _indices(last_frame, case) == [case.spec.num_frames - 1]
    for t in (end_ns, end_ns + 10**9, 2**62):
        ref = MediaRef(case.uri, t)
        with pytest.raises(FrameOutOfRangeError, match="duration") as info:
            batch_decode([MediaRef(case.uri, last), ref])
        assert case.uri in str(info.value) and str(t) in str(info.value)
        assert info.value.uri == case.uri


# ---------------------------------------------------------------------- requests made from the frame rate

FPS = [Fraction(30000, 1001), Fraction(30), Fraction(24), Fraction(20)]


@pytest.fixture(scope="session")
def fps_videos(tmp_path_factory):
    d = tmp_path_factory.mktemp("fps")
    return {
        (fps, ext): write_video(
            d / f"{fps.numerator}_{fps.denominator}.{ext}", 40, fps=fps, gop=8, bframes=2, size=SIZE
        )
        for fps in FPS
        for ext in ("mp4", "mkv")
    }


@pytest.mark.parametrize("decoder", DECODERS)
@pytest.mark.parametrize("ext", ["mp4", "mkv"])
@pytest.mark.parametrize("fps", FPS, ids=str)
def test_request_made_from_frame_rate_returns_that_frame(fps_videos, fps, ext, decoder):
    """``int(i * 1e9 / fps)`` selects frame i, although Matroska stores pts rounded to milliseconds."""
    spec = fps_videos[(fps, ext)]
    n = spec.num_frames
    refs = [MediaRef(str(spec.path), int(i * 1e9 / fps)) for i in range(n)]
    assert _indices(batch_decode(refs, decoder=decoder)) == list(range(n))
    # and from the exact rational time, and a hair (0.3 ms) after it
    exact = [MediaRef(str(spec.path), int(Fraction(i) / fps * 10**9) + 300_000) for i in range(n)]
    assert _indices(batch_decode(exact, decoder=decoder)) == list(range(n))


@pytest.mark.parametrize("ext", ["mp4", "mkv"])
def test_request_just_below_a_frame_beyond_tolerance_is_the_previous_frame(fps_videos, ext):
    spec = fps_videos[(Fraction(20), ext)]  # 50 ms frames, stored exactly in both containers
    refs = [MediaRef(str(spec.path), spec.pts_ns[i] - 2_000_000) for i in range(1, 10)]
    assert _indices(batch_decode(refs)) == list(range(0, 9))
