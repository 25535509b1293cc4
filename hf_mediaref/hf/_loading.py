"""``hf_mediaref.load_dataset`` / ``load_from_disk``: ``datasets``' loaders, plus the access of where they
read.

The access (:class:`~hf_mediaref.MediaAccess`) is made from **where the loader read the data, never from the
data**: a local repo folder (after following symlinks); a Hub repo at the commit the builder that
``datasets.load_dataset_builder`` makes resolved (no data is downloaded; the load is then pinned to that
commit, so the rows and the media come from the same revision), with the load's ``token``; for a packaged
builder (``load_dataset("parquet", data_files=...)``) the Hub repo all its data files are in, or the folder
its local files are all in; the folder ``load_from_disk`` read. Nothing in the data (Parquet metadata,
``dataset_info.json``, ``state.json``, the card) sets or widens it.

Plain ``datasets.load_dataset`` / ``load_from_disk`` are not changed by hf_mediaref: they read a MediaRef
column as its marked plain struct (``{"uri", "pts_ns"}`` dicts, relative URIs as stored), and the
``"mediaref"`` format reads those with no root (a relative URI raises
:class:`~hf_mediaref.errors.UnresolvedPathError` naming the fix: these loaders, or
:func:`~hf_mediaref.hf.set_media_access`).
"""

from __future__ import annotations

import inspect
import logging
import os
import re
from pathlib import Path
from typing import Any

import datasets

from ..io import MediaAccess, UriKind, classify_uri
from ._compat import builder_base_path, config
from ._roots import attach_access

__all__ = ["load_dataset", "load_from_disk"]

logger = logging.getLogger(__name__)

_HUB_BASE = re.compile(r"^(hf://(?:datasets|buckets)/[^/@]+/[^/@]+)@([^/]+)(?:/|$)")
_HUB_FILE = re.compile(r"^(hf://datasets/[^/@]+/[^/@]+(?:@[^/]+)?)/")


def _arguments(path: str, args: tuple, kwargs: dict[str, Any]) -> dict[str, Any]:
    """The arguments of a ``datasets.load_dataset`` call, by name (``config_kwargs`` flattened)."""
    signature = inspect.signature(datasets.load_dataset)
    bound = signature.bind(path, *args, **kwargs)
    var_kw = next(p.name for p in signature.parameters.values() if p.kind is inspect.Parameter.VAR_KEYWORD)
    named = {k: v for k, v in bound.arguments.items() if k != var_kw}
    return {**named, **bound.arguments.get(var_kw, {})}


def _builder(arguments: dict[str, Any]) -> Any:
    """The builder ``datasets.load_dataset`` makes for ``arguments`` (it resolves the repo, its files and the
    revision's commit; no data is downloaded)."""
    load_params = inspect.signature(datasets.load_dataset).parameters
    builder_params = inspect.signature(datasets.load_dataset_builder).parameters
    # the builder's own arguments, and the config kwargs (names load_dataset does not know)
    return datasets.load_dataset_builder(
        **{k: v for k, v in arguments.items() if k in builder_params or k not in load_params}
    )


def _data_files(builder: Any) -> list[str]:
    return [str(f) for split_files in (builder.config.data_files or {}).values() for f in split_files]


def _files_repo_root(builder: Any) -> str | None:
    """``hf://datasets/<org>/<name>[@<revision>]/`` when every data file of a packaged builder is in that one
    repo (``load_dataset("parquet", data_files="hf://datasets/org/name/data/*.parquet")``): pinned only when
    the file paths are (``datasets`` resolves such patterns without a revision: the table is not pinned
    either)."""
    roots = {m.group(1) if (m := _HUB_FILE.match(f)) else None for f in _data_files(builder)}
    root = roots.pop() if len(roots) == 1 else None
    return None if root is None else root + "/"


def _files_folder(builder: Any) -> str | None:
    """The deepest local folder holding every data file of a packaged builder (``None`` for remote files)."""
    files = _data_files(builder)
    if not files or any(classify_uri(f) is not UriKind.LOCAL for f in files):
        return None
    return os.path.commonpath([os.path.dirname(os.path.realpath(f)) for f in files])


def _builder_root(builder: Any) -> tuple[str | None, str | None]:
    """``(root, commit)``: where a builder reads its data (``hf://...@<commit>/`` or an absolute folder; for a
    packaged builder the Hub repo its files are all in, or the folder its local files are all in), and the
    commit to pin the load to (a Hub repo's builder only)."""
    base = builder_base_path(builder)
    if base is None:
        return _files_repo_root(builder) or _files_folder(builder), None
    hub = _HUB_BASE.match(base)
    if hub is not None:
        return f"{hub.group(1)}@{hub.group(2)}/", hub.group(2)
    if classify_uri(base) is UriKind.LOCAL and os.path.isdir(base):
        return os.path.realpath(base), None
    return None, None


def load_dataset(path: str, *args: Any, **kwargs: Any) -> Any:
    """:func:`datasets.load_dataset` (same arguments, same result) whose relative media URIs resolve against
    the root of the repo it was loaded from, whatever the current directory.

    Local repo folders resolve against their absolute path; Hub repos against
    ``hf://datasets/<org>/<name>@<commit sha>/``, the commit that was loaded (``revision`` may name a branch
    or
    tag: the load is pinned to its commit). Packaged builders (``load_dataset("parquet", data_files=...)``)
    read with the folder their local files are in, or the Hub repo their files are all in. The root is always
    where the loader read the data: nothing stored in the data (Parquet metadata, ``dataset_info.json``, the
    card) sets or widens it. Plain ``datasets.load_dataset`` attaches nothing: its MediaRef columns read as
    ``{"uri", "pts_ns"}`` dicts with the URIs as stored, and the ``"mediaref"`` format raises
    :class:`~hf_mediaref.errors.UnresolvedPathError` on their relative URIs.
    The root is also a trust boundary: the data is someone else's, so its refs read inside the root only,
    unless ``allow_uris`` says otherwise.

    Args:
        path: a Hub dataset repo id or a local repo folder (or anything ``datasets.load_dataset`` takes).
        *args, **kwargs: the other arguments of ``datasets.load_dataset`` (``split``, ``revision``,
            ``streaming``, ``cache_dir``, ...).
        allow_uris: (keyword) what the dataset's refs may read beyond its root: URI prefixes, local
            folders, schemes, or ``"*"`` to trust it entirely (see :func:`hf_mediaref.hf.set_media_root`).
            By default a ref that reads outside the root (absolute paths, ``file://``, ``~``, symlinks out
            of the folder, other Hub repos or revisions, non-public network addresses) raises
            :class:`~hf_mediaref.errors.UntrustedRefError` when it is read.

    Returns:
        What ``datasets.load_dataset`` returns, with the media root attached.

    Raises:
        ValueError: ``path`` is a folder written by ``save_to_disk`` (use ``datasets.load_from_disk`` and
            :func:`set_media_root`); and whatever ``datasets.load_dataset`` raises.

    Example:
        ```python
        >>> import hf_mediaref
        >>> ds = hf_mediaref.load_dataset("org/robot-frames", split="train")
        >>> ds[0]["frame"]
        MediaRef(uri='hf://datasets/org/robot-frames@<commit sha>/videos/ep0.mp4', pts_ns=0)
        ```
    """
    if Path(path, config.DATASET_STATE_JSON_FILENAME).exists():
        raise ValueError(
            "this folder was written by save_to_disk: use datasets.load_from_disk and "
            "hf_mediaref.hf.set_media_root(ds, root) instead"
        )
    allow_uris = kwargs.pop("allow_uris", None)
    arguments = _arguments(path, args, kwargs)
    if os.path.isdir(path):
        root: str | None = os.path.realpath(path)
    else:
        root, commit = _builder_root(_builder(arguments))
        if commit is not None:
            arguments["revision"] = commit
    ds = datasets.load_dataset(**arguments)
    return attach_access(ds, MediaAccess(root, allow_uris, token=arguments.get("token")), loaded=True)


#: Format kwargs that say where or with what a read goes: restored from ``state.json`` they are data.
_REACH_KWARGS = ("storage_options", "access", "allow_uris")


def _drop_restored_reach(dataset: Any) -> None:
    """Reset a ``"mediaref"`` format restored from ``state.json`` without the kwargs of :data:`_REACH_KWARGS`
    (a saved ``storage_options`` could send ``hf://`` reads to another endpoint): the saved files never say
    where or with which credentials media are read."""
    fmt = dataset.format
    if fmt.get("type") != "mediaref":
        return
    dropped = sorted(k for k in _REACH_KWARGS if fmt["format_kwargs"].get(k) is not None)
    if not dropped:
        return
    logger.warning("load_from_disk: the saved 'mediaref' format's %s are data and were dropped", dropped)
    kept = {k: v for k, v in fmt["format_kwargs"].items() if k not in _REACH_KWARGS}
    columns, all_columns = fmt["columns"], fmt["output_all_columns"]
    dataset.set_format("mediaref", columns=columns, output_all_columns=all_columns, **kept)


def load_from_disk(
    dataset_path: str | os.PathLike[str],
    *args: Any,
    allow_uris: Any = None,
    access: MediaAccess | None = None,
    **kwargs: Any,
) -> Any:
    """:func:`datasets.load_from_disk` whose refs read with the folder it loaded as their access: relative
    URIs resolve inside that folder (after following symlinks), and nothing outside it is read unless
    ``allow_uris`` (or ``access``) allows it. What the saved files record (``state.json``'s format kwargs,
    ``dataset_info.json``) is data: it never widens the access, and a saved ``"mediaref"`` format comes back
    without its ``storage_options`` (logged).

    Args:
        dataset_path: a folder written by ``save_to_disk``.
        *args, **kwargs: the other arguments of ``datasets.load_from_disk``.
        allow_uris: what the refs may read beyond the folder (see :func:`hf_mediaref.parse_allow_uris`).
        access: a :class:`~hf_mediaref.MediaAccess` to read with instead (the media live elsewhere).

    Returns:
        What ``datasets.load_from_disk`` returns, with its media access attached.

    Example:
        ```python
        >>> import hf_mediaref
        >>> ds = hf_mediaref.load_from_disk("saved", access=hf_mediaref.MediaAccess("/data/robot-frames"))
        ```
    """
    ds = datasets.load_from_disk(os.fspath(dataset_path), *args, **kwargs)
    for split in ds.values() if isinstance(ds, dict) else [ds]:
        _drop_restored_reach(split)
    if access is None:
        path = os.fspath(dataset_path)
        access = MediaAccess(os.path.realpath(path) if os.path.isdir(path) else None)
    return attach_access(ds, access.allowing(allow_uris), loaded=True)
