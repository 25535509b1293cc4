"""Shard planning for push_to_hub: equal contiguous parts holding whole videos where sizes allow."""

from __future__ import annotations

import itertools

import pyarrow.parquet as pq
import pytest
from datasets import Dataset, DatasetDict, Features, Value

import hf_mediaref
from hf_mediaref import MediaRef
from hf_mediaref.hf import MediaRefFeature
from hf_mediaref.hf._sharding import DEFAULT_NUM_SHARDS, plan_shards, shard_for_streaming


def _check_plan(sizes, num_shards):
    parts, split = plan_shards(sizes, num_shards)
    n = sum(sizes)
    assert [sum(k for _, k in p) for p in parts] == [
        n // num_shards + (i < n % num_shards) for i in range(num_shards)
    ]
    per_group: dict[int, int] = {}
    for p in parts:
        for g, k in p:
            per_group[g] = per_group.get(g, 0) + k
    assert per_group == {g: s for g, s in enumerate(sizes) if s}  # every row of every group, once
    spans = {g: sum(any(h == g for h, _ in p) for p in parts) for g in per_group}
    assert split == sum(c > 1 for c in spans.values())
    return parts, split


@pytest.mark.parametrize(
    ("sizes", "num_shards", "most_split"),
    [
        ([8] * 32, 8, 0),  # 32 videos x 8 refs: 4 whole videos per shard
        ([256], 8, 1),  # one long video: 8 time ranges
        ([30, 20, 17, 40, 12, 9, 50, 2], 4, 3),
        ([10, 4, 1, 1], 8, 2),
        ([5, 5, 6, 4], 2, 0),  # packing beats laying out in order (which would split the third video)
    ],
)
def test_plans_are_equal_parts_with_few_split_videos(sizes, num_shards, most_split):
    _, split = _check_plan(sizes, num_shards)
    assert split <= most_split


def _interleaved(videos: int, per_video: int, folder: str = "videos") -> Dataset:
    rows = [
        {
            "frame": MediaRef(f"{folder}/v{v}.mp4", (per_video - 1 - t) * 1000),
            "n": v * 100 + per_video - 1 - t,
        }
        for t in range(per_video)
        for v in range(videos)
    ]  # videos interleaved, each in reverse time order
    rows.append({"frame": None, "n": -1})
    return Dataset.from_list(rows, features=Features({"frame": MediaRefFeature(), "n": Value("int64")}))


def _shards(ds: Dataset, num_shards: int) -> list[list[int]]:
    return [ds.shard(num_shards, i, contiguous=True)["n"] for i in range(num_shards)]


def test_rows_are_grouped_by_video_and_time_into_default_shards():
    ds = _interleaved(videos=4, per_video=6)  # 25 rows
    out, kwargs = shard_for_streaming(ds, {"split": "train"})
    assert kwargs == {"split": "train", "num_shards": DEFAULT_NUM_SHARDS}
    shards = _shards(out, DEFAULT_NUM_SHARDS)
    assert sorted(x for s in shards for x in s) == sorted(ds["n"])
    for shard in shards:  # each part: runs of one video in time order
        for a, b in itertools.pairwise(shard):
            assert a // 100 != b // 100 or a < b
    videos_per_shard = [{x // 100 for x in s} for s in shards]
    split = [v for v in range(4) if sum(v in s for s in videos_per_shard) > 1]
    assert len(split) <= DEFAULT_NUM_SHARDS - 1


def test_explicit_counts_order_kept_and_dataset_dicts():
    ds = _interleaved(videos=4, per_video=6)
    out, kwargs = shard_for_streaming(ds, {"num_shards": 4})
    shards = _shards(out, 4)
    assert kwargs["num_shards"] == 4 and [len({x // 100 for x in s} - {-1}) for s in shards] == [1, 1, 1, 1]
    same, kwargs = shard_for_streaming(ds, {"group_by_video": False})
    assert same["n"] == ds["n"] and kwargs == {"num_shards": DEFAULT_NUM_SHARDS}
    same, kwargs = shard_for_streaming(ds, {"max_shard_size": "1MB"})
    assert same["n"] == ds["n"] and kwargs == {"max_shard_size": "1MB"}
    small = Dataset.from_dict({"n": [1, 2, 3]})
    assert shard_for_streaming(small, {})[1] == {"num_shards": 3}  # no more shards than rows
    dd = DatasetDict({"train": ds, "test": small})
    out, kwargs = shard_for_streaming(dd, {"num_shards": {"train": 2}})
    assert kwargs == {"num_shards": {"train": 2, "test": 3}}
    assert [len({x // 100 for x in s} - {-1}) for s in _shards(out["train"], 2)] == [2, 2]


def test_push_writes_shards_of_whole_videos(fake_hub):
    ds = _interleaved(videos=8, per_video=5, folder="https://example.invalid")  # remote: pushed as they are
    hf_mediaref.push_to_hub(ds, "me/sharded")
    files = sorted((fake_hub.repo_dir("me/sharded") / "data").glob("*.parquet"))
    assert len(files) == DEFAULT_NUM_SHARDS
    uris = [[r["uri"] if r else None for r in pq.read_table(f)["frame"].to_pylist()] for f in files]
    assert sorted(len(u) for u in uris) == [5] * 7 + [6]
    assert all(len(set(u) - {None}) == 1 for u in uris)  # 8 videos of 5 rows: one whole video per shard
