"""arrow/_columns: one answer to "is this a media reference", whatever form the column comes in."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from hf_mediaref import MediaRef
from hf_mediaref.arrow import STORAGE_TYPE, as_ref, holds_refs, is_ref_type
from hf_mediaref.errors import InvalidRefError

#: (Arrow type, a row of it as Python, whether it is a ref), one row per rule.
CASES = [
    (STORAGE_TYPE, {"uri": "a.mp4", "pts_ns": 0}, True),
    (pa.struct({"uri": pa.large_string(), "pts_ns": pa.int32()}), {"uri": "a.mp4", "pts_ns": 5}, True),
    (pa.struct({"uri": pa.string()}), {"uri": "a.png"}, True),  # an image: pts_ns may be absent
    (
        pa.struct({"uri": pa.string(), "pts_ns": pa.int64(), "x": pa.int64()}),
        {"uri": "a", "pts_ns": 0, "x": None},
        True,
    ),
    (
        pa.struct({"uri": pa.string(), "label": pa.int64()}),
        {"uri": "a", "label": 3},
        False,
    ),  # some other struct
    (pa.struct({"path": pa.string(), "pts_ns": pa.int64()}), {"path": "a", "pts_ns": 0}, False),
    (pa.string(), "a.png", False),  # strings are URIs only where a caller names the column
]


@pytest.mark.parametrize("arrow_type, row, is_ref", CASES)
def test_every_form_of_a_column_gets_the_same_answer(arrow_type, row, is_ref):
    array = pa.array([None, row], arrow_type)
    objects = np.empty(2, dtype=object)
    objects[1] = row
    forms = {
        "arrow type": is_ref_type(arrow_type),
        "arrow array": holds_refs(array),
        "chunked array": holds_refs(pa.chunked_array([array])),
        "list": holds_refs([None, row]),
        "object array": holds_refs(objects),
        "pandas": holds_refs(pd.Series([None, row], dtype=object)),
        "value": as_ref(row) is not None,
    }
    assert forms == dict.fromkeys(forms, is_ref)


def test_media_refs_numpy_structs_and_nesting():
    assert holds_refs([MediaRef("a.png")]) and holds_refs(MediaRef("a.png"))
    assert holds_refs(np.zeros(2, dtype=[("uri", "U8"), ("pts_ns", "i8")]))
    assert not holds_refs(np.zeros(2, dtype=[("path", "U8")]))
    assert (
        not holds_refs(np.arange(3)) and not holds_refs([]) and not holds_refs([None]) and not holds_refs("a")
    )
    nested = [[{"uri": "a.png"}, {"uri": "b.png"}]]
    assert not holds_refs(nested) and holds_refs(nested, nested=True)
    assert holds_refs([{"obs": MediaRef("a.png"), "label": 1}], nested=True)


def test_a_malformed_ref_dict_is_named_not_skipped():
    with pytest.raises(InvalidRefError, match="column 'frame', row 1"):
        holds_refs([None, {"uri": "a.mp4", "pts_ns": "soon"}], "frame")
    with pytest.raises(InvalidRefError, match="unexpected"):
        as_ref({"uri": "a.mp4", "pts_ns": 0, "label": 3})
