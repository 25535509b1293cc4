"""The dataset card: written for people (what the dataset is, columns, media layout and sizes, loading with
and without hf_mediaref). That its plain-datasets snippet decodes the right frame: test_interop.py."""

from __future__ import annotations

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
