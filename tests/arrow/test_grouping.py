"""group_by_uri: rows grouped by URI in Arrow, ordered by time inside a group."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from hf_mediaref.arrow import group_by_uri


def test_group_by_uri_groups_rows_and_orders_by_time():
    uris = pa.chunked_array([["b", "a", None], ["b", "a", "b"]])
    pts = pa.chunked_array([[30, 20, 0], [10, None, 20]])
    groups = group_by_uri(uris, pts)
    assert groups.uris == ["b", "a"]
    assert groups.codes.tolist() == [0, 1, -1, 0, 1, 0]
    assert groups.rows(0).tolist() == [3, 5, 0]  # b's rows by pts 10, 20, 30
    assert groups.rows(1).tolist() == [1, 4]  # a's rows, the null pts last
    assert group_by_uri(uris).rows(0).tolist() == [0, 3, 5]  # without pts: row order


def test_group_by_uri_rejects_non_strings():
    with pytest.raises(TypeError):
        group_by_uri(pa.array([1, 2]))


def test_grouping_a_million_rows_is_fast_enough_to_call():
    uris = pa.array(
        np.char.add("videos/v", (np.arange(1_000_000) % 997).astype(str)).astype(object), pa.string()
    )
    groups = group_by_uri(uris, pa.array(np.arange(1_000_000)))
    assert len(groups) == 997 and groups.offsets[-1] == 1_000_000


def test_video_blocks_keep_each_block_inside_one_video():
    import numpy as np

    from hf_mediaref.arrow import video_blocks

    offsets = np.array([0, 5, 5, 12, 14])  # videos of 5, 0, 7 and 2 rows
    starts, lengths = video_blocks(offsets, 3)
    assert starts.tolist() == [0, 5, 8, 12]
    assert lengths.tolist() == [5, 3, 4, 2]  # remainders join the last block; the empty video has none
    video = np.searchsorted(offsets, starts, side="right") - 1
    assert all(offsets[v] <= s and s + n <= offsets[v + 1] for v, s, n in zip(video, starts, lengths))


def test_uri_groups_repr_names_the_groups():
    from hf_mediaref.arrow import group_by_uri

    groups = group_by_uri(pa.array(["a.mp4", "b.mp4", "a.mp4", "c.mp4", "d.mp4"]))
    assert repr(groups) == "UriGroups(4 URIs over 5 rows: 'a.mp4', 'b.mp4', 'c.mp4', ...)"
