"""``from_lerobot``: a LeRobot dataset (format v3.0, or v2.1) as a ``datasets`` table of frame references.

LeRobot v3 keeps the per-frame data in ``data/chunk-XXX/file-XXX.parquet`` and the camera streams in
``videos/<camera>/chunk-XXX/file-XXX.mp4``, several episodes per video file, one after the other. Where
episode ``e`` starts in its file is ``videos/<camera>/from_timestamp`` in ``meta/episodes/...parquet``;
frame ``frame_index`` of that episode is shown at ``from_timestamp + frame_index / fps`` in the file. v2.1
has one video per episode (``meta/episodes.jsonl``, each episode starts at 0).

LeRobot decodes the frame *nearest* the query time and refuses one further than ``tolerance_s`` (1e-4 s)
away. The time is computed here in float64 from ``frame_index / fps`` (the stored ``timestamp`` is float32,
which drifts a whole 1/15360 s tick below the frame after ~1000 s); with ``snap=True`` (the default) each
video's keyframe index is read (a demux scan, no decoding) and the ref stores the exact pts of that nearest
frame, so the ref decodes to the very frame LeRobot returns, and a frame LeRobot would refuse is an error here
too. ``snap=False`` touches no video (fast for large remote datasets) and stores the computed time: the
playback rule then returns the frame on screen at that time, the same frame whenever the file's timestamps
are not above the computed ones by more than the playback tolerance.
"""

from __future__ import annotations

import json
import logging
import os
import posixpath
import re
from collections.abc import Sequence
from typing import Any

import numpy as np
import pyarrow as pa

from .._fields import NS_PER_SECOND
from ..arrow import STORAGE_TYPE, resolve_uri
from ..errors import FrameOutOfRangeError, MediaNotFoundError, describe_uri
from ..video import PyAVVideoDecoder
from ._compat import dataset_from_arrow
from ._feature import MediaRefFeature
from ._roots import set_media_root

__all__ = ["LEROBOT_TOLERANCE_S", "from_lerobot"]

logger = logging.getLogger(__name__)

#: LeRobot's default ``tolerance_s``: the nearest frame must be this close to the query time.
LEROBOT_TOLERANCE_S = 1e-4

_HUB = re.compile(r"^(?:hf://datasets/)?([A-Za-z0-9][\w.-]*/[\w.-]+?)(?:@([^/]+))?/?$")


# ----------------------------------------------------------------------------------------- reading files
class _Repo:
    """Read access to a LeRobot dataset's files, local or on the Hub (pinned to one commit)."""

    def __init__(self, path_or_repo: str | os.PathLike[str], revision: str | None, token: Any):
        import fsspec

        path = os.fspath(path_or_repo)
        if os.path.isdir(path):
            self.root = os.path.abspath(path)
            self.fs = fsspec.filesystem("file")
            self.base = self.root
            return
        match = _HUB.match(path)
        if match is None:
            raise MediaNotFoundError(
                f"no LeRobot dataset at {describe_uri(path)}: not a folder or a repo id", uri=path
            )
        import huggingface_hub

        from ._compat import config

        repo_id, rev = match.group(1), match.group(2) or revision
        sha = (
            huggingface_hub.HfApi(endpoint=config.HF_ENDPOINT, token=token)
            .dataset_info(repo_id, revision=rev)
            .sha
        )
        self.root = f"hf://datasets/{repo_id}@{sha}/"
        self.fs = fsspec.filesystem("hf", token=token)
        self.base = f"datasets/{repo_id}@{sha}"

    def _path(self, rel: str) -> str:
        return (
            posixpath.join(self.base, rel)
            if self.base.startswith("datasets/")
            else os.path.join(self.base, rel)
        )

    def exists(self, rel: str) -> bool:
        return bool(self.fs.exists(self._path(rel)))

    def read_text(self, rel: str) -> str:
        with self.fs.open(self._path(rel), "rb") as f:
            return f.read().decode("utf-8")

    def read_parquet(self, rel: str) -> pa.Table:
        import pyarrow.parquet as pq

        with self.fs.open(self._path(rel), "rb") as f:
            return pq.read_table(f)

    def parquet_files(self, folder: str) -> list[str]:
        """Parquet files under ``folder`` (relative paths, sorted)."""
        base = self._path(folder)
        if not self.fs.exists(base):
            return []
        found = [p for p in self.fs.find(base) if p.endswith(".parquet")]
        prefix = self._path("")
        return sorted(posixpath.relpath(p.replace(os.sep, "/"), prefix.replace(os.sep, "/")) for p in found)


def _concat(tables: Sequence[pa.Table]) -> pa.Table:
    if len(tables) == 1:
        return tables[0]
    try:
        return pa.concat_tables(tables, promote_options="default")
    except TypeError:  # pyarrow < 14
        return pa.concat_tables(tables, promote=True)


# ----------------------------------------------------------------------------------------- metadata
def _episodes(repo: _Repo, info: dict, video_keys: list[str]) -> dict[str, dict[int, tuple[str, float]]]:
    """For each camera: episode index -> (video path in the repo, where the episode starts in it, seconds)."""
    version = str(info.get("codebase_version", ""))
    template = info.get("video_path")
    if not template:
        raise ValueError("meta/info.json has no video_path although the dataset has video features")
    out: dict[str, dict[int, tuple[str, float]]] = {key: {} for key in video_keys}
    if version.startswith("v2"):
        chunks_size = int(info.get("chunks_size", 1000))
        for line in repo.read_text("meta/episodes.jsonl").splitlines():
            if not line.strip():
                continue
            ep = int(json.loads(line)["episode_index"])
            for key in video_keys:
                path = template.format(episode_chunk=ep // chunks_size, video_key=key, episode_index=ep)
                out[key][ep] = (path, 0.0)
        return out
    files = repo.parquet_files("meta/episodes")
    if not files:
        raise MediaNotFoundError(f"no meta/episodes/*.parquet in {describe_uri(repo.root)}", uri=repo.root)
    for rel in files:
        table = repo.read_parquet(rel)
        episodes = table.column("episode_index").to_pylist()
        for key in video_keys:
            chunk = table.column(f"videos/{key}/chunk_index").to_pylist()
            file = table.column(f"videos/{key}/file_index").to_pylist()
            start = table.column(f"videos/{key}/from_timestamp").to_pylist()
            for ep, c, f, s in zip(episodes, chunk, file, start):
                out[key][int(ep)] = (template.format(video_key=key, chunk_index=c, file_index=f), float(s))
    return out


def _tasks(repo: _Repo, version: str) -> dict[int, str] | None:
    """task_index -> task text, or None when the dataset has no task list."""
    if version.startswith("v2"):
        if not repo.exists("meta/tasks.jsonl"):
            return None
        rows = [json.loads(line) for line in repo.read_text("meta/tasks.jsonl").splitlines() if line.strip()]
        return {int(r["task_index"]): str(r["task"]) for r in rows}
    if not repo.exists("meta/tasks.parquet"):
        return None
    table = repo.read_parquet("meta/tasks.parquet")
    text = [
        n for n in table.column_names if n != "task_index" and pa.types.is_string(table.schema.field(n).type)
    ]
    if "task_index" not in table.column_names or not text:
        return None
    return dict(zip(table.column("task_index").to_pylist(), table.column(text[0]).to_pylist()))


# ----------------------------------------------------------------------------------------- refs
def _nearest_pts(
    uri: str, resolved: str, times_s: np.ndarray, tolerance_s: float, storage_options: dict | None
) -> np.ndarray:
    """The exact pts (ns) of the frame nearest each time in ``resolved``; FrameOutOfRangeError beyond
    ``tolerance_s``."""
    with PyAVVideoDecoder(resolved, storage_options=storage_options) as decoder:
        pts = decoder.frame_pts_ns
    wanted = times_s * NS_PER_SECOND
    right = (
        np.clip(np.searchsorted(pts, wanted), 1, len(pts) - 1) if len(pts) > 1 else np.zeros(len(wanted), int)
    )
    left = np.maximum(right - 1, 0)
    pick = np.where(np.abs(pts[left] - wanted) <= np.abs(pts[right] - wanted), left, right)
    distance = np.abs(pts[pick] - wanted) / NS_PER_SECOND
    bad = np.flatnonzero(distance > tolerance_s)
    if bad.size:
        i = int(bad[0])
        raise FrameOutOfRangeError(
            f"{describe_uri(uri)}: no frame within {tolerance_s} s of {times_s[i]:.6f} s (nearest at "
            f"{pts[pick[i]] / NS_PER_SECOND:.6f} s); {bad.size} such time(s) in this video",
            uri=uri,
        )
    return pts[pick].astype(np.int64)


def _ref_column(
    repo: _Repo,
    videos: dict[int, tuple[str, float]],
    episode: np.ndarray,
    frame_index: np.ndarray,
    fps: float,
    *,
    snap: bool,
    tolerance_s: float,
    storage_options: dict | None,
) -> pa.StructArray:
    missing = sorted(set(np.unique(episode).tolist()) - set(videos))
    if missing:
        raise ValueError(f"episodes {missing[:5]} have rows but no video entry in the episode metadata")
    paths = sorted({p for p, _ in videos.values()})
    code_of = {p: i for i, p in enumerate(paths)}
    ep_ids = np.array(sorted(videos), dtype=np.int64)
    ep_code = np.array([code_of[videos[e][0]] for e in ep_ids], dtype=np.int32)
    ep_start = np.array([videos[e][1] for e in ep_ids], dtype=np.float64)
    where = np.searchsorted(ep_ids, episode)
    codes = ep_code[where]
    times = ep_start[where] + frame_index.astype(np.float64) / fps  # float64, not the float32 timestamps
    if snap:
        pts_ns = np.empty(len(times), np.int64)
        for code, path in enumerate(paths):
            rows = np.flatnonzero(codes == code)
            if rows.size:
                resolved = resolve_uri(path, repo.root)
                pts_ns[rows] = _nearest_pts(path, resolved, times[rows], tolerance_s, storage_options)
    else:
        pts_ns = np.round(times * NS_PER_SECOND).astype(np.int64)
    uris = pa.DictionaryArray.from_arrays(pa.array(codes, pa.int32()), pa.array(paths, pa.string()))
    return pa.StructArray.from_arrays(
        [uris.cast(pa.string()), pa.array(pts_ns, pa.int64())], fields=list(STORAGE_TYPE)
    )


def from_lerobot(
    path_or_repo: str | os.PathLike[str],
    *,
    revision: str | None = None,
    episodes: Sequence[int] | None = None,
    snap: bool = True,
    tolerance_s: float = LEROBOT_TOLERANCE_S,
    token: Any = None,
    storage_options: dict | None = None,
) -> Any:
    """A LeRobot dataset (format v3.0 or v2.1) as a ``datasets.Dataset`` of frame references: one row per
    frame, every non-video column kept, one :class:`MediaRefFeature` column per camera (named like the
    camera key, e.g. ``observation.images.top``) and a ``task`` column (the task text) when the dataset lists
    tasks. Nothing is decoded; the media root is the LeRobot dataset's root, so the refs resolve wherever it
    is.

    Each camera ref decodes to the frame LeRobot's own decoder returns for that row: the frame nearest
    ``from_timestamp + frame_index / fps`` in the episode's video file (see the module notes on ``snap``).

    Args:
        path_or_repo: a local LeRobot dataset folder, a Hub repo id ``"org/name"`` or
            ``"hf://datasets/org/name[@revision]"``.
        revision: the Hub revision (branch, tag or commit); the load is pinned to its commit.
        episodes: only these episode indices (as LeRobotDataset's ``episodes=``); default all.
        snap: read each video's index and store the exact pts of the nearest frame (default), refusing one
            further than ``tolerance_s`` like LeRobot does; ``False`` reads no video and stores the computed
            times.
        tolerance_s: how far the nearest frame may be from the computed time (LeRobot's default 1e-4 s).
        token: a Hub token.
        storage_options: fsspec options for reading the videos while snapping.

    Returns:
        A ``datasets.Dataset`` with its media root set.

    Raises:
        MediaNotFoundError: no LeRobot dataset there, or a video file is missing.
        FrameOutOfRangeError: a video has no frame within ``tolerance_s`` of a row's time (``snap=True``).
        ValueError: the metadata is inconsistent (rows of an episode with no video entry, no ``fps``).

    Example:
        ```python
        >>> import hf_mediaref
        >>> ds = hf_mediaref.from_lerobot("lerobot/pusht")
        >>> ds[0]["observation.image"]
        MediaRef(uri='hf://datasets/lerobot/pusht@<sha>/videos/observation.image/chunk-000/file-000.mp4',
        pts_ns=0)
        >>> frames = ds.with_format("mediaref", output="torch", channels_first=True)[:8]
        ```
    """
    from datasets import Features

    repo = _Repo(path_or_repo, revision, token)
    if not repo.exists("meta/info.json"):
        raise MediaNotFoundError(
            f"no meta/info.json in {describe_uri(repo.root)}: not a LeRobot dataset", uri=repo.root
        )
    info = json.loads(repo.read_text("meta/info.json"))
    fps = info.get("fps")
    if not fps:
        raise ValueError("meta/info.json has no fps")
    version = str(info.get("codebase_version", "v3.0"))
    video_keys = [k for k, v in info.get("features", {}).items() if v.get("dtype") == "video"]
    files = repo.parquet_files("data")
    if not files:
        raise MediaNotFoundError(f"no data/*.parquet in {describe_uri(repo.root)}", uri=repo.root)
    table = _concat([repo.read_parquet(rel) for rel in files])
    if episodes is not None:
        import pyarrow.compute as pc

        wanted = pa.array(sorted({int(e) for e in episodes}), pa.int64())
        table = table.filter(pc.is_in(table.column("episode_index").cast(pa.int64()), value_set=wanted))
    if "index" in table.column_names:
        table = table.sort_by("index")
    features = dict(Features.from_arrow_schema(table.schema))
    episode = table.column("episode_index").to_numpy().astype(np.int64)
    frame_index = table.column("frame_index").to_numpy().astype(np.int64)
    tasks = _tasks(repo, version) if "task_index" in table.column_names else None
    if tasks is not None and "task" not in table.column_names:
        task_index = table.column("task_index").to_pylist()
        table = table.append_column("task", pa.array([tasks.get(t) for t in task_index], pa.string()))
        from datasets import Value

        features["task"] = Value("string")
    camera_videos = _episodes(repo, info, video_keys) if video_keys else {}
    for key in video_keys:
        column = _ref_column(
            repo,
            camera_videos[key],
            episode,
            frame_index,
            float(fps),
            snap=snap,
            tolerance_s=tolerance_s,
            storage_options=storage_options,
        )
        table = table.append_column(key, column)
        features[key] = MediaRefFeature()
    ds = dataset_from_arrow(table.replace_schema_metadata(None), Features(features))
    set_media_root(ds, repo.root)
    logger.info("LeRobot %s dataset %s: %d frames, cameras %s", version, repo.root, len(ds), video_keys)
    return ds
