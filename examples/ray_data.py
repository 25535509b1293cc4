"""Ray Data: read a repo folder of refs with its media root, shuffle by video blocks, decode in an actor pool
(decoder threads = the CPUs Ray grants each actor) and feed torch batches. Checks every frame's barcode.
Run: python examples/ray_data.py
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import ray

from hf_mediaref.arrow import STORAGE_TYPE
from hf_mediaref.ray import MediaDecoder, read_mediaref, video_shuffle
from hf_mediaref.testing import read_index, write_video


def make_repo() -> Path:
    """A dataset repo folder: 3 barcode videos and ``data/train-*.parquet`` with refs relative to it."""
    root = Path(tempfile.mkdtemp())
    (root / "videos").mkdir()
    (root / "data").mkdir()
    refs, labels = [], []
    for k in range(3):
        video = write_video(root / "videos" / f"ep{k}.mp4", 40, fps=20, gop=10, first_index=100 * k)
        for i in range(0, 40, 2):
            refs.append({"uri": f"videos/ep{k}.mp4", "pts_ns": video.pts_ns[i]})
            labels.append(100 * k + i)
    table = pa.table({"frame": pa.array(refs, STORAGE_TYPE), "label": labels})
    pq.write_table(table, root / "data" / "train-00000-of-00001.parquet")
    return root


def main() -> int:
    root = make_repo()
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level="ERROR")
    ray.data.DataContext.get_current().enable_progress_bars = False
    try:
        refs = read_mediaref(root, split="train")  # relative URIs resolved against the folder, in the read
        print(refs.take(1)[0]["frame"])
        shuffled = video_shuffle(refs, block_size=8, seed=0)  # blocks of 8 consecutive frames of one video
        frames = shuffled.map_batches(
            MediaDecoder,  # a class: an actor pool; MediaDecoder(...) (an instance) runs as tasks
            fn_constructor_kwargs={"size": (96, 128)},
            batch_size=16,
            num_cpus=1,  # one decoder thread per actor
            compute=ray.data.ActorPoolStrategy(min_size=1, max_size=2),  # leaves a CPU for the shuffle
        )
        seen = 0
        for batch in frames.iter_torch_batches(batch_size=16):
            pixels, labels = batch["frame"], batch["label"]  # uint8 (B, 96, 128, 3), int64 (B,)
            wrong = [int(n) for f, n in zip(pixels.numpy(), labels) if read_index(f) != int(n)]
            assert not wrong, f"wrong frames for labels {wrong}"
            seen += len(labels)
        assert seen == 60, seen
        print(f"decoded {seen} frames in batches of 16, every barcode checked")
    finally:
        ray.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
