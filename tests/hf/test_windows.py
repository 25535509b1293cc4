"""Temporal windows on the format and decode_transform: which frames each window holds, the padding mask at
episode and video edges, and one engine call per batch (windows included)."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

from hf_mediaref import MediaRef
from hf_mediaref.errors import FrameOutOfRangeError, InvalidRefError
from hf_mediaref.hf import FrameWindows, decode_transform
from hf_mediaref.hf._windows import window_times
from hf_mediaref.testing import read_index
from hf_mediaref.video import collect_stats

datasets = pytest.importorskip("datasets")

PAST = {"frame": [-0.2, -0.1, 0.0]}  # a.mp4 is 10 fps: two frames back and the current one


def _ids(window) -> list[int]:
    return [read_index(np.asarray(f)) for f in window]


@pytest.fixture
def episodes_ds(repo):
    """Every frame of a.mp4 (frames 0..29, 10 fps), two episodes in the one video (0..14 and 15..29, as
    LeRobot v3 puts several episodes in a file), and b.mp4 (frames 100..119) as episode 2."""
    from datasets import Dataset, Features, Value

    from hf_mediaref.hf import MediaRefFeature, set_media_root

    rows = [
        {"frame": MediaRef("videos/a.mp4", repo.a.pts_ns[i]), "episode_index": int(i >= 15), "i": i}
        for i in range(30)
    ]
    rows += [
        {"frame": MediaRef("videos/b.mp4", repo.b.pts_ns[i]), "episode_index": 2, "i": 100 + i}
        for i in range(20)
    ]
    features = Features({"frame": MediaRefFeature(), "episode_index": Value("int64"), "i": Value("int64")})
    return set_media_root(Dataset.from_list(rows, features=features), repo.path)


def test_window_times_clamps_and_pads():
    times, pad = window_times(
        np.array([100, 150]),
        np.array([-100, 0, 100]),
        low_ns=np.array([50, 50]),
        high_ns=np.array([150, 150]),
        valid_from_ns=np.array([50, 50]),
        valid_to_ns=np.array([150, 150]),
    )
    assert times.tolist() == [[50, 100, 150], [50, 150, 150]]
    assert pad.tolist() == [[True, False, True], [False, False, True]]


def test_windows_inside_an_episode_and_at_its_edges(episodes_ds):
    windows = FrameWindows.from_dataset(
        episodes_ds, {"frame": [-0.2, -0.1, 0.0, 0.1]}, episode_column="episode_index"
    )
    batch = episodes_ds.with_format("mediaref", windows=windows)[:]
    frames, pads = batch["frame"], batch["frame_is_pad"]
    assert frames[0].shape == (4, 64, 128, 3) and frames[0].dtype == np.uint8
    assert _ids(frames[0]) == [0, 0, 0, 1] and pads[0].tolist() == [True, True, False, False]
    assert _ids(frames[7]) == [5, 6, 7, 8] and not pads[7].any()
    # the last frame of episode 0 does not look into episode 1, and the first of episode 1 not back into 0
    assert _ids(frames[14]) == [12, 13, 14, 14] and pads[14].tolist() == [False, False, False, True]
    assert _ids(frames[15]) == [15, 15, 15, 16] and pads[15].tolist() == [True, True, False, False]
    assert _ids(frames[16]) == [15, 15, 16, 17] and pads[16].tolist() == [True, False, False, False]
    assert _ids(frames[29]) == [27, 28, 29, 29] and pads[29].tolist() == [False, False, False, True]
    assert _ids(frames[30]) == [100, 100, 100, 101]  # another video
    assert batch["i"][15] == 15 and batch["episode_index"][15] == 1


def test_episode_edges_hold_at_batch_edges(episodes_ds):
    """A batch starting mid-episode still knows where that episode starts (ranges come from the dataset)."""
    windows = FrameWindows.from_dataset(episodes_ds, PAST, episode_column="episode_index")
    fmt = episodes_ds.with_format("mediaref", windows=windows)
    batch = fmt[16:18]
    assert [_ids(w) for w in batch["frame"]] == [[15, 15, 16], [15, 16, 17]]
    assert [p.tolist() for p in batch["frame_is_pad"]] == [[True, False, False], [False, False, False]]
    row = fmt[15]
    assert _ids(row["frame"]) == [15, 15, 15] and row["frame_is_pad"].tolist() == [True, True, False]
    shuffled = episodes_ds.shuffle(seed=0).with_format("mediaref", windows=windows)
    for row in shuffled.select(range(8)):
        i = row["i"] if row["i"] < 100 else row["i"] - 100
        start = 0 if row["i"] < 15 else 15 if row["i"] < 100 else 0
        want = [max(start, i - 2), max(start, i - 1), i]
        base = 100 if row["i"] >= 100 else 0
        assert _ids(row["frame"]) == [base + w for w in want]


def test_without_episodes_windows_clamp_to_the_video(episodes_ds):
    batch = episodes_ds.with_format("mediaref", windows={"frame": [-0.1, 0.0, 0.1]})[:]
    assert _ids(batch["frame"][15]) == [14, 15, 16]  # crosses the episode boundary: no episodes known
    assert _ids(batch["frame"][0]) == [0, 0, 1] and batch["frame_is_pad"][0].tolist() == [True, False, False]
    assert _ids(batch["frame"][29]) == [28, 29, 29]  # 3.0 s is the end of a.mp4
    assert batch["frame_is_pad"][29].tolist() == [False, False, True]


def test_offsets_between_frames_follow_the_playback_rule(episodes_ds):
    batch = episodes_ds.with_format("mediaref", windows={"frame": [-0.15, -0.05, 0.04, 0.099]})[5:7]
    assert _ids(batch["frame"][0]) == [3, 4, 5, 5]  # 0.35 s shows frame 3, 0.45 s frame 4, 0.599 s frame 5
    assert _ids(batch["frame"][1]) == [4, 5, 6, 6]


def test_window_frames_are_decoded_in_the_batchs_one_engine_call(episodes_ds):
    windows = FrameWindows.from_dataset(episodes_ds, PAST, episode_column="episode_index")
    fmt = episodes_ds.with_format("mediaref", windows=windows)
    fmt[:1]  # indexes loaded
    with collect_stats() as stats:
        batch = fmt[:40]
    assert len(batch["frame"]) == 40
    assert len(batch["frame"]) == 40 and all(len(w) == 3 for w in batch["frame"])
    assert stats.calls == 1 and stats.requested_refs == 40  # each distinct time once: a's 30 frames, b's 10
    assert stats.returned_frames == 40
    assert stats.decoded_frames <= 30 + 10  # each needed frame of a.mp4 and b.mp4 decoded once


def test_torch_channels_first_and_a_dataloader(episodes_ds):
    torch = pytest.importorskip("torch")
    windows = FrameWindows.from_dataset(episodes_ds, PAST, episode_column="episode_index")
    fmt = episodes_ds.with_format("mediaref", windows=windows, output="torch", channels_first=True)
    batch = fmt[14:16]
    assert batch["frame"][0].shape == (3, 3, 64, 128) and batch["frame"][0].dtype == torch.uint8
    assert batch["frame_is_pad"][1].dtype == torch.bool
    assert batch["frame_is_pad"][1].tolist() == [True, True, False]
    loader = torch.utils.data.DataLoader(fmt, batch_size=4, num_workers=0)
    first = next(iter(loader))
    assert first["frame"].shape == (4, 3, 3, 64, 128) and first["frame_is_pad"].shape == (4, 3)
    assert [_ids(w) for w in first["frame"]] == [[0, 0, 0], [0, 0, 1], [0, 1, 2], [1, 2, 3]]
    assert first["frame_is_pad"][0].tolist() == [True, True, False]


@pytest.mark.parametrize(
    "options", [{}, {"output": "torch", "channels_first": True}], ids=["numpy_hwc", "torch_planar"]
)
def test_window_rows_are_decoded_into_place_each_its_own(episodes_ds, monkeypatch, options):
    """Each window frame is converted straight into its row's window (nothing stacked afterwards), the rows
    that share a frame get their own copy of it, and no row's memory is another's."""
    import hf_mediaref.hf._windows as windows_module

    def no_stack(*args):
        raise AssertionError("a row's window was stacked, not decoded into place")

    monkeypatch.setattr(windows_module, "_stack", no_stack)
    windows = FrameWindows.from_dataset(episodes_ds, PAST, episode_column="episode_index")
    batch = episodes_ds.with_format("mediaref", windows=windows, **options)[:20]
    frames = [np.asarray(w) for w in batch["frame"]]
    assert [_ids(w) for w in frames[:4]] == [[0, 0, 0], [0, 0, 1], [0, 1, 2], [1, 2, 3]]
    assert [_ids(w) for w in frames[14:17]] == [[12, 13, 14], [15, 15, 15], [15, 15, 16]]
    for i in range(len(frames) - 1):
        assert not np.shares_memory(frames[i], frames[i + 1])
    frames[7][...] = 0  # rows 7 and 8 show frames 6 and 7
    assert _ids(frames[8]) == [6, 7, 8]


@pytest.mark.torchcodec
def test_windows_decoded_by_torchcodec_are_stacked(episodes_ds):
    windows = FrameWindows.from_dataset(episodes_ds, PAST, episode_column="episode_index")
    batch = episodes_ds.with_format("mediaref", windows=windows, decoder="torchcodec")[:20]
    assert [_ids(w) for w in batch["frame"][:4]] == [[0, 0, 0], [0, 0, 1], [0, 1, 2], [1, 2, 3]]
    assert _ids(batch["frame"][16]) == [15, 15, 16]


def test_pil_output_gives_lists(episodes_ds):
    batch = episodes_ds.with_format("mediaref", windows=PAST, output="pil")[3:4]
    window = batch["frame"][0]
    assert isinstance(window, list) and len(window) == 3
    assert _ids([np.asarray(im) for im in window]) == [1, 2, 3]


def test_decode_transform_with_windows_matches_the_format(episodes_ds, repo):
    windows = FrameWindows.from_dataset(episodes_ds, PAST, episode_column="episode_index")
    transform = decode_transform(root=repo.path, windows=windows)
    transform = pickle.loads(pickle.dumps(transform))  # DataLoader workers
    raw = episodes_ds.with_format(None)[14:17]
    refs = [MediaRef.model_validate(r) for r in raw["frame"]]
    with collect_stats() as stats:
        out = transform({"frame": refs, "episode_index": raw["episode_index"], "other": [None] * 3})
    assert stats.calls == 1 and stats.requested_refs == 5  # frames 12 to 16, each once
    assert [_ids(w) for w in out["frame"]] == [[12, 13, 14], [15, 15, 15], [15, 15, 16]]
    assert [p.tolist() for p in out["frame_is_pad"]] == [
        [False] * 3,
        [True, True, False],
        [True, False, False],
    ]
    # window columns and other media columns in the same call
    both = decode_transform(root=repo.path, windows={"frame": [0.0, 0.1]}, columns=["still"])
    with collect_stats() as stats:
        out = both({"frame": refs[:1], "still": [MediaRef("images/seven.png")]})
    assert stats.calls == 1 and stats.requested_refs == 3
    assert _ids(out["frame"][0]) == [14, 15] and read_index(out["still"][0]) == 7


def test_null_refs_stay_null(episodes_ds, repo):
    transform = decode_transform(root=repo.path, windows=PAST)
    out = transform({"frame": [None, MediaRef("videos/a.mp4", repo.a.pts_ns[2])]})
    assert out["frame"][0] is None and out["frame_is_pad"][0] is None
    assert _ids(out["frame"][1]) == [0, 1, 2]


def test_bad_windows_raise():
    with pytest.raises(ValueError, match="non-empty"):
        FrameWindows({"frame": []})
    with pytest.raises(ValueError, match="numbers"):
        FrameWindows({"frame": ["0.1"]})
    with pytest.raises(ValueError, match="finite"):
        FrameWindows({"frame": [float("nan")]})
    with pytest.raises(ValueError, match="go together"):
        FrameWindows(PAST, episode_column="episode_index")
    with pytest.raises(TypeError, match="FrameWindows"):
        decode_transform(windows=[0.1])


def test_window_errors_name_the_row(episodes_ds, ds, repo):
    with pytest.raises(InvalidRefError, match="image"):
        ds.with_format("mediaref", windows=PAST)[:]  # the fixture dataset holds an image ref
    windows = FrameWindows.from_dataset(episodes_ds, PAST, episode_column="episode_index")
    with pytest.raises(KeyError, match="episode_index"):
        episodes_ds.select_columns(["frame"]).with_format("mediaref", windows=windows)[:2]
    with pytest.raises(KeyError, match="episode 7"):
        decode_transform(root=repo.path, windows=windows)(
            {"frame": [MediaRef("videos/a.mp4", 0)], "episode_index": [7]}
        )
    with pytest.raises(FrameOutOfRangeError, match="row 0"):
        decode_transform(root=repo.path, windows=PAST)({"frame": [MediaRef("videos/a.mp4", 3 * 10**9)]})
    with pytest.raises(TypeError, match="streamed"):
        FrameWindows.from_dataset(episodes_ds.to_iterable_dataset(), PAST, episode_column="episode_index")


def test_streamed_dataset_with_episode_ranges_given_by_hand(episodes_ds, repo):
    """A streamed dataset cannot be read ahead: its episode ranges come from elsewhere (LeRobot's
    ``meta/episodes``), here in nanoseconds of each episode's first and last frame."""
    a, b = repo.a.pts_ns, repo.b.pts_ns
    windows = FrameWindows(
        PAST,
        episode_column="episode_index",
        episode_ranges={"frame": {0: (a[0], a[14]), 1: (a[15], a[29]), 2: (b[0], b[19])}},
    )
    streamed = episodes_ds.to_iterable_dataset(num_shards=2).map(
        decode_transform(root=repo.path, windows=windows), batched=True, batch_size=7
    )
    seen = 0
    for row in streamed:
        i = row["i"] % 100
        first = 15 if 15 <= row["i"] < 100 else 0
        want = [(row["i"] - i) + max(first, i - k) for k in (2, 1, 0)]
        assert _ids(row["frame"]) == want, row["i"]
        assert row["frame_is_pad"].tolist() == [i - 2 < first, i - 1 < first, False]
        seen += 1
    assert seen == 50


def test_an_episode_spread_over_several_files_is_refused(episodes_ds):
    mixed = episodes_ds.map(
        lambda row: {"episode_index": 0 if row["i"] in (0, 100) else row["episode_index"]}
    )
    with pytest.raises(ValueError, match="episode 0 has frames in several files"):
        FrameWindows.from_dataset(mixed, PAST, episode_column="episode_index")


def test_video_bounds_of_a_remote_matroska_read_two_cue_blocks(tmp_path):
    """Windows need each video's first frame, last frame and end: from a remote Matroska's Cues, the first and
    last blocks give them exactly, without a scan of the file."""
    import contextlib

    from hf_mediaref import DecodeOptions, cleanup_cache
    from hf_mediaref.hf._windows import _video_bounds
    from hf_mediaref.testing import write_video
    from hf_mediaref.testing.http_server import LoopbackFileServer
    from hf_mediaref.video._container import OpenedVideo
    from hf_mediaref.video._index import scan_index
    from hf_mediaref.video._indexes import load_index

    spec = write_video(tmp_path / "w.mkv", 120, fps=24, gop=12, bframes=2, size=(64, 128), noise=0.2)
    with contextlib.closing(OpenedVideo(str(spec.path))) as video:
        scan = scan_index(video.container, video.stream)
    cleanup_cache()
    with LoopbackFileServer(tmp_path) as server:
        url = f"{server.url}/w.mkv"
        assert _video_bounds([url], DecodeOptions()) == {
            url: (int(scan.frame_ns[0]), int(scan.frame_ns[-1]), int(scan.end_ns))
        }
        assert load_index(url).progressive is not None
        assert server.bytes_sent < spec.path.stat().st_size / 2
    cleanup_cache()
