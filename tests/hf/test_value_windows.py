"""Windows over value columns (numbers, lists, fixed-size arrays), beside frame windows: the same clamping and
``<column>_is_pad`` in the same batch call, LeRobot's ``delta_timestamps`` semantics on a LeRobot-layout
dataset (action chunks), and typed errors for what cannot be windowed."""

from __future__ import annotations

import numpy as np
import pytest

from hf_mediaref import MediaRef
from hf_mediaref.errors import WindowError
from hf_mediaref.hf import FrameWindows, decode_transform
from hf_mediaref.testing import read_index

datasets = pytest.importorskip("datasets")

OFFSETS = [-0.2, -0.1, 0.0, 0.1]  # the videos are 10 fps: two rows back, the row, one row ahead


def _ids(window) -> list[int]:
    return [read_index(np.asarray(f)) for f in window]


@pytest.fixture
def values_ds(repo):
    """Every frame of a.mp4 (10 fps) as episodes 0 (frames 0..14) and 1 (15..29), and b.mp4 as episode 2;
    per row a number ``i``, a list ``vec = [i, -i]``, a fixed-size 2x2 array ``arr`` and a string ``note``."""
    from datasets import Array2D, Dataset, Features, Sequence, Value

    from hf_mediaref.hf import MediaRefFeature, set_media_root

    rows = []
    for i in range(50):
        video, k, episode = ("a", i, int(i >= 15)) if i < 30 else ("b", i - 30, 2)
        pts = getattr(repo, video).pts_ns[k]
        rows.append(
            {
                "frame": MediaRef(f"videos/{video}.mp4", pts),
                "episode_index": episode,
                "i": i,
                "vec": [float(i), float(-i)],
                "arr": [[i, i + 1], [i + 2, i + 3]],
                "note": f"row {i}",
            }
        )
    features = Features(
        {
            "frame": MediaRefFeature(),
            "episode_index": Value("int64"),
            "i": Value("int64"),
            "vec": Sequence(Value("float32")),
            "arr": Array2D((2, 2), "int32"),
            "note": Value("string"),
        }
    )
    # rows stored out of order: the windows find the rows around each row by episode and time
    shuffled = Dataset.from_list(rows, features=features).shuffle(seed=1).flatten_indices()
    return set_media_root(shuffled, repo.path)


def _expected_rows(i: int) -> tuple[list[int], list[bool]]:
    """The rows (``i`` values) of row ``i``'s window over OFFSETS and its padding, by hand."""
    first, last = (0, 14) if i < 15 else (15, 29) if i < 30 else (30, 49)
    wanted = [i - 2, i - 1, i, i + 1]
    return [min(max(w, first), last) for w in wanted], [not first <= w <= last for w in wanted]


def test_a_plain_dict_on_a_value_column_is_a_typed_error(values_ds):
    """Was: ``windows={"i": [...]}`` returned no window and no error."""
    with pytest.raises(WindowError, match="from_dataset"):
        values_ds.with_format("mediaref", windows={"i": [0.0, 0.1]})[:2]
    with pytest.raises(WindowError, match="not in the dataset"):
        values_ds.with_format("mediaref", windows={"nope": [0.0]})[:2]
    with pytest.raises(WindowError, match="not in the dataset"):
        FrameWindows.from_dataset(values_ds, {"nope": [0.0]}, episode_column="episode_index")


def test_value_columns_that_cannot_be_windowed_are_typed_errors(values_ds):
    """Was: a raw ArrowNotImplementedError from from_dataset."""
    with pytest.raises(WindowError, match="'note' of type string"):
        FrameWindows.from_dataset(values_ds, {"note": [0.0]}, episode_column="episode_index")
    ragged = values_ds.map(lambda row: {"vec": row["vec"][: 1 + row["i"] % 2]})
    with pytest.raises(WindowError, match="different lengths"):
        FrameWindows.from_dataset(ragged, {"vec": [0.0]}, episode_column="episode_index")
    with pytest.raises(WindowError, match="time column"):
        FrameWindows.from_dataset(values_ds, {"i": [0.0]}, episode_column="episode_index", time_column="note")


@pytest.mark.parametrize("output", ["numpy", "torch"])
def test_numbers_lists_and_arrays_windowed_with_the_frames_in_one_call(values_ds, output):
    if output == "torch":
        pytest.importorskip("torch")
    offsets = {name: OFFSETS for name in ("frame", "i", "vec", "arr")}
    windows = FrameWindows.from_dataset(values_ds, offsets, episode_column="episode_index")
    assert windows.value_columns == ["i", "vec", "arr"] and windows.frame_columns == ["frame"]
    batch = values_ds.with_format("mediaref", windows=windows, output=output)[:]
    for k in range(len(values_ds)):
        i = int(values_ds[k]["i"])
        rows, pad = _expected_rows(i)
        frames = _ids(batch["frame"][k])
        assert [f if f < 100 else f - 100 + 30 for f in frames] == rows, i  # b.mp4 shows 100..119
        assert np.asarray(batch["i"][k]).tolist() == rows
        assert np.asarray(batch["vec"][k]).tolist() == [[float(r), float(-r)] for r in rows]
        assert np.asarray(batch["arr"][k]).tolist() == [[[r, r + 1], [r + 2, r + 3]] for r in rows]
        for name in ("frame", "i", "vec", "arr"):
            assert np.asarray(batch[f"{name}_is_pad"][k]).tolist() == pad, (name, i)
    if output == "torch":
        import torch

        assert isinstance(batch["vec"][0], torch.Tensor) and batch["vec"][0].shape == (4, 2)
        assert batch["i_is_pad"][0].dtype == torch.bool
    assert batch["note"][0].startswith("row ")  # the other columns as they are


def test_value_windows_alone_and_a_row_at_a_time(values_ds):
    """No frame window (and no decode): the time comes from the MediaRef column; single rows too."""
    windows = FrameWindows.from_dataset(values_ds, {"vec": [0.0, 0.1, 0.2]}, episode_column="episode_index")
    fmt = values_ds.select_columns(["episode_index", "frame", "vec", "i"]).with_format(
        "mediaref", windows=windows
    )
    for k in range(5):
        row = fmt[k]
        i = row["i"]
        last = 14 if i < 15 else 29 if i < 30 else 49
        want = [min(i + d, last) for d in (0, 1, 2)]
        assert row["vec"][:, 0].tolist() == want
        assert row["vec_is_pad"].tolist() == [i + d > last for d in (0, 1, 2)]
    with pytest.raises(KeyError, match="episode_index"):
        values_ds.select_columns(["frame", "vec"]).with_format("mediaref", windows=windows)[:2]


def test_decode_transform_on_a_streamed_dataset_gives_the_same_windows(values_ds, repo):
    offsets = {"frame": OFFSETS, "vec": OFFSETS}
    windows = FrameWindows.from_dataset(values_ds, offsets, episode_column="episode_index")
    streamed = values_ds.to_iterable_dataset(num_shards=2).map(
        decode_transform(root=repo.path, windows=windows), batched=True, batch_size=7
    )
    seen = 0
    for row in streamed:
        rows, pad = _expected_rows(row["i"])
        assert np.asarray(row["vec"])[:, 0].tolist() == rows
        assert list(row["vec_is_pad"]) == pad == list(row["frame_is_pad"])
        seen += 1
    assert seen == 50


# ------------------------------------------------------------------------------------ LeRobot


def _lerobot_delta_timestamps(table, fps: int, delta_timestamps: dict[str, list[float]], idx: int) -> dict:
    """What LeRobotDataset.__getitem__ returns for row ``idx`` under ``delta_timestamps`` (its semantics,
    written out from lerobot.datasets: ``delta_indices = round(d * fps)``, query indices clamped to the
    episode's rows ``[ep_start, ep_end)``, ``<key>_is_pad`` where the unclamped index leaves it)."""
    episodes = table["episode_index"]
    ep = episodes[idx]
    rows = [k for k, e in enumerate(episodes) if e == ep]
    ep_start, ep_end = rows[0], rows[-1] + 1
    out = {}
    for key, deltas in delta_timestamps.items():
        query = [idx + round(d * fps) for d in deltas]
        out[key] = [table[key][max(ep_start, min(ep_end - 1, q))] for q in query]
        out[f"{key}_is_pad"] = [q < ep_start or q >= ep_end for q in query]
    return out


def test_lerobot_action_chunks_and_states_match_lerobots_delta_timestamps(tmp_path):
    """A LeRobot v3 dataset (several episodes per video file): actions as a chunk of the next 5 steps,
    the state and the front camera one step back and now; every row, every value and mask equal to LeRobot's
    semantics, the camera frames those of the same rows."""
    torch = pytest.importorskip("torch")
    from hf_mediaref import from_lerobot
    from hf_mediaref.testing.lerobot import write_lerobot_dataset

    spec = write_lerobot_dataset(tmp_path / "robot", lengths=(12, 20, 9), fps=10, codec="libx264")
    ds = from_lerobot(spec.root)
    fps = spec.fps
    delta_timestamps = {
        "action": [k / fps for k in range(5)],
        "observation.state": [-1 / fps, 0.0],
        "observation.images.front": [-1 / fps, 0.0],
    }
    windows = FrameWindows.from_dataset(ds, delta_timestamps, episode_column="episode_index")
    assert windows.values is not None and windows.values.time_column == "timestamp"
    train = ds.with_format("mediaref", windows=windows, output="torch", channels_first=True)
    table = ds.select_columns(["episode_index", "action", "observation.state", "index"]).to_dict()
    table["observation.images.front"] = [spec.barcode("observation.images.front", i) for i in table["index"]]
    loader = torch.utils.data.DataLoader(train, batch_size=8, num_workers=0, collate_fn=lambda rows: rows)
    seen = 0
    for rows in loader:
        for row in rows:
            idx = int(row["index"])
            want = _lerobot_delta_timestamps(table, fps, delta_timestamps, idx)
            assert row["action"].shape == (5, 2) and row["action"].tolist() == want["action"], idx
            assert row["observation.state"].tolist() == want["observation.state"], idx
            frames = row["observation.images.front"]
            assert frames.shape[:2] == (2, 3)
            barcodes = [read_index(f.permute(1, 2, 0).numpy()) for f in frames]
            assert barcodes == want["observation.images.front"], idx
            for key in delta_timestamps:
                assert row[f"{key}_is_pad"].tolist() == want[f"{key}_is_pad"], (key, idx)
            seen += 1
    assert seen == spec.num_frames


def test_windows_of_a_shuffled_dataset_read_the_rows_around_each_row(values_ds):
    """Batches of a shuffled selection still see whole episodes (from_dataset reads the dataset's rows)."""
    windows = FrameWindows.from_dataset(values_ds, {"i": OFFSETS}, episode_column="episode_index")
    part = values_ds.shuffle(seed=3).select(range(10)).with_format("mediaref", windows=windows)
    for row in part:
        assert row["i"].tolist() == _expected_rows(int(np.asarray(row["i"])[2]))[0]
    with pytest.raises(KeyError, match="episode 7"):
        decode_transform(windows=windows)({"i": [1], "episode_index": [7], "frame": [MediaRef("x.mp4", 0)]})
