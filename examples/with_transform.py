"""decode_transform: batched decoding inside your own transform (``ds.with_transform``), and in a streaming
``IterableDataset.map(batched=True)``. Checks every frame's barcode.
Run: python examples/with_transform.py
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import datasets
import numpy as np
from datasets import Dataset, Features, Value

from hf_mediaref import MediaRef
from hf_mediaref.hf import MediaRefFeature, decode_transform
from hf_mediaref.testing import read_index, write_image, write_video


class Normalize:
    """A user transform composed with decode_transform (picklable, so DataLoader workers can use it)."""

    def __init__(self):
        self.decode = decode_transform(columns=["frame"], size=(64, 96))

    def __call__(self, batch: dict) -> dict:
        batch = self.decode(batch)  # one engine call for the whole batch
        batch["pixels"] = [f.astype(np.float32) / 255.0 for f in batch["frame"]]
        return batch


def main() -> int:
    datasets.disable_progress_bars()
    root = Path(tempfile.mkdtemp())
    video = write_video(root / "clip.mp4", 24, fps=12, gop=6)
    image = write_image(root / "still.png", 500)
    rows = [{"frame": MediaRef(str(video.path), video.pts_ns[i]), "label": i} for i in range(0, 24, 5)]
    rows.append({"frame": MediaRef(str(image)), "label": 500})
    ds = Dataset.from_list(rows, features=Features({"frame": MediaRefFeature(), "label": Value("int64")}))

    out = ds.with_transform(Normalize())[:]
    wrong = sum(read_index(f) != n for f, n in zip(out["frame"], out["label"]))
    print(
        f"with_transform: {len(out['frame'])} frames {out['frame'][0].shape}, "
        f"pixels in [{out['pixels'][0].min():.2f}, {out['pixels'][0].max():.2f}]: {wrong} wrong"
    )

    streamed = ds.to_iterable_dataset().map(decode_transform(output="pil"), batched=True, batch_size=3)
    for row in streamed:
        wrong += read_index(np.asarray(row["frame"])) != row["label"]
    print(f"streaming map(batched=True): {len(ds)} PIL frames checked, {wrong} wrong in total")
    return 1 if wrong else 0


if __name__ == "__main__":
    sys.exit(main())
