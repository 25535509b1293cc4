"""cast_to_storage: every accepted Arrow input becomes struct<uri: string, pts_ns: int64>, nulls kept."""

from __future__ import annotations

import pyarrow as pa
import pytest

from hf_mediaref._fields import STORED_INVALID
from hf_mediaref.arrow import STORAGE_TYPE, cast_to_storage
from hf_mediaref.errors import InvalidRefError


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
        (pa.array([{"path": "a"}]), InvalidRefError),
        (pa.array([{"uri": 1, "pts_ns": 5}]), InvalidRefError),
        (pa.array([{"uri": "a", "pts_ns": [5]}]), InvalidRefError),
    ],
)
def test_cast_to_storage_refuses_what_it_cannot_represent(array, error):
    with pytest.raises(error):
        cast_to_storage(array)


def test_cast_to_storage_keeps_bad_values_for_their_rows_to_fail_when_read():
    """Values no ref can have are kept (negative pts_ns, null or empty uri) or stored as reserved negative
    pts_ns (bools, strings, fractions, beyond int64, extra fields set), so the rows around them still load."""
    f = STORED_INVALID

    def cast(values, pts_type):
        fields = {"uri": pa.string(), "pts_ns": pts_type}
        return cast_to_storage(pa.array(values, pa.struct(fields))).to_pylist()

    ok = {"uri": "a.mp4", "pts_ns": 5}
    assert cast([ok, {"uri": "a.mp4", "pts_ns": -5}], pa.int64())[1]["pts_ns"] == -5
    assert cast([ok, {"uri": None, "pts_ns": 1}, {"uri": "", "pts_ns": 1}], pa.int64())[1:] == [
        {"uri": None, "pts_ns": 1},
        {"uri": "", "pts_ns": 1},
    ]
    assert [
        r["pts_ns"] for r in cast([{"uri": "a", "pts_ns": None}, {"uri": "a", "pts_ns": True}], pa.bool_())
    ] == [
        None,
        f["bool"],
    ]
    assert [
        r["pts_ns"] for r in cast([{"uri": "a", "pts_ns": None}, {"uri": "a", "pts_ns": "5"}], pa.string())
    ] == [
        None,
        f["string"],
    ]
    floats = [2.0, 1.5, float("nan"), 1e30, None]
    assert [r["pts_ns"] for r in cast([{"uri": "a", "pts_ns": v} for v in floats], pa.float64())] == [
        2,
        f["fractional"],
        f["fractional"],
        f["out_of_range"],
        None,
    ]
    assert [r["pts_ns"] for r in cast([{"uri": "a", "pts_ns": 2**64 - 1}, ok], pa.uint64())] == [
        f["out_of_range"],
        5,
    ]
    extra = pa.array([{"uri": "a", "pts_ns": 1, "x": None}, {"uri": "a", "pts_ns": 1, "x": 2}, None])
    assert [None if r is None else r["pts_ns"] for r in cast_to_storage(extra).to_pylist()] == [
        1,
        f["extra_fields"],
        None,
    ]


def test_map_uris_calls_once_per_distinct_uri_and_keeps_the_rest():
    from hf_mediaref.arrow import map_uris

    storage = pa.array(
        [
            {"uri": "a", "pts_ns": 1},
            None,
            {"uri": "b", "pts_ns": None},
            {"uri": "a", "pts_ns": 2},
            {"uri": "", "pts_ns": 3},
            {"uri": None, "pts_ns": 4},
        ],
        pa.struct({"uri": pa.large_string(), "pts_ns": pa.int64()}),
    )
    calls = []
    out = map_uris(storage, lambda uri: calls.append(uri) or f"/root/{uri}")
    assert sorted(calls) == ["a", "b"]  # once each; null and empty URIs are left for the reader to report
    assert out.type == storage.type and out.is_null().to_pylist() == storage.is_null().to_pylist()
    assert out.to_pylist() == [
        {"uri": "/root/a", "pts_ns": 1},
        None,
        {"uri": "/root/b", "pts_ns": None},
        {"uri": "/root/a", "pts_ns": 2},
        {"uri": "", "pts_ns": 3},
        {"uri": None, "pts_ns": 4},
    ]
