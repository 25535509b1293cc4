"""push_to_hub ships each video's index beside it, and readers of the pushed dataset use it (no scan)."""

from __future__ import annotations

import logging

import pytest
from datasets import Dataset, Features, Value

import hf_mediaref
from hf_mediaref import MediaRef
from hf_mediaref.hf import MediaRefFeature, set_media_root
from hf_mediaref.testing import write_video
from hf_mediaref.video import _indexes
from hf_mediaref.video._sidecar import HEAD_BYTES, decode_sidecar


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


def test_a_sidecar_of_other_content_with_the_same_size_and_head_is_refused_by_its_lfs_sha256(
    fake_hub, tmp_path, monkeypatch, labels_of, caplog
):
    root = tmp_path / "repo"
    (root / "videos").mkdir(parents=True)
    spec = write_video(root / "videos" / "c.mkv", 120, fps=20, gop=10, size=(128, 256), first_index=500)
    rows = [{"frame": MediaRef("videos/c.mkv", spec.pts_ns[i])} for i in (0, 13, 39)]
    ds = set_media_root(Dataset.from_list(rows, features=Features({"frame": MediaRefFeature()})), root)
    hf_mediaref.push_to_hub(ds, "me/changed")

    # the video changes in the repo after its sidecar was written: same size, same first 32 KiB (all that a
    # reader without the Hub's LFS sha256 could compare), one byte inside the last frame's packet
    video = fake_hub.repo_dir("me/changed") / "videos" / "c.mkv"
    _, index = decode_sidecar((video.parent / "c.mkv.mrindex").read_bytes())
    assert index.packet_offsets is not None
    at = int(index.packet_offsets[-1] + index.packet_sizes[-1] // 2)
    assert at > HEAD_BYTES
    data = bytearray(video.read_bytes())
    data[at] ^= 0xFF
    video.write_bytes(bytes(data))

    answers = []
    real_from_sidecar = _indexes._from_sidecar
    monkeypatch.setattr(
        _indexes, "_from_sidecar", lambda *a, **k: answers.append(real_from_sidecar(*a, **k)) or answers[-1]
    )
    hf_mediaref.cleanup_cache()
    back = hf_mediaref.load_dataset("me/changed", split="train", cache_dir=str(tmp_path / "cache"))
    with caplog.at_level(logging.WARNING, logger="hf_mediaref.video._indexes"):
        assert labels_of(back.with_format("mediaref")[:]["frame"]) == [500, 513, 539]
    assert answers == [None]  # the stale sidecar was read and refused (the index came from the Cues)
    assert any("stale sidecar" in r.getMessage() for r in caplog.records)
