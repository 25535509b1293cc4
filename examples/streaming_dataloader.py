"""Stream a pushed frame dataset into a torch DataLoader with worker processes, one engine call per batch.

push_to_hub writes shards of whole videos (8 by default, here 4); load_dataset(..., streaming=True) reads them
back; decode_stream decodes each DataLoader batch with one engine call inside the workers. Every frame's
barcode is checked against its label. The Hub is hf_mediaref.testing.fake_hub.FakeHub (offline).
Run: python examples/streaming_dataloader.py
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

import datasets
import torch
from datasets import Dataset, Features, Value
from torch.utils.data import DataLoader

import hf_mediaref
from hf_mediaref import MediaRef
from hf_mediaref.hf import MediaRefFeature, set_media_root
from hf_mediaref.testing import read_index, write_video
from hf_mediaref.testing.fake_hub import FakeHub


def main() -> int:
    datasets.disable_progress_bars()
    work = Path(tempfile.mkdtemp())
    (work / "videos").mkdir()
    specs = [
        write_video(work / "videos" / f"ep{e}.mp4", 40, fps=20, gop=10, first_index=1000 * e)
        for e in range(4)
    ]
    rows = [
        {"frame": MediaRef(f"videos/ep{e}.mp4", spec.pts_ns[i]), "label": 1000 * e + i}
        for i in range(0, 40, 2)
        for e, spec in enumerate(specs)  # rows of all episodes interleaved, as a shuffled table would be
    ]
    ds = Dataset.from_list(rows, features=Features({"frame": MediaRefFeature(), "label": Value("int64")}))
    set_media_root(ds, work)

    with FakeHub(work / "hub"):
        hf_mediaref.push_to_hub(ds, "me/episodes", num_shards=4)  # 4 shards, one whole episode each
        os.chdir(work)  # "elsewhere": refs now resolve against the repo
        ids = hf_mediaref.load_dataset("me/episodes", split="train", streaming=True)
        frames = hf_mediaref.decode_stream(ids, batch_size=10, output="torch")
        ahead = hf_mediaref.decode_stream(ids, batch_size=10, output="torch", ahead=True)
        roads = [
            ("2 workers", DataLoader(frames, batch_size=10, num_workers=2)),  # each worker: 2 whole shards
            ("no workers, decoding ahead", DataLoader(ahead, batch_size=10)),  # next batches on lanes
        ]
        failed = False
        for name, loader in roads:
            wrong = seen = 0
            for batch in loader:
                images, labels = batch["frame"], batch["label"]  # (10, 96, 128, 3) uint8, (10,)
                assert images.dtype == torch.uint8 and images.shape == (10, 96, 128, 3)
                assert len({int(x) // 1000 for x in labels}) == 1  # a batch holds one episode, in time order
                wrong += sum(read_index(f.numpy()) != int(n) for f, n in zip(images, labels))
                seen += len(labels)
            print(f"{ids.num_shards} shards, {seen} frames streamed ({name}) in batches of 10: {wrong} wrong")
            failed = failed or bool(wrong) or seen != len(rows)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
