"""Build a frame dataset from a folder of videos: one MediaRef per frame at a chosen rate.

Writes a dataset repo folder (videos + Parquet + README declaring the feature), loads it back with
hf_mediaref.load_dataset from another directory, and checks every decoded frame's barcode.
Run: python examples/build_frame_dataset.py
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

import av
import datasets
from datasets import Dataset, Features, Value

import hf_mediaref
from hf_mediaref.hf import MediaRefFeature
from hf_mediaref.testing import read_index, write_video

SAMPLE_FPS = 5  # refs per second of video


def frame_refs(video: Path, root: Path, fps: float) -> list[dict]:
    """One row per 1/fps seconds of ``video`` (relative URI, so the repo can move)."""
    with av.open(str(video)) as container:
        stream = container.streams.video[0]
        duration_ns = int(stream.duration * stream.time_base * 1_000_000_000)
    step = int(1_000_000_000 / fps)
    uri = video.relative_to(root).as_posix()
    return [
        {"frame": {"uri": uri, "pts_ns": t}, "video": uri, "t_s": t / 1e9}
        for t in range(0, duration_ns, step)
    ]


def main() -> int:
    datasets.disable_progress_bars()
    repo = Path(tempfile.mkdtemp()) / "my_frames"
    (repo / "videos").mkdir(parents=True)
    specs = [
        write_video(repo / "videos" / f"episode_{e}.mp4", 40, fps=20, gop=10, first_index=1000 * e)
        for e in range(3)
    ]
    rows = [row for spec in specs for row in frame_refs(spec.path, repo, SAMPLE_FPS)]
    features = Features({"frame": MediaRefFeature(), "video": Value("string"), "t_s": Value("float64")})
    ds = Dataset.from_list(rows, features=features)
    (repo / "data").mkdir()
    # the Parquet metadata describes the columns (the refs as a plain struct any reader understands): no
    # README needed
    ds.to_parquet(str(repo / "data" / "train.parquet"))
    print(f"wrote {len(ds)} frame refs for {len(specs)} videos to {repo}")

    os.chdir(tempfile.mkdtemp())  # relative URIs resolve against the repo root, not the cwd
    loaded = hf_mediaref.load_dataset(str(repo), split="train", cache_dir=tempfile.mkdtemp())
    print("row 0:", loaded[0])
    wrong = 0
    for batch in loaded.with_format("mediaref").iter(batch_size=8):
        for frame, video, t_s in zip(batch["frame"], batch["video"], batch["t_s"]):
            spec = specs[int(video.split("_")[1].split(".")[0])]
            expected = spec.expected_index(round(t_s * 1e9)) + 1000 * specs.index(spec)
            wrong += read_index(frame) != expected
    print(f"decoded {len(loaded)} frames in batches of 8: {wrong} wrong")
    return 1 if wrong else 0


if __name__ == "__main__":
    sys.exit(main())
