"""The one walker over nested features (fold_feature and its helpers) and over their Arrow data."""

from __future__ import annotations

import pyarrow as pa
from datasets import Features, LargeList, List, Value

from hf_mediaref.arrow import STORAGE_TYPE
from hf_mediaref.hf import MediaRefFeature
from hf_mediaref.hf._feature import has_media, map_media_arrays, media_features, plain_features

PLAIN = {"uri": Value("string"), "pts_ns": Value("int64")}


def test_media_features_and_has_media_follow_the_decode_rule():
    raw, frame = MediaRefFeature(decode=False), MediaRefFeature()
    features = Features(
        {"a": List({"x": raw, "n": Value("int32")}), "b": LargeList(frame), "c": Value("string")}
    )
    assert media_features(features) == [raw, frame] and media_features(features)[0] is raw
    assert media_features(features, decoding=True) == [frame]
    assert has_media(features["a"]) and not has_media(features["a"], decoding=True)
    assert not has_media(features["c"]) and not has_media(None)


def test_plain_features_replace_every_media_feature():
    features = Features(
        {
            "a": List(MediaRefFeature(), length=2),
            "b": {"x": MediaRefFeature(decode=False)},
            "c": LargeList(Value("int8")),
        }
    )
    plain = plain_features(features)
    assert isinstance(plain, Features)
    assert plain == Features({"a": List(PLAIN, length=2), "b": {"x": PLAIN}, "c": LargeList(Value("int8"))})


def test_map_media_arrays_rebuilds_lists_and_structs_around_the_leaves():
    feature = {"clip": List(MediaRefFeature()), "n": Value("int32")}
    ref = {"uri": "a.mp4", "pts_ns": 1}
    array = pa.array(
        [{"clip": [ref, None], "n": 1}, None, {"clip": None, "n": 2}, {"clip": [ref], "n": 3}],
        pa.struct({"clip": pa.list_(STORAGE_TYPE), "n": pa.int32()}),
    ).slice(1)
    seen = []

    def uris(leaf, leaf_feature):
        seen.append(len(leaf))
        return leaf.field("uri")

    out = map_media_arrays(array, feature, uris)
    assert out.to_pylist() == [None, {"clip": None, "n": 2}, {"clip": ["a.mp4"], "n": 3}]
    assert seen == [1]  # only the rows of the slice reach the leaf function
    chunked = map_media_arrays(pa.chunked_array([array, array]), feature, lambda leaf, f: leaf)
    assert chunked.to_pylist() == array.to_pylist() * 2 and chunked.type == array.type
    assert (
        map_media_arrays(
            array, {"clip": List(MediaRefFeature(decode=False)), "n": Value("int32")}, uris, decoding=True
        )
        is array
    )
