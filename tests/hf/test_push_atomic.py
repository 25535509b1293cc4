"""push_to_hub validates everything before it writes and lands as one commit: a bad ref, a bad split name,
a file outside the root or a late failure leave the target repo as it was; re-pushing a Hub-loaded dataset
to another repo copies its media so that every ref resolves there."""

from __future__ import annotations

import os
import shutil

import pytest
from datasets import Dataset, DatasetDict, Features, Value

import hf_mediaref
from hf_mediaref import MediaRef
from hf_mediaref.errors import MediaNotFoundError, UnreadableMediaError, UntrustedRefError
from hf_mediaref.hf import MediaRefFeature, get_media_root, set_media_root
from hf_mediaref.testing import write_image

EXPECTED = [0, 3, 6, 9, 12, 15, 18, 21, 24, 27, 100, 105, 110, 115, 7, None]


@pytest.fixture
def target(fake_hub, ds):
    """``me/target``: a repo with a first push in it; ``(repo_id, its state)``."""
    hf_mediaref.push_to_hub(ds, "me/target")
    return "me/target", fake_hub.state("me/target")


def _with_extra(ds, uri):
    extra = Dataset.from_list([{"frame": MediaRef(uri), "label": 99}], features=ds.features)
    from datasets import concatenate_datasets

    return set_media_root(concatenate_datasets([ds, extra]), get_media_root(ds))


def test_a_push_is_one_commit_with_shards_media_and_card(ds, fake_hub):
    hf_mediaref.push_to_hub(ds, "me/one", num_shards=1)
    (commit,) = [c for c in fake_hub.commit_log if c.repo_id == "me/one"]
    assert sorted(commit.added) == [
        "README.md",
        "data/train-00000-of-00001.parquet",
        "images/seven.png",
        "videos/a.mp4",
        "videos/a.mp4.mrindex",
        "videos/b.mp4",
        "videos/b.mp4.mrindex",
    ]


@pytest.mark.parametrize("case", ["outside", "symlink", "missing", "empty", "hub-ref", "loopback"])
def test_a_bad_ref_changes_nothing(ds, repo, fake_hub, target, tmp_path, http_server, case):
    repo_id, before = target
    outside = write_image(tmp_path / "outside.png", 50, size=(64, 128))
    root = tmp_path / "root"
    shutil.copytree(repo.path, root)
    os.symlink(outside, root / "images" / "link.png")
    (root / "images" / "empty.png").write_bytes(b"")
    uri, error = {
        "outside": (str(outside), UntrustedRefError),
        "symlink": ("images/link.png", UntrustedRefError),
        "missing": ("images/missing.png", MediaNotFoundError),
        "empty": ("images/empty.png", UnreadableMediaError),
        "hub-ref": ("hf://datasets/victim/private@main/x.png", UntrustedRefError),
        "loopback": (f"{http_server.url}/img7.png", UntrustedRefError),
    }[case]
    bad = set_media_root(_with_extra(ds, uri), root)
    commits = len(fake_hub.commit_log)
    with pytest.raises(error):
        hf_mediaref.push_to_hub(bad, repo_id)
    with pytest.raises(error):
        hf_mediaref.push_to_hub(bad, "me/fresh")
    assert fake_hub.state(repo_id) == before and fake_hub.state("me/fresh") == {}
    assert len(fake_hub.commit_log) == commits


def test_a_bad_split_name_changes_nothing(ds, fake_hub, target):
    repo_id, before = target
    with pytest.raises(ValueError, match="split name"):
        hf_mediaref.push_to_hub(DatasetDict({"train": ds, "bad split": ds}), repo_id)
    with pytest.raises(ValueError, match="media_dir"):
        hf_mediaref.push_to_hub(ds, repo_id, media_dir="../up")
    with pytest.raises(ValueError, match="Parquet shards"):
        hf_mediaref.push_to_hub(ds, repo_id, data_dir="videos")
    assert fake_hub.state(repo_id) == before


def test_a_late_failure_changes_nothing(ds, repo, fake_hub, target, tmp_path):
    """datasets refuses a split whose features differ from the repo's after its shards were uploaded and new
    media were planned: nothing is committed (before, the media went in a commit of their own)."""
    repo_id, before = target
    root = tmp_path / "root"
    shutil.copytree(repo.path, root)
    write_image(root / "images" / "new.png", 42, size=(64, 128))
    other = set_media_root(_with_extra(ds, "images/new.png"), root).add_column("extra", [0] * 17)
    with pytest.raises(ValueError, match="[Ff]eatures"):
        hf_mediaref.push_to_hub(other, repo_id, split="validation")
    assert fake_hub.state(repo_id) == before


def test_a_late_failure_removes_the_repo_the_push_created(ds, fake_hub, monkeypatch):
    """``create_repo`` must come before the one commit; a push that then fails leaves no empty repo behind."""
    from hf_mediaref.hf import _hub

    def fail(*args, **kwargs):
        raise RuntimeError("late failure")

    monkeypatch.setattr(_hub, "_with_card", fail)
    with pytest.raises(RuntimeError, match="late failure"):
        hf_mediaref.push_to_hub(ds, "me/brand-new")
    assert fake_hub.state("me/brand-new") == {}
    monkeypatch.undo()
    hf_mediaref.push_to_hub(ds, "me/brand-new")  # and a later push creates it as usual
    assert "README.md" in fake_hub.state("me/brand-new")


def test_allowed_files_outside_the_root_are_uploaded(ds, repo, fake_hub, tmp_path, labels_of):
    (tmp_path / "shared").mkdir()
    outside = write_image(tmp_path / "shared" / "fifty.png", 50, size=(64, 128))
    allowed = set_media_root(_with_extra(ds, str(outside)), repo.path, allow_uris=[outside.parent])
    hf_mediaref.push_to_hub(allowed, "me/allowed")
    back = hf_mediaref.load_dataset("me/allowed", split="train", cache_dir=str(tmp_path / "cache"))
    assert back[16]["frame"].uri.split("@", 1)[1].split("/", 2)[1] == "media"
    assert labels_of(back.with_format("mediaref")[:]["frame"]) == [*EXPECTED, 50]


def test_repushing_a_hub_dataset_copies_its_media(ds, fake_hub, tmp_path, labels_of):
    hf_mediaref.push_to_hub(ds, "me/src")
    src = hf_mediaref.load_dataset("me/src", split="train", cache_dir=str(tmp_path / "c1"))
    relabelled = src.map(lambda row: {"label": row["label"] + 1000})
    hf_mediaref.push_to_hub(relabelled, "other/dst")
    (commit,) = [c for c in fake_hub.commit_log if c.repo_id == "other/dst"]
    assert {"images/seven.png", "videos/a.mp4", "videos/b.mp4"} <= set(commit.added)
    shutil.rmtree(fake_hub.repo_dir("me/src"))  # the source disappears: nothing may point at it
    dst = hf_mediaref.load_dataset("other/dst", split="train", cache_dir=str(tmp_path / "c2"))
    root = get_media_root(dst)
    assert root.startswith("hf://datasets/other/dst@")
    assert all(row["frame"] is None or row["frame"].uri.startswith(root) for row in dst)
    assert labels_of(dst.with_format("mediaref")[:]["frame"]) == EXPECTED
    # pushing back to the repo it came from copies nothing
    again = hf_mediaref.load_dataset("other/dst", split="train", cache_dir=str(tmp_path / "c3"))
    hf_mediaref.push_to_hub(again.map(lambda row: {"label": row["label"]}), "other/dst")
    last = [c for c in fake_hub.commit_log if c.repo_id == "other/dst"][-1]
    assert not [p for p in last.added if not p.endswith((".parquet", ".md"))]


def test_repushing_a_dataset_with_refs_into_other_repos_refuses(fake_hub, repo, tmp_path):
    from huggingface_hub import HfApi

    HfApi().create_repo("victim/private", repo_type="dataset")
    shutil.copy(repo.image, fake_hub.repo_dir("victim/private") / "x.png")
    HfApi().create_repo("evil/ds", repo_type="dataset")
    evil = fake_hub.repo_dir("evil/ds")
    (evil / "data").mkdir()
    rows = [{"frame": {"uri": "hf://datasets/victim/private@main/x.png", "pts_ns": None}, "label": 0}]
    features = Features({"frame": MediaRefFeature(), "label": Value("int64")})
    Dataset.from_list(rows, features=features).to_parquet(str(evil / "data" / "train-00000-of-00001.parquet"))
    fake_hub._commit("evil/ds")
    ds = hf_mediaref.load_dataset("evil/ds", split="train", cache_dir=str(tmp_path / "cache"))
    with pytest.raises(UntrustedRefError, match="victim/private"):
        hf_mediaref.push_to_hub(ds, "me/copy")
    assert fake_hub.state("me/copy") == {}


def test_a_push_replaces_no_attribute_of_datasets(ds, fake_hub, monkeypatch, tmp_path, labels_of):
    """The push calls datasets and huggingface_hub and swaps nothing in them (issue 19): every name of
    datasets' push modules is bound to the same object before the push, while it writes the shards and in
    its commit; datasets' own push_to_hub is not used; plain datasets.load_dataset reads the features back."""
    import json

    import datasets
    import pyarrow.parquet as pq
    from datasets import load_dataset

    from hf_mediaref.hf import _hub

    modules = (datasets.arrow_dataset, datasets.dataset_dict)
    before = [dict(vars(module)) for module in modules]
    api_cls = _hub.HfApi  # the fake Hub's client class, what every module names HfApi inside FakeHub
    assert datasets.arrow_dataset.HfApi is api_cls and datasets.dataset_dict.HfApi is api_cls

    def refuse(*args, **kwargs):
        raise AssertionError("datasets' own push_to_hub was called")

    monkeypatch.setattr(Dataset, "push_to_hub", refuse)
    monkeypatch.setattr(DatasetDict, "push_to_hub", refuse)

    def unchanged():
        during = [dict(vars(module)) for module in modules]
        for was, now in zip(before, during):
            assert was.keys() == now.keys()
            assert [k for k in was if was[k] is not now[k]] == []
        assert datasets.arrow_dataset.HfApi is api_cls and datasets.dataset_dict.HfApi is api_cls

    seen, written = [], []
    real_commit, real_to_parquet = api_cls.create_commit, Dataset.to_parquet

    def create_commit(self, repo_id, operations, *args, **kwargs):
        unchanged()
        seen.append(kwargs.get("parent_commit"))
        return real_commit(self, repo_id, operations, *args, **kwargs)

    def to_parquet(self, *args, **kwargs):  # while the shards are written
        unchanged()
        written.append(self)
        return real_to_parquet(self, *args, **kwargs)

    monkeypatch.setattr(Dataset, "to_parquet", to_parquet)
    monkeypatch.setattr(api_cls, "create_commit", create_commit)
    hf_mediaref.push_to_hub(ds, "me/unpatched", num_shards=2)
    assert seen == [fake_hub.commits["me/unpatched"][-2]]  # one commit, on the commit it was planned against
    assert len(written) == 2
    shard = fake_hub.repo_dir("me/unpatched") / "data" / "train-00000-of-00002.parquet"
    metadata = pq.read_schema(shard).metadata
    assert json.loads(metadata[b"huggingface"]) == {"info": {"features": ds.features.to_dict()}}
    back = load_dataset("me/unpatched", split="train", cache_dir=str(tmp_path / "cache"))  # plain datasets
    assert back.features.to_dict() == ds.features.to_dict() and len(back) == len(ds)
    back = hf_mediaref.load_dataset("me/unpatched", split="train", cache_dir=str(tmp_path / "cache"))
    assert labels_of(back.with_format("mediaref")[:]["frame"]) == EXPECTED


def test_pushed_splits_replace_their_old_shards(ds, fake_hub, tmp_path):
    """A Dataset replaces its split and keeps the others; a DatasetDict replaces the configuration's splits
    (datasets' rules); the card's configs and dataset_info follow."""
    import yaml
    from datasets import load_dataset

    def card(repo_id):
        text = (fake_hub.repo_dir(repo_id) / "README.md").read_text()
        return yaml.safe_load(text.split("---\n")[1])

    def shards(repo_id):
        return sorted(p.name for p in (fake_hub.repo_dir(repo_id) / "data").iterdir())

    hf_mediaref.push_to_hub(
        DatasetDict({"train": ds, "test": ds.select(range(3))}),
        "me/splits",
        num_shards={"train": 3, "test": 2},
    )
    assert shards("me/splits") == [
        *(f"test-{i:05d}-of-00002.parquet" for i in range(2)),
        *(f"train-{i:05d}-of-00003.parquet" for i in range(3)),
    ]
    hf_mediaref.push_to_hub(ds.select(range(5)), "me/splits", split="test", num_shards=1)
    assert shards("me/splits")[0] == "test-00000-of-00001.parquet" and len(shards("me/splits")) == 4
    info = card("me/splits")["dataset_info"]
    assert {s["name"]: s["num_examples"] for s in info["splits"]} == {"train": 16, "test": 5}
    hf_mediaref.push_to_hub(
        DatasetDict({"validation": ds.select(range(2))}), "me/splits", num_shards={"validation": 1}
    )
    assert shards("me/splits") == ["validation-00000-of-00001.parquet"]
    meta = card("me/splits")
    assert meta["configs"] == [
        {"config_name": "default", "data_files": [{"split": "validation", "path": "data/validation-*"}]}
    ]
    assert [s["name"] for s in meta["dataset_info"]["splits"]] == ["validation"]
    back = load_dataset("me/splits", cache_dir=str(tmp_path / "cache"))
    assert list(back) == ["validation"] and len(back["validation"]) == 2


def test_a_config_goes_to_its_folder_and_loads_by_name(ds, fake_hub, tmp_path):
    hf_mediaref.push_to_hub(ds, "me/configs", num_shards=1)
    hf_mediaref.push_to_hub(ds.select(range(4)), "me/configs", config_name="small", num_shards=1)
    assert (fake_hub.repo_dir("me/configs") / "small" / "train-00000-of-00001.parquet").is_file()
    small = hf_mediaref.load_dataset("me/configs", "small", split="train", cache_dir=str(tmp_path / "c"))
    assert len(small) == 4 and small[0]["frame"].uri.endswith("/videos/a.mp4")
    assert len(hf_mediaref.load_dataset("me/configs", split="train", cache_dir=str(tmp_path / "c"))) == 16
    with pytest.raises(ValueError, match="not both"):
        hf_mediaref.push_to_hub(ds, "me/configs", num_shards=2, max_shard_size="1MB")


def test_a_commit_refused_because_the_revision_moved_is_planned_again(ds, fake_hub, monkeypatch):
    """Another commit lands between the push's read of the repo and its commit (HTTP 412 for its
    parent_commit): the card and the deletions are planned again on the new commit and sent once more."""
    from huggingface_hub import CommitOperationAdd
    from huggingface_hub.utils import HfHubHTTPError

    from hf_mediaref.hf import _hub
    from hf_mediaref.testing.fake_hub import _response

    hf_mediaref.push_to_hub(ds, "me/raced", num_shards=2)
    api_cls, parents = _hub.HfApi, []
    real_commit = api_cls.create_commit

    def create_commit(self, repo_id, operations, *args, **kwargs):
        parents.append(kwargs["parent_commit"])
        if len(parents) == 1:  # someone else's push of the split lands first
            other = [
                CommitOperationAdd(path_in_repo="data/train-00000-of-00009.parquet", path_or_fileobj=b"x")
            ]
            real_commit(self, repo_id, other)
            raise HfHubHTTPError("412 Precondition Failed", response=_response(412, repo_id))
        return real_commit(self, repo_id, operations, *args, **kwargs)

    monkeypatch.setattr(api_cls, "create_commit", create_commit)
    hf_mediaref.push_to_hub(ds, "me/raced", num_shards=1)
    history = fake_hub.commits["me/raced"]
    assert parents == [history[-3], history[-2]]
    assert sorted(p.name for p in (fake_hub.repo_dir("me/raced") / "data").iterdir()) == [
        "train-00000-of-00001.parquet"
    ]
    assert fake_hub.commit_log[-1].deleted == [
        "data/train-00000-of-00002.parquet",
        "data/train-00000-of-00009.parquet",
        "data/train-00001-of-00002.parquet",
    ]
