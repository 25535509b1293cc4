"""Streaming roads: decode_stream over real iterable datasets in real DataLoader workers, split_by_node, and
pushed repos streamed back; each test checks which frames came back and how many engine calls were made."""

from __future__ import annotations

import logging

import pytest
from datasets import Dataset, Features, Value

import hf_mediaref
from hf_mediaref import MediaRef
from hf_mediaref.hf import MediaRefFeature, decode_stream, set_media_root, split_by_node
from hf_mediaref.video import collect_stats

torch = pytest.importorskip("torch")
from torch.utils.data import DataLoader, default_collate, get_worker_info  # noqa: E402

_WORKER_STATS = None
_WORKER_COUNTING = None


def _start_stats(worker_id: int) -> None:
    """worker_init_fn: count the engine calls this worker makes (the block stays open for its lifetime)."""
    global _WORKER_STATS, _WORKER_COUNTING
    _WORKER_COUNTING = collect_stats()
    _WORKER_STATS = _WORKER_COUNTING.__enter__()


def _collate_with_stats(rows):
    """Collate in the worker and attach ``(worker id, engine calls, refs)`` counted there so far."""
    info = get_worker_info()
    stats = _WORKER_STATS
    return default_collate(rows), info.id, stats.calls, stats.requested_refs


@pytest.fixture
def two_videos(repo):
    """40 rows: frames 0..19 of a.mp4 then 100..119 of b.mp4 (relative refs, media root set)."""
    rows = [{"frame": MediaRef("videos/a.mp4", repo.a.pts_ns[i]), "label": i} for i in range(20)]
    rows += [{"frame": MediaRef("videos/b.mp4", repo.b.pts_ns[i]), "label": 100 + i} for i in range(20)]
    features = Features({"frame": MediaRefFeature(), "label": Value("int64")})
    return set_media_root(Dataset.from_list(rows, features=features), repo.path)


def _check(batch, labels_of) -> list[int]:
    frames, labels = batch["frame"], batch["label"]
    assert isinstance(frames, torch.Tensor) and frames.shape[1:] == (64, 128, 3)
    assert labels_of(list(frames.numpy())) == labels.tolist()  # every row got its own frame
    return labels.tolist()


def test_main_process_one_engine_call_per_batch(two_videos, labels_of):
    stream = decode_stream(two_videos.to_iterable_dataset(num_shards=2), batch_size=8, output="torch")
    with collect_stats() as stats:
        seen = [_check(b, labels_of) for b in DataLoader(stream, batch_size=8)]
    assert [x for b in seen for x in b] == list(range(20)) + list(range(100, 120))  # order kept
    assert (stats.calls, stats.requested_refs) == (5, 40)  # 40 rows, batches of 8: one call per batch


@pytest.mark.parametrize("start_method", ["fork", "spawn"])
@pytest.mark.parametrize("ahead", [False, True])
def test_workers_one_engine_call_per_batch_and_one_video_per_worker(
    two_videos, labels_of, start_method, ahead
):
    """With ``ahead=True`` too: in a worker it decodes one batch at a time over that worker's shards."""
    ids = two_videos.to_iterable_dataset(num_shards=2)
    stream = decode_stream(ids, batch_size=8, output="torch", ahead=ahead)
    loader = DataLoader(
        stream,
        batch_size=8,
        num_workers=2,
        multiprocessing_context=start_method,
        worker_init_fn=_start_stats,
        collate_fn=_collate_with_stats,
    )
    labels: dict[int, list[int]] = {0: [], 1: []}
    calls: dict[int, tuple[int, int]] = {}
    for batch, worker, n_calls, n_refs in loader:
        labels[worker] += _check(batch, labels_of)
        calls[worker] = (n_calls, n_refs)
    assert labels == {0: list(range(20)), 1: list(range(100, 120))}  # each worker its shard: one video
    assert calls == {0: (3, 20), 1: (3, 20)}  # 8 + 8 + 4 rows: one engine call per DataLoader batch


def _warnings_as_errors(worker_id: int) -> None:
    import warnings

    warnings.simplefilter("error")


def test_warns_when_workers_outnumber_shards(two_videos, labels_of):
    stream = decode_stream(two_videos.to_iterable_dataset(num_shards=2), batch_size=8, output="torch")
    loader = DataLoader(
        stream,
        batch_size=8,
        num_workers=2,
        multiprocessing_context="fork",
        worker_init_fn=_warnings_as_errors,
    )
    assert sorted(x for b in loader for x in _check(b, labels_of)) == list(range(20)) + list(range(100, 120))
    loader = DataLoader(
        stream,
        batch_size=8,
        num_workers=3,
        multiprocessing_context="fork",
        worker_init_fn=_warnings_as_errors,
    )
    with pytest.raises(UserWarning, match="3 workers: .* 1 worker\\(s\\) get no data"):
        list(loader)  # the worker's warning, raised there as an error, comes back through the DataLoader


def test_options_columns_and_bad_arguments(two_videos, labels_of):
    ids = two_videos.to_iterable_dataset(num_shards=1)
    batch = next(iter(decode_stream(ids, batch_size=4, size=(32, 64), output="numpy").iter(batch_size=4)))
    assert [f.shape for f in batch["frame"]] == [(32, 64, 3)] * 4
    kept = next(iter(decode_stream(ids, batch_size=4, columns=["label"])))
    assert isinstance(kept["frame"], MediaRef)  # only the named columns are decoded
    with pytest.raises(TypeError, match="IterableDataset"):
        decode_stream(two_videos)
    with pytest.raises(ValueError):
        decode_stream(ids, batch_size=0)
    with pytest.raises(ValueError):
        decode_stream(ids, device="cuda")  # invalid options fail here, not in a worker
    with pytest.raises(TypeError):
        decode_stream(ids, sise=(1, 1))


def test_row_by_row_format_logs_how_to_batch(two_videos, caplog, monkeypatch):
    from hf_mediaref.hf import _formatter

    monkeypatch.setattr(_formatter, "_hinted", False)
    monkeypatch.setattr(_formatter, "ROW_BY_ROW_HINT", 10)
    with caplog.at_level(logging.WARNING, logger=_formatter.__name__):
        rows = list(two_videos.to_iterable_dataset().with_format("mediaref"))
    assert len(rows) == 40
    assert sum("decode_stream" in r.message for r in caplog.records) == 1  # once per process


def test_split_by_node_keeps_each_video_on_one_rank(repo, labels_of):
    rows = [{"frame": MediaRef("videos/a.mp4", repo.a.pts_ns[i]), "label": i} for i in range(30)]
    rows += [{"frame": MediaRef("videos/b.mp4", repo.b.pts_ns[i]), "label": 100 + i} for i in range(15)]
    features = Features({"frame": MediaRefFeature(), "label": Value("int64")})
    ds = set_media_root(Dataset.from_list(rows, features=features), repo.path)
    ids = ds.to_iterable_dataset(num_shards=3)  # 15 rows each: a, a, b; 3 shards for 2 ranks
    got = {}
    for rank in range(2):
        with collect_stats() as stats:
            stream = decode_stream(split_by_node(ids, rank=rank, world_size=2), batch_size=5, output="torch")
            got[rank] = [x for b in DataLoader(stream, batch_size=5) for x in _check(b, labels_of)]
        assert stats.calls == len(got[rank]) // 5
    assert got == {0: list(range(30)), 1: list(range(100, 115))}  # datasets would interleave rows
    with pytest.warns(UserWarning, match="falls? back|falling back"):
        single = split_by_node(ds.to_iterable_dataset(num_shards=1), rank=1, world_size=2)
    assert [r["label"] for r in single] == [r["label"] for r in rows[1::2]]
    with pytest.raises(ValueError):
        split_by_node(ids, rank=2, world_size=2)


def test_split_by_node_rank_from_the_environment_else_one_process(monkeypatch):
    """Without torch.distributed: RANK / WORLD_SIZE (torchrun sets them), else the whole dataset; a world of
    several ranks whose rank is unknown raises instead of handing every rank rank 0's shards."""
    ids = Dataset.from_dict({"label": list(range(8))}).to_iterable_dataset(num_shards=4)
    monkeypatch.delenv("RANK", raising=False)
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    assert [r["label"] for r in split_by_node(ids)] == list(range(8))  # one process: everything
    with pytest.raises(ValueError, match="rank is unknown"):
        split_by_node(ids, world_size=2)
    monkeypatch.setenv("RANK", "1")
    monkeypatch.setenv("WORLD_SIZE", "2")
    labels = {r: [x["label"] for x in split_by_node(ids, rank=r, world_size=2)] for r in range(2)}
    assert len(labels[1]) == 4 and not set(labels[0]) & set(labels[1])
    assert [r["label"] for r in split_by_node(ids)] == labels[1]
    assert [r["label"] for r in split_by_node(ids, rank=0)] == labels[0]  # a given rank wins
    monkeypatch.delenv("RANK")
    with pytest.raises(ValueError, match="rank is unknown"):
        split_by_node(ids)


def test_pushed_repo_streams_whole_videos_per_worker(repo, fake_hub, tmp_path, labels_of):
    """push_to_hub writes shards of whole videos; streaming them back, each worker decodes its own videos."""
    from hf_mediaref.testing import write_video

    videos = [
        write_video(
            repo.path / "videos" / f"s{v}.mp4", 12, fps=10, gop=4, size=(64, 128), first_index=1000 * v
        )
        for v in range(4)
    ]
    rows = [
        {"frame": MediaRef(f"videos/s{v}.mp4", videos[v].pts_ns[i]), "label": 1000 * v + i}
        for i in range(0, 12, 2)
        for v in range(4)  # rows interleaved across videos, as a shuffled table would be
    ]
    features = Features({"frame": MediaRefFeature(), "label": Value("int64")})
    ds = set_media_root(Dataset.from_list(rows, features=features), repo.path)
    hf_mediaref.push_to_hub(ds, "me/stream", num_shards=4)
    ids = hf_mediaref.load_dataset("me/stream", split="train", streaming=True)
    assert ids.num_shards == 4
    loader = DataLoader(
        decode_stream(ids, batch_size=6, output="torch"),
        batch_size=6,
        num_workers=2,
        multiprocessing_context="fork",
        worker_init_fn=_start_stats,
        collate_fn=_collate_with_stats,
    )
    per_worker: dict[int, list[int]] = {0: [], 1: []}
    calls = {}
    for batch, worker, n_calls, n_refs in loader:
        labels = _check(batch, labels_of)
        assert len({x // 1000 for x in labels}) == 1  # a batch is one video (a shard holds whole videos)
        assert labels == sorted(labels)  # in time order
        per_worker[worker] += labels
        calls[worker] = (n_calls, n_refs)
    assert sorted(per_worker[0] + per_worker[1]) == sorted(r["label"] for r in rows)
    assert {x // 1000 for x in per_worker[0]}.isdisjoint({x // 1000 for x in per_worker[1]})
    assert calls == {0: (2, 12), 1: (2, 12)}  # 4 shards of 6 rows, 2 per worker, one call each


def test_ahead_decodes_the_next_batches_on_lanes_in_order(two_videos, labels_of, repo):
    import threading

    from hf_mediaref.errors import MediaNotFoundError
    from hf_mediaref.video import _pyav

    threads: set[str] = set()
    original = _pyav.PyAVVideoDecoder._decode_span

    def recording(self, *args, **kwargs):
        threads.add(threading.current_thread().name)
        return original(self, *args, **kwargs)

    ids = two_videos.to_iterable_dataset(num_shards=2)
    stream = decode_stream(ids, batch_size=8, output="torch", ahead=True)
    assert isinstance(stream, torch.utils.data.IterableDataset)
    _pyav.PyAVVideoDecoder._decode_span = recording
    try:
        with collect_stats() as stats:
            seen = [_check(b, labels_of) for b in DataLoader(stream, batch_size=8)]
    finally:
        _pyav.PyAVVideoDecoder._decode_span = original
    assert [x for b in seen for x in b] == list(range(20)) + list(range(100, 120))  # order kept
    assert (stats.calls, stats.requested_refs) == (5, 40)  # one engine call per batch
    assert threads and all(name.startswith("hf_mediaref-ahead") for name in threads)  # decoded on lanes
    rows = [*two_videos.select(range(12)), {"frame": MediaRef("videos/gone.mp4", 0), "label": -1}]
    bad = set_media_root(Dataset.from_list(rows, features=two_videos.features), repo.path)
    loader = DataLoader(decode_stream(bad.to_iterable_dataset(), batch_size=8, ahead=True), batch_size=8)
    got = []
    with pytest.raises(MediaNotFoundError, match="gone.mp4"):
        for batch in loader:
            got.append(batch["label"].tolist())
    assert got == [list(range(8))]  # the batch before it came back, then its own error


def test_stream_transform_repr_names_itself_and_its_shards():
    from hf_mediaref.hf import StreamDecodeTransform

    text = repr(StreamDecodeTransform(["frame"], num_shards=3))
    assert text.startswith("StreamDecodeTransform(columns=['frame'], access=None, DecodeOptions(")
    assert text.endswith("num_shards=3)")
