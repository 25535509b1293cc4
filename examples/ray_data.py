"""Ray Data: read a folder written by ``hf-mediaref build`` (refs relative to it; string columns such as
``video_id`` and ``codec`` beside them), shuffle by video blocks, decode in an actor pool (decoder threads =
the CPUs Ray grants each actor) and feed torch batches through ``torch_collate`` (Ray's default collate cannot
make tensors of strings). Checks every frame's barcode.
Run: python examples/ray_data.py
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import ray

from hf_mediaref.cli import main as hf_mediaref_cli
from hf_mediaref.ray import MediaDecoder, read_mediaref, torch_collate, video_shuffle
from hf_mediaref.testing import read_index, write_video


def make_repo() -> Path:
    """3 barcode videos (video k shows 100 * k + its frame number) built into a dataset folder with
    ``hf-mediaref build --every 2``: ``data/train-*.parquet`` beside the videos."""
    work = Path(tempfile.mkdtemp())
    (work / "videos").mkdir()
    for k in range(3):
        write_video(work / "videos" / f"ep{k}.mp4", 40, fps=20, gop=10, first_index=100 * k)
    out = work / "frames"
    assert hf_mediaref_cli(["build", str(work / "videos"), "-o", str(out), "--every", "2", "-q"]) == 0
    return out


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
        for batch in frames.iter_torch_batches(batch_size=16, collate_fn=torch_collate()):
            pixels, index = batch["frame"], batch["frame_index"]  # uint8 (B, 96, 128, 3), int64 (B,)
            videos = batch["video_id"]  # B str ("ep0.mp4", ...): strings stay lists
            wrong = [
                (video, int(i))
                for f, video, i in zip(pixels.numpy(), videos, index)
                if read_index(f) != 100 * int(video[2]) + int(i)
            ]
            assert not wrong, f"wrong frames {wrong}"
            seen += len(index)
        assert seen == 60, seen
        print(f"decoded {seen} frames in batches of 16, every barcode checked")
    finally:
        ray.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
