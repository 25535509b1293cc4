"""from_videos: a Video-column dataset (paths, bytes), a videofolder and a Hub video dataset as frame rows;
every frame checked against a plain front-to-back PyAV decode, the result loaded back inside its folder."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

datasets = pytest.importorskip("datasets")

import hf_mediaref  # noqa: E402
from hf_mediaref import MediaAccess  # noqa: E402
from hf_mediaref.errors import InvalidRefError, MediaDecodeError, UntrustedRefError  # noqa: E402
from hf_mediaref.testing import probe_pts_ns, read_index, write_video  # noqa: E402


@pytest.fixture(scope="module")
def videos(tmp_path_factory):
    """``a.mp4`` (12 frames at 10 fps, barcodes 0..11), ``b.mkv`` (9 frames at 15 fps, 100..108) and
    ``c.mp4`` (variable frame rate with B-frames, 200..209)."""
    root = tmp_path_factory.mktemp("videos")
    a = write_video(root / "a.mp4", 12, fps=10, gop=4)
    b = write_video(root / "b.mkv", 9, fps=15, gop=3, first_index=100)
    vfr = [0, 33, 70, 150, 151, 200, 333, 345, 400, 481]
    c = write_video(root / "c.mp4", len(vfr), pts=vfr, gop=5, bframes=2, first_index=200)
    return root, {"a.mp4": (a, 0), "b.mkv": (b, 100), "c.mp4": (c, 200)}


def _plain_expected(path, t_ns: int) -> int:
    """The frame a plain decode shows at ``t_ns``: the last frame whose (floored ns) pts <= t."""
    pts = np.asarray(probe_pts_ns(path))
    return max(int(np.searchsorted(pts, t_ns, side="right")) - 1, 0)


def _check(ds, sources: dict[str, tuple]) -> None:
    """Every row's decoded frame is the one a plain PyAV decode shows at its time; frame_index says so too."""
    frames = ds.with_format("mediaref").select_columns(["frame"])[:]["frame"]
    plain = ds.with_format(None).select_columns(["frame", "video_id", "frame_index", "timestamp"])[:]
    for frame, ref, video_id, index, t in zip(
        frames, plain["frame"], plain["video_id"], plain["frame_index"], plain["timestamp"]
    ):
        spec, offset = sources[video_id]
        expected = _plain_expected(spec.path, ref.pts_ns)
        assert index == expected and round(t * 1e9) == ref.pts_ns
        assert read_index(frame) == offset + expected


def test_a_video_column_of_paths_becomes_frame_rows_that_load_from_their_folder(videos, tmp_path):
    root, specs = videos
    source = datasets.Dataset.from_dict(
        {
            "video": [str(root / "a.mp4"), str(root / "b.mkv"), str(root / "a.mp4"), str(root / "c.mp4")],
            "label": ["cat", "dog", "cat again", "bird"],
        }
    ).cast_column("video", datasets.Video())
    out = tmp_path / "frames"
    ds = hf_mediaref.from_videos(source, out_dir=out)
    assert len(ds) == 12 + 9 + 12 + 10
    assert ds.column_names[:5] == ["frame", "video_id", "video_index", "frame_index", "timestamp"]
    assert sorted(os.listdir(out / "videos")) == ["a.mp4", "b.mkv", "c.mp4"]  # a.mp4 written once
    assert os.path.samefile(out / "videos" / "a.mp4", root / "a.mp4")  # hard-linked, not re-encoded
    rows = ds.with_format(None).select_columns(["video_id", "video_index", "label", "frame_index"])[:]
    assert rows["video_index"] == [0] * 12 + [1] * 9 + [2] * 12 + [3] * 10
    assert rows["label"][12] == "dog" and rows["label"][21] == "cat again" and rows["label"][-1] == "bird"
    assert rows["frame_index"] == list(range(12)) + list(range(9)) + list(range(12)) + list(range(10))
    # every frame's pts is the one a plain decode shows (B-frames and a variable rate included)
    pts = [r.pts_ns for r in ds.with_format(None)["frame"]]
    assert pts[:12] == probe_pts_ns(root / "a.mp4") and pts[12:21] == probe_pts_ns(root / "b.mkv")
    assert pts[33:] == probe_pts_ns(root / "c.mp4")
    ds.save_to_disk(str(out))  # the folder holds the media and the table: its own trust boundary
    back = hf_mediaref.load_from_disk(str(out))
    assert hf_mediaref.get_media_access(back).root == os.path.realpath(out)
    _check(back, {f"videos/{k}": v for k, v in specs.items()})


@pytest.mark.parametrize(
    ("sampling", "expected"),
    [
        (
            {"fps": 4},
            {"videos/a.mp4": [0, 2, 5, 7, 10], "videos/b.mkv": [0, 3, 7], "videos/c.mp4": [0, 5, 9]},
        ),
        ({"keyframes": True}, {"videos/a.mp4": [0, 4, 8], "videos/b.mkv": [0, 3, 6], "videos/c.mp4": [0, 5]}),
        ({"every": 5}, {"videos/a.mp4": [0, 5, 10], "videos/b.mkv": [0, 5], "videos/c.mp4": [0, 5]}),
    ],
)
def test_sampling_like_build(videos, tmp_path, sampling, expected):
    root, specs = videos
    source = datasets.Dataset.from_dict(
        {"video": [str(root / "a.mp4"), str(root / "b.mkv"), str(root / "c.mp4")]}
    )
    source = source.cast_column("video", datasets.Video())
    ds = hf_mediaref.from_videos(source, "video", out_dir=tmp_path / "out", **sampling)
    got: dict[str, list[int]] = {}
    for video_id, index in zip(ds["video_id"], ds["frame_index"]):
        got.setdefault(video_id, []).append(index)
    assert got == expected
    _check(ds, {f"videos/{k}": v for k, v in specs.items()})


def test_a_video_column_of_bytes_is_written_once_per_distinct_video(videos, tmp_path):
    root, specs = videos
    a, b = (root / "a.mp4").read_bytes(), (root / "b.mkv").read_bytes()
    source = datasets.Dataset.from_dict(
        {"video": [{"bytes": a, "path": None}, {"bytes": b, "path": "clip.mkv"}, {"bytes": a, "path": None}]},
        features=datasets.Features({"video": datasets.Video(decode=False)}),
    )
    ds = hf_mediaref.from_videos(source, out_dir=tmp_path / "out", every=4)
    written = sorted(os.listdir(tmp_path / "out" / "videos"))
    assert len(written) == 2 and "clip.mkv" in written
    [hashed] = [w for w in written if w != "clip.mkv"]
    assert hashed.endswith(".mp4") and (tmp_path / "out" / "videos" / hashed).read_bytes() == a
    assert ds["video_index"] == [0, 0, 0, 1, 1, 1, 2, 2, 2]
    _check(ds, {f"videos/{hashed}": specs["a.mp4"], "videos/clip.mkv": specs["b.mkv"]})


def test_a_videofolder_with_metadata_keeps_its_columns(videos, tmp_path):
    root, specs = videos
    folder = tmp_path / "videofolder"
    folder.mkdir()
    for name in ("a.mp4", "b.mkv"):
        (folder / name).write_bytes((root / name).read_bytes())
    (folder / "notes.txt").write_text("not a video")
    lines = [{"file_name": "a.mp4", "task": "pick"}, {"file_name": "b.mkv", "task": "place"}]
    (folder / "metadata.jsonl").write_text("\n".join(json.dumps(x) for x in lines) + "\n")
    ds = hf_mediaref.from_videos(str(folder), split="train", out_dir=tmp_path / "out", fps=5)
    by_video = dict(zip(ds["video_id"], ds["task"]))
    assert by_video == {"videos/a.mp4": "pick", "videos/b.mkv": "place"}
    _check(ds, {f"videos/{k}": v for k, v in specs.items()})


def test_a_videofolder_of_symlinks_reads_their_targets(videos, tmp_path, caplog):
    """A videofolder whose videos are symlinks leading out of it (absolute, relative, a symlinked sub-folder),
    as ``hf-mediaref build`` follows them: the targets are hard-linked into out_dir and the result loads and
    decodes inside its own folder. Was: UntrustedRefError on every row. A path that the folder's metadata
    names outside it is still refused."""
    root, specs = videos
    folder = tmp_path / "links"
    (folder / "more").mkdir(parents=True)
    os.symlink(root / "a.mp4", folder / "a.mp4")
    os.symlink(os.path.relpath(root / "c.mp4", folder), folder / "c.mp4")
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    (outside / "b.mkv").write_bytes((root / "b.mkv").read_bytes())
    os.symlink(outside, folder / "more" / "linked")
    lines = [
        {"file_name": "a.mp4", "task": "pick"},
        {"file_name": "c.mp4", "task": "fly"},
        {"file_name": "more/linked/b.mkv", "task": "place"},
    ]
    (folder / "metadata.jsonl").write_text("".join(json.dumps(x) + "\n" for x in lines))
    out = tmp_path / "out"
    with caplog.at_level("INFO", logger="hf_mediaref.from_videos"):
        ds = hf_mediaref.from_videos(str(folder), split="train", out_dir=out)
    assert "3 video(s) of the folder are symlinks leading out of it" in caplog.text
    assert dict(zip(ds["video_id"], ds["task"])) == {
        "videos/a.mp4": "pick",
        "videos/c.mp4": "fly",
        "videos/b.mkv": "place",
    }
    assert not any(p.is_symlink() for p in out.rglob("*"))
    assert os.path.samefile(out / "videos" / "b.mkv", outside / "b.mkv")
    ds.save_to_disk(str(out))
    _check(hf_mediaref.load_from_disk(str(out)), {f"videos/{k}": v for k, v in specs.items()})
    with pytest.raises(UntrustedRefError):  # an explicit access confines it to the folder
        hf_mediaref.from_videos(str(folder), out_dir=tmp_path / "o", access=MediaAccess(folder))


def test_a_hub_video_dataset(videos, tmp_path, fake_hub):
    import huggingface_hub
    from huggingface_hub import CommitOperationAdd

    root, specs = videos
    api = huggingface_hub.HfApi()
    api.create_repo("me/videos", repo_type="dataset")
    meta = "".join(json.dumps({"file_name": n, "label": i}) + "\n" for i, n in enumerate(("a.mp4", "b.mkv")))
    operations = [
        CommitOperationAdd(path_in_repo=f"train/{n}", path_or_fileobj=str(root / n))
        for n in ("a.mp4", "b.mkv")
    ]
    operations.append(CommitOperationAdd(path_in_repo="train/metadata.jsonl", path_or_fileobj=meta.encode()))
    api.create_commit("me/videos", operations=operations, repo_type="dataset")
    ds = hf_mediaref.from_videos("me/videos", out_dir=tmp_path / "out", every=3)
    assert set(ds) == {"train"}
    train = ds["train"]
    assert dict(zip(train["video_id"], train["label"])) == {"videos/a.mp4": 0, "videos/b.mkv": 1}
    _check(train, {f"videos/{k}": v for k, v in specs.items()})


def test_a_hub_video_dataset_with_the_videos_as_bytes_in_its_parquet(videos, tmp_path, fake_hub):
    """What datasets' own push_to_hub of a Video column uploads: the videos' bytes in the Parquet shards."""
    root, specs = videos
    source = datasets.Dataset.from_dict(
        {"video": [str(root / "a.mp4"), str(root / "b.mkv"), str(root / "a.mp4")], "label": [0, 1, 2]}
    ).cast_column("video", datasets.Video())
    try:
        source.push_to_hub("me/video-bytes")
    except NotImplementedError as exc:  # datasets 4.0 (the floor) pushes no Video column; such repos exist
        pytest.skip(f"this datasets cannot push a Video column: {exc}"[:120])
    uploaded = {p.suffix for p in fake_hub.repo_dir("me/video-bytes").rglob("*") if p.is_file()}
    assert uploaded == {".md", ".parquet"}  # no video files: bytes only
    ds = hf_mediaref.from_videos("me/video-bytes", split="train", out_dir=tmp_path / "out", every=4)
    assert sorted(os.listdir(tmp_path / "out" / "videos")) == ["a.mp4", "b.mkv"]  # a.mp4 written once
    assert ds["video_index"] == [0, 0, 0, 1, 1, 1, 2, 2, 2] and ds["label"] == ds["video_index"]
    _check(ds, {f"videos/{k}": v for k, v in specs.items()})


def test_an_animated_gif_gives_its_frames(videos, tmp_path):
    from hf_mediaref.testing import write_animated_image

    root, specs = videos
    gif = write_animated_image(tmp_path / "anim.gif", 6, fps=10)
    source = datasets.Dataset.from_dict({"video": [str(gif.path), str(root / "a.mp4")]})
    ds = hf_mediaref.from_videos(source.cast_column("video", datasets.Video()), out_dir=tmp_path / "out")
    assert ds["video_id"][:7] == ["videos/anim.gif"] * 6 + ["videos/a.mp4"]
    assert [r.pts_ns for r in ds.with_format(None)["frame"]][:6] == list(gif.pts_ns)
    _check(ds, {"videos/anim.gif": (gif, 0), "videos/a.mp4": specs["a.mp4"]})


def test_cast_column_from_a_video_column_says_to_use_from_videos(videos):
    root, _ = videos
    source = datasets.Dataset.from_dict({"video": [str(root / "a.mp4")]}).cast_column(
        "video", datasets.Video()
    )
    with pytest.raises(InvalidRefError, match="from_videos"):
        source.cast_column("video", hf_mediaref.MediaRefFeature())


def test_unreadable_videos_raise_or_are_skipped(videos, tmp_path, caplog):
    root, _ = videos
    source = datasets.Dataset.from_dict(
        {
            "video": [
                {"bytes": b"not a video" * 50, "path": "bad.mp4"},
                {"bytes": None, "path": str(root / "b.mkv")},
            ]
        },
        features=datasets.Features({"video": datasets.Video(decode=False)}),
    )
    with pytest.raises(MediaDecodeError, match=r"row 0 \(bad.mp4\)"):
        hf_mediaref.from_videos(source, out_dir=tmp_path / "raise")
    assert not (tmp_path / "raise" / "videos" / "bad.mp4").exists()
    with caplog.at_level("WARNING"):
        ds = hf_mediaref.from_videos(source, out_dir=tmp_path / "skip", on_error="skip")
    assert set(ds["video_index"]) == {1} and len(ds) == 9
    assert "skipped 1 of 2 video row(s)" in caplog.text and "row 0: bad.mp4: MediaDecodeError" in caplog.text
    assert "Left out (no video, or unreadable): the dataset: rows 0." in ds.info.description  # and the card


def test_the_access_decides_what_paths_are_read(videos, tmp_path):
    root, _ = videos
    source = datasets.Dataset.from_dict({"video": [str(root / "a.mp4")]}).cast_column(
        "video", datasets.Video()
    )
    with pytest.raises(UntrustedRefError):
        hf_mediaref.from_videos(source, out_dir=tmp_path / "out", access=MediaAccess(str(tmp_path)))
    ds = hf_mediaref.from_videos(source, out_dir=tmp_path / "ok", access=MediaAccess(str(root)))
    assert len(ds) == 12
