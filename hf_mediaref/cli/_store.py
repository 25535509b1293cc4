"""Datasets in and out of the command line: open a DATASET argument (a folder or a Hub repo) as a dict of
splits with its media access (made from where the data was read, and ``--media-root`` / ``--allow-uris``),
and write a dataset folder all at once (a temporary folder renamed into place, so an interrupted or failed
command never leaves a half-written output).

A dataset folder written here is a Hub-style repo: ``README.md`` (YAML ``configs`` naming the Parquet files),
``data/<split>-XXXXX-of-XXXXX.parquet`` and, for ``build``, the media under their paths relative to the root,
so ``hf_mediaref.load_dataset(folder)`` resolves the refs and ``hf-mediaref push`` uploads it as it is.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

__all__ = [
    "absolute_refs",
    "dataset_folder",
    "media_columns",
    "open_dataset",
    "open_from_args",
    "place_media",
    "stored_uris",
    "write_tables",
]

_HUB = re.compile(r"^(?:hf://datasets/)?([A-Za-z0-9][\w.-]*/[\w.-]+?)(?:@([^/]+))?/?$")
ROWS_PER_SHARD = 1_000_000


def open_dataset(
    spec: str,
    *,
    split: str | None = None,
    revision: str | None = None,
    media_root: str | None = None,
    allow_uris: list[str] | None = None,
) -> dict[str, Any]:
    """The splits of the dataset ``spec`` names, each with its :class:`~hf_mediaref.MediaAccess` attached.

    The access is made from where the data was read: a folder (a repo folder, or one written by
    ``save_to_disk``) is its own root after following symlinks, a Hub repo is read at its commit; nothing
    stored in the data (Parquet metadata, ``state.json``, ``dataset_info.json``) sets or widens it.
    ``media_root`` (``--media-root``) replaces the root (the media live elsewhere), keeping the loader's
    credentials; ``allow_uris`` (``--allow-uris``) widens what the refs may read.

    Raises:
        FileNotFoundError: ``spec`` is neither a folder nor a Hub repo id.
        ValueError: ``split`` is not a split of the dataset, a ``data:`` media root or a malformed
            ``allow_uris`` entry.
    """
    from .. import hf
    from ..hf import get_media_access, set_media_access
    from ..io import MediaAccess

    folder = os.path.realpath(spec) if os.path.isdir(spec) else None
    if folder is not None:
        if os.path.exists(os.path.join(spec, "dataset_dict.json")) or os.path.exists(
            os.path.join(spec, "state.json")
        ):
            loaded: Any = hf.load_from_disk(spec)
        else:
            loaded = hf.load_dataset(spec)
    else:
        match = _HUB.match(spec)
        if match is None or os.path.exists(spec):
            raise FileNotFoundError(f"{spec!r} is not a dataset folder, hf://datasets/ORG/NAME or ORG/NAME")
        loaded = hf.load_dataset(match.group(1), revision=match.group(2) or revision)
    splits = dict(loaded) if isinstance(loaded, dict) else {"train": loaded}
    if split is not None:
        if split not in splits:
            raise ValueError(f"no split {split!r} in {spec} (splits: {', '.join(splits)})")
        splits = {split: splits[split]}
    for ds in splits.values():
        found = get_media_access(ds)
        if found is None:  # no MediaRef column, or a loader that attached nothing
            found = MediaAccess(folder)
        if media_root is not None:
            found = found.replace(root=media_root, allow_uris=())
        set_media_access(ds, found.allowing(allow_uris))
    return splits


def open_from_args(args: Any) -> dict[str, Any]:
    """:func:`open_dataset` with a command's ``DATASET``, ``--split``, ``--revision``, ``--media-root`` and
    ``--allow-uris``."""
    return open_dataset(
        args.dataset,
        split=args.split,
        revision=args.revision,
        media_root=args.media_root,
        allow_uris=args.allow_uris,
    )


def _readme(splits: dict[str, list[str]], title: str) -> str:
    lines = ["---", "configs:", "- config_name: default", "  data_files:"]
    for split, files in splits.items():
        lines += [f"  - split: {split}", "    path:"] + [f"    - data/{name}" for name in files]
    lines += [
        "---",
        f"# {title}",
        "",
        "Frame references written by `hf-mediaref`: each media column holds `struct<uri, pts_ns>` (a file",
        "relative to this folder and a presentation time in nanoseconds, null for images).",
        "",
        "```python",
        "import hf_mediaref",
        "",
        'ds = hf_mediaref.load_dataset("<this folder or org/name>", split="train")',
        'frames = ds.with_format("mediaref")[:8]  # decoded in one batch',
        "```",
        "",
    ]
    return "\n".join(lines)


@contextlib.contextmanager
def dataset_folder(out: str | os.PathLike[str], *, overwrite: bool = False) -> Iterator[Path]:
    """A temporary folder beside ``out`` to fill; renamed to ``out`` when the block ends without an error,
    removed otherwise.

    Raises:
        FileExistsError: ``out`` exists and ``overwrite`` is false (checked before anything is written).
    """
    target = Path(out).absolute()
    if target.exists() and not overwrite:
        raise FileExistsError(f"{target} exists (use --overwrite to replace it)")
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.parent / f".{target.name}.tmp-{uuid.uuid4().hex[:8]}"
    tmp.mkdir()
    try:
        yield tmp
        if target.exists():  # --overwrite: swap, then drop the old one
            old = target.parent / f".{target.name}.old-{uuid.uuid4().hex[:8]}"
            target.rename(old)
            tmp.rename(target)
            shutil.rmtree(old, ignore_errors=True)
        else:
            tmp.rename(target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def write_tables(folder: Path, splits: dict[str, Any], title: str) -> None:
    """Write each split's Parquet shards under ``folder/data`` and the README that names them.

    The shard names carry a build id: ``datasets`` caches a local folder's table under the folder's name and
    its README configs (not the data files' paths or times), so a rebuilt folder, or another one of the same
    name, would otherwise load a stale cached table.
    """
    data = folder / "data"
    data.mkdir(exist_ok=True)
    build = uuid.uuid4().hex[:8]
    files: dict[str, list[str]] = {}
    for name, ds in splits.items():
        shards = max(1, -(-len(ds) // ROWS_PER_SHARD))
        files[name] = []
        for i in range(shards):
            path = data / f"{name}-{build}-{i:05d}-of-{shards:05d}.parquet"
            part = ds.shard(shards, i, contiguous=True) if shards > 1 else ds
            part.to_parquet(str(path))
            files[name].append(path.name)
    (folder / "README.md").write_text(_readme(files, title), encoding="utf-8")


def place_media(folder: Path, files: dict[str, str], mode: str) -> None:
    """Put each media file (repo-relative path -> source path) in ``folder``: ``"link"`` (a hard link, or a
    symlink across file systems) or ``"copy"``."""
    for rel, source in files.items():
        dest = folder / rel
        dest.parent.mkdir(parents=True, exist_ok=True)
        if mode == "copy":
            shutil.copy2(source, dest)
            continue
        try:
            os.link(source, dest)
        except OSError:
            os.symlink(os.path.abspath(source), dest)


def media_columns(ds: Any) -> list[str]:
    """The top-level MediaRef columns of ``ds``."""
    from ..hf import MediaRefFeature

    return [name for name, feature in ds.features.items() if isinstance(feature, MediaRefFeature)]


def stored_uris(ds: Any) -> list[str]:
    """The distinct URIs stored in ``ds``'s MediaRef columns, as stored (relative ones unresolved)."""
    import pyarrow.compute as pc

    table = ds.with_format("arrow")[:]
    found: set[str] = set()
    for name in media_columns(ds):
        found.update(u for u in pc.unique(table[name].combine_chunks().field("uri")).to_pylist() if u)
    return sorted(found)


class _Absolute:
    """Picklable arrow ``map`` function: every stored URI of the given columns resolved (and checked) by
    ``access``."""

    def __init__(self, columns: list[str], access: Any):
        self.columns, self.access = columns, access

    def __call__(self, table: Any) -> Any:
        from ..arrow import map_uris, resolve_uri

        for name in self.columns:
            column = map_uris(table[name].combine_chunks(), lambda uri: resolve_uri(uri, self.access))
            table = table.set_column(table.column_names.index(name), name, column)
        return table


def absolute_refs(ds: Any) -> Any:
    """``ds`` with every relative ref of its MediaRef columns resolved against its media root (every ref
    checked against its access)."""
    from ..hf import get_media_access

    fn = _Absolute(media_columns(ds), get_media_access(ds))
    return ds.with_format("arrow").map(fn, batched=True, features=ds.features).with_format(None)
