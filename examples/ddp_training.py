"""DDP on CPU: 2 ranks (torch.distributed, gloo), each decoding its own videos with the distributed
VideoBlockBatchSampler; the same batch count on every rank, reshuffled per epoch with set_epoch.

Launched here with torch.multiprocessing for a self-contained run; with torchrun the same rank function runs
as: torchrun --nproc-per-node 2 train.py (rank and world size come from the environment).
Run: python examples/ddp_training.py
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from datasets import Dataset, Features, Value
from torch.utils.data import DataLoader

from hf_mediaref import MediaRef
from hf_mediaref.hf import MediaRefFeature, VideoBlockBatchSampler, set_media_root
from hf_mediaref.testing import read_index, write_video


def train(rank: int, world_size: int, root: str) -> None:
    os.environ.setdefault("LOCAL_WORLD_SIZE", str(world_size))  # torchrun sets it: ranks share the cores
    dist.init_process_group("gloo", init_method=f"file://{root}/init", rank=rank, world_size=world_size)
    rows = [
        {"frame": MediaRef(f"videos/ep{e}.mp4", int(t * 1e9 / 20)), "label": 1000 * e + t}
        for e in range(3)
        for t in range(30)
    ]
    ds = Dataset.from_list(rows, features=Features({"frame": MediaRefFeature(), "label": Value("int64")}))
    set_media_root(ds, root)
    sampler = VideoBlockBatchSampler(ds, batch_size=8, seed=0)  # rank / world size from torch.distributed
    loader = DataLoader(ds.with_format("mediaref", output="torch"), batch_sampler=sampler)
    model = torch.nn.parallel.DistributedDataParallel(torch.nn.Linear(3, 1))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    for epoch in range(2):
        sampler.set_epoch(epoch)  # same seed on every rank: a new split of the videos each epoch
        wrong = steps = 0
        episodes = set()
        for batch in loader:
            frames, labels = batch["frame"], batch["label"]
            wrong += sum(read_index(f.numpy()) != int(n) for f, n in zip(frames, labels))
            episodes |= {int(n) // 1000 for n in labels}
            loss = model(frames.float().mean(dim=(1, 2)) / 255).pow(2).mean()
            optimizer.zero_grad()
            loss.backward()  # gradients all-reduced across the ranks
            optimizer.step()
            steps += 1
        print(
            f"rank {rank} epoch {epoch}: {steps} steps, episodes {sorted(episodes)}, {wrong} wrong",
            flush=True,
        )
        assert wrong == 0
    dist.barrier()  # no rank tears gloo down while another is still in a collective
    dist.destroy_process_group()


def main() -> int:
    root = Path(tempfile.mkdtemp())
    (root / "videos").mkdir()
    for e in range(3):
        write_video(root / "videos" / f"ep{e}.mp4", 30, fps=20, gop=10, first_index=1000 * e)
    mp.spawn(train, args=(2, str(root)), nprocs=2, join=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
