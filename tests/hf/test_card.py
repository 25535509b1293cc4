"""The dataset card: written for people (what the dataset is, columns, media layout and sizes, loading with
and without hf_mediaref). That its plain-datasets snippet decodes the right frame: test_interop.py."""

from __future__ import annotations

import pytest
from datasets import Features, List, Value

from hf_mediaref.hf import MediaRefFeature
from hf_mediaref.hf._card import CARD_MARKER, dataset_card


def test_card_describes_columns_layout_and_both_ways_to_load(tmp_path):
    video = tmp_path / "a.mp4"
    video.write_bytes(b"x" * 2_500_000)
    features = Features(
        {"frame": MediaRefFeature(), "clip": List(MediaRefFeature()), "label": Value("int64")}
    )
    card = dataset_card(
        "me/frames",
        features,
        media={"videos/a.mp4": str(video), "videos/b.mp4": 1_500_000, "images/goal.png": 2_000},
        num_rows={"train": 1200, "test": 3},
    )
    assert card.startswith("# me/frames\n") and card.count(CARD_MARKER) == 1
    assert "`train` (1,200 rows), `test` (3 rows)" in card
    assert "| `frame` | media reference: `struct<uri: string, pts_ns: int64>` |" in card
    assert "| `clip` | holds media references" in card and "| `label` | `Value('int64')` |" in card
    assert "| `videos/` | 2 | .mp4 | 4.0 MB |" in card and "| `images/` | 1 | .png | 2.0 KB |" in card
    assert "3 media file(s), 4.0 MB in all." in card
    assert "## Load with hf_mediaref" in card and "## Load without hf_mediaref" in card
    assert 'load_dataset("me/frames", split="train")' in card and "import av" in card


def test_card_keeps_an_existing_readme_and_says_when_no_media_was_uploaded():
    card = dataset_card(
        "me/x", Features({"frame": MediaRefFeature()}), existing="# My robot data\n\nHello.\n"
    )
    assert card.startswith("# My robot data\n\nHello.\n\n" + CARD_MARKER)
    assert "uploaded no media files" in card


# ------------------------------------------------------------------------- every snippet, every row
def _snippets(card: str) -> dict[str, str]:
    """The card's python blocks by the heading above them."""
    out = {}
    for part in card.split("\n## ")[1:]:
        heading, _, body = part.partition("\n")
        if "```python\n" in body:
            out[heading.strip()] = body.split("```python\n", 1)[1].split("```", 1)[0]
    return out


@pytest.fixture(scope="module")
def fps_frames(tmp_path_factory):
    """A frame dataset built with fps sampling at times that fall between frames (13 a second of 30, 24, 10
    fps and variable-rate videos; one with B-frames; some times after a video's last frame, before its
    end), its media root its folder."""
    import datasets

    import hf_mediaref
    from hf_mediaref.testing import write_video

    src = tmp_path_factory.mktemp("card-src")
    write_video(src / "a.mp4", 30, fps=30, gop=10)
    write_video(src / "b.mp4", 24, fps=24, gop=12, bframes=2, first_index=100)
    vfr = [0, 40, 70, 150, 160, 200, 330, 345, 400, 480, 490, 600]
    write_video(src / "c.mkv", len(vfr), pts=vfr, gop=4, first_index=200)
    write_video(src / "d.mp4", 10, fps=10, gop=5, first_index=300)
    names = ("a.mp4", "b.mp4", "c.mkv", "d.mp4")
    videos = datasets.Dataset.from_dict({"video": [str(src / n) for n in names]})
    out = tmp_path_factory.mktemp("card-frames")
    return hf_mediaref.from_videos(videos.cast_column("video", datasets.Video()), out_dir=out, fps=13)


def test_every_card_snippet_picks_hf_mediarefs_frame_on_every_row(fps_frames, fake_hub, tmp_path):
    """The plain datasets + PyAV snippet (run where hf_mediaref cannot be imported) and the hf_mediaref one
    decode, on every row of an fps-sampled dataset, the frame hf_mediaref decodes: the playback rule."""
    import numpy as np
    from test_interop import run_plain

    import hf_mediaref
    from hf_mediaref.testing import read_index

    ds = fps_frames
    expected = [read_index(f) for f in ds.with_format("mediaref")[:]["frame"]]
    assert len(expected) > 40 and len(set(expected)) > 30
    last = ds.with_format(None).select_columns(["frame", "frame_index"])[-1]
    assert last["frame_index"] == 9 and last["frame"].pts_ns > 900_000_000  # after d.mp4's last frame
    hf_mediaref.push_to_hub(ds, "me/fps-frames")
    card = (fake_hub.repo_dir("me/fps-frames") / "README.md").read_text()
    snippets = _snippets(card)
    assert set(snippets) == {"Load with hf_mediaref", "Load without hf_mediaref (plain `datasets` + PyAV)"}

    scope: dict = {}
    exec(snippets["Load with hf_mediaref"], scope)
    assert [read_index(f) for f in scope["frames"]] == expected[:8]

    plain = snippets["Load without hf_mediaref (plain `datasets` + PyAV)"]
    saved = tmp_path / "frames.npy"
    body = plain + (
        f"import numpy\nnumpy.save({str(saved)!r}, numpy.stack([frame_at(row['frame']) for row in ds]))\n"
    )
    run_plain(tmp_path, fake_hub.root, body)
    got = [read_index(f) for f in np.load(saved)]
    wrong = [(i, g, e) for i, (g, e) in enumerate(zip(got, expected)) if g != e]
    assert not wrong, f"{len(wrong)} of {len(expected)} rows differ (row, plain, hf_mediaref): {wrong[:5]}"
