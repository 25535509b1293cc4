"""``hf_mediaref.load_dataset``: ``datasets.load_dataset`` plus the repo root for relative media URIs.

Plain ``datasets.load_dataset`` attaches the same root once hf_mediaref is imported (its builder is hooked:
:mod:`hf_mediaref.hf._interop`). This wrapper adds one step: it resolves the revision first and pins the load
to that commit. It attaches the repo root to the result: the absolute folder for a local
repo; for a Hub repo ``hf://datasets/<org>/<name>@<commit sha>/``, read from the ``base_path`` of the builder
that ``datasets.load_dataset_builder`` makes (it resolves the repo, its files and the revision's commit; no
data is downloaded), and the load is pinned to that commit, so the rows and the media come from the same
revision.
"""

from __future__ import annotations

import inspect
import os
import re
from pathlib import Path
from typing import Any

import datasets

from ..io import MediaAccess
from ._compat import builder_base_path, config, is_packaged_module
from ._roots import get_media_access, set_media_access

__all__ = ["load_dataset", "load_from_disk"]

_HUB_BASE = re.compile(r"^(hf://(?:datasets|buckets)/[^/@]+/[^/@]+)@([^/]+)(?:/|$)")


def _arguments(path: str, args: tuple, kwargs: dict[str, Any]) -> dict[str, Any]:
    """The arguments of a ``datasets.load_dataset`` call, by name (``config_kwargs`` flattened)."""
    signature = inspect.signature(datasets.load_dataset)
    bound = signature.bind(path, *args, **kwargs)
    var_kw = next(p.name for p in signature.parameters.values() if p.kind is inspect.Parameter.VAR_KEYWORD)
    named = {k: v for k, v in bound.arguments.items() if k != var_kw}
    return {**named, **bound.arguments.get(var_kw, {})}


def _hub_base(arguments: dict[str, Any]) -> tuple[str, str] | None:
    """``(hf://datasets/org/name, commit sha)`` of the Hub repo ``arguments`` load, or None for other
    sources."""
    load_params = inspect.signature(datasets.load_dataset).parameters
    builder_params = inspect.signature(datasets.load_dataset_builder).parameters
    # the builder's own arguments, and the config kwargs (names load_dataset does not know)
    builder = datasets.load_dataset_builder(
        **{k: v for k, v in arguments.items() if k in builder_params or k not in load_params}
    )
    match = _HUB_BASE.match(builder_base_path(builder) or "")
    return (match.group(1), match.group(2)) if match else None


def _needs_builder(path: str) -> bool:
    """Whether ``path`` may name a Hub repo (not a local folder or file, not a packaged builder)."""
    return not (os.path.exists(path) or is_packaged_module(path))


def load_dataset(path: str, *args: Any, **kwargs: Any) -> Any:
    """:func:`datasets.load_dataset` (same arguments, same result) whose relative media URIs resolve against
    the root of the repo it was loaded from, whatever the current directory.

    Local repo folders resolve against their absolute path; Hub repos against
    ``hf://datasets/<org>/<name>@<commit sha>/``, the commit that was loaded (``revision`` may name a branch
    or
    tag: the load is pinned to its commit). Packaged builders (``load_dataset("parquet", data_files=...)``)
    read with the folder their local files are in, or the Hub repo their files are all in. The root is always
    where the loader read the data: nothing stored in the data (Parquet metadata, ``dataset_info.json``, the
    card) sets or widens it. Once hf_mediaref is imported, plain ``datasets.load_dataset``
    attaches the same root (without the pinning step: its builder already read the files of one commit).
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
    root = os.path.realpath(path) if os.path.isdir(path) else None
    hub = _hub_base(arguments) if _needs_builder(path) else None
    if hub is not None:
        root = f"{hub[0]}@{hub[1]}/"
        arguments["revision"] = hub[1]
    ds = datasets.load_dataset(**arguments)
    token = arguments.get("token")
    if root is not None:
        return set_media_access(ds, MediaAccess(root, allow_uris, token=token))
    # a packaged builder: the access the builder hook made from where it read the files, widened as asked
    found = get_media_access(ds)
    access = found if found is not None else MediaAccess(None, token=token)
    return set_media_access(ds, access.allowing(allow_uris))


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
    ``dataset_info.json``) is data: it never widens the access.

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
    if access is None:
        path = os.fspath(dataset_path)
        access = MediaAccess(os.path.realpath(path) if os.path.isdir(path) else None)
    return set_media_access(ds, access.allowing(allow_uris))
