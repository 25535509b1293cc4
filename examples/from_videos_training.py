"""A dataset of whole videos (a ``datasets.Video`` column, as on the Hub) turned into frames, then trained on.

Writes a few barcode videos, makes a ``datasets`` dataset with a ``Video`` column and a label per video
(what a Hub video dataset or a videofolder gives you), converts it with ``hf_mediaref.from_videos`` (one row
per frame sampled 5 times a second; each video written once into the output folder, the label kept on every
frame row), saves it into that folder, loads it back, trains a tiny classifier for a few steps on decoded
uint8 batches (each batch one engine call; every frame checked against its barcode), and writes a contact
sheet.
Run: python examples/from_videos_training.py
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import datasets
import torch
from torch.utils.data import DataLoader

import hf_mediaref
from hf_mediaref.testing import read_index, write_video


def main() -> int:
    datasets.disable_progress_bars()
    work = Path(tempfile.mkdtemp())
    paths, labels = [], []
    for i in range(4):  # 4 videos, 3 s each at 20 fps; video i shows barcodes 100*i + frame
        path = work / "videos" / f"clip{i}.mp4"
        path.parent.mkdir(exist_ok=True)
        write_video(path, 60, fps=20, gop=10, first_index=100 * i)
        paths.append(str(path))
        labels.append(i % 2)
    videos = datasets.Dataset.from_dict({"video": paths, "label": labels}).cast_column(
        "video", datasets.Video()
    )
    print(videos)

    out = work / "frames"
    frames = hf_mediaref.from_videos(videos, out_dir=out, fps=5)  # 15 frame rows per video
    frames.save_to_disk(str(out))
    ds = hf_mediaref.load_from_disk(str(out))  # reads inside its folder only
    print(ds)
    print("row 17:", {k: ds[17][k] for k in ("video_id", "video_index", "frame_index", "timestamp", "label")})

    train = ds.with_format(
        "mediaref",
        output="torch",
        channels_first=True,
        columns=["frame", "label", "video_index", "frame_index"],
    )
    loader = DataLoader(
        train, batch_size=8, shuffle=True, num_workers=2, generator=torch.Generator().manual_seed(0)
    )
    model = torch.nn.Sequential(torch.nn.AdaptiveAvgPool2d(8), torch.nn.Flatten(), torch.nn.Linear(3 * 64, 2))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    wrong = steps = 0
    for batch in loader:
        images = batch["frame"]  # (8, 3, 96, 128) uint8
        for image, video, index in zip(images, batch["video_index"].tolist(), batch["frame_index"].tolist()):
            wrong += read_index(image) != 100 * video + index
        loss = torch.nn.functional.cross_entropy(model(images.float() / 255), batch["label"])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        steps += 1
    print(
        f"{steps} steps on {len(ds)} frames from {len(videos)} videos, last loss {loss.item():.3f}: "
        f"{wrong} wrong frames"
    )

    sheet = hf_mediaref.contact_sheet(ds, n=8, cols=4)
    sheet.save(work / "sheet.png")
    print(f"contact sheet: {work / 'sheet.png'} ({sheet.size[0]}x{sheet.size[1]})")
    return 1 if wrong or len(ds) != 4 * 15 else 0


if __name__ == "__main__":
    raise SystemExit(main())
