"""The fake Hub records each commit, and a commit whose sources cannot be read changes nothing."""

from __future__ import annotations

import pytest

pytest.importorskip("huggingface_hub")

import huggingface_hub
from huggingface_hub import CommitOperationAdd

from hf_mediaref.testing.fake_hub import FakeHub


def test_commit_log_and_all_or_nothing_commits(tmp_path):
    with FakeHub(tmp_path / "hub") as hub:
        assert hub.state("me/x") == {}
        api = huggingface_hub.HfApi()  # looked up inside the fake hub's patch
        api.create_repo("me/x", repo_type="dataset")
        api.create_commit(
            "me/x",
            operations=[CommitOperationAdd(path_in_repo="a.txt", path_or_fileobj=b"a")],
            repo_type="dataset",
            commit_message="first",
        )
        assert [(c.added, c.message) for c in hub.commit_log] == [(["a.txt"], "first")]
        before = hub.state("me/x")
        assert before["a.txt"] and before["@commits"] == "2"
        gone = tmp_path / "gone.txt"
        gone.write_bytes(b"c")
        bad = [
            CommitOperationAdd(path_in_repo="b.txt", path_or_fileobj=b"b"),
            CommitOperationAdd(path_in_repo="c.txt", path_or_fileobj=str(gone)),
        ]
        gone.unlink()  # unreadable by the time of the commit
        with pytest.raises(FileNotFoundError):
            api.create_commit("me/x", operations=bad, repo_type="dataset")
        assert hub.state("me/x") == before and len(hub.commit_log) == 1


def test_repr_names_root_repos_and_whether_it_is_active(tmp_path):
    hub = FakeHub(tmp_path)
    assert repr(hub) == f"FakeHub({str(tmp_path)!r}, repos=[], inactive)"
    with hub:
        huggingface_hub.HfApi().create_repo("org/a", repo_type="dataset")
        assert repr(hub) == f"FakeHub({str(tmp_path)!r}, repos=['org/a'], active)"
