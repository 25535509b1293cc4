"""A small LeRobot dataset in LeRobot's on-disk layout (format v3.0, or v2.1), with barcode camera frames.

:func:`write_lerobot_dataset` writes what ``LeRobotDataset`` writes for a dataset with video cameras, a state
and an action vector: ``meta/info.json``, ``meta/tasks.parquet``, ``meta/episodes/chunk-000/file-000.parquet``
(per camera ``chunk_index``, ``file_index``, ``from_timestamp``, ``to_timestamp``), ``data/...parquet``
(``timestamp`` as float32, like LeRobot) and the videos: in v3 several episodes one after the other in a file
(``episodes_per_file`` of them), in v2.1 one file per episode. Frame ``i`` of the dataset (its ``index``)
shows barcode ``camera_offset * c + i`` in camera ``c``, so a test can tell exactly which frame came back.
The codec defaults to AV1 (``libsvtav1``, what LeRobot encodes with) where PyAV ships it, else H.264.

Checked against datasets written by LeRobot 0.6.1's own ``LeRobotDataset.create`` / ``save_episode``.
"""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from .media import write_video

__all__ = ["LeRobotSpec", "default_av1_codec", "write_lerobot_dataset"]


def default_av1_codec() -> str:
    """``"libsvtav1"`` when this PyAV can encode AV1 with it, else ``"libx264"``."""
    import av

    return "libsvtav1" if "libsvtav1" in av.codecs_available else "libx264"


@dataclasses.dataclass(frozen=True)
class LeRobotSpec:
    """What :func:`write_lerobot_dataset` wrote."""

    root: Path
    fps: int
    lengths: tuple[int, ...]
    cameras: tuple[str, ...]
    camera_offset: int
    codec: str
    version: str

    @property
    def num_frames(self) -> int:
        return sum(self.lengths)

    def barcode(self, camera: str, index: int) -> int:
        """The barcode shown by ``camera`` at dataset row ``index``."""
        return self.cameras.index(camera) * self.camera_offset + index


def _write_parquet(table: dict, path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.table(table), path)


def write_lerobot_dataset(
    root: str | os.PathLike[str],
    lengths: tuple[int, ...] = (12, 20, 9),
    *,
    fps: int = 30,
    cameras: tuple[str, ...] = ("observation.images.front", "observation.images.wrist"),
    episodes_per_file: int = 2,
    codec: str | None = None,
    version: str = "v3.0",
    size: tuple[int, int] = (96, 128),
    camera_offset: int = 10_000,
) -> LeRobotSpec:
    """Write a LeRobot dataset with ``len(lengths)`` episodes of those lengths under ``root``.

    Args:
        root: the dataset folder (created).
        lengths: frames per episode.
        fps: the dataset's frame rate.
        cameras: the video feature keys.
        episodes_per_file: v3: episodes concatenated per video file (LeRobot starts a new file by size).
        codec: the encoder (default :func:`default_av1_codec`).
        version: ``"v3.0"`` or ``"v2.1"``.
        size: ``(height, width)`` of the frames.
        camera_offset: camera ``c`` shows barcode ``c * camera_offset + index``.

    Returns:
        A :class:`LeRobotSpec`.
    """
    import pyarrow as pa

    root = Path(root)
    codec = codec or default_av1_codec()
    height, width = size
    starts = np.concatenate([[0], np.cumsum(lengths)]).astype(int)
    n = int(starts[-1])
    v3 = version.startswith("v3")
    video_path = (
        "videos/{video_key}/chunk-{chunk_index:03d}/file-{file_index:03d}.mp4"
        if v3
        else "videos/chunk-{episode_chunk:03d}/{video_key}/episode_{episode_index:06d}.mp4"
    )
    groups = (
        [
            list(range(i, min(i + episodes_per_file, len(lengths))))
            for i in range(0, len(lengths), episodes_per_file)
        ]
        if v3
        else [[e] for e in range(len(lengths))]
    )
    episode_video: dict[str, dict[int, tuple[int, float]]] = {c: {} for c in cameras}
    for c, camera in enumerate(cameras):
        for file_index, group in enumerate(groups):
            first = int(starts[group[0]])
            count = int(starts[group[-1] + 1]) - first
            rel = (
                video_path.format(video_key=camera, chunk_index=0, file_index=file_index)
                if v3
                else video_path.format(video_key=camera, episode_chunk=0, episode_index=group[0])
            )
            (root / rel).parent.mkdir(parents=True, exist_ok=True)
            write_video(
                root / rel,
                count,
                fps=fps,
                size=size,
                codec=codec,
                gop=2,
                first_index=c * camera_offset + first,
            )
            offset = 0.0
            for e in group:
                episode_video[camera][e] = (file_index, offset)
                offset += lengths[e] / fps

    index = np.arange(n)
    episode_index = np.repeat(np.arange(len(lengths)), lengths)
    frame_index = index - starts[episode_index]
    task_index = episode_index % 2
    state = np.stack([episode_index, frame_index], axis=1).astype(np.float32)
    action = np.stack([index, -index], axis=1).astype(np.float32)
    data = {
        "observation.state": pa.array(list(state), pa.list_(pa.float32(), 2)),
        "action": pa.array(list(action), pa.list_(pa.float32(), 2)),
        "timestamp": pa.array((frame_index / fps).astype(np.float32)),
        "frame_index": pa.array(frame_index.astype(np.int64)),
        "episode_index": pa.array(episode_index.astype(np.int64)),
        "index": pa.array(index.astype(np.int64)),
        "task_index": pa.array(task_index.astype(np.int64)),
    }
    tasks = ["pick the cube", "push the block"]
    features: dict[str, dict[str, Any]] = {
        camera: {
            "dtype": "video",
            "shape": [height, width, 3],
            "names": ["height", "width", "channels"],
            "info": {"video.codec": "av1" if "av1" in codec else codec, "video.fps": fps},
        }
        for camera in cameras
    }
    features.update(
        {
            "observation.state": {"dtype": "float32", "shape": [2], "names": ["x", "y"]},
            "action": {"dtype": "float32", "shape": [2], "names": ["x", "y"]},
            "timestamp": {"dtype": "float32", "shape": [1], "names": None},
            "frame_index": {"dtype": "int64", "shape": [1], "names": None},
            "episode_index": {"dtype": "int64", "shape": [1], "names": None},
            "index": {"dtype": "int64", "shape": [1], "names": None},
            "task_index": {"dtype": "int64", "shape": [1], "names": None},
        }
    )
    info = {
        "codebase_version": version,
        "robot_type": None,
        "total_episodes": len(lengths),
        "total_frames": n,
        "total_tasks": len(tasks),
        "chunks_size": 1000,
        "fps": fps,
        "splits": {"train": f"0:{len(lengths)}"},
        "data_path": "data/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet"
        if v3
        else "data/chunk-{episode_chunk:03d}/episode_{episode_index:06d}.parquet",
        "video_path": video_path,
        "features": features,
    }
    (root / "meta").mkdir(parents=True, exist_ok=True)
    (root / "meta" / "info.json").write_text(json.dumps(info, indent=2))
    if v3:
        _write_parquet(data, root / "data" / "chunk-000" / "file-000.parquet")
        _write_parquet(
            {"task_index": pa.array([0, 1], pa.int64()), "task": pa.array(tasks)},
            root / "meta" / "tasks.parquet",
        )
        episodes: dict = {
            "episode_index": pa.array(np.arange(len(lengths)), pa.int64()),
            "length": pa.array(np.asarray(lengths), pa.int64()),
            "dataset_from_index": pa.array(starts[:-1], pa.int64()),
            "dataset_to_index": pa.array(starts[1:], pa.int64()),
        }
        for camera in cameras:
            files = [episode_video[camera][e] for e in range(len(lengths))]
            episodes[f"videos/{camera}/chunk_index"] = pa.array([0] * len(lengths), pa.int64())
            episodes[f"videos/{camera}/file_index"] = pa.array([f for f, _ in files], pa.int64())
            episodes[f"videos/{camera}/from_timestamp"] = pa.array([s for _, s in files], pa.float64())
            episodes[f"videos/{camera}/to_timestamp"] = pa.array(
                [s + lengths[e] / fps for e, (_, s) in enumerate(files)], pa.float64()
            )
        _write_parquet(episodes, root / "meta" / "episodes" / "chunk-000" / "file-000.parquet")
    else:
        for e in range(len(lengths)):
            rows = slice(int(starts[e]), int(starts[e + 1]))
            _write_parquet(
                {k: v[rows] for k, v in data.items()},
                root / "data" / "chunk-000" / f"episode_{e:06d}.parquet",
            )
        (root / "meta" / "episodes.jsonl").write_text(
            "".join(
                json.dumps({"episode_index": e, "tasks": [tasks[e % 2]], "length": length}) + "\n"
                for e, length in enumerate(lengths)
            )
        )
        (root / "meta" / "tasks.jsonl").write_text(
            "".join(json.dumps({"task_index": i, "task": t}) + "\n" for i, t in enumerate(tasks))
        )
    return LeRobotSpec(root, fps, tuple(lengths), tuple(cameras), camera_offset, codec, version)
