"""VideoBlockBatchSampler: batches within few videos, block-level shuffling."""

from __future__ import annotations

import pytest
from datasets import Dataset, Features, Value

from hf_mediaref import MediaRef
from hf_mediaref.hf import MediaRefFeature, VideoBlockBatchSampler


def _frames_dataset(videos: int, per_video: int) -> Dataset:
    refs = [MediaRef(f"v{v}.mp4", t * 1000) for t in range(per_video) for v in range(videos)]  # interleaved
    return Dataset.from_dict(
        {"frame": refs, "n": list(range(len(refs)))},
        features=Features({"frame": MediaRefFeature(), "n": Value("int64")}),
    )


def test_batches_stay_within_few_videos_and_cover_every_row_once():
    ds = _frames_dataset(videos=7, per_video=13)
    sampler = VideoBlockBatchSampler(ds, batch_size=4, seed=1)
    batches = list(sampler)
    assert len(batches) == len(sampler)
    assert sorted(i for b in batches for i in b) == list(range(len(ds)))
    uris = ds.with_format("arrow")[:]["frame"].combine_chunks().field("uri").to_pylist()
    assert max(len({uris[i] for i in b}) for b in batches) <= 2  # batch_size == block_size: at most 2 videos


def test_blocks_are_consecutive_in_time_and_shuffled_per_epoch():
    ds = _frames_dataset(videos=3, per_video=8)
    sampler = VideoBlockBatchSampler(ds, batch_size=4, block_size=4, seed=0)
    table = ds.with_format("arrow")[:]["frame"].combine_chunks()
    uris, pts = table.field("uri").to_pylist(), table.field("pts_ns").to_pylist()
    first = list(sampler)
    for batch in first:  # each batch is one block: one video, increasing time
        assert len({uris[i] for i in batch}) == 1 and [pts[i] for i in batch] == sorted(pts[i] for i in batch)
    assert list(sampler) == first  # same epoch, same order
    sampler.set_epoch(1)
    assert list(sampler) != first
    ordered = list(VideoBlockBatchSampler(ds, batch_size=5, shuffle=False))
    flat = [i for b in ordered for i in b]
    assert [uris[i] for i in flat] == sorted(uris[i] for i in flat)


def test_drop_last_string_column_and_selected_views():
    ds = _frames_dataset(videos=2, per_video=5)
    assert [len(b) for b in VideoBlockBatchSampler(ds, batch_size=3, drop_last=True)] == [3, 3, 3]
    named = Dataset.from_dict({"video": ["x", "y", "x", None], "n": [0, 1, 2, 3]})
    batches = list(VideoBlockBatchSampler(named, batch_size=2, column="video", shuffle=False))
    assert batches == [[0, 2], [1]]  # the null row is never sampled
    view = ds.select([9, 0, 1])
    assert sorted(i for b in VideoBlockBatchSampler(view, batch_size=2) for i in b) == [0, 1, 2]


def test_bad_arguments():
    ds = _frames_dataset(videos=1, per_video=2)
    with pytest.raises(ValueError):
        VideoBlockBatchSampler(ds, batch_size=0)
    with pytest.raises(TypeError):
        VideoBlockBatchSampler(ds, batch_size=2, column="n")
    with pytest.raises(KeyError):
        VideoBlockBatchSampler(ds, batch_size=2, column="missing")


def _uris(ds):
    return ds.with_format("arrow")[:]["frame"].combine_chunks().field("uri").to_pylist()


@pytest.mark.parametrize("world_size", [2, 3])
def test_ranks_get_disjoint_videos_and_equal_batch_counts(world_size):
    ds = _frames_dataset(videos=7, per_video=13)  # 91 rows
    uris = _uris(ds)
    samplers = [
        VideoBlockBatchSampler(ds, batch_size=4, seed=3, rank=r, world_size=world_size)
        for r in range(world_size)
    ]
    per_rank = [[i for b in s for i in b] for s in samplers]
    assert len({len(list(s)) for s in samplers}) == 1 and all(len(list(s)) == len(s) for s in samplers)
    assert len({len(rows) for rows in per_rank}) == 1  # padded to the same length
    assert set().union(*map(set, per_rank)) == set(range(len(ds)))  # every row on some rank
    assert sum(len(set(rows)) for rows in per_rank) == len(
        ds
    )  # no row on two ranks; padding repeats own rows
    videos = [{uris[i] for i in rows} for rows in per_rank]
    shared = [v for v in set(uris) if sum(v in vs for vs in videos) > 1]
    assert len(shared) <= world_size - 1  # only the videos cut at a part boundary
    for s in samplers:  # batches still stay within few videos
        assert max(len({uris[i] for i in b}) for b in s) <= 2
    before = [list(s) for s in samplers]
    for s in samplers:
        s.set_epoch(1)
    assert [list(s) for s in samplers] != before
    assert sum(len(set(i for b in s for i in b)) for s in samplers) == len(ds)


def test_ranks_with_drop_last_and_one_long_video():
    ds = _frames_dataset(videos=1, per_video=50)
    samplers = [VideoBlockBatchSampler(ds, 8, rank=r, world_size=2, drop_last=True) for r in range(2)]
    batches = [list(s) for s in samplers]
    assert [len(b) for b in batches] == [3, 3] == [len(s) for s in samplers]  # 25 rows each: 3 full batches
    assert all(len(b) == 8 for bs in batches for b in bs)
    rows = [set(i for b in bs for i in b) for bs in batches]
    assert not rows[0] & rows[1]  # the one video is split in two time ranges, no row on both ranks
    assert max(rows[0]) < min(rows[1]) or max(rows[1]) < min(rows[0])
    with pytest.raises(ValueError):
        VideoBlockBatchSampler(ds, 8, rank=2, world_size=2)
