"""``hf-mediaref build``: videos and images (or a LeRobot dataset) -> a frame dataset.

Each file is probed on its own (in parallel, with a progress bar): a video's keyframe index gives its frames'
presentation times (a demux scan, nothing decoded), an image is opened and loaded by Pillow. A file that
cannot be read is reported and skipped (``--strict``: the command fails and writes nothing). The table is
assembled in file order (sorted relative paths), then written all at once (see ``_store``).
"""

from __future__ import annotations

import concurrent.futures
import csv
import dataclasses
import glob
import json
import logging
import os
import sys
from pathlib import Path
from typing import Any

import numpy as np

from ..io import walk_folder
from ..video import FrameSampling

logger = logging.getLogger(__name__)

__all__ = ["DESCRIPTION", "EXAMPLES", "IMAGE_EXTENSIONS", "VIDEO_EXTENSIONS", "run"]

VIDEO_EXTENSIONS = frozenset(
    {"mp4", "m4v", "mov", "mkv", "webm", "avi", "ts", "mts", "m2ts", "mpg", "mpeg", "flv", "ogv", "3gp"}
)
IMAGE_EXTENSIONS = frozenset({"png", "jpg", "jpeg", "webp", "bmp", "tif", "tiff", "gif"})

DESCRIPTION = """\
Build a frame dataset: one row per sampled frame of every video (and one per image) found in SRC.

Columns: frame (the MediaRef: the file relative to the root and the frame's presentation time), video_id (the
file's relative path), frame_index (its position in the video), timestamp (seconds), the file's codec, width,
height, fps, duration (seconds) and file_size (bytes), plus the columns of a --metadata sidecar (JSON or CSV,
one entry per file, keyed by the path relative to the root or by the file name).

The output folder is a Hub-style dataset repo (README.md, data/*.parquet and the media, linked or copied), so
hf_mediaref.load_dataset(OUT) resolves its refs and `hf-mediaref push OUT ORG/NAME` uploads it. It is written
to a temporary folder first and renamed into place: never half-written. Nothing is re-encoded."""

EXAMPLES = """\
examples:
  hf-mediaref build recordings/ -o frames/
  hf-mediaref build recordings/ -o frames/ --fps 2 --metadata recordings/labels.csv
  hf-mediaref build "sessions/*/screen.mkv" -o frames/ --every 10 --workers 8
  hf-mediaref build @files.txt -o frames/ --keyframes --strict
  hf-mediaref build recordings/ --push me/robot-frames
  hf-mediaref build --from-lerobot lerobot/pusht -o pusht/   (or a local LeRobot folder)"""

_FILE_COLUMNS = ("codec", "width", "height", "fps", "duration", "file_size")

Sampling = FrameSampling  # the --fps / --keyframes / --every options


# ----------------------------------------------------------------------------------------- sources
def _extension(path: str) -> str:
    return os.path.splitext(path)[1].lower().lstrip(".")


def _is_media(path: str) -> bool:
    ext = _extension(path)
    return ext in VIDEO_EXTENSIONS or ext in IMAGE_EXTENSIONS


_METADATA_FILES = frozenset({"metadata.jsonl", "metadata.json", "metadata.csv", "metadata.parquet"})


@dataclasses.dataclass
class Skipped:
    """Files a build left out without reading them: found in a folder or by a glob but not video or image
    files (by extension; hidden files and ``metadata.*`` not counted). Unreadable media are reported apart,
    each with its error."""

    ignored: list[str] = dataclasses.field(default_factory=list)

    def summary(self, first: int = 5) -> list[str]:
        """The count and the first few names (no line when nothing was left out)."""
        lines = []
        if self.ignored:
            names = ", ".join(os.path.basename(p) for p in self.ignored[:first])
            more = f", ... ({len(self.ignored) - first} more)" if len(self.ignored) > first else ""
            lines.append(
                f"ignored {len(self.ignored)} file(s) that are not video or image files: {names}{more}"
            )
        return lines


def collect_files(sources: list[str], skipped: Skipped | None = None) -> tuple[list[str], list[str]]:
    """``(files, folders)``: absolute paths of the media files the sources name, and the folders given.
    Folders are searched recursively, symlinked sub-folders included (each real folder once); the files in
    them that are not media go to ``skipped.ignored``.

    Raises:
        FileNotFoundError: a source matches nothing.
    """
    files: list[str] = []
    folders: list[str] = []
    ignored: list[str] = []

    def keep(paths: list[str]) -> None:
        for path in paths:
            name = os.path.basename(path)
            if _is_media(name):
                files.append(path)
            elif not name.startswith(".") and name not in _METADATA_FILES:
                ignored.append(path)

    for source in sources:
        if source.startswith("@"):
            listing = Path(source[1:])
            for line in listing.read_text(encoding="utf-8").splitlines():
                line = line.strip()
                if line and not line.startswith("#"):
                    path = Path(line) if os.path.isabs(line) else listing.parent / line
                    files.append(os.path.abspath(path))
        elif os.path.isdir(source):
            folders.append(os.path.abspath(source))
            for dirpath, filenames in walk_folder(source):
                keep([os.path.abspath(os.path.join(dirpath, f)) for f in filenames])
        elif os.path.isfile(source):
            files.append(os.path.abspath(source))
        elif glob.has_magic(source):
            matched = [os.path.abspath(p) for p in glob.glob(source, recursive=True) if os.path.isfile(p)]
            if not matched:
                raise FileNotFoundError(f"{source!r} matches no file")
            keep(matched)
        else:
            raise FileNotFoundError(f"{source!r}: no such file or folder")
    if skipped is not None:
        skipped.ignored += sorted(set(ignored))
    return sorted(set(files)), folders


def choose_root(files: list[str], folders: list[str], root: str | None) -> str:
    """The folder the refs are relative to: ``root``, else the one folder given, else the files' common
    folder.

    Raises:
        ValueError: a file lies outside ``root``.
    """
    if root is not None:
        base = os.path.abspath(root)
    elif len(folders) == 1:
        base = folders[0]
    else:
        base = os.path.commonpath([os.path.dirname(f) for f in files] + folders)
    outside = [f for f in files if os.path.commonpath([base, f]) != base]
    if outside:
        raise ValueError(f"{outside[0]} is outside the root {base} (choose another --root)")
    return base


# ----------------------------------------------------------------------------------------- probing
@dataclasses.dataclass
class Probed:
    """The rows of one file (``pts_ns`` None for an image) and its facts."""

    pts_ns: list[int | None]
    frame_index: np.ndarray
    codec: str | None
    width: int
    height: int
    fps: float | None
    duration: float | None
    file_size: int


def _sample_video(path: str, sampling: Sampling) -> Probed:
    from ..video import sample_video

    got = sample_video(path, sampling)
    return Probed(
        pts_ns=got.pts_ns.tolist(),
        frame_index=got.frame_index,
        codec=got.codec,
        width=got.width,
        height=got.height,
        fps=got.fps,
        duration=got.duration,
        file_size=os.path.getsize(path),
    )


def _probe_image(path: str, sampling: Sampling) -> Probed:
    """An image's one row; an animated image (GIF, APNG) is a video of its frames: one row per sampled frame,
    each ref the frame's time, decoded by the video engine."""
    from PIL import Image

    with Image.open(path) as img:
        img.load()  # a truncated or corrupt file fails here, not at training time
        fmt, (width, height) = (img.format or _extension(path)).lower(), img.size
        animated = getattr(img, "n_frames", 1) > 1
    if animated:
        from ..errors import MediaDecodeError

        try:
            return _sample_video(path, sampling)
        except MediaDecodeError as err:  # animated WebP: FFmpeg cannot decode its frames
            logger.warning("%s: one row (its first frame): %s", path, err)
    return Probed([None], np.zeros(1, np.int64), fmt, width, height, None, None, os.path.getsize(path))


def probe(path: str, sampling: Sampling) -> Probed:
    """The rows ``path`` contributes."""
    if _extension(path) in IMAGE_EXTENSIONS:
        return _probe_image(path, sampling)
    return _sample_video(path, sampling)


def probe_all(
    files: list[str], sampling: Sampling, workers: int | None, quiet: bool
) -> tuple[dict[str, Probed], dict[str, BaseException]]:
    """Probe every file in parallel with a progress bar: ``(results, failures)`` by path."""
    from tqdm.auto import tqdm

    results: dict[str, Probed] = {}
    failures: dict[str, BaseException] = {}
    workers = workers or min(8, os.cpu_count() or 1)
    with (
        concurrent.futures.ThreadPoolExecutor(max_workers=max(1, workers)) as pool,
        tqdm(total=len(files), unit="file", desc="Probing media", disable=quiet) as bar,
    ):
        futures = {pool.submit(probe, f, sampling): f for f in files}
        for future in concurrent.futures.as_completed(futures):
            path = futures[future]
            try:
                results[path] = future.result()
            except Exception as err:  # a corrupt file: reported, then skipped (or --strict)
                failures[path] = err
                logger.debug("cannot read %s", path, exc_info=err)
            bar.update(1)
    return results, failures


# ----------------------------------------------------------------------------------------- sidecar
def read_sidecar(path: str, key: str) -> Any:
    """The sidecar as a ``pyarrow.Table`` with a ``key`` column (types inferred).

    JSON: ``{"<file>": {...}, ...}`` or ``[{"<key>": "<file>", ...}, ...]``; CSV: a header row with ``key``.

    Raises:
        ValueError: no ``key`` column, or a file listed twice.
    """
    import pyarrow as pa

    if _extension(path) == "csv":
        import pyarrow.csv as pacsv

        with open(path, newline="", encoding="utf-8") as f:
            header = next(csv.reader(f), [])
        types = {key: pa.string()} if key in header else {}
        table = pacsv.read_csv(path, convert_options=pacsv.ConvertOptions(column_types=types))
    else:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
        if isinstance(data, dict):
            data = [{key: name, **(values or {})} for name, values in data.items()]
        table = pa.Table.from_pylist(data)
    if key not in table.column_names:
        raise ValueError(f"sidecar {path} has no {key!r} column (set --metadata-key)")
    names = [str(n) for n in table.column(key).to_pylist()]
    if len(set(names)) != len(names):
        raise ValueError(f"sidecar {path} lists a file twice")
    return table


def _sidecar_rows(table: Any, key: str, rels: list[str], root: str) -> list[int | None]:
    """For each file (relative path), its row in the sidecar (by relative path, absolute path or unique file
    name), or None."""
    index: dict[str, int] = {}
    by_name: dict[str, list[int]] = {}
    for i, name in enumerate(table.column(key).to_pylist()):
        name = str(name).replace(os.sep, "/")
        rel = os.path.relpath(name, root).replace(os.sep, "/") if os.path.isabs(name) else name
        index[rel.removeprefix("./")] = i
        by_name.setdefault(os.path.basename(rel), []).append(i)
    out: list[int | None] = []
    for rel in rels:
        row = index.get(rel)
        if row is None:
            same = by_name.get(os.path.basename(rel), [])
            row = same[0] if len(same) == 1 else None
        out.append(row)
    return out


# ----------------------------------------------------------------------------------------- table
def assemble(
    probed: dict[str, Probed], root: str, sidecar: Any, key: str, absolute: bool
) -> tuple[Any, dict[str, str]]:
    """``(dataset, media)``: the frame table (files in sorted order) and its media files (relative path ->
    absolute path)."""
    import datasets
    import pyarrow as pa

    from ..arrow import STORAGE_TYPE
    from ..hf import MediaRefFeature

    paths = sorted(probed)
    rels = [os.path.relpath(p, root).replace(os.sep, "/") for p in paths]
    counts = np.array([len(probed[p].pts_ns) for p in paths], dtype=np.int64)
    file_of_row = np.repeat(np.arange(len(paths)), counts)
    uris = paths if absolute else rels
    pts = [t for p in paths for t in probed[p].pts_ns]
    frame = pa.StructArray.from_arrays(
        [pa.array(uris, pa.string()).take(pa.array(file_of_row)), pa.array(pts, pa.int64())],
        fields=list(STORAGE_TYPE),
    )
    timestamps = pa.array([None if t is None else t / 1e9 for t in pts], pa.float64())

    def per_file(attr: str, type_: Any) -> Any:
        return pa.array([getattr(probed[p], attr) for p in paths], type_).take(pa.array(file_of_row))

    columns: dict[str, Any] = {
        "frame": frame,
        "video_id": pa.array(rels, pa.string()).take(pa.array(file_of_row)),
        "frame_index": pa.array(np.concatenate([probed[p].frame_index for p in paths]), pa.int64()),
        "timestamp": timestamps,
        "codec": per_file("codec", pa.string()),
        "width": per_file("width", pa.int32()),
        "height": per_file("height", pa.int32()),
        "fps": per_file("fps", pa.float64()),
        "duration": per_file("duration", pa.float64()),
        "file_size": per_file("file_size", pa.int64()),
    }
    features = {
        "frame": MediaRefFeature(),
        "video_id": datasets.Value("string"),
        "frame_index": datasets.Value("int64"),
        "timestamp": datasets.Value("float64"),
        "codec": datasets.Value("string"),
        "width": datasets.Value("int32"),
        "height": datasets.Value("int32"),
        "fps": datasets.Value("float64"),
        "duration": datasets.Value("float64"),
        "file_size": datasets.Value("int64"),
    }
    if sidecar is not None:
        rows = _sidecar_rows(sidecar, key, rels, root)
        unmatched = sum(r is None for r in rows)
        if unmatched:
            logger.warning("%d of %d files have no entry in the metadata sidecar", unmatched, len(rels))
        take = pa.array([rows[i] for i in file_of_row.tolist()], pa.int64())
        extra = sidecar.drop([key]).take(take)
        clash = sorted(set(extra.column_names) & set(columns))
        if clash:
            raise ValueError(f"sidecar columns {clash} clash with the built columns")
        sidecar_features = datasets.Features.from_arrow_schema(extra.schema)
        for name in extra.column_names:
            columns[name] = extra.column(name).combine_chunks()
            features[name] = sidecar_features[name]
    ds = datasets.Dataset.from_dict(columns, features=datasets.Features(features))
    return ds, dict(zip(rels, paths))


# ----------------------------------------------------------------------------------------- command
def _report_failures(failures: dict[str, BaseException], total: int, strict: bool) -> None:
    if not failures:
        return
    verb = "cannot build" if strict else "skipped"
    print(f"{verb}: {len(failures)} of {total} file(s) could not be read:", file=sys.stderr)
    for path, err in sorted(failures.items())[:20]:
        print(f"  {path}: {type(err).__name__}: {err}", file=sys.stderr)
    if len(failures) > 20:
        print(f"  ... and {len(failures) - 20} more", file=sys.stderr)


def _report_skipped(skipped: Skipped) -> None:
    """The summary of what the build left out, on stderr and in the log."""
    for line in skipped.summary():
        logger.info("%s", line)
        print(line, file=sys.stderr)


def _tags(args: Any) -> list[str]:
    """``--tags``: comma-separated, repeatable."""
    return [t.strip() for value in (args.tags or []) for t in value.split(",") if t.strip()]


def _describe_build(args: Any, probed: dict[str, Probed], sampling: Sampling) -> str:
    """How a folder build was made, for the card (the sources by their names, not their local paths)."""
    from .._version import __version__

    videos = sum(1 for p in probed.values() if p.pts_ns and p.pts_ns[0] is not None)
    names = ", ".join(f"`{os.path.basename(os.path.normpath(s)) or s}`" for s in args.sources[:5])
    more = f" and {len(args.sources) - 5} more" if len(args.sources) > 5 else ""
    return (
        f"Built with `hf-mediaref build` (hf_mediaref {__version__}) from {names}{more}: "
        f"{videos} video(s) and {len(probed) - videos} image(s), one row per sampled frame or image. "
        f"Sampling: {sampling.describe()}."
    )


def _push(ds: Any, args: Any) -> None:
    """``--push``: the table, its media, card settings and preview to the Hub repo ``args.push``."""
    from .. import hf

    hf.push_to_hub(
        ds,
        args.push,
        private=args.private or None,
        split=args.split,
        license=args.license,
        tags=_tags(args),
        preview=args.preview,
    )


def _write_output(folder: Any, ds: Any, args: Any, access: Any) -> None:
    """The table of ``-o`` (its split, card, license, tags and preview) written into ``folder``."""
    from . import _store

    _store.write_tables(
        folder,
        {args.split: ds},
        args.output,
        license=args.license,
        tags=_tags(args),
        preview=args.preview,
        access=access,
    )
    print(f"wrote {len(ds)} rows to {Path(args.output).absolute()}")


def _finish(ds: Any, media: dict[str, str], root: str, args: Any) -> int:
    """Write ``-o`` and/or push ``--push``."""
    from ..io import MediaAccess
    from . import _store

    if args.output:
        with _store.dataset_folder(args.output, overwrite=args.overwrite) as folder:
            if args.media != "absolute" and media:
                _store.place_media(folder, media, args.media)
            access = MediaAccess(str(folder), allow_uris=[root] if root else None)  # the build's own sources
            _write_output(folder, ds, args, access)
    if args.push:
        from .. import hf

        hf.set_media_access(ds, MediaAccess(root))  # the folder the build read (or the source's root)
        _push(ds, args)
        print(f"pushed {len(ds)} rows and {len(media)} media file(s) to {args.push}")
    return 0


def _from_lerobot(args: Any) -> int:
    from .. import hf
    from . import _store

    try:
        episodes = [int(e) for e in args.episodes.split(",")] if args.episodes else None
    except ValueError:
        raise ValueError(f"--episodes takes comma-separated integers, got {args.episodes!r}") from None
    ds = hf.from_lerobot(args.from_lerobot, snap=not args.no_snap, episodes=episodes)
    from .._version import __version__

    source = (
        args.from_lerobot
        if not os.path.isdir(args.from_lerobot)
        else os.path.basename(os.path.normpath(args.from_lerobot))
    )
    ds.info.description = (
        f"Imported from the LeRobot dataset `{source}` with `hf-mediaref build --from-lerobot` (hf_mediaref "
        f"{__version__}): one row per frame, one media reference column per camera"
        + (f", episodes {args.episodes}." if args.episodes else ".")
    )
    from ..hf import get_media_access

    access = get_media_access(ds)
    root = (access.root if access is not None else None) or ""
    local = os.path.isdir(root)
    media: dict[str, str] = {}
    if access is not None and local and args.media != "absolute":
        # each file checked by the source's access: paths in its metadata never reach outside its folder
        media = {uri: access.resolve(uri) for uri in _store.stored_uris(ds)}
    elif args.output:
        ds = _store.absolute_refs(ds)  # a folder elsewhere cannot hold refs relative to a remote root
    return _finish(ds, media, root, args)


def _from_videos(args: Any, sampling: Sampling) -> int:
    """``--from-videos``: :func:`hf_mediaref.from_videos` writes the videos into OUT (or a scratch folder
    for a push alone), then the table is written beside them."""
    import tempfile

    from .. import hf
    from ..io import MediaAccess
    from . import _store

    def convert(folder: str) -> Any:
        return hf.from_videos(
            args.from_videos,
            args.column,
            out_dir=folder,
            split=args.split,
            fps=sampling.fps,
            keyframes=sampling.keyframes,
            every=sampling.every,
            on_error="raise" if args.strict else "skip",
        )

    if args.output:
        with _store.dataset_folder(args.output, overwrite=args.overwrite) as folder:
            ds = convert(str(folder))
            _write_output(folder, ds, args, None)
        hf.set_media_access(ds, MediaAccess(os.path.realpath(args.output)))  # the folder, renamed into place
        if args.push:
            _push(ds, args)
    else:
        with tempfile.TemporaryDirectory(prefix="hf_mediaref-build-") as scratch:
            ds = convert(scratch)
            _push(ds, args)
    if args.push:
        print(f"pushed {len(ds)} rows and their videos to {args.push}")
    return 0


def run(args: Any) -> int:
    """Run ``build`` with parsed arguments."""
    if not args.output and not args.push:
        raise ValueError("give -o OUT and/or --push ORG/NAME")
    if args.from_lerobot and args.from_videos:
        raise ValueError("give --from-lerobot or --from-videos, not both")
    if args.from_videos:
        if args.sources:
            raise ValueError("--from-videos takes no SRC")
        return _from_videos(args, Sampling(fps=args.fps, keyframes=args.keyframes, every=args.every))
    if args.from_lerobot:
        if args.sources:
            raise ValueError("--from-lerobot takes no SRC")
        return _from_lerobot(args)
    if not args.sources:
        raise ValueError("give at least one SRC (a folder, glob, file or @LIST)")
    sampling = Sampling(fps=args.fps, keyframes=args.keyframes, every=args.every)
    sidecar = read_sidecar(args.metadata, args.metadata_key) if args.metadata else None
    skipped = Skipped()
    files, folders = collect_files(args.sources, skipped)
    if args.output:  # rebuilding into a folder inside SRC: its linked media are not new recordings
        out = os.path.abspath(args.output)
        files = [f for f in files if os.path.commonpath([out, f]) != out]
    if not files:
        raise FileNotFoundError(f"no video or image files in {' '.join(args.sources)}")
    root = choose_root(files, folders, args.root)
    if args.output and os.path.exists(args.output) and not args.overwrite:
        raise FileExistsError(f"{os.path.abspath(args.output)} exists (use --overwrite to replace it)")
    probed, failures = probe_all(files, sampling, args.workers, args.quiet)
    _report_failures(failures, len(files), args.strict)
    _report_skipped(skipped)
    if failures and args.strict:
        return 1
    if not probed:
        raise ValueError("no file could be read: nothing to write")
    ds, media = assemble(probed, root, sidecar, args.metadata_key, absolute=args.media == "absolute")
    ds.info.description = _describe_build(args, probed, sampling)
    return _finish(ds, media, root, args)
