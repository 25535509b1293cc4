"""Fixtures for the datasets integration: a small media repo with two barcode videos and an image."""

from __future__ import annotations

import types

import pytest

datasets = pytest.importorskip("datasets")

from hf_mediaref import MediaRef  # noqa: E402
from hf_mediaref.testing import write_image, write_video  # noqa: E402


@pytest.fixture(scope="session")
def repo(tmp_path_factory):
    """A dataset repo folder: ``videos/a.mp4`` (frames 0..29, 10 fps, keyframe every 10), ``videos/b.mp4``
    (frames 100..119, 10 fps) and ``images/seven.png`` (barcode 7)."""
    root = tmp_path_factory.mktemp("repo")
    (root / "videos").mkdir()
    (root / "images").mkdir()
    a = write_video(root / "videos" / "a.mp4", 30, fps=10, gop=10, size=(64, 128))
    b = write_video(root / "videos" / "b.mp4", 20, fps=10, gop=10, size=(64, 128), first_index=100)
    image = write_image(root / "images" / "seven.png", 7, size=(64, 128))
    return types.SimpleNamespace(path=root, a=a, b=b, image=image)


@pytest.fixture(scope="session")
def rows(repo):
    """Rows with relative refs: a's frames 0, 3, ..., 27, b's frames 100, 105, 110, 115, the image, a null."""
    out = [{"frame": MediaRef("videos/a.mp4", repo.a.pts_ns[i]), "label": i} for i in range(0, 30, 3)]
    out += [{"frame": MediaRef("videos/b.mp4", repo.b.pts_ns[i]), "label": 100 + i} for i in range(0, 20, 5)]
    out += [{"frame": MediaRef("images/seven.png"), "label": 7}, {"frame": None, "label": -1}]
    return out


def _labels_of(frames) -> list:
    from hf_mediaref.testing import read_index

    return [None if f is None else read_index(f) for f in frames]


@pytest.fixture(scope="session")
def labels_of():
    """``labels_of(frames)``: the barcode of every frame (None stays None)."""
    return _labels_of


@pytest.fixture
def features():
    from datasets import Features, Value

    from hf_mediaref.hf import MediaRefFeature

    return Features({"frame": MediaRefFeature(), "label": Value("int64")})


@pytest.fixture
def ds(rows, features, repo):
    """An in-memory dataset of ``rows`` whose relative refs resolve against ``repo``."""
    from datasets import Dataset

    from hf_mediaref.hf import set_media_root

    return set_media_root(Dataset.from_list(rows, features=features), repo.path)


@pytest.fixture
def fake_hub(tmp_path):
    from hf_mediaref.testing.fake_hub import FakeHub

    with FakeHub(tmp_path / "hub") as hub:
        yield hub
