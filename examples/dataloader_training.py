"""Train-loop style decoding: a torch DataLoader with worker processes, a video-aware batch sampler, and the
"mediaref" format producing uint8 tensors; then the same loader without workers, the sampler's next batches
decoded ahead on lanes of threads (DecodeAhead). Every batch's barcodes are checked against its labels.
Run: python examples/dataloader_training.py
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import datasets
import torch
from datasets import Dataset, Features, Value
from torch.utils.data import DataLoader

from hf_mediaref import MediaRef
from hf_mediaref.hf import DecodeAhead, MediaRefFeature, VideoBlockBatchSampler, set_media_root
from hf_mediaref.testing import read_index, write_video


def main() -> int:
    datasets.disable_progress_bars()
    root = Path(tempfile.mkdtemp())
    (root / "videos").mkdir()
    specs = [
        write_video(root / "videos" / f"ep{e}.mp4", 60, fps=30, gop=15, first_index=1000 * e)
        for e in range(4)
    ]
    rows = [
        {"frame": MediaRef(f"videos/ep{e}.mp4", spec.pts_ns[i]), "label": 1000 * e + i}
        for e, spec in enumerate(specs)
        for i in range(60)
    ]
    ds = set_media_root(
        Dataset.from_list(rows, features=Features({"frame": MediaRefFeature(), "label": Value("int64")})),
        root,
    )
    train = ds.with_format("mediaref", output="torch", channels_first=True, size=(64, 96))
    sampler = VideoBlockBatchSampler(
        ds, batch_size=16, seed=0
    )  # each batch: consecutive frames of <= 2 videos
    with_workers = DataLoader(train, batch_sampler=sampler, num_workers=2, persistent_workers=False)
    # no workers (CUDA decoding, one process per GPU): the next batches are decoded on lanes of threads
    in_process = DataLoader(DecodeAhead(train, sampler), batch_sampler=sampler)

    failed = 0
    for name, loader in (("2 workers", with_workers), ("0 workers + DecodeAhead", in_process)):
        wrong = seen = 0
        start = time.perf_counter()
        for epoch in range(2):
            sampler.set_epoch(epoch)
            for batch in loader:
                frames, labels = batch["frame"], batch["label"]  # (B, 3, 64, 96) uint8, (B,)
                assert frames.dtype == torch.uint8 and frames.shape[1:] == (3, 64, 96)
                _ = frames.float().div_(255).mean()  # stand-in for a training step
                wrong += sum(read_index(f.permute(1, 2, 0).numpy()) != int(n) for f, n in zip(frames, labels))
                seen += len(labels)
        print(f"2 epochs, {seen} frames in {time.perf_counter() - start:.2f} s with {name}: {wrong} wrong")
        failed += bool(wrong or seen != 2 * len(ds))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
