"""MediaRefFeature: encoding, Arrow casting, cheap decoding, and survival through every datasets path."""

from __future__ import annotations

import os

import numpy as np
import pyarrow as pa
import pytest
from datasets import Dataset, Features, List, Value, concatenate_datasets, load_dataset, load_from_disk
from PIL import Image

import hf_mediaref
from hf_mediaref import DataURI, MediaRef
from hf_mediaref.errors import InvalidRefError
from hf_mediaref.hf import MediaRefFeature, get_media_access, get_media_root
from hf_mediaref.hf._feature import MEDIA_REF_ID, READ_BACK
from hf_mediaref.testing import read_index

STORAGE = pa.struct({"uri": pa.string(), "pts_ns": pa.int64()})


# ------------------------------------------------------------------------------------------ encode
@pytest.mark.parametrize(
    "value, expected",
    [
        (MediaRef("v.mp4", 5), {"uri": "v.mp4", "pts_ns": 5}),
        ({"uri": "v.mp4", "pts_ns": 5}, {"uri": "v.mp4", "pts_ns": 5}),
        ({"uri": "v.mp4", "pts_ns": np.int64(5)}, {"uri": "v.mp4", "pts_ns": 5}),
        ({"uri": "a.png"}, {"uri": "a.png", "pts_ns": None}),
        ("a.png", {"uri": "a.png", "pts_ns": None}),
        (None, None),
    ],
)
def test_encode_example_accepts_refs_dicts_and_strings(value, expected):
    assert MediaRefFeature().encode_example(value) == expected


def test_encode_example_is_idempotent_and_returns_stored_dicts_unchanged():
    feature = MediaRefFeature()
    stored = {"uri": "v.mp4", "pts_ns": 7}
    assert feature.encode_example(stored) is stored
    assert feature.encode_example(feature.encode_example(MediaRef("v.mp4", 7))) == stored


def test_encode_example_embeds_arrays_pil_images_and_data_uris():
    feature = MediaRefFeature()
    from hf_mediaref.testing import barcode_frame

    frame = barcode_frame(42, 64, 128)
    for value in (frame, Image.fromarray(frame), DataURI.from_image(frame)):
        encoded = feature.encode_example(value)
        assert encoded["uri"].startswith("data:image/png;base64,") and encoded["pts_ns"] is None
        assert read_index(MediaRef(encoded["uri"]).to_rgb_array()) == 42


@pytest.mark.parametrize(
    "value, error",
    [
        ({"pts_ns": 3}, ValueError),
        ({"uri": "v.mp4", "pts_ns": -1}, ValueError),
        ({"uri": "v.mp4", "pts_ns": 1.5}, ValueError),
        ({"uri": "v.mp4", "path": "x"}, ValueError),
        ("", ValueError),
        (3.5, TypeError),
    ],
)
def test_encode_example_rejects_bad_values_clearly(value, error):
    with pytest.raises(error):
        MediaRefFeature().encode_example(value)


# ------------------------------------------------------------------------------------------ cast_storage
def test_cast_storage_from_strings_keeps_nulls():
    for typ in (pa.string(), pa.large_string()):
        out = MediaRefFeature().cast_storage(pa.array(["a.png", None, "b.png"], typ))
        assert out.type == STORAGE
        assert out.to_pylist() == [{"uri": "a.png", "pts_ns": None}, None, {"uri": "b.png", "pts_ns": None}]


def test_cast_storage_from_partial_and_narrow_structs():
    partial = pa.array([{"uri": "a.png"}, None], pa.struct({"uri": pa.large_string()}))
    assert MediaRefFeature().cast_storage(partial).to_pylist() == [{"uri": "a.png", "pts_ns": None}, None]
    narrow = pa.array([{"pts_ns": 3, "uri": "v.mp4"}], pa.struct({"pts_ns": pa.int32(), "uri": pa.string()}))
    assert MediaRefFeature().cast_storage(narrow).to_pylist() == [{"uri": "v.mp4", "pts_ns": 3}]


def test_cast_storage_from_all_null_column():
    out = MediaRefFeature().cast_storage(pa.nulls(2))
    assert out.type == STORAGE and out.to_pylist() == [None, None]


@pytest.mark.parametrize(
    "array, error",
    [
        (pa.array([1, 2]), TypeError),
        (pa.array([{"path": "a"}]), InvalidRefError),
        (pa.array([{"uri": 1, "pts_ns": 5}]), InvalidRefError),
        (pa.array([{"uri": "a", "pts_ns": [5]}]), InvalidRefError),
    ],
)
def test_cast_storage_rejects_what_it_cannot_represent(array, error):
    with pytest.raises(error):
        MediaRefFeature().cast_storage(array)


# ------------------------------------------------------------------------------------------ decode
def test_rows_decode_to_media_refs_not_pixels(ds, repo):
    row = ds[0]
    assert isinstance(row["frame"], MediaRef)
    assert row["frame"] == MediaRef(str(repo.path / "videos" / "a.mp4"), 0)
    assert ds[len(ds) - 1]["frame"] is None
    assert [r["frame"] for r in ds][-2] == MediaRef(str(repo.path / "images" / "seven.png"))


def test_decode_false_yields_plain_dicts(rows):
    ds = Dataset.from_list(
        rows, features=Features({"frame": MediaRefFeature(decode=False), "label": Value("int64")})
    )
    assert ds[0]["frame"] == {"uri": "videos/a.mp4", "pts_ns": 0}


def test_decode_example_is_idempotent():
    ref = MediaRef("/x/v.mp4", 3)
    assert MediaRefFeature().decode_example(ref) is ref


def test_flatten():
    ds = Dataset.from_dict({"f": [MediaRef("a.png")]}, features=Features({"f": MediaRefFeature()}))
    assert ds.flatten().column_names == ["f"]
    plain = ds.cast_column("f", MediaRefFeature(decode=False)).flatten()
    assert plain.column_names == ["f.uri", "f.pts_ns"] and plain[0] == {"f.uri": "a.png", "f.pts_ns": None}


def test_lists_and_nested_dicts_of_refs(repo):
    features = Features(
        {"clip": List(MediaRefFeature()), "pair": {"left": MediaRefFeature(), "n": Value("int32")}}
    )
    ds = Dataset.from_list(
        [{"clip": [MediaRef("v.mp4", 1), MediaRef("v.mp4", 2)], "pair": {"left": "a.png", "n": 1}}],
        features=features,
    )
    row = ds[0]
    assert row["clip"] == [MediaRef("v.mp4", 1), MediaRef("v.mp4", 2)]
    assert row["pair"] == {"left": MediaRef("a.png"), "n": 1}


def test_yaml_dtype_round_trips():
    features = Features(
        {"frame": MediaRefFeature(), "clip": List(MediaRefFeature()), "raw": MediaRefFeature(decode=False)}
    )
    yaml_list = features._to_yaml_list()
    assert yaml_list[0] == {  # the plain struct, marked for hf_mediaref (see tests/hf/test_interop.py)
        "name": "frame",
        "struct": [
            {"name": "uri", "dtype": "string", "id": MEDIA_REF_ID},
            {"name": "pts_ns", "dtype": "int64"},
        ],
    }
    back = Features._from_yaml_list(yaml_list)  # the type and decode come back; the access is the loader's
    assert back == Features(
        {
            "frame": MediaRefFeature(access=READ_BACK),
            "clip": List(MediaRefFeature(access=READ_BACK)),
            "raw": MediaRefFeature(decode=False, access=READ_BACK),
        }
    )
    assert Features.from_dict(features.to_dict()) == back


# ------------------------------------------------------------------------------------------ datasets paths
def _uris(ds) -> list:
    return [None if r is None else (r.uri, r.pts_ns) for r in ds["frame"]]


def test_from_dict_from_list_from_generator_agree(rows, features, tmp_path):
    a = Dataset.from_list(rows, features=features)
    b = Dataset.from_dict(
        {"frame": [r["frame"] for r in rows], "label": [r["label"] for r in rows]}, features=features
    )

    def gen():
        yield from rows

    # A cache of its own: whether datasets generates or finds the generator's dataset in its cache must not
    # depend on what ran on this machine before (a new Python, a new machine: it generates).
    c = Dataset.from_generator(gen, features=features, cache_dir=str(tmp_path))  # generated: as given
    again = Dataset.from_generator(gen, features=features, cache_dir=str(tmp_path))  # found in the cache
    assert _uris(a) == _uris(b) == _uris(c) == _uris(again)
    assert a.features == b.features == c.features == features
    assert again.features == Features({**features, "frame": MediaRefFeature(access=READ_BACK)})  # read back


def test_map_keeps_decoded_media_ref_column(ds, repo):
    """The original mediaref feature fails here: datasets' writer cannot serialize pydantic objects."""
    mapped = ds.map(lambda ex: {"double": ex["label"] * 2, "frame": ex["frame"]})  # MediaRef.__array__
    assert mapped.features["frame"] == ds.features["frame"]  # its access too
    assert mapped[0]["frame"] == MediaRef(str(repo.path / "videos" / "a.mp4"), 0)
    assert mapped[len(mapped) - 1]["frame"] is None
    batched = ds.map(
        lambda b: {"frame2": b["frame"]},
        batched=True,
        batch_size=4,
        features=Features({**ds.features, "frame2": MediaRefFeature()}),
    )
    assert batched["frame2"] == batched["frame"]
    assert get_media_root(mapped) == str(repo.path)


def test_map_can_return_refs_and_data_uris_into_a_new_column(ds):
    out = ds.map(
        lambda ex: {"other": DataURI.from_bytes(b"x", "text/plain") if ex["frame"] is None else ex["frame"]},
        features=Features({**ds.features, "other": MediaRefFeature()}),
    )
    assert out[len(out) - 1]["other"] == MediaRef("data:text/plain;base64,eA==")


def test_filter_shuffle_select_concatenate_keep_the_feature_and_root(ds, repo):
    for derived in (
        ds.filter(lambda ex: ex["label"] >= 100),
        ds.shuffle(seed=0),
        ds.select([3, 1]),
        concatenate_datasets([ds, ds]),
    ):
        assert derived.features["frame"] == MediaRefFeature(access=get_media_access(ds))
        assert get_media_root(derived) == str(repo.path)
        for row in derived:
            if row["frame"] is not None:
                assert row["frame"].uri.startswith(str(repo.path))


def test_cast_column_from_string_and_struct(rows):
    ds = Dataset.from_dict({"frame": ["a.png", None]})
    cast = ds.cast_column("frame", MediaRefFeature())
    assert cast["frame"] == [MediaRef("a.png"), None]
    plain = Dataset.from_dict({"frame": [{"uri": "v.mp4", "pts_ns": 3}]})
    assert plain.cast_column("frame", MediaRefFeature())[0]["frame"] == MediaRef("v.mp4", 3)


def test_save_to_disk_and_load_from_disk(ds, tmp_path):
    ds.save_to_disk(str(tmp_path / "saved"))
    back = load_from_disk(str(tmp_path / "saved"))
    assert back.features == Features({**ds.features, "frame": MediaRefFeature(access=READ_BACK)})
    # nothing saved sets where refs read: plain datasets reads no root, hf_mediaref's loader the folder
    assert get_media_root(hf_mediaref.load_from_disk(str(tmp_path / "saved"))) == os.path.realpath(
        tmp_path / "saved"
    )
    assert back.data.table.equals(ds.data.table)


def test_parquet_round_trip(ds, tmp_path):
    ds.to_parquet(str(tmp_path / "f.parquet"))
    back = load_dataset(
        "parquet", data_files=str(tmp_path / "f.parquet"), split="train", cache_dir=str(tmp_path / "cache")
    )
    assert back.features == Features({**ds.features, "frame": MediaRefFeature(access=READ_BACK)})
    assert (
        back.with_format("arrow")[:]["frame"].to_pylist() == ds.with_format("arrow")[:]["frame"].to_pylist()
    )


def test_ref_columns_are_the_top_level_media_ref_columns():
    """The one answer to "which columns are frame columns" (sampler, shard plan, preview, command line):
    top-level MediaRefFeature columns in order; nested refs and plain structs are not."""
    from hf_mediaref.hf import ref_columns

    features = Features(
        {
            "id": Value("string"),
            "frame": MediaRefFeature(),
            "clip": List(MediaRefFeature()),
            "plain": {"uri": Value("string"), "pts_ns": Value("int64")},
            "goal": MediaRefFeature(decode=False),
        }
    )
    assert ref_columns(features) == ["frame", "goal"]
    assert ref_columns(Features({"id": Value("string")})) == []
