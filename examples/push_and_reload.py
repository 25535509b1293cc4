"""Push a frame dataset with its local videos to the Hub, then load it back elsewhere and decode the
same frames.

The Hub here is hf_mediaref.testing.fake_hub.FakeHub (offline, faked at the HfApi / HfFileSystem boundary), so
the example runs without network; with a real token, drop the ``with FakeHub(...)`` block.
Run: python examples/push_and_reload.py
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

import datasets
from datasets import Dataset, Features, Value

import hf_mediaref
from hf_mediaref import MediaRef
from hf_mediaref.hf import MediaRefFeature, embed, set_media_root
from hf_mediaref.testing import read_index, write_video
from hf_mediaref.testing.fake_hub import FakeHub


def main() -> int:
    datasets.disable_progress_bars()
    work = Path(tempfile.mkdtemp())
    (work / "videos").mkdir()
    specs = [
        write_video(work / "videos" / f"cam{c}.mp4", 30, fps=15, gop=15, first_index=100 * c)
        for c in range(2)
    ]
    rows = [
        {"frame": MediaRef(f"videos/cam{c}.mp4", spec.pts_ns[i]), "label": 100 * c + i}
        for c, spec in enumerate(specs)
        for i in range(0, 30, 2)
    ]
    ds = Dataset.from_list(rows, features=Features({"frame": MediaRefFeature(), "label": Value("int64")}))
    set_media_root(ds, work)  # where the relative refs live on this machine

    with FakeHub(work / "hub") as hub:
        hf_mediaref.push_to_hub(ds, "me/two-cams")
        files = sorted(
            p.relative_to(hub.repo_dir("me/two-cams")).as_posix()
            for p in hub.repo_dir("me/two-cams").rglob("*")
            if p.is_file()
        )
        print("repo files:", files)

        os.chdir(tempfile.mkdtemp())  # "another machine": nothing local but the Hub
        back = hf_mediaref.load_dataset("me/two-cams", split="train", cache_dir=tempfile.mkdtemp())
        print("row 0:", back[0])
        batch = back.with_format("mediaref")[:]
        wrong = sum(read_index(f) != label for f, label in zip(batch["frame"], batch["label"]))
        print(f"reloaded {len(back)} refs from the Hub: {wrong} wrong frames")

        small = embed(back.select(range(4)))  # self-contained: frames as PNG data URIs, no files needed
        small.push_to_hub("me/two-cams-embedded")
        again = datasets.load_dataset("me/two-cams-embedded", split="train", cache_dir=tempfile.mkdtemp())
        embedded = again.with_format("mediaref")[:]
        wrong += sum(read_index(f) != label for f, label in zip(embedded["frame"], embedded["label"]))
        print(f"embedded copy: {len(again)} rows, uri starts with {again[0]['frame'].uri[:22]!r}")
    return 1 if wrong else 0


if __name__ == "__main__":
    sys.exit(main())
