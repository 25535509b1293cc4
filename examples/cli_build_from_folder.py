"""From a folder of recordings to a checked frame dataset with the ``hf-mediaref`` command line.

Makes a folder of barcode recordings (two videos in sub-folders, an image, a labels.csv sidecar), then runs,
as a user would in a shell (``python -m hf_mediaref`` is the ``hf-mediaref`` console script):

    hf-mediaref build recordings/ -o frames/ --fps 5 --metadata recordings/labels.csv
    hf-mediaref verify frames/
    hf-mediaref inspect frames/

and loads the result with hf_mediaref.load_dataset, checking each decoded frame's barcode.
Run: python examples/cli_build_from_folder.py
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

import hf_mediaref
from hf_mediaref.testing import read_index, write_image, write_video


def hf_mediaref_cli(*args: str) -> str:
    """Run the command line; print and return its output."""
    proc = subprocess.run([sys.executable, "-m", "hf_mediaref", *args, "-q"], capture_output=True, text=True)
    print(f"$ hf-mediaref {' '.join(args)}\n{proc.stdout}{proc.stderr}")
    if proc.returncode != 0:
        raise SystemExit(f"hf-mediaref {args[0]} failed with exit status {proc.returncode}")
    return proc.stdout


def main() -> int:
    work = Path(tempfile.mkdtemp())
    recordings = work / "recordings"
    for session in ("monday", "tuesday"):
        (recordings / session).mkdir(parents=True)
    write_video(recordings / "monday" / "cam.mp4", 40, fps=20, gop=10)
    write_video(recordings / "tuesday" / "cam.mp4", 30, fps=15, gop=15, first_index=1000)
    write_image(recordings / "overview.png", 7)
    (recordings / "labels.csv").write_text(
        "file,operator,success\nmonday/cam.mp4,ann,true\ntuesday/cam.mp4,bob,false\n"
    )

    frames = work / "frames"
    hf_mediaref_cli(
        "build",
        str(recordings),
        "-o",
        str(frames),
        "--fps",
        "5",
        "--metadata",
        str(recordings / "labels.csv"),
    )
    hf_mediaref_cli("verify", str(frames))
    hf_mediaref_cli("inspect", str(frames))

    os.chdir(tempfile.mkdtemp())  # the refs are relative to the dataset folder, not to the current directory
    ds = hf_mediaref.load_dataset(str(frames), split="train")
    print(ds)
    offsets = {"monday/cam.mp4": 0, "tuesday/cam.mp4": 1000}
    wrong = 0
    for batch in ds.with_format("mediaref").iter(batch_size=16):
        for frame, video_id, index in zip(batch["frame"], batch["video_id"], batch["frame_index"]):
            expected = 7 if video_id == "overview.png" else offsets[video_id] + int(index)
            wrong += read_index(frame) != expected
    print(f"decoded {len(ds)} rows: {wrong} wrong")
    return 1 if wrong else 0


if __name__ == "__main__":
    sys.exit(main())
