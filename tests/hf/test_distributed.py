"""Two real torch.distributed (gloo, CPU) processes training with DDP: the map-style road (the video-local
sampler, rank and world size from torch.distributed) and the streaming road (split_by_node + decode_stream).
Each rank reports which frames it got and how many engine calls it made."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")


def _rank_main(rank: int, world_size: int, init_file: str, root: str, out_dir: str) -> None:
    """One rank: both roads, results written to ``out_dir/rank<r>.json``."""
    import torch.distributed as dist
    from datasets import Dataset, Features, Value
    from torch.utils.data import DataLoader

    from hf_mediaref import MediaRef
    from hf_mediaref.hf import (
        MediaRefFeature,
        VideoBlockBatchSampler,
        decode_stream,
        set_media_root,
        split_by_node,
    )
    from hf_mediaref.testing import read_index
    from hf_mediaref.video import collect_stats

    dist.init_process_group(
        "gloo",
        init_method=f"file://{init_file}",
        rank=rank,
        world_size=world_size,
        timeout=timedelta(seconds=120),
    )
    spec = json.loads(Path(out_dir, "spec.json").read_text())
    rows = [{"frame": MediaRef(uri, pts), "label": label} for uri, pts, label in spec]
    features = Features({"frame": MediaRefFeature(), "label": Value("int64")})
    ds = set_media_root(Dataset.from_list(rows, features=features), root)
    model = torch.nn.parallel.DistributedDataParallel(torch.nn.Linear(3, 1))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01)

    def train(loader) -> dict:
        out: dict = {"labels": [], "decoded": [], "batches": 0}
        with collect_stats() as stats:
            for batch in loader:
                frames = batch["frame"]
                out["labels"] += batch["label"].tolist()
                out["decoded"] += [read_index(f.numpy()) for f in frames]
                loss = (
                    model(frames.float().mean(dim=(1, 2))).pow(2).mean()
                )  # gradients all-reduced over ranks
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
                out["batches"] += 1
        out["calls"], out["refs"] = stats.calls, stats.requested_refs
        return out

    sampler = VideoBlockBatchSampler(ds, batch_size=5, seed=0)  # rank and world size from torch.distributed
    result = {"rank": (sampler.rank, sampler.world_size)}
    result["map"] = train(DataLoader(ds.with_format("mediaref", output="torch"), batch_sampler=sampler))
    sampler.set_epoch(1)
    result["map_epoch1"] = [i for b in sampler for i in b]
    stream = decode_stream(split_by_node(ds.to_iterable_dataset(num_shards=2)), batch_size=5, output="torch")
    result["stream"] = train(DataLoader(stream, batch_size=5))
    Path(out_dir, f"rank{rank}.json").write_text(json.dumps(result))
    dist.barrier()
    dist.destroy_process_group()


def test_two_ranks_ddp_map_style_and_streaming(repo, tmp_path):
    import torch.multiprocessing as mp

    spec = [("videos/a.mp4", repo.a.pts_ns[i], i) for i in range(30)]
    spec += [("videos/b.mp4", repo.b.pts_ns[i], 100 + i) for i in range(20)]
    (tmp_path / "spec.json").write_text(json.dumps(spec))
    mp.spawn(_rank_main, args=(2, str(tmp_path / "init"), str(repo.path), str(tmp_path)), nprocs=2, join=True)
    ranks = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in range(2)]
    assert [r["rank"] for r in ranks] == [[0, 2], [1, 2]]
    every = sorted(label for _, _, label in spec)
    for road in ("map", "stream"):
        got = [r[road] for r in ranks]
        for g in got:
            assert g["decoded"] == g["labels"]  # every frame is the one its row names
            assert g["batches"] == 5 and (g["calls"], g["refs"]) == (5, 25)  # one engine call per batch
        assert sorted(got[0]["labels"] + got[1]["labels"]) == every  # disjoint, nothing missing
        videos = [{x // 100 for x in g["labels"]} for g in got]
        assert len(videos[0] & videos[1]) <= 1  # at most the video cut at the boundary is on both ranks
    assert ranks[1]["stream"]["labels"] == list(range(25, 30)) + list(range(100, 120))  # shard 1, in order
    epoch1 = [set(r["map_epoch1"]) for r in ranks]
    assert not epoch1[0] & epoch1[1] and len(epoch1[0] | epoch1[1]) == 50
