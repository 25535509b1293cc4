"""Where an ``hf://`` file is read over HTTP (:mod:`hf_mediaref.io._hub`): its resolve URL at the filesystem's
endpoint, and the token header."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

pytest.importorskip("huggingface_hub")

from hf_mediaref.io._hub import hub_location

SHA = "0123456789abcdef0123456789abcdef01234567"


class Filesystem:
    """What ``hub_location`` asks of an ``HfFileSystem``: its endpoint, token and ``resolve_path``."""

    def __init__(self, endpoint="https://hub.example", token="hf_tok"):
        self.endpoint, self.token, self.asked = endpoint, token, []

    def resolve_path(self, path):
        self.asked.append(path)
        if path.startswith("buckets/"):
            return SimpleNamespace(bucket_id="me/b", path=path.split("/", 3)[3])
        return SimpleNamespace(repo_type="dataset", repo_id="me/clips", revision="main", path_in_repo="a.mp4")


def test_a_pinned_file_is_its_resolve_url_with_the_token():
    fs = Filesystem()
    where = hub_location(fs, f"datasets/me/clips@{SHA}/videos/ep 0.mp4")
    assert where is not None and fs.asked == []
    assert where.url == f"https://hub.example/datasets/me/clips/resolve/{SHA}/videos/ep%200.mp4"
    assert where.headers["authorization"] == "Bearer hf_tok"
    assert "hf_tok" not in repr(where)
    model = hub_location(fs, f"models/me/m@{SHA}/v.mp4")
    assert model is not None and model.url == f"https://hub.example/me/m/resolve/{SHA}/v.mp4"


def test_other_paths_are_resolved_by_the_filesystem():
    fs = Filesystem(token=False)
    where = hub_location(fs, "datasets/me/clips/a.mp4")
    assert fs.asked == ["datasets/me/clips/a.mp4"]
    assert where is not None and where.url == "https://hub.example/datasets/me/clips/resolve/main/a.mp4"
    assert "authorization" not in where.headers


def test_buckets_dot_segments_and_filesystems_without_an_endpoint_stay_on_fsspec():
    assert hub_location(Filesystem(), "buckets/me/b/a.mp4") is None
    assert hub_location(Filesystem(), f"datasets/me/clips@{SHA}/v/../../x.mp4") is None
    assert hub_location(Filesystem(endpoint=None), f"datasets/me/clips@{SHA}/a.mp4") is None
