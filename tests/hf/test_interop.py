"""What hf_mediaref writes reads with plain ``datasets`` (a subprocess that cannot import hf_mediaref); plain
``datasets`` calls are not changed by importing hf_mediaref (they read the marked plain struct and attach no
access), and hf_mediaref's loaders and combiners keep MediaRef columns and the access of where they read."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import datasets
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from datasets import Dataset, Features, Value

import hf_mediaref
from hf_mediaref import MediaAccess, MediaRef
from hf_mediaref.errors import UnresolvedPathError
from hf_mediaref.hf import MediaRefFeature, get_media_access, get_media_root, set_media_access, set_media_root
from hf_mediaref.hf._feature import MEDIA_REF_ID, READ_BACK
from hf_mediaref.testing import fake_hub as fake_hub_module
from hf_mediaref.testing import read_index

EXPECTED = [0, 3, 6, 9, 12, 15, 18, 21, 24, 27, 100, 105, 110, 115, 7, None]
STRUCT = "struct<uri: string, pts_ns: int64>"


# ----------------------------------------------------------------------------------------- plain subprocess
def run_plain(tmp_path: Path, hub_root: Path, body: str) -> dict:
    """Run ``body`` in a Python that cannot import hf_mediaref, with the fake Hub at ``hub_root`` patched
    in (``fake_hub.py`` loaded by its path); ``body`` fills the dict ``out``, returned as JSON.

    ``-S``: no ``site``, so the editable install's ``.pth`` (a meta-path finder for hf_mediaref) never runs;
    the child's ``sys.path`` is this process's minus every folder holding an ``hf_mediaref`` package."""
    home = Path(hf_mediaref.__file__).resolve().parent.parent
    if (home / "datasets").is_dir():  # pragma: no cover - a non-editable install, beside datasets
        pytest.skip(f"hf_mediaref is installed in {home} with datasets: no path without it")
    paths = [
        p for p in sys.path if p and os.path.isdir(p) and not os.path.isdir(os.path.join(p, "hf_mediaref"))
    ]
    script = tmp_path / "plain_child.py"
    script.write_text(
        textwrap.dedent(
            """
            import importlib.util, json, sys
            assert importlib.util.find_spec("hf_mediaref") is None, "hf_mediaref is importable"
            spec = importlib.util.spec_from_file_location("fake_hub", {fake_hub!r})
            fake_hub = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(fake_hub)
            import datasets
            out = {{}}
            with fake_hub.FakeHub({root!r}):
            {body}
            assert not [m for m in sys.modules if m.startswith("hf_mediaref")]
            print("OUT" + json.dumps(out, default=str))
            """
        ).format(fake_hub=fake_hub_module.__file__, root=str(hub_root), body=textwrap.indent(body, " " * 4))
    )
    env = {
        "PATH": os.environ.get("PATH", ""),
        "PYTHONPATH": os.pathsep.join(paths),
        "HOME": str(tmp_path),
        "HF_HOME": str(tmp_path / "hf-home"),
        "HF_DATASETS_CACHE": str(tmp_path / "child-cache"),
        "HF_HUB_DISABLE_TELEMETRY": "1",
        "HF_HUB_DISABLE_IMPLICIT_TOKEN": "1",
    }
    done = subprocess.run(
        [sys.executable, "-S", str(script)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-4000:]
    line = next(line for line in done.stdout.splitlines() if line.startswith("OUT"))
    return json.loads(line[3:])


PLAIN_READS = """
ds = datasets.load_dataset("me/frames", split="train")
out["type"] = str(ds.features.arrow_schema.field("frame").type)
out["rows"] = ds[:]["frame"]
out["labels"] = ds[:]["label"]
streamed = datasets.load_dataset("me/frames", split="train", streaming=True)
out["streamed"] = [row["frame"] for row in streamed]
out["streamed_type"] = str(streamed.features.arrow_schema.field("frame").type)
files = "hf://datasets/me/frames/data/*.parquet"
parquet = datasets.load_dataset("parquet", data_files=files, split="train")
out["parquet"] = parquet[:]["frame"]
out["configs"] = datasets.get_dataset_config_names("me/frames")
try:
    datasets.load_dataset("me/old", split="train")
    out["old"] = "loaded"
except Exception as exc:
    out["old"] = f"{type(exc).__name__}: {exc}"
"""


def _old_repo(fake_hub, source: Path) -> None:
    """A repo as hf_mediaref 0.1 wrote it: ``dtype: media_ref`` in the card, ``_type: MediaRef`` in the
    Parquet metadata."""
    fake_hub.api_class()().create_repo("me/old")
    folder = fake_hub.repo_dir("me/old")
    shutil.copytree(source / "videos", folder / "videos")
    (folder / "README.md").write_text(
        "---\ndataset_info:\n  features:\n  - name: frame\n    dtype: media_ref\n  - name: label\n"
        "    dtype: int64\n---\n# old\n"
    )
    table = pa.table(
        {
            "frame": pa.array(
                [{"uri": "videos/a.mp4", "pts_ns": 0}], pa.struct({"uri": pa.string(), "pts_ns": pa.int64()})
            ),
            "label": pa.array([0], pa.int64()),
        }
    )
    features = {"frame": {"_type": "MediaRef"}, "label": {"dtype": "int64", "_type": "Value"}}
    meta = {b"huggingface": json.dumps({"info": {"features": features}}).encode()}
    (folder / "data").mkdir()
    pq.write_table(table.replace_schema_metadata(meta), folder / "data" / "train-00000-of-00001.parquet")


def test_a_pushed_repo_reads_with_plain_datasets_in_a_process_without_hf_mediaref(
    ds, repo, fake_hub, tmp_path
):
    hf_mediaref.push_to_hub(ds, "me/frames")
    _old_repo(fake_hub, repo.path)
    out = run_plain(tmp_path, fake_hub.root, PLAIN_READS)
    stored = ds.with_format("arrow")[:]["frame"].to_pylist()
    assert out["type"] == out["streamed_type"] == STRUCT
    assert out["rows"] == out["streamed"] == out["parquet"] == stored
    assert out["rows"][1] == {"uri": "videos/a.mp4", "pts_ns": repo.a.pts_ns[3]}
    assert out["labels"] == ds["label"]
    assert out["configs"] == ["default"]  # the viewer's first step
    # a repo written by hf_mediaref 0.1 needs hf_mediaref: plain datasets cannot parse its dtype
    assert out["old"].startswith("ValueError") and "MediaRef" in out["old"]


def test_a_plain_load_gives_refs_as_stored_and_the_format_asks_for_a_root(ds, fake_hub, tmp_path, labels_of):
    hf_mediaref.push_to_hub(ds, "me/frames")
    sha = fake_hub.sha("me/frames")
    back = datasets.load_dataset("me/frames", split="train", cache_dir=str(tmp_path / "cache"))
    assert back.features["frame"] == MediaRefFeature(access=READ_BACK)  # the hook: the type; no root
    assert back[0]["frame"] == MediaRef("videos/a.mp4", 0)  # as stored: no root from anywhere
    with pytest.raises(UnresolvedPathError, match=r"hf_mediaref\.load_dataset"):
        back.with_format("mediaref")[:1]
    access = MediaAccess(f"hf://datasets/me/frames@{sha}/")
    set_media_access(back, access)  # the one-line fix
    assert back.features["frame"] == MediaRefFeature(access=access)
    assert back[0]["frame"] == MediaRef(f"hf://datasets/me/frames@{sha}/videos/a.mp4", 0)
    assert labels_of(back.with_format("mediaref")[:]["frame"]) == EXPECTED


@pytest.mark.parametrize("streaming", [False, True])
def test_hf_mediaref_load_dataset_reads_with_the_repo_at_its_commit(
    ds, fake_hub, tmp_path, labels_of, streaming
):
    hf_mediaref.push_to_hub(ds, "me/frames")
    sha = fake_hub.sha("me/frames")
    back = hf_mediaref.load_dataset(
        "me/frames", split="train", streaming=streaming, cache_dir=str(tmp_path / "cache")
    )
    assert get_media_root(back) == f"hf://datasets/me/frames@{sha}/"
    assert isinstance(back.features["frame"], MediaRefFeature)
    batch = (
        back.with_format("mediaref")[:]
        if not streaming
        else next(iter(back.with_format("mediaref").iter(16)))
    )
    assert labels_of(batch["frame"]) == EXPECTED


def test_an_old_media_ref_repo_still_loads(repo, fake_hub, tmp_path, labels_of):
    _old_repo(fake_hub, repo.path)
    back = datasets.load_dataset("me/old", split="train", cache_dir=str(tmp_path / "cache"))
    assert back.features["frame"] == MediaRefFeature(access=READ_BACK)
    back = hf_mediaref.load_dataset("me/old", split="train", cache_dir=str(tmp_path / "cache"))
    assert labels_of(back.with_format("mediaref")[:]["frame"]) == [0]


def test_card_plain_snippet_decodes_the_frame_without_hf_mediaref(ds, fake_hub, tmp_path):
    hf_mediaref.push_to_hub(ds, "me/frames")
    card = (fake_hub.repo_dir("me/frames") / "README.md").read_text()
    section = card.split("## Load without hf_mediaref", 1)[1]
    snippet = section.split("```python\n", 1)[1].split("```", 1)[0]
    assert len(snippet.strip().splitlines()) <= 22  # a few lines: imports, the load, frame_at, a call
    snippet = snippet.replace("ds[0]", "ds[4]")  # frame 12 of a.mp4: keyframes every 10 frames
    body = snippet + f"import numpy\nnumpy.save({str(tmp_path / 'frame.npy')!r}, image)\n"
    run_plain(tmp_path, fake_hub.root, body)
    assert read_index(np.load(tmp_path / "frame.npy")) == 12


def test_serialized_features_are_the_plain_struct():
    features = Features({"frame": MediaRefFeature(), "raw": MediaRefFeature(decode=False)})
    plain = Features({"frame": {"uri": Value("string"), "pts_ns": Value("int64")}})
    assert features.type == pa.struct(
        [("frame", plain.type.field(0).type), ("raw", plain.type.field(0).type)]
    )
    as_dict = features.to_dict()
    assert as_dict["frame"] == {
        "uri": {"dtype": "string", "id": MEDIA_REF_ID, "_type": "Value"},
        "pts_ns": {"dtype": "int64", "_type": "Value"},
    }
    assert "MediaRef" not in json.dumps(features._to_yaml_list()).replace(MEDIA_REF_ID, "")
    read_back = Features(
        {"frame": MediaRefFeature(access=READ_BACK), "raw": MediaRefFeature(decode=False, access=READ_BACK)}
    )
    assert Features.from_dict(as_dict) == read_back  # the type comes back; the access is the loader's
    assert Features._from_yaml_list(features._to_yaml_list()) == read_back
    # an unmarked struct stays a struct
    assert Features.from_dict(plain.to_dict()) == plain


# ----------------------------------------------------------------------------------------- roots
def test_save_to_disk_records_no_root_and_load_from_disk_reads_its_folder(ds, repo, tmp_path, labels_of):
    ds.save_to_disk(str(tmp_path / "saved"))
    assert "hf_mediaref" not in json.loads((tmp_path / "saved" / "dataset_info.json").read_text())
    assert get_media_access(datasets.load_from_disk(str(tmp_path / "saved"))) == READ_BACK  # plain: no root
    back = hf_mediaref.load_from_disk(str(tmp_path / "saved"))
    assert get_media_root(back) == os.path.realpath(tmp_path / "saved")  # where the loader read it
    # the media live elsewhere: say so explicitly
    back = hf_mediaref.load_from_disk(str(tmp_path / "saved"), access=MediaAccess(repo.path))
    assert labels_of(back.with_format("mediaref")[:]["frame"]) == EXPECTED
    dd = datasets.DatasetDict({"train": ds})
    dd.save_to_disk(str(tmp_path / "saved_dict"))
    loaded = hf_mediaref.load_from_disk(str(tmp_path / "saved_dict"))["train"]
    assert get_media_root(loaded) == os.path.realpath(tmp_path / "saved_dict")


def test_a_table_saved_beside_its_media_reads_them(rows, features, repo, tmp_path, labels_of):
    project = tmp_path / "project"
    shutil.copytree(repo.path, project)
    Dataset.from_list(rows, features=features).save_to_disk(str(project / "table"))
    back = hf_mediaref.load_from_disk(str(project / "table"), access=MediaAccess(project))
    assert labels_of(back.with_format("mediaref")[:]["frame"]) == EXPECTED
    set_media_root(back, repo.path)  # an explicit override wins
    assert back[0]["frame"].uri == str(repo.path / "videos" / "a.mp4")


def test_to_parquet_records_no_root_and_load_dataset_parquet_reads_its_folder(ds, repo, tmp_path, labels_of):
    ds.to_parquet(str(tmp_path / "f.parquet"))
    assert b"hf_mediaref" not in (pq.read_schema(tmp_path / "f.parquet").metadata or {})
    plain = datasets.load_dataset(
        "parquet", data_files=str(tmp_path / "f.parquet"), split="train", cache_dir=str(tmp_path / "cache")
    )
    assert get_media_access(plain) == READ_BACK
    back = hf_mediaref.load_dataset(
        "parquet", data_files=str(tmp_path / "f.parquet"), split="train", cache_dir=str(tmp_path / "cache")
    )
    assert get_media_root(back) == os.path.realpath(tmp_path)
    wide = hf_mediaref.load_dataset(
        "parquet",
        data_files=str(tmp_path / "f.parquet"),
        split="train",
        cache_dir=str(tmp_path / "cache"),
        allow_uris=[repo.path],
    )
    assert get_media_access(wide).allow_uris == (os.path.realpath(repo.path),)  # applied, not dropped
    assert labels_of(set_media_root(back, repo.path).with_format("mediaref")[:]["frame"]) == EXPECTED


def test_load_dataset_parquet_of_hub_files_resolves_against_their_repo(ds, fake_hub, tmp_path, labels_of):
    hf_mediaref.push_to_hub(ds, "me/frames")
    back = hf_mediaref.load_dataset(
        "parquet",
        data_files="hf://datasets/me/frames/data/*.parquet",
        split="train",
        cache_dir=str(tmp_path / "cache"),
    )
    assert get_media_root(back) == "hf://datasets/me/frames/"  # the files were not pinned to a revision
    assert labels_of(back.with_format("mediaref")[:]["frame"]) == EXPECTED


def test_pushed_parquet_files_carry_no_local_root(ds, fake_hub):
    hf_mediaref.push_to_hub(ds, "me/frames")
    ds.push_to_hub("me/plain-push")  # datasets' own push (not hooked): the features write no root either
    for repo_id in ("me/frames", "me/plain-push"):
        paths = sorted((fake_hub.repo_dir(repo_id) / "data").glob("train-*.parquet"))
        assert paths
        for path in paths:
            assert b"hf_mediaref" not in (pq.read_schema(path).metadata or {})


def test_select_map_and_concatenate_keep_or_resolve_roots(ds, rows, features, repo, tmp_path, labels_of):
    assert get_media_root(ds.select([1, 2])) == str(repo.path)
    assert get_media_root(ds.map(lambda row: row)) == str(repo.path)
    assert get_media_root(datasets.concatenate_datasets([ds, ds.select([0])])) == str(repo.path)  # one access
    other_root = tmp_path / "other"
    shutil.copytree(repo.path, other_root)
    (other_root / "videos" / "a.mp4").unlink()  # a ref resolved against the wrong root would fail
    other = set_media_root(Dataset.from_list(rows[10:14], features=features), other_root)
    with pytest.raises(ValueError, match="can't be aligned"):  # plain datasets: never the wrong root
        datasets.concatenate_datasets([ds, other])
    both = hf_mediaref.hf.concatenate_datasets([ds, other])
    assert get_media_root(both) is None  # different roots: URIs made absolute
    assert both[0]["frame"].uri == str(repo.path / "videos" / "a.mp4")
    assert both[16]["frame"].uri == str(other_root / "videos" / "b.mp4")
    assert labels_of(both.with_format("mediaref")[:]["frame"]) == [*EXPECTED, 100, 105, 110, 115]
    assert ds[0]["frame"].uri == str(repo.path / "videos" / "a.mp4")  # the inputs are untouched
    assert get_media_root(other) == str(other_root)


def test_iterable_datasets_with_different_roots_combine_with_absolute_uris(rows, features, tmp_path):
    first = set_media_root(Dataset.from_list(rows[:2], features=features), tmp_path / "one")
    second = set_media_root(Dataset.from_list(rows[10:11], features=features), tmp_path / "two")
    both = hf_mediaref.hf.concatenate_datasets([first.to_iterable_dataset(), second.to_iterable_dataset()])
    assert get_media_root(both) is None
    assert [row["frame"].uri for row in both] == [
        str(tmp_path / "one" / "videos" / "a.mp4"),
        str(tmp_path / "one" / "videos" / "a.mp4"),
        str(tmp_path / "two" / "videos" / "b.mp4"),
    ]


# ----------------------------------------------------------------------------------------- private repos
@pytest.mark.parametrize("streaming", [False, True])
def test_the_load_token_reaches_the_hub_for_table_and_media(ds, fake_hub, tmp_path, labels_of, streaming):
    hf_mediaref.push_to_hub(ds, "me/private", private=True)
    fake_hub.tokens.clear()
    back = hf_mediaref.load_dataset(
        "me/private", split="train", token="secret", streaming=streaming, cache_dir=str(tmp_path / "cache")
    )
    batch = (
        back.with_format("mediaref")[:]
        if not streaming
        else next(iter(back.with_format("mediaref").iter(16)))
    )
    assert labels_of(batch["frame"]) == EXPECTED
    media_opens = [
        token for what, token in fake_hub.tokens if what.startswith("open ") and "/videos/" in what
    ]
    assert media_opens and set(media_opens) == {"secret"}
    assert ("api", "secret") in fake_hub.tokens or any(
        what.startswith("open ") and what.endswith(".parquet") and token == "secret"
        for what, token in fake_hub.tokens
    )
