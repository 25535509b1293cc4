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


def _readme(
    splits: dict[str, Any],
    files: dict[str, list[str]],
    folder: Path,
    name: str,
    license: str | None,
    tags: list[str] | None,
    preview: dict[str, Any],
) -> str:
    """The folder's card: YAML ``configs`` naming the shards (with ``license`` and ``tags``), then the same
    body a push writes (columns, media layout, both ways to load), reading this folder."""
    from huggingface_hub import DatasetCardData

    from ..hf import apply_card_fields, dataset_card
    from ..io import UriKind, classify_uri

    configs = [
        {
            "config_name": "default",
            "data_files": [{"split": s, "path": [f"data/{f}" for f in names]} for s, names in files.items()],
        },
        *([{"config_name": "preview", "data_files": preview["data_files"]}] if preview else []),
    ]
    card_data = DatasetCardData(configs=configs)
    apply_card_fields(card_data, license=license, tags=["hf-mediaref", *(tags or ())])
    first = next(iter(splits.values()))
    relative = [u for u in stored_uris(first) if classify_uri(u) is UriKind.LOCAL and not os.path.isabs(u)]
    media = {u: str(folder / u) for u in relative if (folder / u).is_file()}
    body = dataset_card(
        name,
        first.features,
        media=media,
        num_rows={s: len(ds) for s, ds in splits.items()},
        description=first.info.description,
        local=True,
        preview=preview.get("sheet"),
    )
    return f"---\n{card_data.to_yaml()}\n---\n{body}"


def _preview(folder: Path, splits: dict[str, Any], build: str, n: int, access: Any) -> dict[str, Any]:
    """The preview files of the first split (the thumbnails' name carries the build id, as the shards')."""
    from ..errors import MediaRefError
    from ..hf import preview_files

    split, ds = next(iter(splits.items()))
    try:
        made = preview_files(ds, str(folder), split, n, access=access)
    except (MediaRefError, ValueError, OSError) as err:
        logger.warning("no preview: %s", err)
        return {}
    table = next(p for p in made["files"] if p.endswith(".parquet"))
    named = table.replace(f"{split}-", f"{split}-{build}-", 1)
    (folder / table).rename(folder / named)
    return {"sheet": made["sheet"], "data_files": [{"split": split, "path": [named]}]}


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


def write_tables(
    folder: Path,
    splits: dict[str, Any],
    location: str,
    *,
    license: str | None = None,
    tags: list[str] | None = None,
    preview: int = 0,
    access: Any = None,
) -> None:
    """Write each split's Parquet shards under ``folder/data`` and the README that names them (its card:
    columns, media layout, how it was built, how to load it from ``location``, as the user named it).

    The shard names carry a build id: ``datasets`` caches a local folder's table under the folder's name and
    its README configs (not the data files' paths or times), so a rebuilt folder, or another one of the same
    name, would otherwise load a stale cached table.

    ``preview``: a contact sheet of that many frames of the first split (``preview/sheet.png``, shown in the
    card) and their thumbnails as a ``preview`` configuration of ``datasets.Image`` rows, the refs read with
    ``access`` (default: the dataset's own); a failure there is logged, the dataset is written without it.
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
    shown = _preview(folder, splits, build, preview, access) if preview else {}
    readme = _readme(splits, files, folder, location, license, tags, shown)
    (folder / "README.md").write_text(readme, encoding="utf-8")


def place_media(folder: Path, files: dict[str, str], mode: str) -> None:
    """Put each media file (repo-relative path -> source path) in ``folder``: ``"link"`` (a hard link to the
    file itself, symlinks followed; a copy where no hard link can be made, across file systems) or ``"copy"``.

    Never a symlink: a dataset folder is the boundary of what its refs may read, and a symlink leading out of
    it is refused when the dataset is loaded (:class:`~hf_mediaref.MediaAccess`), so the bytes are put inside.
    """
    from ..io import place_file

    copied = 0
    for rel, source in files.items():
        dest = folder / rel
        dest.parent.mkdir(parents=True, exist_ok=True)
        # a symlinked source: its target, wherever the link pointed
        if not place_file(source, dest, copy=mode == "copy") and mode != "copy":
            copied += 1
    if copied:
        logger.info("copied %d media file(s) that could not be hard-linked (another file system)", copied)


def media_columns(ds: Any) -> list[str]:
    """The top-level MediaRef columns of ``ds``."""
    from ..hf import ref_columns

    return ref_columns(ds.features)


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
