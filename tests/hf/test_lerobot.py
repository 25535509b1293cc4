"""from_lerobot on LeRobot-layout datasets written by the test fixture (AV1 where PyAV ships libsvtav1)."""

from __future__ import annotations

import json
from fractions import Fraction

import av
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import hf_mediaref
from hf_mediaref.errors import FrameOutOfRangeError, MediaNotFoundError
from hf_mediaref.hf import MediaRefFeature, get_media_root
from hf_mediaref.testing import read_index
from hf_mediaref.testing.fake_hub import FakeHub
from hf_mediaref.testing.lerobot import write_lerobot_dataset

CAMERAS = ("observation.images.front", "observation.images.wrist")


@pytest.fixture(scope="module")
def lerobot_v3(tmp_path_factory):
    return write_lerobot_dataset(tmp_path_factory.mktemp("lerobot") / "robot", (12, 20, 9), cameras=CAMERAS)


def _decoded_barcodes(ds, camera):
    frames = ds.with_format("mediaref").select_columns([camera])[:][camera]
    return [read_index(f) for f in frames]


def _lerobot_rule_frames(spec, ds, camera):
    """Frames as LeRobot's PyAV backend picks them: decode the file, take the frame nearest
    ``from_timestamp + float32 timestamp`` and require it within 1e-4 s."""
    episodes = pq.read_table(spec.root / "meta/episodes/chunk-000/file-000.parquet").to_pylist()
    info = json.loads((spec.root / "meta/info.json").read_text())
    cache: dict = {}
    out = []
    for row in ds.select_columns(["episode_index", "timestamp"]):
        ep = episodes[row["episode_index"]]
        rel = info["video_path"].format(
            video_key=camera,
            chunk_index=ep[f"videos/{camera}/chunk_index"],
            file_index=ep[f"videos/{camera}/file_index"],
        )
        if rel not in cache:
            with av.open(str(spec.root / rel)) as container:
                stream = container.streams.video[0]
                decoded = [
                    (float(f.pts * stream.time_base), f.to_ndarray(format="rgb24"))
                    for f in container.decode(stream)
                ]
            cache[rel] = decoded
        query = ep[f"videos/{camera}/from_timestamp"] + float(np.float32(row["timestamp"]))
        distance, frame = min(((abs(t - query), f) for t, f in cache[rel]), key=lambda x: x[0])
        assert distance < 1e-4
        out.append(frame)
    return out


def test_every_row_decodes_to_its_frame_in_every_camera(lerobot_v3):
    ds = hf_mediaref.from_lerobot(lerobot_v3.root)
    assert len(ds) == lerobot_v3.num_frames
    for camera in CAMERAS:
        assert isinstance(ds.features[camera], MediaRefFeature)
        assert _decoded_barcodes(ds, camera) == [lerobot_v3.barcode(camera, i) for i in range(len(ds))]
    # several episodes share a file: refs of episode 1 point into file-000 after episode 0
    row = ds.with_format(None).select_columns([CAMERAS[0]])[12][CAMERAS[0]]
    assert row.uri.endswith("videos/observation.images.front/chunk-000/file-000.mp4")
    assert row.pts_ns == round(12 / 30 * 1e9) or abs(row.pts_ns - 12 / 30 * 1e9) < 1e5


def test_frames_equal_lerobots_nearest_frame_rule(lerobot_v3):
    ds = hf_mediaref.from_lerobot(lerobot_v3.root)
    ours = ds.with_format("mediaref").select_columns([CAMERAS[1]])[:][CAMERAS[1]]
    theirs = _lerobot_rule_frames(lerobot_v3, ds, CAMERAS[1])
    assert len(ours) == len(theirs)
    for a, b in zip(ours, theirs):
        np.testing.assert_array_equal(a, b)


def test_non_video_columns_are_kept_and_tasks_named(lerobot_v3):
    ds = hf_mediaref.from_lerobot(lerobot_v3.root)
    data = pq.read_table(lerobot_v3.root / "data/chunk-000/file-000.parquet")
    for name in data.column_names:
        assert ds[name] == data.column(name).to_pylist() or np.allclose(
            ds[name], data.column(name).to_pylist()
        )
    assert ds.features["timestamp"].dtype == "float32"
    assert ds["task"][:2] == ["pick the cube", "pick the cube"]
    assert ds["task"][12] == "push the block"
    assert get_media_root(ds) == str(lerobot_v3.root)


def test_without_snapping_the_same_frames_come_back(lerobot_v3):
    ds = hf_mediaref.from_lerobot(lerobot_v3.root, snap=False)
    assert _decoded_barcodes(ds, CAMERAS[0]) == list(range(lerobot_v3.num_frames))


def test_v21_layout(tmp_path):
    spec = write_lerobot_dataset(
        tmp_path / "old", (5, 7), cameras=CAMERAS[:1], version="v2.1", codec="libx264"
    )
    ds = hf_mediaref.from_lerobot(spec.root)
    assert len(ds) == 12
    assert _decoded_barcodes(ds, CAMERAS[0]) == list(range(12))
    assert ds["task"][5] == "push the block"
    assert ds.with_format(None)[5][CAMERAS[0]].uri.endswith("episode_000001.mp4")


def test_a_time_with_no_frame_within_tolerance_is_refused(tmp_path):
    spec = write_lerobot_dataset(tmp_path / "shifted", (6, 6), cameras=CAMERAS[:1], codec="libx264")
    path = spec.root / "meta/episodes/chunk-000/file-000.parquet"
    table = pq.read_table(path)
    column = f"videos/{CAMERAS[0]}/from_timestamp"
    shifted = pa.array([t + 0.5 / spec.fps for t in table.column(column).to_pylist()], pa.float64())
    pq.write_table(table.set_column(table.column_names.index(column), column, shifted), path)
    with pytest.raises(FrameOutOfRangeError, match="no frame within"):
        hf_mediaref.from_lerobot(spec.root)


def test_not_a_lerobot_dataset(tmp_path):
    with pytest.raises(MediaNotFoundError, match="meta/info.json"):
        hf_mediaref.from_lerobot(tmp_path)


def test_from_the_hub_pinned_to_a_commit(tmp_path, lerobot_v3):
    import huggingface_hub
    from huggingface_hub import CommitOperationAdd

    with FakeHub(tmp_path / "hub") as hub:
        api = huggingface_hub.HfApi()  # the fake, looked up while patched
        api.create_repo("me/robot", repo_type="dataset")
        files = [p for p in lerobot_v3.root.rglob("*") if p.is_file()]
        api.create_commit(
            "me/robot",
            operations=[
                CommitOperationAdd(
                    path_in_repo=p.relative_to(lerobot_v3.root).as_posix(), path_or_fileobj=str(p)
                )
                for p in files
            ],
            repo_type="dataset",
        )
        ds = hf_mediaref.from_lerobot("hf://datasets/me/robot")
        assert get_media_root(ds) == f"hf://datasets/me/robot@{hub.sha('me/robot')}/"
        assert _decoded_barcodes(ds, CAMERAS[0]) == list(range(lerobot_v3.num_frames))


def test_fixture_frame_times_match_the_episode_offsets(lerobot_v3):
    """The layout itself: frame k of a shared file is at k / fps (episodes follow each other)."""
    with av.open(str(lerobot_v3.root / "videos" / CAMERAS[0] / "chunk-000" / "file-000.mp4")) as container:
        stream = container.streams.video[0]
        pts = sorted(Fraction(p.pts) * stream.time_base for p in container.demux(stream) if p.pts is not None)
    assert len(pts) == 32
    assert all(abs(float(t) - k / 30) < 1e-4 for k, t in enumerate(pts))


def test_a_subset_of_episodes(lerobot_v3):
    ds = hf_mediaref.from_lerobot(lerobot_v3.root, episodes=[2, 0])
    assert sorted(set(ds["episode_index"])) == [0, 2] and len(ds) == 12 + 9
    expected = list(range(12)) + list(range(32, 41))
    assert _decoded_barcodes(ds, CAMERAS[0]) == expected


@pytest.mark.parametrize("snap", [True, False])
def test_times_come_from_frame_index_not_the_float32_timestamp(tmp_path, snap):
    """LeRobot's float32 ``timestamp`` loses precision on long episodes; the refs never use it."""
    spec = write_lerobot_dataset(tmp_path / "robot", (8, 8), cameras=CAMERAS[:1], codec="libx264")
    path = spec.root / "data/chunk-000/file-000.parquet"
    table = pq.read_table(path)
    garbage = pa.array(np.full(len(table), 123.0, np.float32))
    pq.write_table(table.set_column(table.column_names.index("timestamp"), "timestamp", garbage), path)
    ds = hf_mediaref.from_lerobot(spec.root, snap=snap)
    assert _decoded_barcodes(ds, CAMERAS[0]) == list(range(16))
