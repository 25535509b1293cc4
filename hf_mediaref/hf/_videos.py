"""``from_videos``: a dataset of whole videos (a ``datasets.Video`` column of paths or bytes, a Hub video
dataset, or a videofolder) as a dataset of frames, one row per sampled frame.

Each distinct video (by path, or by content for bytes) is written once into ``out_dir/<media_dir>/`` (a hard
link to a local file where possible, else a copy; bytes written as they are, nothing re-encoded), its keyframe
index read (a demux scan, nothing decoded) and its frames sampled with the same rule as ``hf-mediaref build``
(:class:`~hf_mediaref.video._sampling.FrameSampling`). Each frame row keeps the other columns of its video's
row and adds the ref (relative to ``out_dir``), ``video_id`` (the media file), ``video_index`` (the source
row), ``frame_index`` and ``timestamp``. The result's media root is ``out_dir``: saved there
(``save_to_disk``) or written by ``hf-mediaref build --from-videos``, it loads inside that folder's trust
boundary.

What the videos may be read from is the caller's :class:`~hf_mediaref.MediaAccess` (``access=``), never the
data: a folder reads inside itself, a Hub dataset inside the caches ``datasets`` downloads to, a ``Dataset``
object the caller hands over is trusted as theirs unless an access is given.
"""

from __future__ import annotations

import hashlib
import logging
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pyarrow as pa

from ..arrow import STORAGE_TYPE
from ..errors import MediaDecodeError, MediaNotFoundError, MediaRefError, UntrustedRefError, describe_uri
from ..io import MediaAccess, UriKind, classify_uri, local_path, place_file, read_bytes, walk_folder
from ..video import FrameSampling, sample_video
from ._compat import dataset_from_arrow
from ._feature import MediaRefFeature
from ._roots import set_media_access

__all__ = ["from_videos"]

#: The log of what from_videos did and left out; ``hf-mediaref build --from-videos -q`` keeps its warnings.
logger = logging.getLogger("hf_mediaref.from_videos")

#: The columns ``from_videos`` adds besides the frame column.
ADDED_COLUMNS = ("video_id", "video_index", "frame_index", "timestamp")

# container format (PyAV's first name) -> file extension, for videos given as bytes without a name
_EXTENSIONS = {
    "mov": ".mp4",
    "matroska": ".mkv",
    "gif": ".gif",
    "avi": ".avi",
    "mpegts": ".ts",
    "apng": ".png",
}
_SAVED_MARKERS = ("dataset_info.json", "state.json", "dataset_dict.json")
_METADATA_FILES = frozenset({"metadata.jsonl", "metadata.json", "metadata.csv", "metadata.parquet"})


# ----------------------------------------------------------------------------------------- sources
def _hub_caches() -> list[str]:
    """The folders ``datasets`` puts a Hub dataset's files in (the Hub cache and its downloads folder)."""
    from huggingface_hub import constants

    from ._compat import config

    return [os.path.realpath(constants.HF_HUB_CACHE), os.path.realpath(config.DOWNLOADED_DATASETS_PATH)]


class _Folder:
    """What a local folder holds for ``from_videos``, from one walk that follows symlinked sub-folders (each
    real folder once), as ``hf-mediaref build`` walks its sources."""

    def __init__(self, folder: str):
        from datasets.packaged_modules.videofolder.videofolder import VideoFolder

        extensions = {e.lower() for e in VideoFolder.EXTENSIONS}
        self.videos = 0
        #: the real folders of the videos reached through a symlink leading out of ``folder``
        self.outside: set[str] = set()
        self.linked_out = 0
        #: files that are neither videos nor metadata (hidden ones aside): the videofolder leaves them out
        self.ignored: list[str] = []
        for dirpath, filenames in walk_folder(folder):
            for name in filenames:
                if os.path.splitext(name)[1].lower() not in extensions:
                    if not name.startswith(".") and name not in _METADATA_FILES:
                        self.ignored.append(os.path.relpath(os.path.join(dirpath, name), folder))
                    continue
                self.videos += 1
                target = os.path.realpath(os.path.join(dirpath, name))
                if os.path.commonpath([folder, target]) != folder:
                    self.outside.add(os.path.dirname(target))
                    self.linked_out += 1

    def report(self) -> None:
        """Warn of the files the videofolder leaves out (the count and the first few names)."""
        if self.ignored:
            more = f", ... ({len(self.ignored) - 5} more)" if len(self.ignored) > 5 else ""
            logger.warning(
                "from_videos: ignored %d file(s) that are not videos: %s%s",
                len(self.ignored),
                ", ".join(self.ignored[:5]),
                more,
            )

    def access(self, folder: str) -> MediaAccess:
        """Reads inside ``folder`` and, where its videos are symlinks leading out of it, at their targets:
        the folder is the caller's, named by them (as ``build`` follows symlinks; other paths outside it
        stay refused). The targets are hard-linked or copied into ``out_dir``, never linked."""
        access = MediaAccess(folder)
        if not self.outside:
            return access
        logger.info(
            "from_videos: %d video(s) of the folder are symlinks leading out of it: read at their targets "
            "(in %s), hard-linked (or copied across file systems) into out_dir",
            self.linked_out,
            ", ".join(sorted(self.outside)[:5]) + (" ..." if len(self.outside) > 5 else ""),
        )
        return access.allowing(sorted(self.outside))


def _open_source(
    source: Any, split: str | None, access: MediaAccess | None, revision: str | None, token: Any
) -> tuple[Any, MediaAccess]:
    """``(Dataset or DatasetDict, access)`` for ``source``."""
    import datasets

    if isinstance(source, datasets.IterableDataset | datasets.IterableDatasetDict):
        raise TypeError("from_videos needs a map-style Dataset (load without streaming=True)")
    if isinstance(source, datasets.Dataset | datasets.DatasetDict):
        return (source[split] if split and isinstance(source, datasets.DatasetDict) else source), (
            access or MediaAccess(None, allow_uris="*")  # the caller's own object: theirs to trust
        )
    path = os.fspath(source)
    if os.path.isdir(path):
        folder = os.path.realpath(path)
        if any(os.path.exists(os.path.join(folder, m)) for m in _SAVED_MARKERS):
            loaded = datasets.load_from_disk(folder)
            if split and isinstance(loaded, datasets.DatasetDict):
                loaded = loaded[split]
            return loaded, access or MediaAccess(folder)
        held = _Folder(folder)
        if held.videos:  # a videofolder: videos and an optional metadata.jsonl/csv/parquet
            loaded = datasets.load_dataset("videofolder", data_dir=folder, split=split)
            held.report()
        else:  # a repo-style folder (Parquet files with a Video column, a card naming them)
            loaded = datasets.load_dataset(folder, split=split)
        return loaded, access or held.access(folder)
    loaded = datasets.load_dataset(path, split=split, revision=revision, token=token)
    return loaded, access or MediaAccess(None, allow_uris=_hub_caches(), token=token)


# ----------------------------------------------------------------------------------------- media files
class _MediaWriter:
    """Writes each distinct video once under ``out_dir/media_dir`` and samples it once."""

    def __init__(self, out_dir: Path, media_dir: str, sampling: FrameSampling, access: MediaAccess):
        self.out_dir, self.media_dir, self.sampling, self.access = out_dir, media_dir, sampling, access
        self.by_key: dict[str, tuple[str, Any] | BaseException] = {}
        self.names: set[str] = set()
        self.skipped: list[str] = []  #: per split, the rows left out (on_error="skip"), for the card

    def _name(self, stem: str, ext: str) -> str:
        stem = "".join(c if c.isalnum() or c in "-_." else "_" for c in stem) or "video"
        rel, n = f"{self.media_dir}/{stem}{ext}", 1
        while rel in self.names or (self.out_dir / rel).exists():
            rel, n = f"{self.media_dir}/{stem}-{n}{ext}", n + 1
        self.names.add(rel)
        return rel

    def add(self, value: dict | str) -> tuple[str, Any]:
        """``(relative path, SampledVideo)`` of one cell (``{"path", "bytes"}`` or a path).

        Raises:
            MediaRefError: the video cannot be read, is refused by the access, or cannot be indexed.
        """
        path, data = (value, None) if isinstance(value, str) else (value.get("path"), value.get("bytes"))
        if data is not None:
            key = "sha256:" + hashlib.sha256(data).hexdigest()
        elif path:
            key = self.access.resolve(path)  # checked against the access: data never widens it
        else:
            raise MediaDecodeError("a video cell with neither path nor bytes")
        known = self.by_key.get(key)
        if isinstance(known, BaseException):
            raise known
        if known is not None:
            return known
        try:
            self.by_key[key] = result = self._write_and_sample(key, path, data)
        except MediaRefError as err:
            self.by_key[key] = err
            raise
        return result

    def _write_and_sample(self, key: str, path: str | None, data: bytes | None) -> tuple[str, Any]:
        base = os.path.basename(str(path).replace("\\", "/").rstrip("/")) if path else ""
        stem, ext = os.path.splitext(base)
        if data is not None and not stem:
            stem, ext = key[7:23], _sniff_extension(data)
        rel = self._name(stem, ext.lower())
        dest = self.out_dir / rel
        dest.parent.mkdir(parents=True, exist_ok=True)
        try:
            if data is not None:
                dest.write_bytes(data)
            elif classify_uri(key) in (UriKind.LOCAL, UriKind.FILE):
                real = os.path.realpath(local_path(key))
                if not os.path.isfile(real):
                    raise MediaNotFoundError(f"no video file at {describe_uri(key)}", uri=key)
                place_file(real, dest)  # a hard link, or a copy across file systems
            else:
                dest.write_bytes(read_bytes(key, storage_options=self.access.engine_storage_options()))
            sampled = sample_video(str(dest), self.sampling)
        except BaseException:
            dest.unlink(missing_ok=True)
            self.names.discard(rel)
            raise
        return rel, sampled


def _sniff_extension(data: bytes) -> str:
    """A file extension for video bytes, from the container PyAV finds in them (``.mp4`` when unsure)."""
    import io

    import av

    try:
        with av.open(io.BytesIO(data)) as container:
            return _EXTENSIONS.get(container.format.name.split(",")[0], ".mp4")
    except Exception:  # not a container PyAV knows: indexing will say so
        return ".mp4"


# ----------------------------------------------------------------------------------------- table
def _cells(ds: Any, column: str, batch_size: int = 64) -> Iterator[Any]:
    """The column's cells in row order, a batch of Arrow rows at a time (bytes stay in Arrow until used)."""
    import datasets

    feature = ds.features[column]
    if isinstance(feature, datasets.Video):
        ds = ds.cast_column(column, datasets.Video(decode=False))
    elif not (isinstance(feature, datasets.Value) and feature.dtype in ("string", "large_string")):
        raise TypeError(
            f"column {column!r} is {feature!r}: from_videos reads a datasets.Video column (paths or "
            "bytes) or a string column of paths"
        )
    for table in ds.select_columns([column]).with_format("arrow").iter(batch_size=batch_size):
        yield from table.column(column).to_pylist()


def _cell_name(cell: Any) -> str:
    """A video cell as the source names it (its file name, or its size for bytes without a name)."""
    path, data = (cell, None) if isinstance(cell, str) else (cell.get("path"), cell.get("bytes"))
    if path:
        return os.path.basename(str(path).replace("\\", "/").rstrip("/")) or str(path)
    return f"{len(data or b'')} bytes"


def _frames_of(
    ds: Any, column: str, writer: _MediaWriter, frame_column: str, on_error: str, what: str
) -> Any:
    import datasets

    if column not in ds.column_names:
        raise TypeError(f"{what} has no column {column!r} (columns: {', '.join(ds.column_names)})")
    clash = sorted({frame_column, *ADDED_COLUMNS} & (set(ds.column_names) - {column}))
    if clash:
        raise ValueError(f"{what} already has column(s) {clash}: rename them or pass another frame_column")
    rows: list[int] = []
    uris: list[str] = []
    pts: list[np.ndarray] = []
    positions: list[np.ndarray] = []
    skipped: list[tuple[int, str]] = []
    for i, cell in enumerate(_cells(ds, column)):
        if cell is None:
            skipped.append((i, "no video"))
            continue
        try:
            rel, sampled = writer.add(cell)
        except MediaRefError as err:
            if on_error == "raise" or isinstance(err, UntrustedRefError):  # trust is never skipped past
                raise type(err)(f"{what} row {i} ({_cell_name(cell)}): {err}", uri=err.uri) from err
            skipped.append((i, f"{_cell_name(cell)}: {type(err).__name__}: {err}"))
            continue
        n = len(sampled.pts_ns)
        rows += [i] * n
        uris += [rel] * n
        pts.append(sampled.pts_ns)
        positions.append(sampled.frame_index)
    if skipped:
        writer.skipped.append(
            f"{what}: rows {', '.join(str(i) for i, _ in skipped[:10])}"
            + (" ..." if len(skipped) > 10 else "")
        )
        first = "; ".join(f"row {i}: {why[:200]}" for i, why in skipped[:5])
        more = f" (and {len(skipped) - 5} more)" if len(skipped) > 5 else ""
        logger.warning(
            "from_videos: skipped %d of %d video row(s) of %s: %s%s", len(skipped), i + 1, what, first, more
        )
    take = pa.array(rows, pa.int64())
    others = ds.remove_columns([column])
    table = others.with_format("arrow")[:] if len(others.column_names) else pa.table({})
    table = table.take(take) if table.num_columns else pa.table({})
    pts_ns = np.concatenate(pts) if pts else np.zeros(0, np.int64)
    added = {
        frame_column: pa.StructArray.from_arrays(
            [pa.array(uris, pa.string()), pa.array(pts_ns, pa.int64())], fields=list(STORAGE_TYPE)
        ),
        "video_id": pa.array(uris, pa.string()),
        "video_index": take,
        "frame_index": pa.array(
            np.concatenate(positions) if positions else np.zeros(0, np.int64), pa.int64()
        ),
        "timestamp": pa.array(pts_ns / 1e9, pa.float64()),
    }
    out = pa.table({**added, **{name: table.column(name) for name in table.column_names}})
    features = datasets.Features(
        {
            frame_column: MediaRefFeature(),
            "video_id": datasets.Value("string"),
            "video_index": datasets.Value("int64"),
            "frame_index": datasets.Value("int64"),
            "timestamp": datasets.Value("float64"),
            **{name: others.features[name] for name in table.column_names},
        }
    )
    return dataset_from_arrow(out, features)


def _description(
    source: Any, column: str, sampling: FrameSampling, videos: int, media_dir: str, skipped: list[str]
) -> str:
    """How the frames were made, for the dataset card (a folder by its name, never its local path)."""
    from .._version import __version__

    if isinstance(source, str | os.PathLike):
        path = os.fspath(source)
        named = (
            f"the folder `{os.path.basename(os.path.normpath(path))}`"
            if os.path.isdir(path)
            else f"the Hub dataset [{path}](https://huggingface.co/datasets/{path})"
        )
    else:
        named = "a `datasets` dataset"
    return (
        f"Converted with `hf_mediaref.from_videos` (hf_mediaref {__version__}) from the `{column}` column of "
        f"{named}: {videos} video(s), each stored once under `{media_dir}/`, one row per sampled frame "
        f"(`video_index` is the video's row in the source). Sampling: {sampling.describe()}."
        + (f" Left out (no video, or unreadable): {'; '.join(skipped)}." if skipped else "")
    )


def from_videos(
    source: Any,
    column: str = "video",
    *,
    out_dir: str | os.PathLike[str],
    fps: float | None = None,
    keyframes: bool = False,
    every: int | None = None,
    split: str | None = None,
    frame_column: str = "frame",
    media_dir: str = "videos",
    on_error: Literal["raise", "skip"] = "raise",
    access: MediaAccess | None = None,
    revision: str | None = None,
    token: Any = None,
) -> Any:
    """Videos as frames: one row per sampled frame of each video of ``source``, each frame a MediaRef to a
    video file written once into ``out_dir``.

    Every frame by default; ``fps=N`` the frames on screen N times a second (the rows store the sampled
    times; the frame shown then is ``frame_index``), ``keyframes=True`` keyframes only, ``every=K`` every K-th
    frame, as ``hf-mediaref build``'s ``--fps`` / ``--keyframes`` / ``--every``. Times are those a plain
    front-to-back PyAV decode shows. Each frame row keeps the other columns of its video's row and adds
    ``video_id`` (the video file, relative to ``out_dir``), ``video_index`` (the video's row in ``source``),
    ``frame_index`` (the frame's position in its video) and ``timestamp`` (seconds).

    Args:
        source: a ``datasets.Dataset`` / ``DatasetDict`` with a ``datasets.Video`` column (paths or bytes) or
            a string column of video paths; a local folder (a videofolder: videos and an optional
            ``metadata.jsonl`` / ``metadata.csv`` with a ``file_name`` column; or a ``save_to_disk`` folder);
            or a Hub dataset name (loaded with ``datasets.load_dataset``).
        column: the video column.
        out_dir: the folder the videos are written to (created if needed); the refs are relative to it and
            the result's media root is it. Save the result there (``ds.save_to_disk(out_dir)``) or push it
            (:func:`~hf_mediaref.hf.push_to_hub`).
        fps: sample the frames on screen this many times a second.
        keyframes: keyframes only.
        every: every K-th frame.
        split: the split to read (default: every split, a ``DatasetDict`` in, a ``DatasetDict`` out).
        frame_column: the name of the MediaRef column.
        media_dir: the folder under ``out_dir`` for the videos.
        on_error: ``"raise"`` (default) at the first video that cannot be read, or ``"skip"`` it (the skipped
            rows are logged as a warning: count, first few rows and why). A path the access refuses always
            raises.
        access: what the video paths may read (a :class:`~hf_mediaref.MediaAccess`). Default: a folder reads
            inside itself and at the targets of its videos that are symlinks leading out of it (as
            ``hf-mediaref build`` follows them; the targets are hard-linked or copied into ``out_dir``); a
            Hub dataset inside the caches ``datasets`` downloads to; a ``Dataset`` object is yours, so its
            paths are trusted (pass an access for one whose paths came from someone else).
        revision: the Hub revision (a Hub name only).
        token: the Hub token (a Hub name only).

    Returns:
        A ``datasets.Dataset`` (a ``DatasetDict`` for several splits) whose media root is ``out_dir``.

    Raises:
        MediaNotFoundError, MediaDecodeError: a video is missing or cannot be indexed (``on_error="raise"``).
        UntrustedRefError: a video path is outside what ``access`` allows.
        TypeError: ``column`` is not a video column, or ``source`` is an ``IterableDataset``.
        ValueError: a bad sampling choice, or ``source`` has a column named like an added one.

    Example:
        ```python
        >>> import hf_mediaref
        >>> ds = hf_mediaref.from_videos("me/my-videos", split="train", out_dir="frames/", fps=2)
        >>> ds.save_to_disk("frames/")
        >>> frames = hf_mediaref.load_from_disk("frames/").with_format("mediaref")[:8]["frame"]
        ```
    """
    import datasets

    if on_error not in ("raise", "skip"):
        raise ValueError(f"on_error must be 'raise' or 'skip', got {on_error!r}")
    sampling = FrameSampling(fps=fps, keyframes=keyframes, every=every)
    loaded, read_access = _open_source(source, split, access, revision, token)
    out = Path(out_dir).absolute()
    out.mkdir(parents=True, exist_ok=True)
    writer = _MediaWriter(out, media_dir.strip("/") or "videos", sampling, read_access)
    result_access = MediaAccess(str(out))
    if isinstance(loaded, datasets.DatasetDict):
        splits = {
            name: _frames_of(ds, column, writer, frame_column, on_error, f"split {name!r}")
            for name, ds in loaded.items()
        }
        for ds in splits.values():
            ds.info.description = _description(
                source, column, sampling, len(writer.names), media_dir, writer.skipped
            )
        return set_media_access(datasets.DatasetDict(splits), result_access)
    frames = _frames_of(loaded, column, writer, frame_column, on_error, "the dataset")
    frames.info.description = _description(
        source, column, sampling, len(writer.names), media_dir, writer.skipped
    )
    logger.info("from_videos: %d frame rows from %d video file(s) in %s", len(frames), len(writer.names), out)
    return set_media_access(frames, result_access)
