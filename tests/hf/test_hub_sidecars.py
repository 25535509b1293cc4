"""push_to_hub ships each video's index beside it, and readers of the pushed dataset use it (no scan)."""

from __future__ import annotations

import pytest
from datasets import Dataset, Features, Value

import hf_mediaref
from hf_mediaref import MediaRef
from hf_mediaref.hf import MediaRefFeature, set_media_root
from hf_mediaref.testing import write_video
from hf_mediaref.video._sidecar import decode_sidecar


@pytest.fixture
def mkv_repo(tmp_path):
    root = tmp_path / "repo"
    (root / "videos").mkdir(parents=True)
    spec = write_video(
        root / "videos" / "c.mkv", 40, fps=20, gop=10, bframes=2, size=(64, 128), first_index=300
    )
    return root, spec


def test_pushed_videos_carry_their_index_and_readers_skip_the_scan(
    mkv_repo, fake_hub, tmp_path, monkeypatch, labels_of
):
    root, spec = mkv_repo
    picks = [0, 13, 39]
    features = Features({"frame": MediaRefFeature(), "label": Value("int64")})
    rows = [{"frame": MediaRef("videos/c.mkv", spec.pts_ns[i]), "label": i} for i in picks]
    hf_mediaref.push_to_hub(set_media_root(Dataset.from_list(rows, features=features), root), "me/indexed")

    sidecar = fake_hub.repo_dir("me/indexed") / "videos" / "c.mkv.mrindex"
    media, index = decode_sidecar(sidecar.read_bytes())
    assert media.size == spec.path.stat().st_size and index.num_frames == 40
    assert "videos/c.mkv.mrindex" in {p for _, p in fake_hub.uploads}

    def refuse(*args, **kwargs):
        raise AssertionError("the reader scanned a video that has a sidecar")

    monkeypatch.setattr("hf_mediaref.video._indexes.scan_index", refuse)
    hf_mediaref.cleanup_cache()
    back = hf_mediaref.load_dataset("me/indexed", split="train", cache_dir=str(tmp_path / "cache"))
    assert labels_of(back.with_format("mediaref")[:]["frame"]) == [300 + i for i in picks]
