"""refs_from_storage and the resolver: relative URIs joined onto the root once per distinct URI."""

from __future__ import annotations

import os

import pyarrow as pa
import pytest

import hf_mediaref.arrow._roots as roots
from hf_mediaref import MediaRef
from hf_mediaref.arrow import (
    STORAGE_TYPE,
    normalize_root,
    ref_arrays,
    refs_from_storage,
    resolve_ref,
    resolve_uri,
)
from hf_mediaref.errors import PathEscapeError, UnresolvedPathError


def _column(*rows):
    return pa.array(list(rows), STORAGE_TYPE)


def test_resolve_uri_and_ref():
    assert resolve_uri("videos/a.mp4", "hf://datasets/o/n@abc/") == "hf://datasets/o/n@abc/videos/a.mp4"
    assert resolve_uri("/abs/a.mp4", None) == "/abs/a.mp4"
    data = "data:image/png;base64,AAAA"
    assert resolve_uri(data, "/root") is data
    ref = MediaRef("/abs/a.mp4", 3)
    assert resolve_ref(ref, "/root") is ref
    assert resolve_ref(MediaRef("a.mp4", 3), "/root") == MediaRef(os.path.join("/root", "a.mp4"), 3)


def test_resolver_errors():
    with pytest.raises(UnresolvedPathError, match="MediaAccess") as info:
        resolve_uri("videos/a.mp4", None)
    assert "hf_mediaref.load_dataset" in str(info.value) and "access=" in str(info.value)
    with pytest.raises(UnresolvedPathError):
        resolve_ref(MediaRef("videos/a.mp4"), None)
    with pytest.raises(PathEscapeError):
        resolve_uri("../outside.mp4", "/root")


def test_normalize_root(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert normalize_root("repo") == str(tmp_path / "repo")
    assert normalize_root("s3://bucket/prefix/") == "s3://bucket/prefix/"
    with pytest.raises(ValueError):
        normalize_root("data:image/png;base64,AAAA")


def test_ref_arrays_splits_children_and_validity():
    parts = ref_arrays(pa.chunked_array([_column({"uri": "a", "pts_ns": 1}), _column(None)]))
    assert parts.uri.to_pylist()[0] == "a" and parts.pts_ns.to_pylist()[0] == 1
    assert parts.valid.tolist() == [True, False]
    assert ref_arrays(_column({"uri": "a", "pts_ns": None})).valid is None
    assert repr(parts) == "RefArrays(2 rows, 1 null: 'a', None)"  # not the arrays' full text


def test_refs_from_storage_resolves_each_distinct_uri_once(monkeypatch):
    joined = []
    real = roots.join_uri
    monkeypatch.setattr(roots, "join_uri", lambda root, uri: joined.append(uri) or real(root, uri))
    column = _column(
        {"uri": "v.mp4", "pts_ns": 5},
        None,
        {"uri": "v.mp4", "pts_ns": 1},
        {"uri": "/abs/i.png", "pts_ns": None},
        {"uri": "v.mp4", "pts_ns": 5},
    )
    refs, valid = refs_from_storage(column, "/root")
    root_v = os.path.join("/root", "v.mp4")
    assert refs == [MediaRef(root_v, 5), MediaRef(root_v, 1), MediaRef("/abs/i.png"), MediaRef(root_v, 5)]
    assert valid.tolist() == [True, False, True, True, True]
    assert joined == ["v.mp4"]


def test_refs_from_storage_needs_a_root_for_relative_uris_only():
    assert refs_from_storage(_column({"uri": "/abs/a.mp4", "pts_ns": 0}), None)[0] == [
        MediaRef("/abs/a.mp4", 0)
    ]
    with pytest.raises(UnresolvedPathError):
        refs_from_storage(_column({"uri": "a.mp4", "pts_ns": 0}), None)
    # a null row's placeholder URI is never resolved
    null_row = pa.StructArray.from_arrays(
        [pa.array(["rel.mp4"]), pa.array([0], pa.int64())], fields=list(STORAGE_TYPE), mask=pa.array([True])
    )
    assert refs_from_storage(null_row, None)[0] == []
