"""The dataset card (``README.md``) that :func:`~hf_mediaref.hf.push_to_hub` writes: for people first.

It says what the repo holds (rows, media columns, the media files and their sizes, where they are), how
to load it with hf_mediaref, and how to load it and decode a frame with plain ``datasets`` + PyAV (the
MediaRef columns read there as ``struct<uri: string, pts_ns: int64>``; see
:class:`~hf_mediaref.hf.MediaRefFeature`). The YAML header (``dataset_info``, ``configs``) is the one
``datasets``' own ``push_to_hub`` writes (:func:`card_metadata`); the card body is written once (marked by
:data:`CARD_MARKER`).
"""

from __future__ import annotations

import os
import posixpath
from collections.abc import Mapping, Sequence
from dataclasses import asdict
from typing import Any

from datasets import DatasetInfo, SplitDict, SplitInfo
from huggingface_hub import DatasetCard, DatasetCardData

from .._units import human_bytes
from ._compat import DatasetInfosDict, MetadataConfigs, sanitize_patterns
from ._feature import has_media

__all__ = ["CARD_MARKER", "apply_card_fields", "card_metadata", "dataset_card"]

#: Marks the usage section hf_mediaref adds to a dataset card (added once).
CARD_MARKER = "<!-- hf_mediaref: usage -->"


def _describe(feature: Any) -> str:
    if type(feature).__name__ == "MediaRefFeature":
        return "media reference: `struct<uri: string, pts_ns: int64>`"
    if has_media(feature):
        return "holds media references (`struct<uri: string, pts_ns: int64>`) in lists / structs"
    return f"`{feature!r}`"


def _columns(features: Mapping[str, Any]) -> str:
    rows = "\n".join(f"| `{name}` | {_describe(f)} |" for name, f in features.items())
    return "| column | type |\n|---|---|\n" + rows


def _layout(media: Mapping[str, str | int]) -> str:
    """A table of the media folders: file count, extensions, total size."""
    if not media:
        return (
            "This push uploaded no media files: the references are absolute URLs, `data:` URIs (embedded "
            "images) or files already in this repository."
        )
    folders: dict[str, list[tuple[str, int]]] = {}
    for path, source in sorted(media.items()):
        size = source if isinstance(source, int) else os.path.getsize(source)
        folders.setdefault(posixpath.dirname(path) or ".", []).append((path, size))
    lines = ["| folder | files | types | size |", "|---|---|---|---|"]
    for folder, files in folders.items():
        types = ", ".join(sorted({posixpath.splitext(p)[1] or "(none)" for p, _ in files}))
        lines.append(f"| `{folder}/` | {len(files)} | {types} | {human_bytes(sum(s for _, s in files))} |")
    total = sum(s for files in folders.values() for _, s in files)
    lines.append(f"\n{len(media)} media file(s), {human_bytes(total)} in all.")
    return "\n".join(lines)


def apply_card_fields(card_data: Any, *, license: str | None, tags: Sequence[str] | None) -> None:
    """Set the card's ``license`` and add ``tags`` (kept unique, in order) on a ``DatasetCardData``."""
    if license:
        card_data.license = license
    if tags:
        current = list(getattr(card_data, "tags", None) or [])
        card_data.tags = current + [t for t in dict.fromkeys(tags) if t not in current]


def _plain_snippet(load: str, base: str, column: str) -> str:
    """The plain ``datasets`` + PyAV snippet: ``frame_at(ref)`` decodes the frame hf_mediaref decodes (the
    playback rule: the last frame whose presentation time, floored to whole nanoseconds, is at or before
    ``pts_ns`` plus half a time-base tick, at least 1 µs and at most 1 ms; the first frame before it)."""
    return f"""```python
import av
import fsspec
from datasets import load_dataset

ds = {load}

def frame_at(ref):  # the frame on screen at ref["pts_ns"]: the last one shown at or before it
    with fsspec.open(f"{base}/{{ref['uri']}}") as f, av.open(f) as video:
        stream = video.streams.video[0]
        tb = stream.time_base
        t = ref["pts_ns"] + max(1000, min(10**6, int(tb * 10**9 / 2)))  # ns, plus half a tick
        video.seek(t * tb.denominator // (tb.numerator * 10**9), stream=stream)  # keyframe before
        shown = None
        for frame in video.decode(stream):
            if shown is not None and frame.pts * tb.numerator * 10**9 // tb.denominator > t:
                break
            shown = frame
        return shown.to_ndarray(format="rgb24")  # H x W x 3 uint8

image = frame_at(ds[0]["{column}"])
```"""


def dataset_card(
    repo_id: str,
    features: Any,
    data_dir: str = "data",
    existing: str = "",
    *,
    media: Mapping[str, str | int] | None = None,
    num_rows: Mapping[str, int] | None = None,
    description: str | None = None,
    local: bool = False,
    preview: str | None = None,
) -> str:
    """README text for a dataset pushed with hf_mediaref (or a folder written by ``hf-mediaref build``):
    what it holds and how to read it, with and without hf_mediaref.

    Args:
        repo_id: the dataset repo (or, with ``local``, the folder as the reader will name it).
        features: the dataset's features.
        data_dir: where ``datasets`` writes the Parquet shards in the repo.
        existing: the current README (kept, the section is appended), or ``""``.
        media: the media files in the repo, as repo path -> local file (or size in bytes): the layout and
            size table.
        num_rows: rows per split.
        description: how the dataset was made (source, sampling; ``Dataset.info.description``), shown
            under *How it was built*.
        local: ``repo_id`` is a local folder: the snippets read it from disk.
        preview: the repo path of a contact sheet image of sampled frames, shown at the top.

    Returns:
        The README text.

    Example:
        ```python
        >>> from datasets import Features
        >>> from hf_mediaref.hf import MediaRefFeature
        >>> from hf_mediaref.hf._card import dataset_card
        >>> features = Features({"frame": MediaRefFeature()})
        >>> card = dataset_card("me/frames", features, media={"videos/a.mp4": 1_000})
        >>> "import av" in card
        True
        ```
    """
    columns = [name for name, f in features.items() if has_media(f)]
    column = next((n for n, f in features.items() if type(f).__name__ == "MediaRefFeature"), None)
    column = column or (columns[0] if columns else "frame")
    splits = ", ".join(f"`{s}` ({n:,} rows)" for s, n in (num_rows or {}).items())
    split = next(iter(num_rows or {}), "train")
    listed = ", ".join(f"`{c}`" for c in columns) or "none"
    where = "folder" if local else "repository"
    base = repo_id.rstrip("/") if local else f"hf://datasets/{repo_id}"
    built = f"\n## How it was built\n\n{description.strip()}\n" if description and description.strip() else ""
    shown = f"\n![Sampled frames]({preview})\n" if preview else ""
    if local:
        resolve = f"The refs resolve against this folder (`{repo_id}`) and read inside it only."
        loaded = f"MediaRef('{base}/...', pts_ns=...)"
    else:
        resolve = (
            "The refs resolve against this repository at the commit that was loaded. For a private "
            "repository pass\n`token=` as usual: it is used for the media too."
        )
        loaded = f"MediaRef('hf://datasets/{repo_id}@<commit>/...', pts_ns=...)"
    private = (
        "" if local else " For a private\nrepository pass `token=` to `load_dataset` and to `fsspec.open`."
    )
    plain_load = (
        f'load_dataset("{repo_id}", split="{split}")  # or streaming=True, or load_dataset("parquet", ...)'
    )
    section = f"""{CARD_MARKER}{shown}
## What this dataset is

A table of **media references**{f" in {splits}" if splits else ""}: each row of the media column(s)
{listed} names a video frame (a file and a presentation time) or an image, instead of holding pixels.
The media files themselves are stored in this {where} (see *Media layout*); frames are decoded when
they are read. It was written with [hf_mediaref](https://pypi.org/project/hf-mediaref/), but reading it
needs nothing but `datasets` (and PyAV to decode frames).
{built}
## Columns

{_columns(features)}

A media reference is `{{"uri": str, "pts_ns": int | None}}`: `uri` is a path relative to the root of this
{where} (`videos/ep0.mp4`), an absolute URL, or a `data:` URI (an embedded image); `pts_ns` is the
presentation time in nanoseconds: the ref shows the frame on screen then (the last frame shown at or before
it), or null for an image.

## Media layout

{_layout(media or {})}

## Load with hf_mediaref

```python
import hf_mediaref

ds = hf_mediaref.load_dataset("{repo_id}", split="{split}")
ds[0]["{column}"]  # {loaded}: nothing decoded yet
frames = ds.with_format("mediaref", output="torch")[:8]["{column}"]  # one batch, each video decoded once
```

{resolve}

## Load without hf_mediaref (plain `datasets` + PyAV)

{_plain_snippet(plain_load, base, column)}

`frame_at` picks the frame hf_mediaref picks: the one on screen at `pts_ns`. An image ref (`pts_ns` null)
opens with `PIL.Image.open(fsspec.open(...).open())`.{private} The Parquet files in `{data_dir}/` also
read with pyarrow, pandas, polars or DuckDB.
"""
    title = os.path.basename(repo_id.rstrip("/")) if local else repo_id
    body = existing.rstrip() + "\n\n" if existing.strip() else f"# {title}\n\n"
    return body + section


def card_metadata(
    existing: str | None,
    *,
    config_name: str,
    features: Any,
    splits: Sequence[SplitInfo],
    uploaded_sizes: Sequence[int],
    deleted_sizes: Sequence[int],
    data_dir: str,
    set_default: bool | None = None,
    replace_splits: bool = False,
    legacy_infos: dict | None = None,
    legacy_splits: Sequence[str] = (),
    license: str | None = None,
    tags: Sequence[str] | None = None,
    extra_configs: Mapping[str, Any] | None = None,
) -> tuple[str, dict | None]:
    """The card with its YAML header (``dataset_info``, ``configs``) updated for the pushed splits, as
    ``datasets``' own ``push_to_hub`` updates it (same merge rules, same checks), from what the repo holds.

    Args:
        existing: the repo's ``README.md`` (``None`` when it has none).
        config_name: the configuration pushed to.
        features: the features of the pushed splits.
        splits: one ``SplitInfo`` per pushed split (name, bytes, rows).
        uploaded_sizes: bytes of Parquet uploaded per pushed split.
        deleted_sizes: bytes of the old shards each pushed split replaces.
        data_dir: the repo folder of the Parquet shards.
        set_default: make ``config_name`` the default configuration.
        replace_splits: the pushed splits replace every split of the configuration (a ``DatasetDict`` push);
            otherwise the others are kept.
        legacy_infos: the repo's legacy ``dataset_infos.json`` (kept up to date when it has the
            configuration), or ``None``.
        legacy_splits: splits found as ``data/<split>-XXXXX-of-XXXXX.*`` files (pushes made before cards had
            ``configs``): listed in a ``default`` configuration when the card has none.
        license: the dataset's license (a Hub license id such as ``"cc-by-4.0"``): the card's ``license``.
        tags: tags added to the card's ``tags`` (the ones it has are kept).
        extra_configs: more configurations for the card's ``configs`` (name -> ``{"data_files": ...}``), such
            as the ``preview`` thumbnails.

    Returns:
        ``(card text, new dataset_infos.json content or None)``.

    Raises:
        ValueError: the features differ from those of the configuration's other splits on the Hub, or
            ``set_default`` while a configuration named ``"default"`` exists.
    """
    legacy = (legacy_infos or {}).get(config_name)
    repo_info = DatasetInfo.from_dict(legacy) if legacy else None
    card: DatasetCard | None = None
    if existing is not None:
        card = DatasetCard(existing)
        card_data = card.data
        metadata_configs = MetadataConfigs.from_dataset_card_data(card_data)
        infos = DatasetInfosDict.from_dataset_card_data(card_data)
        repo_info = infos[config_name] if infos and config_name in infos else None
    else:
        card_data = DatasetCardData()
        metadata_configs = MetadataConfigs()
    if repo_info is not None and not replace_splits:
        for split_info, deleted, uploaded in zip(splits, deleted_sizes, uploaded_sizes):
            name = split_info.name
            others = any(s != name for s in repo_info.splits or ())
            if others and features.to_dict() != repo_info.features.to_dict():  # as stored: no access
                raise ValueError(
                    "Features of the new split don't match the features of the existing splits on the hub: "
                    f"{features} != {repo_info.features}"
                )
            if name in repo_info.splits:
                repo_info.download_size = (repo_info.download_size or 0) - deleted
                repo_info.dataset_size = (repo_info.dataset_size or 0) - (
                    repo_info.splits[name].num_bytes or 0
                )
            repo_info.download_checksums = None
            repo_info.download_size = (repo_info.download_size or 0) + uploaded
            repo_info.dataset_size = (repo_info.dataset_size or 0) + split_info.num_bytes
            repo_info.size_in_bytes = repo_info.download_size + repo_info.dataset_size
            repo_info.splits.pop(name, None)
            repo_info.splits[name] = split_info
        info = repo_info
    else:
        info = DatasetInfo(
            config_name=config_name, features=features, splits=SplitDict(), download_size=0, dataset_size=0
        )
        for split_info, uploaded in zip(splits, uploaded_sizes):
            info.splits.add(split_info)
            info.download_size += uploaded
            info.dataset_size += split_info.num_bytes
        info.size_in_bytes = info.download_size + info.dataset_size
    if not metadata_configs and legacy_splits:  # pushed before cards had configs
        data_files = [{"split": s, "path": f"data/{s}-*"} for s in legacy_splits]
        MetadataConfigs({"default": {"data_files": data_files}}).to_dataset_card_data(card_data)
    patterns: dict[str, Any] = {}
    if config_name in metadata_configs and not replace_splits:
        patterns = dict(sanitize_patterns(metadata_configs[config_name].get("data_files", {})))
    for split_info in splits:
        patterns[split_info.name] = [f"{data_dir}/{split_info.name}-*"]
    to_dump: dict[str, Any] = {
        "data_files": [{"split": s, "path": p[0] if len(p) == 1 else p} for s, p in patterns.items()]
    }
    configs = {config_name: to_dump}
    if set_default and config_name != "default":
        if metadata_configs:
            current = metadata_configs.get_default_config_name()
            if current == "default":
                raise ValueError(
                    "There exists a configuration named 'default'. To set a different configuration as "
                    "default, rename the 'default' one first."
                )
            if current:
                metadata_configs[current].pop("default")
                configs[current] = metadata_configs[current]
        to_dump["default"] = True
    for name, extra in (extra_configs or {}).items():
        configs.setdefault(name, dict(extra))
    new_legacy = None
    if legacy:
        new_legacy = dict(legacy_infos or {})
        new_legacy[config_name] = asdict(info)
    DatasetInfosDict({config_name: info}).to_dataset_card_data(card_data)
    MetadataConfigs(configs).to_dataset_card_data(card_data)
    apply_card_fields(card_data, license=license, tags=tags)
    if card is None:
        card = DatasetCard(f"---\n{card_data}\n---\n")
    return str(card), new_legacy
