"""``hf-mediaref inspect``: what a dataset holds, read from its table (and file sizes), decoding nothing.

Codecs come from a ``codec`` column when the dataset has one (``build`` writes it), else from opening each
video with ``--probe`` (its keyframe index: a demux scan). Containers are counted by file extension. The media
size sums each distinct file once: from a ``file_size`` column, else the file system (``stat``, an HTTP probe,
or an fsspec ``info`` for other remote files). Files are resolved and checked by the dataset's
:class:`~hf_mediaref.MediaAccess`: a file it refuses (outside the root and not allowed) is counted as refused,
never looked at.
"""

from __future__ import annotations

import collections
import json
import logging
import os
from typing import Any

import numpy as np

from .._units import human_bytes

logger = logging.getLogger(__name__)

__all__ = ["DESCRIPTION", "EXAMPLES", "run"]

DESCRIPTION = """\
Describe a dataset: its schema, rows per split, media root, and for each MediaRef column the videos and
images it references, frames (rows) per video, codecs and containers, and the total size of the media. Files
outside the media root (and not allowed by --allow-uris) are listed as refused, never read."""

EXAMPLES = """\
examples:
  hf-mediaref inspect frames/
  hf-mediaref inspect hf://datasets/me/robot-frames --json
  hf-mediaref inspect saved/ --media-root /data/recordings --probe"""


def _size(uri: str, storage_options: dict | None = None) -> int | None:
    from ..io import UriKind, classify_uri, local_path, open_media

    try:
        if classify_uri(uri) in (UriKind.LOCAL, UriKind.FILE):
            return os.path.getsize(local_path(uri))
        if classify_uri(uri) is UriKind.DATA:
            return len(uri)
        if classify_uri(uri) is UriKind.HTTP:  # our HTTP reader: connections follow the public-address rule
            with open_media(uri) as f:
                assert not isinstance(f, str)
                return int(f.seek(0, os.SEEK_END))
        import fsspec

        fs, path = fsspec.core.url_to_fs(uri, **(storage_options or {}))
        return int(fs.info(path)["size"])
    except Exception as err:
        logger.debug("no size for %s: %s", uri, err)
        return None


def _extension(uri: str) -> str:
    if uri.startswith("data:"):
        return uri[5:].split(";", 1)[0].split(",", 1)[0] or "data"
    name = uri.split("?", 1)[0].rstrip("/").rsplit("/", 1)[-1]
    return name.rsplit(".", 1)[-1].lower() if "." in name else "(none)"


def _column_summary(ds: Any, column: str, probe: bool, quiet: bool) -> dict[str, Any]:
    import pyarrow.compute as pc
    from tqdm.auto import tqdm

    from ..arrow import resolve_uri
    from ..errors import MediaRefError
    from ..hf import get_media_access

    access = get_media_access(ds)
    creds = None if access is None else access.engine_storage_options()
    table = ds.with_format("arrow")[:]
    array = table[column].combine_chunks()
    valid = array.is_valid()
    uris = pc.filter(array.field("uri"), valid)
    is_video = pc.filter(array.field("pts_ns").is_valid(), valid).to_numpy(zero_copy_only=False)
    encoded = uris.dictionary_encode()
    stored = encoded.dictionary.to_pylist()
    codes = encoded.indices.to_numpy(zero_copy_only=False)
    per_file = np.bincount(codes[is_video], minlength=len(stored))
    videos = np.flatnonzero(per_file)
    images = sorted(set(codes[~is_video].tolist()))
    files = sorted(set(videos.tolist()) | set(images))
    resolved: dict[int, str] = {}
    refused: dict[str, str] = {}  # stored URI -> why the access refuses it
    for i in files:
        try:
            resolved[i] = resolve_uri(stored[i], access)
        except MediaRefError as err:  # outside the access (or not resolvable): never looked at
            refused[stored[i]] = f"{type(err).__name__}: {err}"

    codecs: collections.Counter[str] = collections.Counter()
    if "codec" in table.column_names:
        codec_col = pc.filter(table["codec"].combine_chunks(), valid).to_pylist()
        first: dict[int, Any] = {}
        for row, code in enumerate(codes.tolist()):
            first.setdefault(code, codec_col[row])
        codecs.update(str(first[i]) for i in files)
    elif probe:
        from ..video import PyAVVideoDecoder

        for i in tqdm(videos.tolist(), desc="Probing videos", unit="video", disable=quiet):
            if i not in resolved:
                codecs["refused"] += 1
                continue
            try:
                with PyAVVideoDecoder(resolved[i], storage_options=creds) as decoder:
                    codecs[decoder.metadata.codec] += 1
            except Exception as err:
                codecs[f"unreadable ({type(err).__name__})"] += 1

    sizes: dict[int, int | None] = {}
    if "file_size" in table.column_names:
        size_col = pc.filter(table["file_size"].combine_chunks(), valid).to_pylist()
        for row, code in enumerate(codes.tolist()):
            sizes.setdefault(code, size_col[row])
    else:
        for i in tqdm(files, desc="Sizing media", unit="file", disable=quiet):
            sizes[i] = _size(resolved[i], creds) if i in resolved else None
    known = [s for s in sizes.values() if s is not None]
    frames = per_file[videos]
    return {
        "refs": len(codes),
        "null_refs": len(array) - len(codes),
        "videos": len(videos),
        "images": len(images),
        "frames_per_video": {
            "min": int(frames.min()) if frames.size else 0,
            "median": float(np.median(frames)) if frames.size else 0,
            "max": int(frames.max()) if frames.size else 0,
        },
        "frames_by_video": {stored[i]: int(per_file[i]) for i in videos.tolist()},
        "codecs": dict(codecs.most_common()),
        "containers": dict(collections.Counter(_extension(stored[i]) for i in files).most_common()),
        "media_bytes": sum(known),
        "files_without_size": len(sizes) - len(known),
        "refused_files": len(refused),
        "refused": dict(list(refused.items())[:10]),
    }


def inspect_splits(splits: dict[str, Any], probe: bool = False, quiet: bool = False) -> dict[str, Any]:
    """The ``inspect`` report of some splits, as a JSON-ready dict."""
    from . import _store

    first = next(iter(splits.values()))
    from ..hf import get_media_access

    access = get_media_access(first)
    return {
        "media_root": None if access is None else access.root,
        "allow_uris": [] if access is None else list(access.allow_uris),
        "features": {name: str(feature) for name, feature in first.features.items()},
        "splits": {
            name: {
                "rows": len(ds),
                "columns": {c: _column_summary(ds, c, probe, quiet) for c in _store.media_columns(ds)},
            }
            for name, ds in splits.items()
        },
    }


def _text(dataset: str, report: dict[str, Any]) -> str:
    lines = [f"dataset: {dataset}", f"media root: {report['media_root']}"]
    if report["allow_uris"]:
        lines.append(f"allowed beyond it: {', '.join(report['allow_uris'])}")
    lines.append("schema:")
    lines += [f"  {name}: {feature}" for name, feature in report["features"].items()]
    for split, info in report["splits"].items():
        lines.append(f"split {split}: {info['rows']} rows")
        for column, c in info["columns"].items():
            f = c["frames_per_video"]
            lines.append(
                f"  {column}: {c['refs']} refs, {c['videos']} video(s), {c['images']} image(s)"
                + (f", {c['null_refs']} null" if c["null_refs"] else "")
            )
            if c["videos"]:
                lines.append(f"    frames per video: min {f['min']}, median {f['median']:g}, max {f['max']}")
                for uri, count in list(c["frames_by_video"].items())[:10]:
                    lines.append(f"      {uri}: {count}")
                if c["videos"] > 10:
                    lines.append(f"      ... {c['videos'] - 10} more")
            if c["codecs"]:
                lines.append("    codecs: " + ", ".join(f"{k} ({v})" for k, v in c["codecs"].items()))
            lines.append("    containers: " + ", ".join(f"{k} ({v})" for k, v in c["containers"].items()))
            unknown = (
                f" ({c['files_without_size']} file(s) of unknown size)" if c["files_without_size"] else ""
            )
            lines.append(f"    media size: {human_bytes(c['media_bytes'])}{unknown}")
            if c["refused_files"]:
                lines.append(f"    refused: {c['refused_files']} file(s) outside the media root, not read")
                lines += [f"      {why}" for why in c["refused"].values()]
    return "\n".join(lines)


def run(args: Any) -> int:
    """Run ``inspect`` with parsed arguments."""
    from . import _store

    splits = _store.open_from_args(args)
    report = inspect_splits(splits, probe=args.probe, quiet=args.quiet)
    print(json.dumps(report, indent=2) if args.json else _text(args.dataset, report))
    return 0
