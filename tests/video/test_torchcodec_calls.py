"""TorchCodec: the spans of a video are asked in few ``get_frames_at`` calls (up to ``_spans_per_call`` of
them in one; on one core, a DataLoader worker's budget, one after another), and every frame is still the one
on screen at its pts, on every video of the zoo."""

from __future__ import annotations

import logging
import math

import numpy as np
import pytest

from hf_mediaref import MediaRef, batch_decode
from hf_mediaref._executor import core_budget
from hf_mediaref.testing import read_index
from hf_mediaref.video import PyAVVideoDecoder, TorchCodecVideoDecoder

pytestmark = pytest.mark.torchcodec


@pytest.fixture
def calls(monkeypatch):
    """The frame positions of each ``get_frames_at`` call TorchCodec is asked (a spy: the call goes on)."""
    import torchcodec.decoders as decoders

    asked: list[list[int]] = []
    original = decoders.VideoDecoder.get_frames_at

    def spy(self, indices):
        asked.append(list(indices))
        return original(self, indices)

    monkeypatch.setattr(decoders.VideoDecoder, "get_frames_at", spy)
    return asked


def _barcodes(frames, case) -> list[int]:
    turns = case.rotation // 90
    return [read_index(np.rot90(np.asarray(f), -turns)) - case.first_barcode for f in frames]


@pytest.mark.parametrize("workers", [1, 2])
def test_a_video_is_asked_in_few_calls_and_gives_every_frame(case, calls, caplog, fresh_cache, workers):
    """On one core one call per 16 spans; on two, at least one call per core (so both decode)."""
    n = case.spec.num_frames
    rng = np.random.default_rng(len(case.name) + 7)
    order = rng.permutation(n)[: min(n, 20)].tolist() + rng.integers(0, n, 4).tolist() + [0, n - 1]
    refs = [MediaRef(case.uri, case.spec.pts_ns[i]) for i in order]
    with caplog.at_level(logging.WARNING, logger="hf_mediaref.video._torchcodec"):
        out = batch_decode(refs, decoder="torchcodec", max_workers=workers)
    assert _barcodes(out, case) == order
    if "decoding it with PyAV" in caplog.text or not calls:
        return  # TorchCodec is not reliable on this video (the AVI timeline): PyAV decoded every span
    decoder = PyAVVideoDecoder(case.uri)
    spans = len(decoder._plan(sorted(set(order)), None, decoder._index))
    fewest = math.ceil(spans / TorchCodecVideoDecoder._spans_per_call)
    budget = core_budget(workers)
    assert len(calls) == (fewest if budget == 1 else max(min(spans, budget), fewest))
    assert spans <= budget or len(calls) < spans  # not one call per span
    assert sorted(p for call in calls for p in call) == sorted(set(order))


def test_a_call_torchcodec_answers_wrong_decodes_every_span_with_pyav(build_case, calls, caplog, fresh_cache):
    """H.264 in AVI, where TorchCodec's timeline is not the index's: the one call of its spans falls back to
    PyAV for each of them."""
    case = build_case("h264_avi")
    picks = [19, 5, 0, 11]
    refs = [MediaRef(case.uri, case.spec.pts_ns[i]) for i in picks]
    with caplog.at_level(logging.WARNING, logger="hf_mediaref.video._torchcodec"):
        out = batch_decode(refs, decoder="torchcodec", max_workers=1)
    assert [read_index(f) for f in out] == picks
    assert "timeline" in caplog.text
    assert calls == []  # the timeline is judged before TorchCodec decodes anything
