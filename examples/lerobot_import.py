"""A LeRobot dataset as frame references, fed to a DataLoader.

Writes a small dataset in LeRobot's v3 layout (two cameras, three episodes sharing video files, AV1 where
PyAV ships the encoder; the same layout LeRobotDataset writes), imports it with hf_mediaref.from_lerobot
(one MediaRef column per camera, every other column kept), also through ``hf-mediaref build
--from-lerobot``, and trains a few steps on decoded uint8 tensors, checking each frame's barcode.
Run: python examples/lerobot_import.py
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

import datasets
import torch
from torch.utils.data import DataLoader

import hf_mediaref
from hf_mediaref.testing import read_index
from hf_mediaref.testing.lerobot import write_lerobot_dataset

CAMERAS = ("observation.images.front", "observation.images.wrist")


def main() -> int:
    datasets.disable_progress_bars()
    work = Path(tempfile.mkdtemp())
    spec = write_lerobot_dataset(work / "robot", (30, 45, 25), cameras=CAMERAS)
    print(f"LeRobot {spec.version} dataset, {spec.num_frames} frames, codec {spec.codec}")

    ds = hf_mediaref.from_lerobot(spec.root)
    print(ds)
    print(
        "row 40:",
        {k: v for k, v in ds[40].items() if k in ("episode_index", "frame_index", "task", CAMERAS[0])},
    )

    train = ds.with_format(
        "mediaref", output="torch", channels_first=True, columns=[*CAMERAS, "action", "index"]
    )
    loader = DataLoader(
        train, batch_size=16, shuffle=True, num_workers=2, generator=torch.Generator().manual_seed(0)
    )
    wrong = steps = 0
    for batch in loader:
        front, wrist = batch[CAMERAS[0]], batch[CAMERAS[1]]  # (16, 3, H, W) uint8 each
        for f, w, i in zip(front, wrist, batch["index"].tolist()):
            wrong += read_index(f) != spec.barcode(CAMERAS[0], i)
            wrong += read_index(w) != spec.barcode(CAMERAS[1], i)
        steps += 1
    print(f"{steps} batches of {front.shape[1:]} x 2 cameras: {wrong} wrong frames")

    out = work / "robot-frames"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "hf_mediaref",
            "build",
            "--from-lerobot",
            str(spec.root),
            "-o",
            str(out),
            "-q",
        ],
        capture_output=True,
        text=True,
    )
    print(proc.stdout, proc.stderr)
    back = hf_mediaref.load_dataset(str(out), split="train")
    frames = back.with_format("mediaref").select_columns([CAMERAS[1]])[:][CAMERAS[1]]
    wrong += sum(read_index(f) != spec.barcode(CAMERAS[1], i) for i, f in enumerate(frames))
    print(f"hf-mediaref build --from-lerobot: {len(back)} rows, {wrong} wrong frames in total")
    return 1 if wrong or proc.returncode else 0


if __name__ == "__main__":
    sys.exit(main())
