"""Frames converted straight into the caller's arrays (``hf_mediaref.decode.decoding_into``, which the windows
use for their rows): on every kind of media the same pixels as a plain ``batch_decode``; each destination
holds its own request's frame, or is not returned; a frame two requests share is written once and copied
for the other; TorchCodec writes nothing."""

from __future__ import annotations

import numpy as np
import pytest

from hf_mediaref import MediaAccess, MediaRef, batch_decode
from hf_mediaref.decode import decoding_into
from hf_mediaref.testing import read_index, write_video

from .conftest import SIZE


class _Destinations:
    """Gives a fresh array to the requests asked for, ``None`` to every ``refuse``-th one; records both."""

    def __init__(self, refuse: int = 0):
        self.given: dict[int, np.ndarray] = {}
        self.refused: set[int] = set()
        self.refuse = refuse

    def __call__(self, request: int, shape: tuple[int, ...]) -> np.ndarray | None:
        assert request not in self.given and request not in self.refused  # asked once per request
        if self.refuse and request % self.refuse == 0:
            self.refused.add(request)
            return None
        self.given[request] = np.full(shape, 77, dtype=np.uint8)  # not the frame until it is written
        return self.given[request]


def _decode_both(refs, into: _Destinations, **options):
    plain = batch_decode(refs, **options)
    with decoding_into(into):
        got = batch_decode(refs, **options)
    return plain, got


@pytest.mark.parametrize(
    "options",
    [{"channels_first": True}, {}, {"channels_first": True, "size": (32, 48)}, {"size": (32, 48)}],
    ids=["planar", "hwc", "planar_resized", "hwc_resized"],
)
def test_frames_written_into_destinations_equal_a_plain_decode(case, options):
    n = case.spec.num_frames
    rng = np.random.default_rng(len(case.name))
    order = rng.permutation(n).tolist() + rng.integers(0, n, 8).tolist()
    refs = [MediaRef(case.uri, case.spec.pts_ns[i]) for i in order]
    into = _Destinations(refuse=5)
    plain, got = _decode_both(refs, into, **options)
    for want, frame in zip(plain, got, strict=True):
        np.testing.assert_array_equal(frame, want)
    first = {}
    for r, i in enumerate(order):
        first.setdefault(i, r)
    # each frame's first request is asked for its destination, once; the repeats never are
    assert set(into.given) | into.refused == set(first.values())
    for r, i in enumerate(order):
        if r in into.given:  # written in place: the destination is what comes back
            assert np.shares_memory(got[r], into.given[r])
        elif first[i] in into.given:  # a repeat: its own copy
            assert not np.shares_memory(got[r], into.given[first[i]])


@pytest.mark.torchcodec
def test_torchcodec_writes_nothing(tmp_path):
    """TorchCodec returns its own tensors: no destination is asked for, and the caller copies (as a window
    row does). (A video TorchCodec is not reliable on is decoded by PyAV, which writes as above.)"""
    spec = write_video(tmp_path / "v.mp4", 20, fps=10, gop=5, bframes=2, size=SIZE)
    refs = [MediaRef(str(spec.path), t) for t in spec.pts_ns[3:15]]
    into = _Destinations()
    plain, got = _decode_both(refs, into, decoder="torchcodec", output="numpy", channels_first=True)
    assert not into.given
    assert [read_index(f.transpose(1, 2, 0)) for f in got] == list(range(3, 15))
    assert [read_index(f.transpose(1, 2, 0)) for f in plain] == list(range(3, 15))


def test_refs_of_several_videos_and_accesses_keep_their_own_destinations(tmp_path):
    """Refs of three videos (same size, same times) read under two accesses (two datasets' roots): each
    frame goes to its own request's array; the groups' request numbers are the call's, not a group's."""
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir(), b.mkdir()
    specs = [
        write_video(a / "v.mp4", 12, fps=10, gop=4, size=SIZE),
        write_video(a / "w.mp4", 12, fps=10, gop=4, size=SIZE, first_index=200),
        write_video(b / "v.mp4", 12, fps=10, gop=4, size=SIZE, first_index=100),
    ]
    access_a, access_b = MediaAccess(root=a), MediaAccess(root=b)
    refs, want = [], []
    for i in range(12):  # interleaved: a group's requests are not contiguous in the call
        for spec, access, first in zip(specs, (access_a, access_a, access_b), (0, 200, 100)):
            refs.append(MediaRef._checked(spec.path.name, spec.pts_ns[i], access))
            want.append(first + i)
    into = _Destinations()
    plain, got = _decode_both(refs, into, channels_first=True)
    assert [read_index(f.transpose(1, 2, 0)) for f in got] == want
    assert set(into.given) == set(range(len(refs)))
    for r, frame in enumerate(got):
        np.testing.assert_array_equal(frame, plain[r])
        assert np.shares_memory(frame, into.given[r])
