"""Frames you can see: a contact sheet of a dataset's sampled frames (:func:`contact_sheet`) and a small
``datasets.Image`` table of thumbnails (:func:`preview_dataset`), which ``hf-mediaref build`` writes beside a
dataset and :func:`~hf_mediaref.hf.push_to_hub` (``preview=N``) pushes as a ``preview`` configuration, so the
Hub's dataset viewer shows pictures where the refs are ``{uri, pts_ns}`` text.

The rows shown are spread evenly over the dataset (first and last included), decoded in one engine call
with the dataset's :class:`~hf_mediaref.MediaAccess` (or the one given); a ref that cannot be decoded gets an
empty cell with its error's name, never another frame.
"""

from __future__ import annotations

import io
import logging
import posixpath
from typing import Any

import numpy as np

from ..core import MediaRef
from ..decode import batch_decode
from ..errors import MediaRefError
from ..io import MediaAccess, image_grid
from ._feature import ref_columns
from ._roots import get_media_access

__all__ = ["PREVIEW_DIR", "contact_sheet", "preview_dataset", "preview_files", "preview_rows"]

#: The folder of a repo (or dataset folder) that holds the contact sheet and the ``preview`` thumbnails.
PREVIEW_DIR = "preview"

logger = logging.getLogger(__name__)

#: The longest side of a thumbnail, in pixels.
THUMBNAIL = 160


def _ref_column(dataset: Any, column: str | None) -> str:
    if column is not None:
        if column not in dataset.features:
            raise ValueError(f"no column {column!r} (columns: {', '.join(dataset.column_names)})")
        return column
    columns = ref_columns(dataset.features)
    if columns:
        return columns[0]
    raise ValueError("the dataset has no MediaRef column to preview (pass column=)")


def preview_rows(dataset: Any, column: str | None = None, n: int = 16) -> list[int]:
    """Up to ``n`` row indices spread evenly over the rows whose ref is not null (first and last
    included).

    Args:
        dataset: a map-style ``datasets.Dataset``.
        column: the MediaRef column (default: the first one).
        n: how many rows.

    Returns:
        Sorted row indices.
    """
    import pyarrow.compute as pc

    column = _ref_column(dataset, column)
    table = dataset.with_format("arrow").select_columns([column])[:]
    valid = np.flatnonzero(pc.is_valid(table.column(column)).to_numpy(zero_copy_only=False))
    if valid.size == 0 or n < 1:
        return []
    picks = np.unique(np.linspace(0, valid.size - 1, min(n, valid.size)).round().astype(np.int64))
    return valid[picks].tolist()


def _label(ref: Any) -> str:
    name = posixpath.basename(ref.uri) if not ref.uri.startswith("data:") else "data:"
    return name if ref.pts_ns is None else f"{name} {ref.pts_ns / 1e9:.2f}s"


def _decode(refs: list[Any], access: MediaAccess | None) -> list[Any]:
    """One engine call (the refs as stored: relative ones resolve against the access's root); when it
    fails, ref by ref (a failed ref: ``None``, logged)."""
    try:
        return list(batch_decode(refs, access=access))
    except MediaRefError as err:
        logger.info("preview: a ref failed (%s); decoding ref by ref", err)
    out: list[Any] = []
    for ref in refs:
        try:
            out.append(batch_decode([ref], access=access)[0])
        except MediaRefError as err:
            logger.warning("preview: %s", err)
            out.append(None)
    return out


def _thumbnail(frame: Any, longest: int) -> Any:
    from PIL import Image

    img = Image.fromarray(np.asarray(frame))
    img.thumbnail((longest, longest), Image.Resampling.BILINEAR)
    return img


def _sampled(dataset: Any, column: str | None, n: int, access: MediaAccess | None) -> tuple:
    column = _ref_column(dataset, column)
    rows = preview_rows(dataset, column, n)
    stored = dataset.with_format("arrow").select_columns([column]).select(rows)[:] if rows else None
    refs = [MediaRef(**d) for d in stored.column(column).to_pylist()] if stored is not None else []
    frames = _decode(refs, access if access is not None else get_media_access(dataset)) if refs else []
    return rows, refs, frames


def contact_sheet(
    dataset: Any,
    column: str | None = None,
    *,
    n: int = 16,
    cols: int | None = None,
    thumbnail: int = THUMBNAIL,
    access: MediaAccess | None = None,
) -> Any:
    """A grid of ``n`` of the dataset's frames, spread over its rows, each labelled with its file and time.

    Args:
        dataset: a map-style ``datasets.Dataset`` with a MediaRef column.
        column: the MediaRef column (default: the first one).
        n: how many frames.
        cols: frames per row (default: about the square root of ``n``).
        thumbnail: the longest side of each cell, in pixels.
        access: what the refs may read (default: the dataset's own).

    Returns:
        An RGB ``PIL.Image.Image`` (``.save("sheet.png")``; a notebook displays it).

    Raises:
        ValueError: no MediaRef column, or no row with a ref.

    Example:
        ```python
        >>> import hf_mediaref
        >>> ds = hf_mediaref.load_dataset("frames/", split="train")
        >>> hf_mediaref.contact_sheet(ds, n=16).save("sheet.png")
        ```
    """
    rows, refs, frames = _sampled(dataset, column, n, access)
    if not rows:
        raise ValueError("no row with a media reference to show")
    thumbs = [None if f is None else _thumbnail(f, thumbnail) for f in frames]
    first = next((t for t in thumbs if t is not None), None)
    size = (first.size[1], first.size[0]) if first is not None else (thumbnail * 3 // 4, thumbnail)
    labels = [
        f"#{row} " + (_label(ref) if f is not None else "failed") for row, ref, f in zip(rows, refs, thumbs)
    ]
    return image_grid(thumbs, labels, cols=cols, size=size)


def preview_dataset(
    dataset: Any,
    column: str | None = None,
    *,
    n: int = 16,
    thumbnail: int = THUMBNAIL,
    access: MediaAccess | None = None,
) -> Any:
    """A small ``datasets.Dataset`` of thumbnails for viewers that show ``datasets.Image`` columns (the
    Hub's dataset viewer): columns ``image`` (PNG), ``row`` (the row in ``dataset``), ``uri``, ``pts_ns`` and
    ``timestamp`` (seconds, null for an image). A ref that cannot be decoded has a null image.

    Args:
        dataset: a map-style ``datasets.Dataset`` with a MediaRef column.
        column: the MediaRef column (default: the first one).
        n: how many rows.
        thumbnail: the longest side of each image, in pixels.
        access: what the refs may read (default: the dataset's own).

    Returns:
        A ``datasets.Dataset`` that loads with plain ``datasets`` (no hf_mediaref feature in it).

    Example:
        ```python
        >>> from hf_mediaref.hf import preview_dataset
        >>> preview_dataset(ds, n=8).to_parquet("preview/train-00000-of-00001.parquet")
        ```
    """
    import datasets

    rows, refs, frames = _sampled(dataset, column, n, access)
    images: list[dict[str, Any] | None] = []
    for frame in frames:
        if frame is None:
            images.append(None)
            continue
        buffer = io.BytesIO()
        _thumbnail(frame, thumbnail).save(buffer, format="PNG")
        images.append({"bytes": buffer.getvalue(), "path": None})
    features = datasets.Features(
        {
            "image": datasets.Image(),
            "row": datasets.Value("int64"),
            "uri": datasets.Value("string"),
            "pts_ns": datasets.Value("int64"),
            "timestamp": datasets.Value("float64"),
        }
    )
    return datasets.Dataset.from_dict(
        {
            "image": images,
            "row": rows,
            "uri": [r.uri for r in refs],
            "pts_ns": [r.pts_ns for r in refs],
            "timestamp": [None if r.pts_ns is None else r.pts_ns / 1e9 for r in refs],
        },
        features=features,
    )


def preview_files(
    dataset: Any, folder: str, split: str, n: int = 16, access: MediaAccess | None = None
) -> dict:
    """Write the contact sheet and the thumbnail table of ``dataset`` under ``folder`` as a repo lays them
    out; returns ``{"files": {repo path: local path}, "sheet": repo path, "configs": {"preview": ...}}`` (the
    card's ``configs`` entry that makes the thumbnails a ``preview`` configuration).

    Args:
        dataset: a map-style ``datasets.Dataset`` with a MediaRef column.
        folder: a local folder (the repo or dataset folder, or a scratch folder).
        split: the split name of the thumbnails (the dataset's).
        n: how many frames.
        access: what the refs may read (default: the dataset's own).
    """
    import os

    sheet = f"{PREVIEW_DIR}/sheet.png"
    table = f"{PREVIEW_DIR}/{split}-00000-of-00001.parquet"
    os.makedirs(os.path.join(folder, PREVIEW_DIR), exist_ok=True)
    contact_sheet(dataset, n=n, access=access).save(os.path.join(folder, sheet))
    preview_dataset(dataset, n=n, access=access).to_parquet(os.path.join(folder, table))
    configs = {"preview": {"data_files": [{"split": split, "path": f"{PREVIEW_DIR}/{split}-*"}]}}
    return {
        "files": {p: os.path.join(folder, p) for p in (sheet, table)},
        "sheet": sheet,
        "configs": configs,
    }
