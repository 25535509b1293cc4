"""Relative media paths resolve against the repo root a dataset was loaded from, whatever the cwd."""

from __future__ import annotations

import os

import pytest
from datasets import Dataset
from datasets import load_dataset as datasets_load_dataset

import hf_mediaref
from hf_mediaref import MediaRef
from hf_mediaref.errors import UnresolvedPathError
from hf_mediaref.hf import MediaRefFeature, get_media_root, set_media_root

EXPECTED = [0, 3, 6, 9, 12, 15, 18, 21, 24, 27, 100, 105, 110, 115, 7, None]

CARD = """---
dataset_info:
  features:
  - name: frame
    dtype: media_ref
  - name: label
    dtype: int64
configs:
- config_name: default
  data_files:
  - split: train
    path: data/*.jsonl
---
# frames
"""


@pytest.fixture
def repo_folder(tmp_path, repo, rows):
    """A repo folder with a README declaring the feature, JSON Lines data and the media under it."""
    import json
    import shutil

    folder = tmp_path / "my_repo"
    shutil.copytree(repo.path, folder)
    (folder / "README.md").write_text(CARD)
    (folder / "data").mkdir()
    with open(folder / "data" / "train.jsonl", "w") as f:
        for row in rows:
            frame = row["frame"]
            f.write(
                json.dumps(
                    {
                        "frame": None if frame is None else {"uri": frame.uri, "pts_ns": frame.pts_ns},
                        "label": row["label"],
                    }
                )
                + "\n"
            )
    return folder


def test_load_local_repo_resolves_against_its_root_from_any_cwd(
    repo_folder, tmp_path, monkeypatch, labels_of
):
    monkeypatch.chdir(tmp_path)
    ds = hf_mediaref.load_dataset("my_repo", split="train", cache_dir=str(tmp_path / "cache"))
    monkeypatch.chdir("/")
    assert get_media_root(ds) == str(repo_folder)
    assert ds[0]["frame"] == MediaRef(str(repo_folder / "videos" / "a.mp4"), 0)
    assert labels_of(ds.with_format("mediaref")[:]["frame"]) == EXPECTED


def test_load_local_repo_dict_and_streaming(repo_folder, tmp_path, labels_of):
    dd = hf_mediaref.load_dataset(str(repo_folder), cache_dir=str(tmp_path / "cache"))
    assert get_media_root(dd["train"]) == str(repo_folder)
    streamed = hf_mediaref.load_dataset(str(repo_folder), split="train", streaming=True)
    first = next(iter(streamed))
    assert first["frame"] == MediaRef(str(repo_folder / "videos" / "a.mp4"), 0)
    batch = next(iter(streamed.with_format("mediaref").iter(batch_size=16)))
    assert labels_of(batch["frame"]) == EXPECTED


def test_plain_datasets_load_dataset_attaches_nothing(repo_folder, tmp_path, monkeypatch, labels_of):
    """hf_mediaref does not change datasets.load_dataset: refs as stored, no root; the format says how to fix
    it, and the fix (hf_mediaref.load_dataset) resolves against the folder from any cwd."""
    monkeypatch.chdir(tmp_path)
    ds = datasets_load_dataset("my_repo", split="train", cache_dir=str(tmp_path / "cache"))
    assert get_media_root(ds) is None and ds[0]["frame"] == MediaRef("videos/a.mp4", 0)
    with pytest.raises(UnresolvedPathError, match=r"hf_mediaref\.load_dataset"):
        ds.with_format("mediaref")[:1]
    ours = hf_mediaref.load_dataset("my_repo", split="train", cache_dir=str(tmp_path / "cache"))
    monkeypatch.chdir("/")
    assert get_media_root(ours) == str(repo_folder)
    assert ours[0]["frame"] == MediaRef(str(repo_folder / "videos" / "a.mp4"), 0)
    assert labels_of(ours.with_format("mediaref")[:]["frame"]) == EXPECTED


def test_refs_without_a_root_stay_relative(repo_folder, tmp_path):
    """A packaged builder on files with no stored root: refs stay relative and decoding says how to fix it."""
    ds = datasets_load_dataset(
        "json",
        data_files=str(repo_folder / "data" / "train.jsonl"),
        split="train",
        cache_dir=str(tmp_path / "c"),
    )
    ds = ds.cast_column("frame", MediaRefFeature())
    assert get_media_root(ds) is None and ds[0]["frame"] == MediaRef("videos/a.mp4", 0)
    with pytest.raises(UnresolvedPathError, match="MediaAccess"):
        ds.with_format("mediaref")[:1]
    set_media_root(ds, repo_folder)
    assert ds[0]["frame"].uri == os.path.join(str(repo_folder), "videos", "a.mp4")


def test_load_refuses_save_to_disk_folders(ds, tmp_path):
    ds.save_to_disk(str(tmp_path / "saved"))
    with pytest.raises(ValueError, match="load_from_disk"):
        hf_mediaref.load_dataset(str(tmp_path / "saved"))


def test_set_media_root_accepts_urls_and_detaches(rows, features):
    ds = Dataset.from_list(rows, features=features)
    set_media_root(ds, "hf://datasets/me/frames@abc123/")
    assert ds[0]["frame"].uri == "hf://datasets/me/frames@abc123/videos/a.mp4"
    set_media_root(ds, None)
    assert ds[0]["frame"].uri == "videos/a.mp4"
