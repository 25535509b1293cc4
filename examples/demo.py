"""hf_mediaref demo: frame references in a datasets table, decoded in batches, every frame checked.

Generates its own media (barcode videos whose frame i shows i, and images) in a temporary directory, so it
runs anywhere: ``make demo`` (or ``python examples/demo.py``).
"""

from __future__ import annotations

import random
import tempfile
import time
from pathlib import Path

import datasets

import hf_mediaref
from hf_mediaref import DataURI, MediaRef
from hf_mediaref.testing import read_index, write_image, write_video


def main() -> None:
    root = Path(tempfile.mkdtemp(prefix="hf_mediaref_demo_"))
    print(f"1. generating media in {root}")
    videos = [
        write_video(root / "episode_0.mp4", 120, fps=20, gop=30, size=(96, 128)),
        write_video(root / "episode_1.mkv", 120, fps=20, gop=30, size=(96, 128), codec="libx265", bframes=2),
    ]
    image = write_image(root / "goal.png", 4242)

    print("2. one MediaRef per frame at 4 Hz (nothing is decoded yet)")
    rows = []
    for ep, spec in enumerate(videos):
        for i in range(0, spec.num_frames, 5):
            rows.append({"frame": MediaRef(spec.path.name, spec.pts_ns[i]), "episode": ep, "index": i})
    rows.append({"frame": MediaRef(DataURI.from_file(image)), "episode": -1, "index": 4242})
    features = datasets.Features(
        {
            "frame": hf_mediaref.MediaRefFeature(),
            "episode": datasets.Value("int64"),
            "index": datasets.Value("int64"),
        }
    )
    ds = datasets.Dataset.from_list(rows, features=features)
    print(f"   {ds}")
    print(f"   ds[0]['frame'] = {ds[0]['frame']!r}  (a lazy ref; relative to the media folder)")

    print("3. save to disk and reload in the dataset's folder, so relative refs resolve against it")
    ds.save_to_disk(str(root / "table"))
    ds = hf_mediaref.set_media_root(datasets.load_from_disk(str(root / "table")), root)

    print("4. shuffled batches decoded with the batched formatter (each video opened once per batch)")
    fmt = ds.shuffle(seed=0).with_format("mediaref", output="numpy")
    start, checked = time.perf_counter(), 0
    for batch in fmt.iter(batch_size=16):
        for frame, expected in zip(batch["frame"], batch["index"]):
            got = read_index(frame)
            assert got == expected, f"wrong frame: expected {expected}, got {got}"
            checked += 1
    seconds = time.perf_counter() - start
    print(f"   {checked} frames decoded and verified by their barcodes in {seconds:.2f} s")

    print("5. batch_decode directly: random, repeated, unsorted refs across both videos")
    rng = random.Random(0)
    picks = [(v, rng.randrange(v.num_frames)) for v in videos for _ in range(20)]
    refs = [MediaRef(str(v.path), v.pts_ns[i]) for v, i in picks]
    frames = hf_mediaref.batch_decode(refs + refs[:5])
    assert [read_index(f) for f in frames] == [i for _, i in picks] + [i for _, i in picks[:5]]
    print(f"   {len(frames)} frames, all correct; shape {frames[0].shape}, dtype {frames[0].dtype}")
    hf_mediaref.cleanup_cache()
    print("demo OK")


if __name__ == "__main__":
    main()
