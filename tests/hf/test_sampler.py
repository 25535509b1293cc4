"""VideoBlockBatchSampler: batches within few videos, block-level shuffling."""

from __future__ import annotations

import itertools

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


def test_rank_and_world_size_from_the_environment_else_one_process(monkeypatch):
    """Without torch.distributed: RANK / WORLD_SIZE (torchrun sets them), else one process; a world of several
    ranks whose rank is unknown raises instead of giving every rank rank 0's rows."""
    ds = _frames_dataset(videos=4, per_video=6)
    monkeypatch.delenv("RANK", raising=False)
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    sampler = VideoBlockBatchSampler(ds, 4, seed=0)
    assert (sampler.rank, sampler.world_size) == (0, 1)
    with pytest.raises(ValueError, match="rank is unknown"):
        VideoBlockBatchSampler(ds, 4, world_size=2)
    monkeypatch.setenv("RANK", "1")
    monkeypatch.setenv("WORLD_SIZE", "2")
    sampler = VideoBlockBatchSampler(ds, 4, seed=0)
    assert (sampler.rank, sampler.world_size) == (1, 2)
    assert list(sampler) == list(VideoBlockBatchSampler(ds, 4, seed=0, rank=1, world_size=2))
    assert VideoBlockBatchSampler(ds, 4, world_size=1).rank == 0  # a world of one has one rank
    monkeypatch.setenv("RANK", "one")
    with pytest.raises(ValueError, match="RANK"):
        VideoBlockBatchSampler(ds, 4)


def _continues(place, video, a, b) -> bool:
    """Whether batch ``b`` starts with the row right after batch ``a``'s last row, in the same video."""
    return place[b[0]] == place[a[-1]] + 1 and video[b[0]] == video[a[-1]]


@pytest.mark.parametrize("workers", [2, 3])
def test_num_workers_deals_a_blocks_batches_to_one_worker(workers):
    ds = _frames_dataset(videos=5, per_video=40)
    uris, pts = _uris(ds), ds.with_format("arrow")[:]["frame"].combine_chunks().field("pts_ns").to_pylist()
    by_time = sorted(range(len(ds)), key=lambda i: (uris[i], pts[i]))
    place = {row: k for k, row in enumerate(by_time)}
    plain = VideoBlockBatchSampler(ds, batch_size=4, block_size=16, seed=3)
    dealt = VideoBlockBatchSampler(ds, batch_size=4, block_size=16, seed=3, num_workers=workers)
    before, after = list(plain), list(dealt)
    assert sorted(before) == sorted(after) and len(after) == len(dealt)  # the same batches, every row once
    assert after != before
    assert all(len(b) == 4 for b in after)
    position = {tuple(b): i for i, b in enumerate(after)}
    pairs = [(a, b) for a, b in itertools.pairwise(before) if _continues(place, uris, a, b)]
    assert len(pairs) >= len(before) // 2  # blocks of 4 batches: most neighbours continue one another
    on_one_worker = sum(position[tuple(a)] % workers == position[tuple(b)] % workers for a, b in pairs)
    assert on_one_worker >= len(pairs) - workers  # all but where the queues run out at the end
    counts = [sum(1 for i in range(len(after)) if i % workers == w) for w in range(workers)]
    assert max(counts) - min(counts) <= 1
    dealt.set_epoch(1)
    assert list(dealt) != after
    blocks_of_one_batch = VideoBlockBatchSampler(ds, batch_size=4, seed=3, num_workers=workers)
    assert sorted(blocks_of_one_batch) == sorted(VideoBlockBatchSampler(ds, batch_size=4, seed=3))
    with pytest.raises(ValueError):
        VideoBlockBatchSampler(ds, batch_size=4, num_workers=-1)


def test_num_workers_in_a_real_dataloader_keeps_a_blocks_batches_on_one_worker(tmp_path):
    """Real workers: each batch reports its worker; a block's batches decode on from one another (one seek
    per block, counted in the worker) and every frame is the right one."""
    torch = pytest.importorskip("torch")
    from torch.utils.data import DataLoader

    from hf_mediaref.testing import write_video

    spec = write_video(tmp_path / "long.mp4", 200, fps=20, gop=100, bframes=2, size=(64, 128))
    refs = [MediaRef(str(spec.path), spec.pts_ns[i]) for i in range(0, 200, 2)]
    ds = Dataset.from_dict(
        {"frame": refs, "label": list(range(0, 200, 2))},
        features=Features({"frame": MediaRefFeature(), "label": Value("int64")}),
    )
    sampler = VideoBlockBatchSampler(ds, batch_size=5, block_size=25, seed=0, num_workers=2)
    loader = DataLoader(
        ds.with_format("mediaref", output="torch"),
        batch_sampler=sampler,
        num_workers=2,
        worker_init_fn=_count_engine_work,
        collate_fn=_collate_with_worker,
        multiprocessing_context="fork",
    )
    from hf_mediaref.testing import read_index

    worker_of: dict[int, int] = {}
    seeks: dict[int, int] = {}
    seen = []
    for frames, labels, worker, worker_seeks in loader:
        assert isinstance(frames, torch.Tensor)
        assert [read_index(f.numpy()) for f in frames] == labels.tolist()
        seen += labels.tolist()
        worker_of.update((label, worker) for label in labels.tolist())
        seeks[worker] = worker_seeks
    assert sorted(seen) == list(range(0, 200, 2))
    for block in range(0, 100, 25):  # rows of one block: one worker
        assert len({worker_of[2 * row] for row in range(block, block + 25)}) == 1
    assert sum(seeks.values()) < len(sampler)  # batches of a block decoded on instead of seeking


_WORKER: dict[str, object] = {}


def _count_engine_work(worker_id: int) -> None:
    from hf_mediaref.video import collect_stats

    _WORKER["block"] = collect_stats()
    _WORKER["stats"] = _WORKER["block"].__enter__()  # type: ignore[attr-defined]


def _collate_with_worker(rows):
    from torch.utils.data import default_collate, get_worker_info

    batch = default_collate(rows)
    return batch["frame"], batch["label"], get_worker_info().id, _WORKER["stats"].seeks  # type: ignore[attr-defined]


def test_repr_says_what_the_sampler_will_do():
    sampler = VideoBlockBatchSampler(_frames_dataset(videos=3, per_video=5), batch_size=4, seed=2)
    text = repr(sampler)
    assert text.startswith("VideoBlockBatchSampler(batch_size=4, block_size=4, rows=15, videos=3")
    assert f"batches={len(sampler)}" in text and "seed=2" in text and "world_size=1" in text
