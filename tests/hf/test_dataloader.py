"""torch DataLoader workers (fork and spawn) and streaming datasets decode the right frames in batches."""

from __future__ import annotations

import pytest

from hf_mediaref.hf import VideoBlockBatchSampler, decode_transform

torch = pytest.importorskip("torch")
from torch.utils.data import DataLoader  # noqa: E402


def _as_rows(rows):
    return rows


def _check_batches(loader, labels_of) -> int:
    seen = 0
    for batch in loader:
        frames, labels = batch["frame"], batch["label"]
        assert isinstance(frames, torch.Tensor) and frames.shape[1:] == (64, 128, 3)
        assert labels_of(list(frames.numpy())) == labels.tolist()  # every row got its own frame
        seen += len(labels)
    return seen


@pytest.mark.parametrize("start_method", ["fork", "spawn"])
def test_workers_decode_the_right_frames(ds, labels_of, start_method):
    frames = ds.filter(lambda ex: ex["frame"] is not None)
    loader = DataLoader(
        frames.with_format("mediaref", output="torch"),
        batch_size=4,
        num_workers=2,
        shuffle=True,
        multiprocessing_context=start_method,
    )
    assert _check_batches(loader, labels_of) == 15


def test_fork_after_decoding_in_the_parent(ds, labels_of):
    """Decoders opened in the parent must not be shared with forked workers."""
    frames = ds.filter(lambda ex: ex["frame"] is not None).with_format("mediaref", output="torch")
    frames[:]  # warm the parent's decoder cache
    sampler = VideoBlockBatchSampler(frames, batch_size=4, seed=0)
    loader = DataLoader(frames, batch_sampler=sampler, num_workers=2, multiprocessing_context="fork")
    assert _check_batches(loader, labels_of) == 15


def test_with_transform_in_spawned_workers(ds, labels_of):
    frames = ds.filter(lambda ex: ex["frame"] is not None)
    loader = DataLoader(
        frames.with_transform(decode_transform(output="torch")),
        batch_size=5,
        num_workers=2,
        multiprocessing_context="spawn",
        collate_fn=_as_rows,
    )
    labels = []
    for rows in loader:
        for row in rows:
            assert labels_of([row["frame"].numpy()]) == [row["label"]]
            labels.append(row["label"])
    assert sorted(labels) == sorted(frames["label"])


def test_streaming_iter_batches_and_batched_map(ds, labels_of, engine_spy):
    streamed = ds.to_iterable_dataset(num_shards=2)
    batches = list(streamed.with_format("mediaref").iter(batch_size=4))
    assert labels_of(batches[0]["frame"]) == [0, 3, 6, 9]
    assert sorted(x for b in batches for x in labels_of(b["frame"]) if x is not None) == sorted(
        x for x in ds["label"] if x != -1
    )
    calls_before = len(engine_spy)
    mapped = streamed.map(decode_transform(output="numpy"), batched=True, batch_size=4)
    rows = list(mapped)
    assert all(r["frame"] is None or labels_of([r["frame"]]) == [r["label"]] for r in rows)
    assert len(engine_spy) - calls_before == 4  # 16 rows in batches of 4: one engine call per batch


def test_streaming_map_batched_over_the_format(ds, labels_of):
    streamed = ds.to_iterable_dataset().with_format("mediaref")
    out = list(
        streamed.map(
            lambda b: {"ok": [f is None or labels_of([f]) == [n] for f, n in zip(b["frame"], b["label"])]},
            batched=True,
            batch_size=8,
        )
    )
    assert len(out) == 16 and all(r["ok"] for r in out)


@pytest.fixture
def engine_spy(monkeypatch):
    import hf_mediaref.decode

    calls = []
    real = hf_mediaref.decode.batch_decode

    def spy(refs, *args, **kwargs):
        calls.append(len(refs))
        return real(refs, *args, **kwargs)

    monkeypatch.setattr(hf_mediaref.decode, "batch_decode", spy)
    return calls
