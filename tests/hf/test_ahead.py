"""DecodeAhead: an in-process DataLoader decodes the next batches on lanes; same batches, same frames."""

from __future__ import annotations

import threading

import pytest
from datasets import Dataset, Features, Value

from hf_mediaref import MediaRef
from hf_mediaref.errors import MediaNotFoundError
from hf_mediaref.hf import DecodeAhead, MediaRefFeature, PlannedBatches, VideoBlockBatchSampler
from hf_mediaref.testing import read_index, write_video
from hf_mediaref.video import collect_stats

torch = pytest.importorskip("torch")
from torch.utils.data import BatchSampler, DataLoader, RandomSampler  # noqa: E402

FEATURES = Features({"frame": MediaRefFeature(), "label": Value("int64")})


@pytest.fixture(scope="module")
def videos(tmp_path_factory):
    """A long B-frame video (frames 0..159, keyframe every 80) and a short one (frames 500..539)."""
    root = tmp_path_factory.mktemp("ahead")
    long = write_video(root / "long.mp4", 160, fps=20, gop=80, bframes=2, size=(64, 128))
    short = write_video(root / "short.mkv", 40, fps=20, gop=10, size=(64, 128), first_index=500)
    return long, short


def _dataset(videos, extra: list[MediaRef] | None = None) -> Dataset:
    long, short = videos
    refs = [MediaRef(str(long.path), long.pts_ns[i]) for i in range(0, 160, 2)]
    refs += [MediaRef(str(short.path), short.pts_ns[i]) for i in range(0, 40, 3)]
    labels = list(range(0, 160, 2)) + [500 + i for i in range(0, 40, 3)]
    refs += extra or []
    labels += [-1] * len(extra or [])
    return Dataset.from_dict({"frame": refs, "label": labels}, features=FEATURES)


class _Recording:
    """A dataset recording which thread fetched each batch (its first label)."""

    def __init__(self, frames):
        self.frames = frames
        self.thread_of: dict[int, str] = {}

    def __len__(self):
        return len(self.frames)

    def __getitem__(self, i):
        return self.frames[i]

    def __getitems__(self, indices):
        rows = self.frames.__getitems__(indices)
        self.thread_of[int(rows[0]["label"])] = threading.current_thread().name
        return rows


def _epoch(loader) -> list[list[int]]:
    out = []
    for batch in loader:
        labels = batch["label"].tolist()
        assert [read_index(f.numpy()) for f in batch["frame"]] == labels  # every frame the right one
        out.append(labels)
    return out


def test_same_batches_as_the_plain_loader_decoded_on_lanes(videos):
    ds = _dataset(videos)
    frames = ds.with_format("mediaref", output="torch")
    sampler = VideoBlockBatchSampler(ds, batch_size=8, block_size=24, seed=3)
    with collect_stats() as plain_stats:
        plain = _epoch(DataLoader(frames, batch_sampler=sampler))
    recording = _Recording(frames)
    ahead = DecodeAhead(recording, sampler, lanes=2)
    with collect_stats() as stats:
        got = _epoch(DataLoader(ahead, batch_sampler=sampler))
    assert got == plain  # the same batches, in the sampler's order
    assert stats.calls == len(sampler) and stats.requested_refs == len(ds)  # one engine call per batch
    threads = set(recording.thread_of.values())
    assert threads and all(name.startswith("hf_mediaref-ahead") for name in threads)
    plan = sampler.plan
    moved = 0  # continuing batches that went to another lane than the batch they continue (so they seek)
    for p, before in enumerate(plan.continues):
        if before >= 0:
            first = int(ds[plan.batches[p][0]]["label"])
            previous = int(ds[plan.batches[before][0]]["label"])
            moved += recording.thread_of[first] != recording.thread_of[previous]
    assert any(before >= 0 for before in plan.continues)  # continuing batches were exercised
    assert stats.seeks <= plain_stats.seeks + moved  # on one lane, a block's batches decode on


def test_epochs_early_break_and_indices_from_elsewhere(videos):
    ds = _dataset(videos)
    frames = ds.with_format("mediaref", output="torch")
    sampler = VideoBlockBatchSampler(ds, batch_size=8, seed=0)
    ahead = DecodeAhead(frames, sampler, lanes=2, depth=3)
    loader = DataLoader(ahead, batch_sampler=sampler)
    iterator = iter(loader)
    next(
        iterator
    )  # lanes are decoding the next batches: a fork now waits for them (no lock held in the child)
    forked = DataLoader(frames, batch_size=16, num_workers=1, multiprocessing_context="fork")
    assert sorted(int(x) for b in forked for x in b["label"]) == sorted(ds["label"])
    rest = [b["label"].tolist() for b in iterator]  # the epoch goes on, on new lanes
    assert len(rest) == len(sampler) - 1 and all(len(b) > 0 for b in rest)
    for _ in loader:  # stop after one batch: what was decoded ahead is dropped at the next epoch
        break
    sampler.set_epoch(1)
    first = _epoch(loader)
    assert sorted(label for b in first for label in b) == sorted(ds["label"])
    sampler.set_epoch(2)
    second = _epoch(loader)
    assert second != first and sorted(label for b in second for label in b) == sorted(ds["label"])
    rows = ahead.__getitems__([0, 5])  # not a batch of the epoch: fetched directly
    assert [int(r["label"]) for r in rows] == [0, 10]
    assert int(ahead[3]["label"]) == 6 and len(ahead) == len(ds)
    ahead.close()


def test_an_error_surfaces_at_its_batch_naming_the_ref(videos, tmp_path):
    missing = str(tmp_path / "gone.mp4")
    ds = _dataset(videos, extra=[MediaRef(missing, 0)])
    sampler = VideoBlockBatchSampler(ds, batch_size=8, seed=2)
    batches = list(sampler)
    bad = next(p for p, b in enumerate(batches) if len(ds) - 1 in b)
    loader = DataLoader(
        DecodeAhead(ds.with_format("mediaref", output="torch"), sampler), batch_sampler=sampler
    )
    seen = []
    with pytest.raises(MediaNotFoundError, match="gone.mp4"):
        for batch in loader:
            seen.append(batch["label"].tolist())
    assert bad > 0 and seen == [[int(ds[i]["label"]) for i in b] for b in batches[:bad]]  # those before it


@pytest.mark.parametrize("context", ["fork", "spawn"])
def test_in_dataloader_workers_it_is_the_dataset_itself(videos, context):
    ds = _dataset(videos)
    sampler = VideoBlockBatchSampler(ds, batch_size=8, seed=1)
    ahead = DecodeAhead(ds.with_format("mediaref", output="torch"), sampler)
    loader = DataLoader(ahead, batch_sampler=sampler, num_workers=2, multiprocessing_context=context)
    got = _epoch(loader)
    assert sorted(label for b in got for label in b) == sorted(ds["label"])
    assert ahead._running is None  # nothing was decoded ahead in this process


def test_bad_arguments(videos):
    ds = _dataset(videos)
    sampler = VideoBlockBatchSampler(ds, batch_size=8)
    with pytest.raises(ValueError, match="lanes"):
        DecodeAhead(ds, sampler, lanes=0)
    with pytest.raises(ValueError, match="depth"):
        DecodeAhead(ds, sampler, depth=0)
    with pytest.raises(ValueError, match="group"):
        DecodeAhead(ds, sampler, group=0)
    assert isinstance(sampler.decode_ahead(ds), DecodeAhead)


def _random_batches(ds, seed: int) -> BatchSampler:
    return BatchSampler(
        RandomSampler(ds, generator=torch.Generator().manual_seed(seed)), batch_size=8, drop_last=False
    )


@pytest.mark.parametrize("group", [1, 3])
def test_any_batch_sampler_same_batches_groups_decoded_in_one_call(videos, group):
    """The user's own random batches, unchanged: ``group`` consecutive batches decoded in one engine call and
    split back, every frame the right one; two epochs (the plan follows the sampler's new order)."""
    ds = _dataset(videos)
    frames = ds.with_format("mediaref", output="torch")
    ahead = DecodeAhead(frames, _random_batches(ds, seed=5), lanes=2, group=group)
    assert isinstance(ahead.sampler, PlannedBatches)
    loader = DataLoader(ahead, batch_sampler=ahead.sampler)
    epochs = []
    for _ in range(2):
        with collect_stats() as stats:
            got = _epoch(loader)
        batches = ahead.sampler.plan.batches
        assert got == [[int(ds[i]["label"]) for i in b] for b in batches]  # the sampler's batches, in order
        assert stats.calls == -(-len(batches) // group)  # one engine call per group of batches
        assert stats.requested_refs == len(ds)
        epochs.append(batches)
    assert epochs[0] != epochs[1]


def test_grouped_batches_decode_each_shared_block_once(videos):
    """Random rows of a long-GOP video: a block shared by rows of consecutive batches is decoded once per
    group, not once per batch (one lane: the decodes are the same every run)."""
    long, _ = videos
    refs = [MediaRef(str(long.path), long.pts_ns[i]) for i in range(1, 160, 3)]
    ds = Dataset.from_dict({"frame": refs, "label": list(range(1, 160, 3))}, features=FEATURES)
    frames = ds.with_format("mediaref", output="torch")
    decoded = {}
    for group in (1, 4):
        from hf_mediaref import cleanup_cache

        cleanup_cache()
        ahead = DecodeAhead(frames, _random_batches(ds, seed=7), lanes=1, depth=4, group=group)
        with collect_stats() as stats:
            _epoch(DataLoader(ahead, batch_sampler=ahead.sampler))
        decoded[group] = stats.decoded_frames
    assert decoded[4] < decoded[1]


def test_grouping_falls_back_to_batch_by_batch_for_other_results(videos):
    """A dataset whose ``__getitems__`` does not return one row per index is fetched batch by batch, and is
    not asked for a group's indices together again (that fetch is wasted)."""

    class Batched:
        def __init__(self):
            self.calls: list[list[int]] = []

        def __len__(self):
            return 20

        def __getitem__(self, i):
            return i

        def __getitems__(self, indices):
            self.calls.append(list(indices))
            return {"sum": sum(indices), "n": len(indices)}  # one value per batch

    sampler = [[0, 1], [2, 3], [4, 5, 6], [7]]
    dataset = Batched()
    ahead = DecodeAhead(dataset, sampler, lanes=1, group=3)
    loader = DataLoader(ahead, batch_sampler=ahead.sampler, collate_fn=lambda x: x)
    for _ in range(2):
        assert list(loader) == [{"sum": sum(b), "n": len(b)} for b in sampler]
    assert dataset.calls.count([0, 1, 2, 3, 4, 5, 6]) == 1  # tried once
    assert len(dataset.calls) == 1 + 2 * len(sampler)


def test_an_epoch_of_fewer_groups_than_lanes_decodes_its_groups_on_every_core():
    """An epoch of 2 batches in groups of 4 on 2 lanes is one group: its decode (one call, each block once)
    gets both lanes' cores, not one lane's while the other idles; with as many groups as lanes each keeps its
    lane's share."""
    from hf_mediaref._executor import core_budget

    class Recorded:
        def __init__(self):
            self.calls: list[tuple[list[int], int]] = []
            self.lock = threading.Lock()

        def __len__(self):
            return 20

        def __getitem__(self, i):
            return i

        def __getitems__(self, indices):
            with self.lock:
                self.calls.append((list(indices), core_budget()))  # the cores a decode here may use
            return list(indices)

    share = max(1, core_budget() // 2)
    for sampler, expected in (
        ([[0, 1], [2, 3]], [([0, 1, 2, 3], 2 * share)]),
        ([[0], [1], [2], [3], [4], [5]], [([0, 1, 2, 3], share), ([4, 5], share)]),
    ):
        dataset = Recorded()
        ahead = DecodeAhead(dataset, sampler, lanes=2, group=4)
        got = list(DataLoader(ahead, batch_sampler=ahead.sampler, collate_fn=lambda x: x))
        ahead.close()
        assert got == sampler  # the sampler's batches, in order
        assert sorted(dataset.calls) == expected


def test_planned_batches_carry_the_batches_after_them():
    """No plan before the first epoch; each batch a plain list to the DataLoader, carrying the next ones,
    so that a DataLoader worker finds the batch it is handed next (``i + num_workers``)."""
    from hf_mediaref.hf._ahead import next_in_worker

    planned = PlannedBatches([[0, 1], [2, 3], [4], [5, 6]])
    assert planned.plan is None
    batches = list(planned)
    assert batches == [[0, 1], [2, 3], [4], [5, 6]] == planned.plan.batches
    assert all(type(b).__mro__[1] is list for b in batches)
    assert next_in_worker(batches[0], 1) == [[2, 3], [4]] and next_in_worker(batches[0], 2) == [[4]]
    assert next_in_worker(batches[1], 2) == [[5, 6]] and next_in_worker(batches[2], 2) == []
    assert next_in_worker([0, 1], 1) is None  # a batch of another sampler says nothing
    import pickle

    assert next_in_worker(pickle.loads(pickle.dumps(batches[0])), 3) == [[5, 6]]  # as sent to a worker


class _Counted:
    """A dataset appending, per ``__getitems__`` call, its number of indices and the frames it decoded to
    ``log`` (one line each, from any process: a DataLoader worker's calls are seen by the test)."""

    def __init__(self, frames, log):
        self.frames, self.log = frames, str(log)

    def __len__(self):
        return len(self.frames)

    def __getitem__(self, i):
        return self.frames[i]

    def __getitems__(self, indices):
        with collect_stats() as stats:
            rows = self.frames.__getitems__(indices)
        with open(self.log, "a") as f:
            f.write(f"{len(indices)} {stats.decoded_frames}\n")
        return rows


def _calls(log) -> list[tuple[int, int]]:
    return [tuple(int(x) for x in line.split()) for line in log.read_text().splitlines()]


def test_in_dataloader_workers_a_group_is_each_workers_own_next_batches(videos, tmp_path):
    """With workers, ``group=3`` decodes the batch a worker is asked for with that worker's next 2 batches
    (``i, i + 2, i + 4`` of 2 workers) in one engine call and hands them over when asked: the sampler's
    batches in its order, every frame the right one, fewer frames decoded than batch by batch."""
    long, _ = videos
    refs = [MediaRef(str(long.path), long.pts_ns[i]) for i in range(1, 160, 2)]  # 80 rows, 2 blocks
    ds = Dataset.from_dict({"frame": refs, "label": list(range(1, 160, 2))}, features=FEATURES)
    frames = ds.with_format("mediaref", output="torch")
    calls = {}
    for group in (1, 3):
        log = tmp_path / f"group{group}.log"
        ahead = DecodeAhead(_Counted(frames, log), _random_batches(ds, seed=11), group=group)
        loader = DataLoader(ahead, batch_sampler=ahead.sampler, num_workers=2, persistent_workers=True)
        for _ in range(2):  # two epochs, persistent workers
            got = _epoch(loader)
            batches = ahead.sampler.plan.batches  # this epoch's, listed as the epoch started
            assert got == [[int(ds[i]["label"]) for i in b] for b in batches]  # the same batches, in order
        calls[group] = _calls(log)
    assert sorted(n for n, _ in calls[1]) == sorted([8] * 20)  # 10 batches of 8 per epoch, one call each
    # worker 0: batches 0, 2, 4 together, then 6, 8; worker 1: 1, 3, 5, then 7, 9 (per epoch)
    assert sorted(n for n, _ in calls[3]) == sorted([24, 16] * 4)
    assert sum(d for _, d in calls[3]) < sum(d for _, d in calls[1])  # blocks shared across batches


def test_grouped_batches_raise_each_error_at_its_own_batch(videos, tmp_path):
    """A missing video among a group's rows: the batches before the one holding it come, in order, then that
    batch raises, naming the ref; with lanes in this process and in DataLoader workers."""
    missing = str(tmp_path / "gone.mp4")
    ds = _dataset(videos, extra=[MediaRef(missing, 0)])
    frames = ds.with_format("mediaref", output="torch")
    for workers in (0, 2):
        ahead = DecodeAhead(frames, _random_batches(ds, seed=4), lanes=2, group=3)
        loader = DataLoader(ahead, batch_sampler=ahead.sampler, num_workers=workers)
        seen = []
        with pytest.raises(Exception, match="gone.mp4") as raised:
            for batch in loader:
                seen.append(batch["label"].tolist())
        batches = ahead.sampler.plan.batches
        bad = next(p for p, b in enumerate(batches) if len(ds) - 1 in b)
        # not the first batch of its group (in this process: batches 3k, 3k+1, 3k+2; in a worker of 2: the
        # worker's own 3 in a row), so a group's error raised at its first batch would cut ``seen`` short
        assert (bad // 2 if workers else bad) % 3 != 0, bad
        assert seen == [[int(ds[i]["label"]) for i in b] for b in batches[:bad]], workers
        if not workers:
            assert isinstance(raised.value, MediaNotFoundError)
        ahead.close()


def test_a_worker_handed_other_batches_than_foretold_drops_them_then_stops_grouping(videos, tmp_path):
    """The worker's side of ``group`` (as a DataLoader worker runs it): a batch asked for that is not the one
    decoded ahead drops what was held and is fetched itself; after 3 groups in a row dropped unused, batches
    are fetched one by one."""
    from hf_mediaref.hf._ahead import hinted

    ds = _dataset(videos)
    log = tmp_path / "calls.log"
    ahead = DecodeAhead(_Counted(ds.with_format("mediaref", output="torch"), log), [[0]], group=2)
    batches = list(hinted([[i] for i in range(20)]))  # one worker: batch i + 1 is foretold after batch i
    assert [int(r["label"]) for r in ahead._in_worker(batches[0], 1)] == [0]  # with batch 1
    assert [int(r["label"]) for r in ahead._in_worker(batches[1], 1)] == [2]  # held
    assert _calls(log) == [(2, _calls(log)[0][1])]
    for p in (4, 8, 12):  # 4: nothing held (1 was used); 8, 12: 5 and 9 held, dropped unused
        assert [int(r["label"]) for r in ahead._in_worker(batches[p], 1)] == [2 * p]
        assert [n for n, _ in _calls(log)][-1] == 2  # still grouping: fetched with the next one
    assert [int(r["label"]) for r in ahead._in_worker(batches[16], 1)] == [32]  # 13 dropped: the third
    assert [n for n, _ in _calls(log)][-1] == 1  # no longer grouping
    assert ahead._in_worker([3], 1)[0]["label"] == 6  # a batch without hints: fetched directly


@pytest.mark.parametrize("workers", [0, 2])
def test_planned_batches_are_the_wrapped_samplers_own_epochs(workers):
    """Wrapped for ``DecodeAhead``, a seeded random batch sampler gives the DataLoader the same epochs as
    without the wrapper, workers or not (a DataLoader with workers calls ``iter()`` twice per epoch: the
    epoch is drawn once, at its first batch)."""

    class Indices:
        def __len__(self):
            return 40

        def __getitem__(self, i):
            return i

    def epochs(batch_sampler):
        loader = DataLoader(Indices(), batch_sampler=batch_sampler, num_workers=workers)
        return [[b.tolist() for b in loader] for _ in range(2)]

    seeded = lambda: _random_batches(range(40), seed=9)  # noqa: E731
    assert epochs(PlannedBatches(seeded())) == epochs(seeded())
