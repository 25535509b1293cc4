"""A MediaRef column under datasets' plain formats: the array formats (``"torch"``, ``"numpy"``) raise a typed
error naming the ``"mediaref"`` format (a ref is a pointer, not pixels); pandas keeps the refs as values."""

from __future__ import annotations

import numpy as np
import pytest

from hf_mediaref import MediaRef
from hf_mediaref.errors import UndecodedRefError
from hf_mediaref.testing import read_index

datasets = pytest.importorskip("datasets")


@pytest.fixture
def refs_ds(repo):
    from datasets import Dataset, Features, Sequence, Value

    from hf_mediaref.hf import MediaRefFeature, set_media_root

    rows = [
        {"frame": MediaRef("videos/a.mp4", repo.a.pts_ns[i]), "clip": [MediaRef("images/seven.png")], "i": i}
        for i in (3, 4)
    ]
    features = Features(
        {"frame": MediaRefFeature(), "clip": Sequence(MediaRefFeature()), "i": Value("int64")}
    )
    return set_media_root(Dataset.from_list(rows, features=features), repo.path)


@pytest.mark.parametrize("fmt", ["torch", "numpy"])
def test_array_formats_raise_a_typed_error_naming_the_mediaref_format(refs_ds, fmt):
    """Was: ``RuntimeError: Could not infer dtype of MediaRef`` (torch), an object array (numpy)."""
    if fmt == "torch":
        pytest.importorskip("torch")
    plain = refs_ds.with_format(fmt)
    named = r'with_format\("mediaref", output="torch"\)'
    with pytest.raises(UndecodedRefError, match=named):
        plain[:2]
    with pytest.raises(UndecodedRefError, match=named):
        plain[0]
    with pytest.raises(UndecodedRefError, match=named):
        plain["frame"][:2]  # a lazy Column, formatted when read
    with pytest.raises(UndecodedRefError):
        refs_ds.with_format(fmt, columns=["clip"])[:2]  # refs nested in lists too
    with pytest.raises(TypeError):  # a TypeError, as numpy's array protocol expects: a ref is not pixels
        np.asarray(MediaRef("a.mp4", 0), dtype=np.uint8)
    ref = MediaRef("a.mp4", 0)
    assert np.asarray(ref).item() is ref
    for held in (np.array([ref, None], dtype=object), np.array([ref, None])):  # object arrays hold refs
        assert held.shape == (2,) and held[0] is ref
    # the other columns are as datasets gives them, and the "mediaref" format decodes the refs
    assert np.asarray(refs_ds.with_format(fmt, columns=["i"])[:2]["i"]).tolist() == [3, 4]
    decoded = refs_ds.with_format("mediaref", output=fmt)[:2]
    assert [read_index(np.asarray(f)) for f in decoded["frame"]] == [3, 4]
    assert np.asarray(decoded["i"]).tolist() == [3, 4]


def test_pandas_keeps_the_refs(refs_ds, repo):
    """The pandas format decodes each ref with the feature (resolved against the media root, as in the
    python format); to_pandas converts the Arrow table without decoding: each ref as its {uri, pts_ns}."""
    python = refs_ds[:2]["frame"]
    assert python[0].uri == str(repo.path / "videos" / "a.mp4")
    frame = refs_ds.with_format("pandas")[:2]
    assert list(frame["frame"]) == python and list(frame["i"]) == [3, 4]
    row = refs_ds.with_format("pandas")[1]
    assert row["frame"].iloc[0] == python[1]
    assert list(row["clip"].iloc[0]) == refs_ds[1]["clip"]
    table = refs_ds.to_pandas()
    first = table["frame"].iloc[0]
    assert first["uri"] == "videos/a.mp4" and int(first["pts_ns"]) == repo.a.pts_ns[3]
    assert list(table["i"]) == [3, 4]
