"""Training with temporal windows: each sample is the current frame and the two before it, and the action
chunk of the next four steps (LeRobot's ``delta_timestamps``), clamped at episode edges with padding masks,
decoded a batch at a time in DataLoader workers. A tiny policy takes a few steps (its loss leaves padded
actions out); every window's barcodes and actions are checked against the rows they must hold.
Run: python examples/windows_training.py
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import datasets
import torch
from datasets import Dataset, Features, Sequence, Value
from torch.utils.data import DataLoader

from hf_mediaref import FrameWindows, MediaRef
from hf_mediaref.hf import MediaRefFeature, set_media_root
from hf_mediaref.testing import read_index, write_video

FPS = 10
OFFSETS = [-0.2, -0.1, 0.0]  # two frames back and the current one, in seconds
CHUNK = [0.0, 0.1, 0.2, 0.3]  # the action now and in the next three steps


def main() -> int:
    datasets.disable_progress_bars()
    root = Path(tempfile.mkdtemp())
    (root / "videos").mkdir()
    # one recording holding two episodes (frames 0-39 and 40-79), as LeRobot v3 packs episodes into a file
    spec = write_video(root / "videos" / "cam.mp4", 80, fps=FPS, gop=10, size=(64, 128))
    rows = [
        {
            "frame": MediaRef("videos/cam.mp4", spec.pts_ns[i]),
            "episode_index": i // 40,
            "frame_index": i,
            "action": [i / 80, -i / 80],
        }
        for i in range(80)
    ]
    features = Features(
        {
            "frame": MediaRefFeature(),
            "episode_index": Value("int64"),
            "frame_index": Value("int64"),
            "action": Sequence(Value("float32")),
        }
    )
    ds = set_media_root(Dataset.from_list(rows, features=features), root)

    # episode starts and ends (and the actions of the rows around each row) come from the whole dataset, so
    # rows at a batch's edge clamp correctly too; a row's time is its frame's
    windows = FrameWindows.from_dataset(
        ds, {"frame": OFFSETS, "action": CHUNK}, episode_column="episode_index"
    )
    train = ds.with_format("mediaref", windows=windows, output="torch", channels_first=True)
    loader = DataLoader(
        train, batch_size=16, shuffle=True, num_workers=2, generator=torch.Generator().manual_seed(0)
    )

    torch.manual_seed(0)
    model = torch.nn.Sequential(  # the T frames stacked on the channel axis
        torch.nn.Conv2d(3 * len(OFFSETS), 8, 5, stride=4),
        torch.nn.ReLU(),
        torch.nn.Flatten(),
        torch.nn.Linear(8 * 15 * 31, 2 * len(CHUNK)),
    )
    optimizer = torch.optim.SGD(model.parameters(), lr=1e-3)
    wrong = seen = 0
    start = time.perf_counter()
    for batch in loader:
        frames, pad, index = batch["frame"], batch["frame_is_pad"], batch["frame_index"]
        actions, action_pad = batch["action"], batch["action_is_pad"]
        assert frames.shape[1:] == (3, 3, 64, 128) and pad.shape[1:] == (3,)  # (B, T, C, H, W), (B, T)
        assert actions.shape[1:] == (len(CHUNK), 2) and action_pad.shape[1:] == (len(CHUNK),)
        for window, mask, chunk, chunk_pad, i in zip(frames, pad, actions, action_pad, index.tolist()):
            first, last = 40 * (i // 40), 40 * (i // 40) + 39
            want = [max(first, i - 2), max(first, i - 1), i]
            got = [read_index(f.permute(1, 2, 0).numpy()) for f in window]
            wrong += got != want or mask.tolist() != [i - 2 < first, i - 1 < first, False]
            steps = [i + k for k in range(len(CHUNK))]
            wrong += chunk[:, 0].mul(80).round().tolist() != [min(s, last) for s in steps]
            wrong += chunk_pad.tolist() != [s > last for s in steps]
        x = frames.flatten(1, 2).float().div(255)  # (B, T*C, H, W)
        predicted = model(x).view(-1, len(CHUNK), 2)
        loss = ((predicted - actions).pow(2).sum(-1) * ~action_pad).mean()  # padded actions left out
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        seen += len(index)
    took = time.perf_counter() - start
    print(
        f"1 epoch, {seen} windows of {len(OFFSETS)} frames and {len(CHUNK)} actions in {took:.2f} s with 2 "
        f"workers: {wrong} wrong"
    )
    return 1 if wrong or seen != len(ds) else 0


if __name__ == "__main__":
    sys.exit(main())
