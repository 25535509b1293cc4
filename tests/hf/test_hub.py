"""Hub push and load against a fake Hub (faked at HfApi / HfFileSystem; everything above is real datasets)."""

from __future__ import annotations

import shutil

import numpy as np
import pyarrow.parquet as pq
import pytest
from datasets import Dataset, DatasetDict, Features, Value, load_dataset

import hf_mediaref
from hf_mediaref import MediaRef
from hf_mediaref.errors import UnresolvedPathError
from hf_mediaref.hf import MediaRefFeature, embed, get_media_root
from hf_mediaref.hf._hub import CARD_MARKER
from hf_mediaref.testing import barcode_frame, write_video

EXPECTED = [0, 3, 6, 9, 12, 15, 18, 21, 24, 27, 100, 105, 110, 115, 7, None]


def _files(folder) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())


def test_push_uploads_each_media_file_once_and_loads_back_anywhere(
    ds, fake_hub, tmp_path, monkeypatch, labels_of
):
    hf_mediaref.push_to_hub(ds, "me/frames")
    folder = fake_hub.repo_dir("me/frames")
    assert _files(folder) == [
        "README.md",
        *(f"data/train-{i:05d}-of-00008.parquet" for i in range(8)),  # enough shards for streaming workers
        "images/seven.png",
        "videos/a.mp4",
        "videos/a.mp4.mrindex",  # the keyframe index sidecars: readers skip their scans
        "videos/b.mp4",
        "videos/b.mp4.mrindex",
    ]
    media_uploads = [p for _, p in fake_hub.uploads if not p.endswith((".parquet", ".md", ".mrindex"))]
    assert sorted(media_uploads) == ["images/seven.png", "videos/a.mp4", "videos/b.mp4"]
    monkeypatch.chdir(tmp_path)
    back = hf_mediaref.load_dataset("me/frames", split="train", cache_dir=str(tmp_path / "cache"))
    sha = fake_hub.sha("me/frames")
    assert get_media_root(back) == f"hf://datasets/me/frames@{sha}/"
    assert back[0]["frame"] == MediaRef(f"hf://datasets/me/frames@{sha}/videos/a.mp4", 0)
    assert labels_of(back.with_format("mediaref")[:]["frame"]) == EXPECTED
    streamed = hf_mediaref.load_dataset("me/frames", split="train", streaming=True)
    assert labels_of(next(iter(streamed.with_format("mediaref").iter(batch_size=16)))["frame"]) == EXPECTED


def test_push_rewrites_absolute_refs_outside_the_root(repo, fake_hub, tmp_path, labels_of):
    (tmp_path / "elsewhere").mkdir()
    elsewhere = write_video(
        tmp_path / "elsewhere" / "c.mp4", 10, fps=10, gop=5, size=(64, 128), first_index=200
    )
    shutil.copy(repo.image, tmp_path / "elsewhere" / "seven.png")
    ds = Dataset.from_list(
        [{"frame": MediaRef(str(elsewhere.path), elsewhere.pts_ns[i])} for i in (1, 4, 4, 9)]
        + [
            {"frame": MediaRef((tmp_path / "elsewhere" / "seven.png").as_uri())},
            {"frame": MediaRef("https://example.invalid/remote.png")},
        ],
        features=Features({"frame": MediaRefFeature()}),
    )
    hf_mediaref.push_to_hub(ds, "me/abs", num_shards=1)
    table = pq.read_table(fake_hub.repo_dir("me/abs") / "data" / "train-00000-of-00001.parquet")
    uris = [r["uri"] for r in table["frame"].to_pylist()]
    assert uris[0] == uris[1] and uris[0].startswith("media/") and uris[0].endswith("/c.mp4")
    assert uris[4].startswith("media/") and uris[4].endswith("/seven.png")
    assert uris[5] == "https://example.invalid/remote.png"
    assert sum(p.endswith("c.mp4") for _, p in fake_hub.uploads) == 1
    back = hf_mediaref.load_dataset("me/abs", split="train", cache_dir=str(tmp_path / "cache"))
    assert labels_of(back.select(range(5)).with_format("mediaref")[:]["frame"]) == [201, 204, 204, 209, 7]


def test_push_refuses_unresolvable_relative_refs(rows, features, fake_hub):
    with pytest.raises(UnresolvedPathError):
        hf_mediaref.push_to_hub(Dataset.from_list(rows, features=features), "me/nope")
    assert not fake_hub.uploads


def test_dataset_dict_and_card(ds, fake_hub, tmp_path):
    hf_mediaref.push_to_hub(DatasetDict({"train": ds, "test": ds.select(range(3))}), "me/dd")
    card = (fake_hub.repo_dir("me/dd") / "README.md").read_text()
    assert "media_ref" not in card and card.count(CARD_MARKER) == 1  # plain datasets can read the YAML
    assert 'load_dataset("me/dd"' in card and "`train` (16 rows), `test` (3 rows)" in card
    hf_mediaref.push_to_hub(ds, "me/dd", split="train")  # a second push keeps one usage section
    assert (fake_hub.repo_dir("me/dd") / "README.md").read_text().count(CARD_MARKER) == 1
    back = hf_mediaref.load_dataset("me/dd", cache_dir=str(tmp_path / "cache"))
    assert sorted(back) == ["test", "train"] and len(back["test"]) == 3


def test_refs_read_as_plain_structs_with_explicit_features(ds, fake_hub, tmp_path):
    """Reading the Parquet files with explicit plain features (what users of other readers do)."""
    hf_mediaref.push_to_hub(ds, "me/plain")
    features = Features(
        {"frame": {"uri": Value("string"), "pts_ns": Value("int64")}, "label": Value("int64")}
    )
    plain = load_dataset(
        "parquet",
        data_files="hf://datasets/me/plain/data/*.parquet",
        features=features,
        split="train",
        cache_dir=str(tmp_path / "cache"),
    )
    assert plain[0]["frame"] == {"uri": "videos/a.mp4", "pts_ns": 0}


def test_embedded_refs_push_and_load_bit_exact(fake_hub, tmp_path):
    frames = [barcode_frame(i, 64, 128) for i in (3, 1, 4)]
    ds = Dataset.from_dict({"frame": [*frames, None]}, features=Features({"frame": MediaRefFeature()}))
    ds.push_to_hub("me/embedded")  # plain datasets push: data URIs are self-contained
    back = load_dataset("me/embedded", split="train", cache_dir=str(tmp_path / "cache"))
    decoded = back.with_format("mediaref")[:]["frame"]
    assert all(np.array_equal(a, b) for a, b in zip(decoded[:3], frames)) and decoded[3] is None


def test_embed_makes_a_dataset_self_contained(ds, repo, labels_of):
    embedded = embed(ds, batch_size=5)
    refs = embedded["frame"]
    assert all(r.is_embedded and r.pts_ns is None for r in refs[:-1]) and refs[-1] is None
    assert labels_of(embedded.with_format("mediaref")[:]["frame"]) == EXPECTED
    direct = ds.with_format("mediaref")[:]["frame"]
    assert all(
        np.array_equal(a, b) for a, b in zip(embedded.with_format("mediaref")[:15]["frame"], direct[:15])
    )
    again = embed(embedded)
    assert again["frame"] == refs
    jpeg = embed(ds.select(range(2)), format="jpeg", quality=95)
    assert jpeg[0]["frame"].uri.startswith("data:image/jpeg")
    assert labels_of(jpeg.with_format("mediaref")[:]["frame"]) == [0, 3]


def test_embed_rejects_bad_arguments(ds):
    with pytest.raises(ValueError):
        embed(ds, format="gif")
    with pytest.raises(ValueError):
        embed(ds, columns=["label"])


def test_parquet_keeps_dictionary_encoding_and_compression(ds, fake_hub):
    big = Dataset.from_dict(
        {"frame": [{"uri": f"videos/v{i % 50:03d}.mp4", "pts_ns": i * 33_366_667} for i in range(20_000)]},
        features=Features({"frame": MediaRefFeature()}),
    )
    big.push_to_hub("me/big")
    meta = pq.ParquetFile(fake_hub.repo_dir("me/big") / "data" / "train-00000-of-00001.parquet").metadata
    uri_column = next(
        meta.row_group(0).column(i)
        for i in range(meta.num_columns)
        if meta.row_group(0).column(i).path_in_schema == "frame.uri"
    )
    assert "RLE_DICTIONARY" in uri_column.encodings or "PLAIN_DICTIONARY" in uri_column.encodings
    assert uri_column.compression != "UNCOMPRESSED"
    assert uri_column.total_compressed_size < 20_000  # 20k refs to 50 videos: a few KB


def test_push_and_embed_treat_decode_false_columns_like_any_media_column(
    rows, repo, fake_hub, tmp_path, labels_of
):
    from datasets import Value

    from hf_mediaref.hf import set_media_root

    features = Features({"frame": MediaRefFeature(decode=False), "label": Value("int64")})
    ds = set_media_root(Dataset.from_list(rows, features=features), repo.path)
    hf_mediaref.push_to_hub(ds, "me/raw")
    uploaded = sorted(p for _, p in fake_hub.uploads if not p.endswith((".parquet", ".md", ".mrindex")))
    assert uploaded == ["images/seven.png", "videos/a.mp4", "videos/b.mp4"]
    back = hf_mediaref.load_dataset("me/raw", split="train", cache_dir=str(tmp_path / "cache"))
    # stored decode=False, read back as a ref all the same: hf_mediaref's loaders read every media column as
    # refs that carry the dataset's access, whatever the data marks (a plain dict would carry none)
    frame = back[0]["frame"]
    assert (
        isinstance(frame, hf_mediaref.MediaRef) and frame.uri.endswith("/videos/a.mp4") and frame.pts_ns == 0
    )
    embedded = embed(ds.select(range(3)))
    assert all(r["frame"]["uri"].startswith("data:image/png") for r in embedded)
    assert labels_of(
        embedded.cast_column("frame", MediaRefFeature()).with_format("mediaref")[:]["frame"]
    ) == [0, 3, 6]


def test_embed_accepts_every_decode_option(ds, labels_of):
    torch = pytest.importorskip("torch")
    assert torch is not None
    small = embed(ds.select(range(2)), size=(32, 64), output="torch", channels_first=True, max_workers=2)
    frames = small.with_format("mediaref")[:]["frame"]
    assert [f.shape for f in frames] == [(32, 64, 3)] * 2
