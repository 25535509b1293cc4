#!/usr/bin/env python
"""Cross-check ``hf_mediaref.from_lerobot`` against LeRobot's own writer and decoder (not run by CI).

LeRobot needs Python >= 3.12 and its own dependencies (a CUDA torch build, PyAV 15, datasets 4), so it lives
in a separate virtual environment; this script runs twice:

    /path/to/lerobot-venv/bin/python scripts/lerobot_crosscheck.py write DIR     # LeRobot writes + decodes
    python scripts/lerobot_crosscheck.py compare DIR                             # hf_mediaref decodes

``write`` records a 3-episode, 2-camera dataset with ``LeRobotDataset.create`` / ``add_frame`` /
``save_episode`` (LeRobot's default AV1 encoding, episodes concatenated into one file per camera), reads every
row back with ``LeRobotDataset.__getitem__`` (PyAV backend) and saves the uint8 frames. ``compare`` imports
the dataset with ``from_lerobot`` (snapped and not) and requires every frame to be identical. Checked with
LeRobot 0.6.1: 81 rows x 2 cameras identical, both modes.
"""

from __future__ import annotations

import importlib.util
import shutil
import sys
from pathlib import Path

import numpy as np

CAMERAS = ("observation.images.front", "observation.images.wrist")
LENGTHS = (23, 41, 17)


def _media():
    """hf_mediaref.testing.media without importing hf_mediaref (not installed in LeRobot's environment)."""
    path = Path(__file__).resolve().parents[1] / "hf_mediaref" / "testing" / "media.py"
    spec = importlib.util.spec_from_file_location("_barcode_media", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def write(work: Path) -> int:
    from lerobot.datasets.lerobot_dataset import LeRobotDataset

    media = _media()
    root = work / "barcodes"
    if root.exists():
        shutil.rmtree(root)
    shape = {"dtype": "video", "shape": (96, 128, 3), "names": ["height", "width", "channels"]}
    features = {
        CAMERAS[0]: shape,
        CAMERAS[1]: shape,
        "observation.state": {"dtype": "float32", "shape": (2,), "names": ["x", "y"]},
        "action": {"dtype": "float32", "shape": (2,), "names": ["x", "y"]},
    }
    ds = LeRobotDataset.create("local/barcodes", fps=30, features=features, root=root, use_videos=True)
    n = 0
    for episode, length in enumerate(LENGTHS):
        for i in range(length):
            ds.add_frame(
                {
                    CAMERAS[0]: media.barcode_frame(n),
                    CAMERAS[1]: media.barcode_frame(10_000 + n),
                    "observation.state": np.array([episode, i], np.float32),
                    "action": np.array([n, -n], np.float32),
                    "task": f"task {episode % 2}",
                }
            )
            n += 1
        ds.save_episode()
    ds.finalize()
    back = LeRobotDataset("local/barcodes", root=root, video_backend="pyav")
    frames = {camera: [] for camera in CAMERAS}
    for k in range(len(back)):
        item = back[k]
        for camera in CAMERAS:
            chw = item[camera].numpy()
            frames[camera].append((chw.transpose(1, 2, 0) * 255).round().astype(np.uint8))
    np.savez_compressed(work / "lerobot_frames.npz", **{c: np.stack(f) for c, f in frames.items()})
    print(f"LeRobot wrote and decoded {len(back)} rows x {len(CAMERAS)} cameras into {root}")
    return 0


def compare(work: Path) -> int:
    import hf_mediaref

    theirs = np.load(work / "lerobot_frames.npz")
    bad = 0
    for snap in (True, False):
        ds = hf_mediaref.from_lerobot(work / "barcodes", snap=snap)
        decoded = ds.with_format("mediaref").select_columns(list(CAMERAS))[:]
        for camera in CAMERAS:
            ours = np.stack(decoded[camera])
            same = ours.shape == theirs[camera].shape and np.array_equal(ours, theirs[camera])
            bad += not same
            print(f"snap={snap} {camera}: {len(ours)} frames, identical to LeRobot's: {same}")
    return 1 if bad else 0


if __name__ == "__main__":
    if len(sys.argv) != 3 or sys.argv[1] not in ("write", "compare"):
        sys.exit(__doc__)
    sys.exit((write if sys.argv[1] == "write" else compare)(Path(sys.argv[2])))
