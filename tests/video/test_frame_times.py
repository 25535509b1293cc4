"""Frame times without decoding: ``frame_pts_ns``, ``frame_indices_played_at`` (what the CLI samples with)."""

from __future__ import annotations

import numpy as np
import pytest

from hf_mediaref.errors import FrameOutOfRangeError
from hf_mediaref.testing import read_index
from hf_mediaref.video import PyAVVideoDecoder


@pytest.mark.parametrize("name", ["h264_bframes_mp4", "vfr_mkv", "offset_audio_mp4"])
def test_frame_pts_are_the_streams_and_each_decodes_to_its_frame(build_case, name):
    case = build_case(name)
    with PyAVVideoDecoder(case.path, dimension_order="NHWC") as decoder:
        pts = decoder.frame_pts_ns
        assert pts.tolist() == list(case.spec.pts_ns)
        assert not pts.flags.writeable
        frames = decoder.get_frames_played_at([int(t) / 1e9 for t in pts])
    assert [read_index(f) for f in frames.data] == list(range(case.spec.num_frames))


def test_indices_played_at_follow_the_playback_rule_without_decoding(build_case):
    case = build_case("vfr_mkv")
    spec = case.spec
    # 2 ms before frame 3 is past the tolerance (half a 1 ms tick): frame 2 is still on screen
    times = [0, spec.pts_ns[3] - 2_000_000, spec.pts_ns[3], (spec.pts_ns[10] + spec.pts_ns[11]) // 2]
    with PyAVVideoDecoder(case.path) as decoder:
        got = decoder.frame_indices_played_at(times)
        assert isinstance(got, np.ndarray)
        assert got.tolist() == [spec.expected_index(t) for t in times]
        end = round(decoder.metadata.end_stream_seconds * 1e9)
        with pytest.raises(FrameOutOfRangeError, match="past the end"):
            decoder.frame_indices_played_at([end + 1_000_000])
