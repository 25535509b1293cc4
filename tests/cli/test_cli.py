"""hf-mediaref end to end: through the real entry points (``python -m``, the console-script declaration) and
in-process ``main`` (for the fake Hub), on real encoded barcode videos and images."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

datasets = pytest.importorskip("datasets")

import hf_mediaref  # noqa: E402
from hf_mediaref.cli import _store, main  # noqa: E402
from hf_mediaref.errors import UntrustedRefError  # noqa: E402
from hf_mediaref.testing import read_index, write_image, write_video  # noqa: E402
from hf_mediaref.testing.fake_hub import FakeHub  # noqa: E402
from hf_mediaref.testing.lerobot import write_lerobot_dataset  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]


def _run(*args: str, module: str = "hf_mediaref.cli", cwd: Path | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    return subprocess.run(
        [sys.executable, "-m", module, *args], capture_output=True, text=True, env=env, cwd=cwd, timeout=240
    )


@pytest.fixture(scope="module")
def recordings(tmp_path_factory):
    """``a.mp4`` (30 frames at 10 fps, keyframe every 5), ``sub/b.mkv`` (20 frames at 20 fps, barcodes
    100..119, keyframe every 10), ``c.png`` (barcode 7) and a corrupt ``bad.mp4``."""
    root = tmp_path_factory.mktemp("recordings")
    (root / "sub").mkdir()
    specs = {
        "a.mp4": write_video(root / "a.mp4", 30, fps=10, gop=5),
        "sub/b.mkv": write_video(root / "sub" / "b.mkv", 20, fps=20, gop=10, first_index=100),
    }
    write_image(root / "c.png", 7)
    (root / "bad.mp4").write_bytes(b"definitely not a video" * 20)
    return root, specs


def _barcode_offset(video_id: str) -> int:
    return 100 if video_id == "sub/b.mkv" else 0


def _check_frames(out: Path, specs, allow_uris=None) -> datasets.Dataset:
    """Load ``out`` from another directory and check every row's decoded frame against its columns."""
    ds = hf_mediaref.load_dataset(str(out), split="train", allow_uris=allow_uris)
    frames = ds.with_format("mediaref").select_columns(["frame"])[:]["frame"]
    plain = ds.with_format(None).select_columns(["video_id", "frame_index", "timestamp"])[:]
    for frame, video_id, index, t in zip(frames, plain["video_id"], plain["frame_index"], plain["timestamp"]):
        if video_id == "c.png":
            assert read_index(frame) == 7 and t is None
            continue
        spec = specs[video_id]
        assert index == spec.expected_index(round(t * 1e9))
        assert read_index(frame) == _barcode_offset(video_id) + index
    return ds


def test_build_every_frame_through_python_m(recordings, tmp_path):
    root, specs = recordings
    out = tmp_path / "frames"
    proc = _run("build", str(root), "-o", str(out), "-q")
    assert proc.returncode == 0, proc.stderr
    assert "skipped: 1 of 4 file(s)" in proc.stderr and "bad.mp4" in proc.stderr
    ds = _check_frames(out, specs)
    assert len(ds) == 30 + 20 + 1
    row = ds.with_format(None).select_columns(["frame"])[0]["frame"]
    assert row.uri == str(out / "a.mp4")  # relative in the table, resolved against the folder
    table = _store.open_dataset(str(out))["train"].with_format("arrow")[:]
    assert set(table["frame"].combine_chunks().field("uri").to_pylist()) == {"a.mp4", "sub/b.mkv", "c.png"}
    first = ds.select_columns(["video_id", "codec", "width", "height", "fps", "duration", "file_size"])[0]
    assert first == {
        "video_id": "a.mp4",
        "codec": "h264",
        "width": 128,
        "height": 96,
        "fps": pytest.approx(10.0),
        "duration": pytest.approx(3.0),
        "file_size": (root / "a.mp4").stat().st_size,
    }
    assert os.path.samefile(out / "a.mp4", root / "a.mp4")  # hard-linked, not copied
    assert not any(p.name.startswith(".frames") for p in tmp_path.iterdir())


@pytest.mark.parametrize(
    ("flags", "expected"),
    [
        (
            ["--fps", "4"],
            {"a.mp4": [0, 2, 5, 7, 10, 12, 15, 17, 20, 22, 25, 27], "sub/b.mkv": [0, 5, 10, 15]},
        ),
        (["--keyframes"], {"a.mp4": [0, 5, 10, 15, 20, 25], "sub/b.mkv": [0, 10]}),
        (["--every", "7"], {"a.mp4": [0, 7, 14, 21, 28], "sub/b.mkv": [0, 7, 14]}),
    ],
)
def test_sampling(recordings, tmp_path, flags, expected):
    root, specs = recordings
    out = tmp_path / "frames"
    files = [str(root / "a.mp4"), str(root / "sub" / "b.mkv")]
    assert main(["build", *files, "-o", str(out), "-q", "--media", "copy", *flags]) == 0
    ds = _check_frames(out, specs)
    got: dict[str, list[int]] = {}
    for video_id, index in zip(ds["video_id"], ds["frame_index"]):
        got.setdefault(video_id, []).append(index)
    assert got == expected
    if flags[0] == "--fps":
        assert ds["timestamp"][:3] == pytest.approx([0.0, 0.25, 0.5])
    assert not os.path.samefile(out / "a.mp4", root / "a.mp4")  # --media copy


def test_strict_fails_and_writes_nothing(recordings, tmp_path, capsys):
    root, _ = recordings
    out = tmp_path / "frames"
    assert main(["build", str(root), "-o", str(out), "-q", "--strict"]) == 1
    assert "cannot build: 1 of 4" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_existing_output_is_refused_unless_overwrite(recordings, tmp_path, capsys):
    root, _ = recordings
    out = tmp_path / "frames"
    out.mkdir()
    (out / "keep").write_text("x")
    assert main(["build", str(root / "a.mp4"), "-o", str(out), "-q"]) == 1
    assert "exists" in capsys.readouterr().err and (out / "keep").exists()
    assert main(["build", str(root / "a.mp4"), "-o", str(out), "-q", "--overwrite"]) == 0
    assert not (out / "keep").exists() and (out / "a.mp4").exists()


def test_a_failure_while_writing_leaves_no_output(tmp_path):
    out = tmp_path / "out"
    with pytest.raises(RuntimeError), _store.dataset_folder(out) as folder:
        (folder / "half.parquet").write_text("half")
        raise RuntimeError("disk full")
    assert list(tmp_path.iterdir()) == []


def test_sidecar_columns_json_and_csv(recordings, tmp_path):
    root, specs = recordings
    (tmp_path / "meta.json").write_text(
        json.dumps({"a.mp4": {"operator": "ann", "success": True}, "sub/b.mkv": {"operator": "bob"}})
    )
    (tmp_path / "meta.csv").write_text("file,score,site\nb.mkv,0.5,lab\na.mp4,1.25,home\n")  # by file name
    for sidecar in ("meta.json", "meta.csv"):
        out = tmp_path / sidecar.replace(".", "_")
        files = [str(root / "a.mp4"), str(root / "sub" / "b.mkv"), str(root / "c.png")]
        code = main(
            ["build", *files, "-o", str(out), "-q", "--every", "10", "--metadata", str(tmp_path / sidecar)]
        )
        assert code == 0
        ds = _check_frames(out, specs)
        rows = {
            r["video_id"]: r for r in ds.with_format(None).select_columns(["video_id", *ds.column_names[10:]])
        }
        if sidecar == "meta.json":
            assert ds.features["success"] == datasets.Value("bool")
            assert rows["a.mp4"]["operator"] == "ann" and rows["sub/b.mkv"]["success"] is None
        else:
            assert ds.features["score"] == datasets.Value("float64")
            assert rows["a.mp4"]["score"] == 1.25 and rows["sub/b.mkv"]["site"] == "lab"
            assert rows["c.png"]["score"] is None


def test_list_file_glob_and_absolute_media(recordings, tmp_path):
    root, specs = recordings
    listing = tmp_path / "files.txt"
    listing.write_text(f"# my files\n{root / 'a.mp4'}\n")
    out = tmp_path / "frames"
    code = main(
        ["build", f"@{listing}", str(root / "sub" / "*.mkv"), "-o", str(out), "-q", "--media", "absolute"]
    )
    assert code == 0
    with pytest.raises(
        UntrustedRefError
    ):  # absolute refs leave the folder: the user must say they trust them
        _check_frames(out, specs)
    ds = _check_frames(out, specs, allow_uris=[str(root)])
    assert sorted(set(ds["video_id"])) == ["a.mp4", "sub/b.mkv"]
    assert not (out / "a.mp4").exists()
    stored = _store.stored_uris(_store.open_dataset(str(out), allow_uris=["*"])["train"])
    assert stored == [str(root / "a.mp4"), str(root / "sub" / "b.mkv")]
    assert _run("verify", str(out), "-q").returncode == 1
    assert _run("verify", str(out), "-q", "--allow-uris", str(root)).returncode == 0


def test_verify_inspect_and_failures_through_python_m(recordings, tmp_path):
    root, _ = recordings
    out = tmp_path / "frames"
    assert main(["build", str(root), "-o", str(out), "-q", "--media", "copy"]) == 0
    ok = _run("verify", str(out), "-q")
    assert ok.returncode == 0, ok.stderr
    assert "train/frame: 51 refs in 2 video(s) and 1 image(s): 51 ok, 0 failed" in ok.stdout

    inspected = _run("inspect", str(out), "-q", "--json")
    assert inspected.returncode == 0, inspected.stderr
    report = json.loads(inspected.stdout)
    column = report["splits"]["train"]["columns"]["frame"]
    assert report["media_root"] == str(out) and report["splits"]["train"]["rows"] == 51
    assert (column["videos"], column["images"]) == (2, 1)
    assert column["frames_by_video"] == {"a.mp4": 30, "sub/b.mkv": 20}
    assert column["codecs"] == {"h264": 2, "png": 1}
    assert column["containers"] == {"mp4": 1, "mkv": 1, "png": 1}
    sizes = sum((out / name).stat().st_size for name in ("a.mp4", "sub/b.mkv", "c.png"))
    assert column["media_bytes"] == sizes

    # break things: a truncated video (its later frames are gone) and a missing image
    data = (out / "a.mp4").read_bytes()
    (out / "a.mp4").write_bytes(data[: len(data) // 3])
    (out / "c.png").unlink()
    bad = _run("verify", str(out), "-q", "--json")
    assert bad.returncode == 1
    result = json.loads(bad.stdout)
    [rep] = result["reports"]
    assert not result["ok"] and rep["refs"] == 51 and rep["failed"] >= 1 + 1
    assert "MediaNotFoundError" in rep["errors"] and rep["errors"]["MediaNotFoundError"]["refs"] == 1
    assert "c.png" in rep["errors"]["MediaNotFoundError"]["first"]
    assert rep["failed_files"] == 2 and rep["ok"] == 51 - rep["failed"]
    text = _run("verify", str(out), "-q", "--sample", "10")
    assert text.returncode in (0, 1) and re.search(r"train/frame: 10 refs", text.stdout)


def test_verify_names_refs_past_the_end(tmp_path, capsys):
    video = write_video(tmp_path / "v.mp4", 10, fps=10)
    ds = datasets.Dataset.from_dict(
        {"frame": [{"uri": "v.mp4", "pts_ns": t} for t in (0, 500_000_000, 2_000_000_000, 5_000_000_000)]},
        features=datasets.Features({"frame": hf_mediaref.MediaRefFeature()}),
    )
    ds.save_to_disk(str(tmp_path / "saved"))
    code = main(["verify", str(tmp_path / "saved"), "-q", "--media-root", str(tmp_path)])
    out = capsys.readouterr().out
    assert code == 1
    assert "2 ok, 2 failed" in out and "FrameOutOfRangeError: 2 ref(s) in 1 file(s)" in out
    assert video.path.exists()


def test_verify_counts_refs_that_do_not_resolve(tmp_path, capsys):
    write_video(tmp_path / "v.mp4", 10, fps=10)
    refs = [
        {"uri": "v.mp4", "pts_ns": 0},
        {"uri": "../outside.mp4", "pts_ns": 0},
        {"uri": "v.mp4", "pts_ns": 10**8},
    ]
    ds = datasets.Dataset.from_dict(
        {"frame": refs}, features=datasets.Features({"frame": hf_mediaref.MediaRefFeature()})
    )
    ds.save_to_disk(str(tmp_path / "saved"))
    assert main(["verify", str(tmp_path / "saved"), "-q", "--media-root", str(tmp_path), "--json"]) == 1
    [report] = json.loads(capsys.readouterr().out)["reports"]
    assert (report["refs"], report["ok"], report["failed"]) == (3, 2, 1)
    assert list(report["errors"]) == ["PathEscapeError"]


def test_embed_makes_a_self_contained_dataset(recordings, tmp_path):
    root, _ = recordings
    out, embedded = tmp_path / "frames", tmp_path / "embedded"
    assert main(["build", str(root / "a.mp4"), "-o", str(out), "-q", "--every", "10"]) == 0
    assert main(["embed", str(out), "-o", str(embedded), "-q", "--format", "png"]) == 0
    shutil.rmtree(out)
    ds = hf_mediaref.load_dataset(str(embedded), split="train")
    assert all(ref.is_embedded for ref in ds.with_format(None)["frame"])
    assert [read_index(f) for f in ds.with_format("mediaref")[:]["frame"]] == [0, 10, 20]
    assert main(["verify", str(embedded), "-q"]) == 0


def test_hub_build_push_inspect_verify(recordings, tmp_path, capsys):
    root, _ = recordings
    with FakeHub(tmp_path / "hub") as hub:
        files = [str(root / "a.mp4"), str(root / "sub" / "b.mkv"), str(root / "c.png")]
        assert main(["build", *files, "--push", "me/frames", "-q", "--every", "5"]) == 0
        repo = hub.repo_dir("me/frames")
        assert (repo / "a.mp4").exists() and (repo / "sub" / "b.mkv").exists()
        capsys.readouterr()
        assert main(["inspect", "hf://datasets/me/frames", "-q", "--json"]) == 0
        report = json.loads(capsys.readouterr().out)
        assert report["media_root"] == f"hf://datasets/me/frames@{hub.sha('me/frames')}/"
        assert report["splits"]["train"]["columns"]["frame"]["videos"] == 2
        assert main(["verify", "me/frames", "-q"]) == 0
        assert "11 ok, 0 failed" in capsys.readouterr().out

        local = tmp_path / "local"
        assert main(["build", str(root / "a.mp4"), "-o", str(local), "-q", "--every", "10"]) == 0
        assert main(["push", str(local), "me/other", "-q"]) == 0
        back = hf_mediaref.load_dataset("me/other", split="train")
        assert [read_index(f) for f in back.with_format("mediaref")[:]["frame"]] == [0, 10, 20]


def test_build_from_lerobot(tmp_path):
    spec = write_lerobot_dataset(tmp_path / "robot", (6, 9), cameras=("observation.images.top",))
    out = tmp_path / "frames"
    assert main(["build", "--from-lerobot", str(spec.root), "-o", str(out), "-q"]) == 0
    assert (out / "videos" / "observation.images.top" / "chunk-000" / "file-000.mp4").exists()
    ds = hf_mediaref.load_dataset(str(out), split="train")
    assert ds["task"][0] == "pick the cube" and ds.features["observation.state"].feature.dtype == "float32"
    frames = ds.with_format("mediaref")[:]["observation.images.top"]
    assert [read_index(f) for f in frames] == list(range(15))
    assert main(["verify", str(out), "-q"]) == 0
    some = tmp_path / "some"
    assert main(["build", "--from-lerobot", str(spec.root), "-o", str(some), "-q", "--episodes", "1"]) == 0
    assert hf_mediaref.load_dataset(str(some), split="train")["index"] == list(range(6, 15))


def test_help_has_examples_through_python_m_hf_mediaref():
    proc = _run("--help", module="hf_mediaref")
    assert proc.returncode == 0 and "examples:" in proc.stdout and "hf-mediaref build" in proc.stdout
    sub = _run("build", "--help")
    assert sub.returncode == 0 and "--fps" in sub.stdout and "examples:" in sub.stdout
    usage = _run("build", "--fps", "2", "--every", "3")
    assert usage.returncode == 2 and "not allowed with" in usage.stderr


def test_console_script_declaration_runs_the_cli(tmp_path):
    """pyproject's [project.scripts] entry, loaded and called the way pip's generated script does (the
    shared environment is not reinstalled, so importlib.metadata may not list it yet)."""
    text = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    match = re.search(r'^\[project\.scripts\]\s*\nhf-mediaref = "([\w.]+):(\w+)"', text, re.M)
    assert match, "no hf-mediaref console script in pyproject.toml"
    script = tmp_path / "hf-mediaref"
    script.write_text(
        textwrap.dedent(
            f"""\
            import re, sys
            from importlib.metadata import EntryPoint
            value = "{match[1]}:{match[2]}"
            main = EntryPoint(name="hf-mediaref", value=value, group="console_scripts").load()
            sys.argv[0] = re.sub(r"(-script\\.pyw|\\.exe)?$", "", sys.argv[0])
            sys.exit(main())
            """
        )
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run([sys.executable, str(script), "--version"], capture_output=True, text=True, env=env)
    assert proc.returncode == 0 and proc.stdout.startswith("hf-mediaref ")
    bad = subprocess.run(
        [sys.executable, str(script), "inspect", str(tmp_path / "nope")],
        capture_output=True,
        text=True,
        env=env,
    )
    assert bad.returncode == 1 and "is not a dataset folder" in bad.stderr


def test_frame_index_matches_the_decoder_for_fps_sampling(recordings):
    """--fps rows store the sampled time; the frame on screen then is the frame_index column."""
    from hf_mediaref.cli._build import Sampling, probe

    root, specs = recordings
    probed = probe(str(root / "sub" / "b.mkv"), Sampling(fps=3))
    times = np.asarray(probed.pts_ns)
    assert times.tolist() == [round(k * 1e9 / 3) for k in range(3)]
    assert probed.frame_index.tolist() == [specs["sub/b.mkv"].expected_index(int(t)) for t in times]


def test_rebuilding_into_a_folder_inside_the_source_does_not_pick_up_its_own_media(tmp_path):
    src = tmp_path / "rec"
    src.mkdir()
    write_video(src / "a.mp4", 10, fps=10)
    for _ in range(2):
        assert main(["build", str(src), "-o", str(src / "frames"), "-q", "--overwrite"]) == 0
    ds = hf_mediaref.load_dataset(str(src / "frames"), split="train")
    assert set(ds["video_id"]) == {"a.mp4"} and len(ds) == 10


def test_build_from_a_lerobot_dataset_on_the_hub(tmp_path):
    import huggingface_hub
    from huggingface_hub import CommitOperationAdd

    spec = write_lerobot_dataset(
        tmp_path / "robot", (5, 6), cameras=("observation.images.top",), codec="libx264"
    )
    with FakeHub(tmp_path / "hub") as hub:
        api = huggingface_hub.HfApi()
        api.create_repo("me/robot", repo_type="dataset")
        operations = [
            CommitOperationAdd(path_in_repo=p.relative_to(spec.root).as_posix(), path_or_fileobj=str(p))
            for p in spec.root.rglob("*")
            if p.is_file()
        ]
        api.create_commit("me/robot", operations=operations, repo_type="dataset")
        out = tmp_path / "frames"
        assert main(["build", "--from-lerobot", "me/robot", "-o", str(out), "-q"]) == 0
        assert not (out / "videos").exists()  # the refs point into the Hub repo, pinned to its commit
        source = "hf://datasets/me/robot"  # the refs read the source repo: trusted by whoever built it
        stored = _store.stored_uris(_store.open_dataset(str(out), allow_uris=[source])["train"])
        assert stored == [
            f"hf://datasets/me/robot@{hub.sha('me/robot')}/videos/observation.images.top/chunk-000/file-000.mp4"
        ]
        ds = hf_mediaref.load_dataset(str(out), split="train", allow_uris=source)
        frames = ds.with_format("mediaref")[:]["observation.images.top"]
        assert [read_index(f) for f in frames] == list(range(11))


@pytest.fixture
def claims_root(tmp_path, media_dir, http_server):
    """A repo folder whose Parquet file's schema metadata claims the root "/" (``{"hf_mediaref":
    "{\\"media_root\\": \\"/\\"}"}``, the key earlier versions read a root from), with one ref inside the
    folder (``v.mp4``) and three that read outside it: the absolute path of ``outside/far.mp4``, a ``..``
    escape to it, and a loopback URL served by the test server."""
    import pyarrow.parquet as pq

    folder, outside = tmp_path / "claims", tmp_path / "outside"
    (folder / "data").mkdir(parents=True)
    outside.mkdir()
    write_video(folder / "v.mp4", 10, fps=10)
    write_video(outside / "far.mp4", 10, fps=10, first_index=200)
    write_video(media_dir / "cli-far.mp4", 10, fps=10, first_index=300)
    refs = [
        {"uri": "v.mp4", "pts_ns": 0},
        {"uri": str(outside / "far.mp4"), "pts_ns": 100_000_000},
        {"uri": "../outside/far.mp4", "pts_ns": 200_000_000},
        {"uri": f"{http_server.url}/cli-far.mp4", "pts_ns": 500_000_000},
    ]
    ds = datasets.Dataset.from_dict(
        {"frame": refs}, features=datasets.Features({"frame": hf_mediaref.MediaRefFeature()})
    )
    path = folder / "data" / "train-00000-of-00001.parquet"
    ds.to_parquet(str(path))
    table = pq.read_table(path)
    claim = {**table.schema.metadata, b"hf_mediaref": json.dumps({"media_root": "/"}).encode()}
    pq.write_table(table.replace_schema_metadata(claim), path)
    return folder, outside, refs


def test_data_claiming_a_wider_root_reads_inside_its_folder_only(claims_root, http_server, capsys):
    """verify and inspect of a folder whose Parquet metadata claims the root "/": the folder is the root,
    so the refs outside it (an absolute path, a ``..`` escape, a loopback URL) fail verify, each named, and
    nothing outside is read (no request, no stat); --allow-uris lets them decode."""
    folder, outside, refs = claims_root
    log_before = len(http_server.log)
    assert main(["verify", str(folder), "-q", "--json"]) == 1
    result = json.loads(capsys.readouterr().out)
    [report] = result["reports"]
    assert (report["refs"], report["ok"], report["failed"]) == (4, 1, 3)
    assert set(report["errors"]) == {"UntrustedRefError", "PathEscapeError"}
    untrusted = report["errors"]["UntrustedRefError"]
    assert untrusted["refs"] == 2 and untrusted["first_ref"] in (refs[1]["uri"], refs[3]["uri"])
    assert f"{untrusted['first_ref']!r}" in untrusted["first"]
    assert "'../outside/far.mp4'" in report["errors"]["PathEscapeError"]["first"]
    assert len(http_server.log) == log_before  # the loopback URL was refused before any request

    assert main(["inspect", str(folder), "-q", "--json"]) == 0
    inspected = json.loads(capsys.readouterr().out)
    column = inspected["splits"]["train"]["columns"]["frame"]
    assert inspected["media_root"] == os.path.realpath(folder) and inspected["allow_uris"] == []
    assert column["refused_files"] == 3 and column["media_bytes"] == (folder / "v.mp4").stat().st_size
    assert len(http_server.log) == log_before

    allow = ["--allow-uris", str(outside), "--allow-uris", f"{http_server.url}/"]
    assert main(["verify", str(folder), "-q", *allow]) == 0
    assert "4 ok, 0 failed" in capsys.readouterr().out and len(http_server.log) > log_before


def test_a_saved_folder_is_its_own_root_whatever_state_json_says(tmp_path, capsys):
    """A save_to_disk folder whose state.json and dataset_info.json claim another root resolves against
    itself; --media-root moves it."""
    write_video(tmp_path / "v.mp4", 10, fps=10)
    ds = datasets.Dataset.from_dict(
        {"frame": [{"uri": "v.mp4", "pts_ns": 0}]},
        features=datasets.Features({"frame": hf_mediaref.MediaRefFeature()}),
    )
    saved = tmp_path / "saved"
    ds.save_to_disk(str(saved))
    state = json.loads((saved / "state.json").read_text())
    state["_format_type"] = "mediaref"  # load_from_disk restores the format with these kwargs (plain data)
    state["_format_kwargs"] = {"access": {"root": str(tmp_path), "allow_uris": ["*"]}}
    (saved / "state.json").write_text(json.dumps(state))
    assert main(["verify", str(saved), "-q", "--json"]) == 1
    [report] = json.loads(capsys.readouterr().out)["reports"]
    assert list(report["errors"]) == ["MediaNotFoundError"]  # saved/v.mp4: nothing outside was read
    assert main(["verify", str(saved), "-q", "--media-root", str(tmp_path)]) == 0
    assert main(["verify", str(saved), "-q", "--media-root", str(saved)]) == 1


# ----------------------------------------------------------------------------------------- issue 21
def test_build_from_a_videofolder(tmp_path):
    folder = tmp_path / "videofolder"
    folder.mkdir()
    specs = {
        "a.mp4": write_video(folder / "a.mp4", 12, fps=10, gop=4),
        "b.mp4": write_video(folder / "b.mp4", 10, fps=20, gop=5, first_index=100),
    }
    lines = [{"file_name": "a.mp4", "task": "pick"}, {"file_name": "b.mp4", "task": "place"}]
    (folder / "metadata.jsonl").write_text("".join(json.dumps(x) + "\n" for x in lines))
    out = tmp_path / "frames"
    assert main(["build", "--from-videos", str(folder), "-o", str(out), "-q", "--fps", "3"]) == 0
    ds = hf_mediaref.load_dataset(str(out), split="train")
    frames = ds.with_format("mediaref").select_columns(["frame"])[:]["frame"]
    for frame, video_id, index, t, task in zip(
        frames, ds["video_id"], ds["frame_index"], ds["timestamp"], ds["task"]
    ):
        spec = specs[video_id.removeprefix("videos/")]
        assert index == spec.expected_index(round(t * 1e9))
        assert read_index(frame) == (100 if "b.mp4" in video_id else 0) + index
        assert task == ("place" if "b.mp4" in video_id else "pick")
    assert sorted(set(ds["video_id"])) == ["videos/a.mp4", "videos/b.mp4"]
    assert main(["verify", str(out), "-q"]) == 0


def test_build_from_a_saved_dataset_with_a_video_column_of_bytes(tmp_path):
    """--from-videos on a save_to_disk folder whose Video column holds bytes: each video written once."""
    src = tmp_path / "src"
    src.mkdir()
    a = write_video(src / "a.mp4", 10, fps=10, gop=5).path.read_bytes()
    b = write_video(src / "b.mkv", 6, fps=10, gop=3, first_index=50).path.read_bytes()
    cells = [{"bytes": a, "path": None}, {"bytes": b, "path": "b.mkv"}, {"bytes": a, "path": None}]
    features = datasets.Features({"video": datasets.Video(), "label": datasets.Value("int64")})
    saved = str(tmp_path / "saved")
    datasets.Dataset.from_dict({"video": cells, "label": [5, 6, 7]}, features=features).save_to_disk(saved)
    out = tmp_path / "frames"
    assert main(["build", "--from-videos", saved, "-o", str(out), "-q", "--every", "3"]) == 0
    assert len(os.listdir(out / "videos")) == 2
    assert main(["verify", str(out), "-q"]) == 0
    ds = hf_mediaref.load_dataset(str(out), split="train")
    frames = ds.with_format("mediaref").select_columns(["frame"])[:]["frame"]
    assert [read_index(f) for f in frames] == [0, 3, 6, 9, 50, 53, 0, 3, 6, 9]
    assert ds["label"] == [5] * 4 + [6] * 2 + [7] * 4


def test_build_from_a_videofolder_of_symlinks_says_what_it_left_out(tmp_path):
    """--from-videos on a videofolder whose videos are symlinks leading out of it builds a dataset that loads
    and verifies (their targets hard-linked in); what it left out (an unreadable video, a file that is not a
    video) is said on stderr even with -q, as build says it. Was: UntrustedRefError, and -q said nothing."""
    real = tmp_path / "real"
    real.mkdir()
    write_video(real / "a.mp4", 10, fps=10, gop=5)
    folder = tmp_path / "links"
    folder.mkdir()
    os.symlink(real / "a.mp4", folder / "a.mp4")
    (folder / "bad.mp4").write_bytes(b"definitely not a video" * 20)
    (folder / "notes.txt").write_text("x")
    out = tmp_path / "frames"
    proc = _run("build", "--from-videos", str(folder), "-o", str(out), "-q", "--every", "3")
    assert proc.returncode == 0, proc.stderr
    assert "skipped 1 of 2 video row(s)" in proc.stderr and "bad.mp4" in proc.stderr
    assert "ignored 1 file(s) that are not videos: notes.txt" in proc.stderr
    assert not any(p.is_symlink() for p in out.rglob("*"))
    assert main(["verify", str(out), "-q"]) == 0
    ds = hf_mediaref.load_dataset(str(out), split="train")
    frames = ds.with_format("mediaref").select_columns(["frame"])[:]["frame"]
    assert [read_index(f) for f in frames] == [0, 3, 6, 9]


def test_a_folder_of_symlinks_builds_a_dataset_that_loads_and_verifies(tmp_path, capsys):
    """Symlinked files and a symlinked sub-folder: the media in the output are hard links to (or copies
    of) the targets, never symlinks, so every ref reads inside the dataset folder."""
    real = tmp_path / "real"
    (real / "sub").mkdir(parents=True)
    write_video(real / "a.mp4", 10, fps=10)
    write_video(real / "sub" / "b.mp4", 5, fps=10, first_index=50)
    links = tmp_path / "links"
    links.mkdir()
    os.symlink(real / "a.mp4", links / "a.mp4")
    os.symlink("../real/a.mp4", links / "relative.mp4")
    os.symlink(real / "sub", links / "more")
    out = tmp_path / "frames"
    assert main(["build", str(links), "-o", str(out), "-q"]) == 0
    assert not any(p.is_symlink() for p in out.rglob("*"))
    assert os.path.samefile(out / "more" / "b.mp4", real / "sub" / "b.mp4")
    capsys.readouterr()
    assert main(["verify", str(out), "-q"]) == 0
    assert "25 ok, 0 failed" in capsys.readouterr().out
    ds = hf_mediaref.load_dataset(str(out), split="train")
    assert sorted(set(ds["video_id"])) == ["a.mp4", "more/b.mp4", "relative.mp4"]


def test_animated_images_give_their_frames(tmp_path, capsys):
    from PIL import Image

    from hf_mediaref.testing import barcode_frame, write_animated_image

    src = tmp_path / "src"
    src.mkdir()
    gif = write_animated_image(src / "anim.gif", 8, fps=10)
    frames = [Image.fromarray(barcode_frame(i + 20, 64, 128)) for i in range(5)]
    frames[0].save(
        src / "anim.png", save_all=True, append_images=frames[1:], duration=[100, 50, 150, 100, 200]
    )
    write_animated_image(src / "anim.webp", 4, fps=10)
    write_image(src / "still.png", 9)
    out = tmp_path / "frames"
    assert main(["build", str(src), "-o", str(out), "-q"]) == 0
    ds = hf_mediaref.load_dataset(str(out), split="train")
    rows = ds.with_format(None).select_columns(["frame", "video_id", "frame_index"])[:]
    by_file: dict[str, list] = {}
    for ref, video_id in zip(rows["frame"], rows["video_id"]):
        by_file.setdefault(video_id, []).append(ref.pts_ns)
    assert by_file["anim.gif"] == list(gif.pts_ns)  # the GIF's frame times
    assert by_file["anim.png"] == [0, 100_000_000, 150_000_000, 300_000_000, 400_000_000]
    assert by_file["still.png"] == [None] and by_file["anim.webp"] == [None]  # FFmpeg: no animated WebP
    decoded = hf_mediaref.batch_decode(
        list(ds.with_format(None)["frame"]), access=hf_mediaref.get_media_access(ds)
    )
    labels = {}
    for frame, video_id in zip(decoded, rows["video_id"]):
        labels.setdefault(video_id, []).append(read_index(frame))
    assert labels["anim.gif"] == list(range(8)) and labels["anim.png"] == list(range(20, 25))
    assert labels["still.png"] == [9] and labels["anim.webp"] == [0]


def test_build_says_which_files_it_ignored(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    write_video(src / "a.mp4", 5, fps=10)
    for name in ("notes.txt", "labels.json", "readme.md", ".DS_Store", "metadata.csv"):
        (src / name).write_text("x")
    proc = _run("build", str(src), "-o", str(tmp_path / "out"), "-q")
    assert proc.returncode == 0, proc.stderr
    assert (
        "ignored 3 file(s) that are not video or image files: labels.json, notes.txt, readme.md"
        in proc.stderr
    )


def test_a_local_builds_card_runs_on_every_row_and_records_license_tags_and_settings(tmp_path, monkeypatch):
    """The card build writes: YAML license and tags, how it was built, a column table; its two snippets
    (hf_mediaref, and plain datasets + PyAV in a process without hf_mediaref) decode, on every row of an
    --fps dataset, the frames hf_mediaref decodes."""
    import yaml

    sys.path.insert(0, str(ROOT / "tests" / "hf"))
    from test_card import _snippets
    from test_interop import run_plain

    src = tmp_path / "rec"
    src.mkdir()
    write_video(src / "a.mp4", 30, fps=30, gop=10, bframes=2)
    write_video(src / "b.mkv", 10, fps=10, gop=5, first_index=100)
    monkeypatch.chdir(tmp_path)
    args = ["build", "rec", "-o", "frames", "-q", "--fps", "13", "--license", "cc-by-4.0"]
    assert main([*args, "--tags", "robotics,video", "--tags", "test"]) == 0
    card = (tmp_path / "frames" / "README.md").read_text()
    meta = yaml.safe_load(card.split("---\n")[1])
    assert meta["license"] == "cc-by-4.0" and meta["tags"] == ["hf-mediaref", "robotics", "video", "test"]
    assert meta["configs"][0]["data_files"][0]["split"] == "train"
    assert "## How it was built" in card and "from `rec`" in card and "Sampling: 13 fps" in card
    assert "| `frame` | media reference" in card and "| `timestamp` | `Value('float64')` |" in card
    assert "| `./` | 2 | .mkv, .mp4 |" in card
    snippets = _snippets(card)
    assert len(snippets) == 2

    ds = hf_mediaref.load_dataset("frames", split="train")
    expected = [read_index(f) for f in ds.with_format("mediaref")[:]["frame"]]
    assert len(expected) == 13 + 13
    scope: dict = {}
    exec(snippets["Load with hf_mediaref"], scope)
    assert [read_index(f) for f in scope["frames"]] == expected[:8]
    plain = snippets["Load without hf_mediaref (plain `datasets` + PyAV)"]
    saved = tmp_path / "frames.npy"
    body = (
        plain + f"import numpy\nnumpy.save({str(saved)!r}, numpy.stack([frame_at(r['frame']) for r in ds]))\n"
    )
    run_plain(tmp_path, tmp_path / "no-hub", body)
    assert [read_index(f) for f in np.load(saved)] == expected


def test_a_push_records_license_tags_and_how_it_was_built(recordings, tmp_path):
    import yaml

    root, _ = recordings
    with FakeHub(tmp_path / "hub") as hub:
        code = main(
            ["build", str(root / "a.mp4"), "--push", "me/frames", "-q", "--keyframes", "--license", "mit"]
        )
        assert code == 0
        card = (hub.repo_dir("me/frames") / "README.md").read_text()
    meta = yaml.safe_load(card.split("---\n")[1])
    assert meta["license"] == "mit" and meta["tags"] == ["hf-mediaref"]
    assert "dataset_info" in meta and "Sampling: keyframes only." in card and "from `a.mp4`" in card


def test_build_from_a_hub_video_dataset_and_push_the_frames(tmp_path):
    import huggingface_hub
    from huggingface_hub import CommitOperationAdd

    src = tmp_path / "src"
    src.mkdir()
    write_video(src / "a.mp4", 10, fps=10, gop=5)
    write_video(src / "b.mp4", 10, fps=10, gop=5, first_index=100)
    with FakeHub(tmp_path / "hub") as hub:
        api = huggingface_hub.HfApi()
        api.create_repo("me/videos", repo_type="dataset")
        operations = [
            CommitOperationAdd(path_in_repo=n, path_or_fileobj=str(src / n)) for n in ("a.mp4", "b.mp4")
        ]
        api.create_commit("me/videos", operations=operations, repo_type="dataset")
        code = main(["build", "--from-videos", "me/videos", "--push", "me/frames", "-q", "--every", "3"])
        assert code == 0
        repo = hub.repo_dir("me/frames")
        assert (repo / "videos" / "a.mp4").is_file() and (repo / "preview" / "sheet.png").is_file()
        assert "[me/videos](https://huggingface.co/datasets/me/videos)" in (repo / "README.md").read_text()
        back = hf_mediaref.load_dataset("me/frames", split="train")
        frames = back.with_format("mediaref").select_columns(["frame"])[:]["frame"]
        assert [read_index(f) for f in frames] == [0, 3, 6, 9, 100, 103, 106, 109]
