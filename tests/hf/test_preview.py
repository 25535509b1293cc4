"""Frames you can see: image_grid, contact_sheet, the preview thumbnails (plain datasets.Image, pushed as
a ``preview`` configuration), ``hf-mediaref preview``, a MediaRef's notebook display (which reads nothing)."""

from __future__ import annotations

import numpy as np
import pytest

datasets = pytest.importorskip("datasets")

import hf_mediaref  # noqa: E402
from hf_mediaref import MediaRef  # noqa: E402
from hf_mediaref.testing import barcode_frame, read_index  # noqa: E402

GAP, LABEL = 2, 14  # image_grid's layout


def _cells(sheet, count: int, cols: int, height: int, width: int) -> list[np.ndarray]:
    arr = np.asarray(sheet)
    out = []
    for i in range(count):
        x, y = GAP + (i % cols) * (width + GAP), GAP + (i // cols) * (height + LABEL + GAP)
        out.append(arr[y : y + height, x : x + width])
    return out


def test_image_grid_takes_arrays_tensors_pil_and_gaps():
    from PIL import Image

    torch = pytest.importorskip("torch")
    frames = [
        barcode_frame(1),
        torch.from_numpy(barcode_frame(2)).permute(2, 0, 1),  # CHW tensor
        Image.fromarray(barcode_frame(3)),
        None,
    ]
    sheet = hf_mediaref.image_grid(frames, ["one", "two", "three", "none"], cols=2)
    assert sheet.size == (2 * (128 + GAP) + GAP, 2 * (96 + LABEL + GAP) + GAP)
    cells = _cells(sheet, 3, 2, 96, 128)
    assert [read_index(c) for c in cells] == [1, 2, 3]
    batch = torch.from_numpy(np.stack([barcode_frame(i) for i in range(4)])).permute(0, 3, 1, 2)
    stacked = hf_mediaref.image_grid(batch, cols=4)  # a stacked (N, 3, H, W) batch, no labels
    assert stacked.size[1] == 96 + 2 * GAP
    with pytest.raises(ValueError, match="labels"):
        hf_mediaref.image_grid(frames, ["one"])


def test_contact_sheet_shows_frames_spread_over_the_dataset(ds):
    """``ds``: a.mp4 frames 0, 3, ..., 27, b.mp4 100, 105, 110, 115, an image (7), a null row."""
    sheet = hf_mediaref.contact_sheet(ds, n=4, cols=4)
    cells = _cells(sheet, 4, 4, 64, 128)
    assert [read_index(c) for c in cells] == [0, 15, 27, 7]  # rows 0, 5, 9, 14 (the null row is skipped)


def test_a_failed_ref_is_an_empty_cell_never_another_frame(rows, features, repo):
    from datasets import Dataset

    from hf_mediaref.hf import set_media_root

    bad = [rows[0], {"frame": MediaRef("videos/missing.mp4", 0), "label": 0}, rows[1]]
    ds = set_media_root(Dataset.from_list(bad, features=features), repo.path)
    sheet = hf_mediaref.contact_sheet(ds, n=3, cols=3)
    first, missing, third = _cells(sheet, 3, 3, 64, 128)
    assert read_index(first) == 0 and read_index(third) == 3
    assert (missing == 255).mean() > 0.9  # white: nothing drawn there but its outline


def test_preview_config_is_pushed_and_loads_with_plain_datasets_as_images(ds, fake_hub, tmp_path):
    from test_interop import run_plain

    hf_mediaref.push_to_hub(ds, "me/frames", preview=6)
    repo = fake_hub.repo_dir("me/frames")
    card = (repo / "README.md").read_text()
    assert "![Sampled frames](preview/sheet.png)" in card and (repo / "preview" / "sheet.png").is_file()
    assert "config_name: preview" in card
    body = """
from datasets import load_dataset, get_dataset_config_names
out["configs"] = sorted(get_dataset_config_names("me/frames"))
preview = load_dataset("me/frames", "preview", split="train")
out["feature"] = repr(preview.features["image"])
out["modes"] = [im.mode for im in preview["image"]]
out["rows"] = list(preview["row"])
import numpy
numpy.save(OUT_PATH, numpy.stack([numpy.asarray(im) for im in preview["image"]]))
default = load_dataset("me/frames", split="train")
out["default_rows"] = len(default)
""".replace("OUT_PATH", repr(str(tmp_path / "thumbs.npy")))
    out = run_plain(tmp_path, fake_hub.root, body)
    assert out["configs"] == ["default", "preview"]
    assert out["feature"].startswith("Image(") and set(out["modes"]) == {"RGB"}
    assert out["default_rows"] == len(ds)
    expected = {0: 0, 3: 9, 6: 18, 8: 24, 11: 105, 14: 7}
    assert out["rows"] == list(expected)
    assert [read_index(t) for t in np.load(tmp_path / "thumbs.npy")] == list(expected.values())


def test_media_ref_in_a_notebook_reads_nothing(tmp_path):
    ref = MediaRef(str(tmp_path / "does-not-exist<b>.mp4"), pts_ns=1_500_000_000)
    html = ref._repr_html_()
    assert "frame at 1.500000 s" in html and "&lt;b&gt;" in html and "to_pil_image" in html
    assert "image" in MediaRef("x.png")._repr_html_()
    assert not hasattr(ref, "_repr_png_")


def test_cli_preview_and_build_write_a_contact_sheet(tmp_path):
    from hf_mediaref.cli import main
    from hf_mediaref.testing import write_video

    src = tmp_path / "rec"
    src.mkdir()
    write_video(src / "a.mp4", 20, fps=10, gop=5)
    out = tmp_path / "frames"
    assert main(["build", str(src), "-o", str(out), "-q", "--preview", "4"]) == 0
    assert (out / "preview" / "sheet.png").is_file()
    card = (out / "README.md").read_text()
    assert "![Sampled frames](preview/sheet.png)" in card and "config_name: preview" in card
    thumbs = datasets.load_dataset(str(out), "preview", split="train")
    assert [read_index(np.asarray(im)) for im in thumbs["image"]] == [0, 6, 13, 19]
    assert len(hf_mediaref.load_dataset(str(out), split="train")) == 20  # the default config: the frames
    sheet = tmp_path / "sheet.png"
    assert main(["preview", str(out), "-o", str(sheet), "-n", "3", "--cols", "3", "-q"]) == 0
    from PIL import Image

    cells = _cells(Image.open(sheet).convert("RGB"), 3, 3, 96, 128)
    assert [read_index(c) for c in cells] == [0, 10, 19]


def test_cli_preview_of_a_hub_dataset(ds, fake_hub, tmp_path):
    """``hf-mediaref preview ORG/NAME -o sheet.png``: the frames read from the Hub repo at its commit."""
    from PIL import Image

    from hf_mediaref.cli import main

    hf_mediaref.push_to_hub(ds, "me/frames")
    sheet = tmp_path / "sheet.png"
    assert main(["preview", "me/frames", "-o", str(sheet), "-n", "4", "--cols", "4", "-q"]) == 0
    cells = _cells(Image.open(sheet).convert("RGB"), 4, 4, 64, 128)
    assert [read_index(c) for c in cells] == [0, 15, 27, 7]  # as contact_sheet of the same rows
