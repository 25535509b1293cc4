"""cast_to_storage: every accepted Arrow input becomes struct<uri: string, pts_ns: int64>, nulls kept."""

from __future__ import annotations

import pyarrow as pa
import pytest

from hf_mediaref.arrow import STORAGE_TYPE, cast_to_storage


def test_storage_type():
    assert pa.struct({"uri": pa.string(), "pts_ns": pa.int64()}) == STORAGE_TYPE


@pytest.mark.parametrize(
    "array, expected",
    [
        (pa.array(["a.png", None], pa.large_string()), [{"uri": "a.png", "pts_ns": None}, None]),
        (
            pa.array([{"uri": "a.png"}, None], pa.struct({"uri": pa.string()})),
            [{"uri": "a.png", "pts_ns": None}, None],
        ),
        (
            pa.array(
                [{"pts_ns": 3, "uri": "v.mp4"}], pa.struct({"pts_ns": pa.int32(), "uri": pa.large_string()})
            ),
            [{"uri": "v.mp4", "pts_ns": 3}],
        ),
        (pa.nulls(2), [None, None]),
    ],
)
def test_cast_to_storage(array, expected):
    out = cast_to_storage(array)
    assert out.type == STORAGE_TYPE and out.to_pylist() == expected


@pytest.mark.parametrize(
    "array, error",
    [
        (pa.array([1, 2]), TypeError),
        (pa.array([{"path": "a"}]), ValueError),
        (pa.array([{"uri": "a", "extra": 1}]), ValueError),
        (pa.array([{"uri": "a", "pts_ns": -5}]), ValueError),
    ],
)
def test_cast_to_storage_refuses_what_it_cannot_represent(array, error):
    with pytest.raises(error):
        cast_to_storage(array)
