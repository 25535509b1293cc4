"""``read_mediaref``: a MediaRef dataset (a repo folder, Parquet files, a ``save_to_disk`` folder or a Hub
repo) as a Ray Dataset whose refs can be decoded anywhere: relative URIs are resolved against the media
root as the blocks are read (a map fused into the read), so the root survives shuffles, writes and
workers. Local data never calls the Hub; a Hub repo is pinned to the commit its files are read from.

The root comes from where the data was read (the folder after following symlinks, the folder of the Parquet
files, the ``save_to_disk`` folder, the Hub repo at its commit), never from anything stored in the data
(Parquet metadata, ``state.json``, ``dataset_info.json``). With the user's ``allow_uris`` and credentials it
makes the dataset's :class:`hf_mediaref.MediaAccess`, a trust boundary as for ``hf_mediaref.load_dataset``:
the same map checks every ref, relative or absolute, against it, so a ref reading outside raises
:class:`~hf_mediaref.errors.UntrustedRefError` before anything is decoded.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import pyarrow as pa

from .._optional import require
from ..arrow import as_array, cast_to_storage, is_ref_type, map_uris
from ..io import MediaAccess, UriKind, classify_uri, make_access, require_access
from ._decode import remember_root

__all__ = ["read_mediaref", "resolve_roots"]

_HUB_ID = re.compile(r"^[\w.-]+/[\w.-]+$")
_HUB_URL = re.compile(r"^hf://datasets/([^/@]+/[^/@]+)(?:@([^/]+))?/?(.*)$")


def _ref_columns(schema: pa.Schema) -> list[str]:
    """Top-level columns stored as media references (:func:`hf_mediaref.arrow.is_ref_type`)."""
    return [field.name for field in schema if is_ref_type(field.type)]


class _ResolveRoots:
    """``batch -> batch`` (Arrow): the ref columns cast to ``struct<uri, pts_ns>`` with relative URIs joined
    onto the root and every URI checked against its boundary, each distinct URI resolved once; null rows and
    invalid URIs (null or empty) are kept for the decoder to report. Pickles to Ray workers with the access
    (credentials included)."""

    def __init__(self, columns: Sequence[str], access: MediaAccess):
        self.columns = list(columns)
        self.access = require_access(access)

    def __call__(self, table: pa.Table) -> pa.Table:
        for name in self.columns:
            if name not in table.column_names:
                raise KeyError(f"column {name!r} is not in the dataset (columns: {table.column_names})")
            column = map_uris(cast_to_storage(as_array(table.column(name))), self.access.resolve)
            table = table.set_column(table.column_names.index(name), name, column)
        return table


def resolve_roots(
    dataset: Any,
    root: str | os.PathLike[str] | MediaAccess | None = None,
    columns: Sequence[str] | None = None,
    *,
    allow_uris: str | os.PathLike[str] | Iterable[Any] | None = None,
    access: MediaAccess | None = None,
) -> Any:
    """Resolve the relative URIs of a Ray Dataset's media columns against a root and keep every ref inside
    its access (a lazy map fused into the read: nothing runs until the dataset does).

    For a dataset read with Ray's own readers (``ray.data.read_parquet``, ``from_huggingface``...), which
    keep the ``struct<uri, pts_ns>`` column but not where the data came from. The access is a trust boundary,
    as for ``hf_mediaref.load_dataset``: every ref, relative or absolute, must read inside its root or what
    it allows; public ``http(s)`` URLs and ``data:`` URIs are always allowed. The access travels to the Ray
    workers by pickling (credentials included) and is also kept in the returned dataset's own
    ``DataContext``, so that a :class:`~hf_mediaref.ray.MediaDecoder` in another worker reads under it there
    too (its public-address rule and its credentials); another dataset's access never applies to this one.

    Args:
        dataset: a ``ray.data.Dataset``.
        root: a local directory (made absolute) or a URL (``hf://datasets/org/name@<commit>/``,
            ``s3://bucket/prefix/``...), or a :class:`hf_mediaref.MediaAccess`: builds
            ``MediaAccess(root, allow_uris)``.
        columns: the media columns; default: every top-level ``struct<uri, pts_ns>`` column of the schema.
        allow_uris: what refs may read beyond the root: URI prefixes, local folders, schemes, or ``"*"`` to
            trust the dataset entirely (see :func:`hf_mediaref.parse_allow_uris`).
        access: the :class:`hf_mediaref.MediaAccess` to check against instead of ``root`` (widened by
            ``allow_uris``), e.g. one with credentials.

    Returns:
        A ``ray.data.Dataset`` whose media columns hold ``struct<uri: string, pts_ns: int64>`` with URIs that
        can be read from any worker.

    Raises:
        ValueError: neither ``root`` nor ``access``, or both; ``root`` is a ``data:`` URI; an ``allow_uris``
            entry is malformed; or no column holds refs.
        TypeError: ``access`` is not a ``MediaAccess``.
        UntrustedRefError: (when the dataset runs) a ref that reads outside the access and is not allowed (an
            absolute path, ``file://``, another host or scheme, a non-public address...), named in the
            message. Ray Data reports it as a ``RayTaskError(UserCodeException)`` whose message holds the
            ``UntrustedRefError`` line naming the ref; with Ray's
            ``DataContext.raise_original_map_exception = True`` it is a ``RayTaskError(UntrustedRefError)``,
            which ``except UntrustedRefError`` catches (with its ``uri``).
        PathEscapeError: (when the dataset runs; an ``UntrustedRefError``) a relative URI that leaves the
            root with ``..`` to a place not allowed.

    Example:
        ```python
        >>> import ray
        >>> from hf_mediaref import MediaAccess
        >>> from hf_mediaref.ray import resolve_roots
        >>> ds = resolve_roots(ray.data.read_parquet("/data/repo/data"), "/data/repo")
        >>> ds.take(1)[0]["frame"]
        {'uri': '/data/repo/videos/ep0.mp4', 'pts_ns': 0}
        >>> raw = ray.data.read_parquet("/data/repo/data")
        >>> wide = resolve_roots(raw, "/data/repo", allow_uris=["/mnt/shared/"])  # refs may also read there
        >>> hub = resolve_roots(raw, access=MediaAccess("hf://datasets/org/name@<commit>/", token="hf_..."))
        ```
    """
    value = make_access(root, allow_uris, access)
    if value is None:
        raise ValueError("resolve_roots needs root= or access= (where the dataset was read from)")
    return _resolved(dataset, value, columns)


def _resolved(dataset: Any, access: MediaAccess, columns: Sequence[str] | None) -> Any:
    """``dataset`` with its refs resolved and checked against ``access``, which its context keeps."""
    if columns is None:
        columns = _ref_columns(dataset.schema(fetch_if_missing=True).base_schema)
    if not columns:
        raise ValueError("no column holds media references (struct<uri, pts_ns>): pass columns=...")
    resolved = dataset.map_batches(
        _ResolveRoots(list(columns), access), batch_format="pyarrow", zero_copy_batch=True, batch_size=None
    )
    remember_root(resolved, access)  # for decoders in other workers: see MediaDecoder
    return resolved


# ------------------------------------------------------------------------------------------ sources


#: The folder of the ``preview`` configuration (thumbnails, not refs) that ``hf-mediaref build`` and
#: ``push_to_hub(preview=N)`` write beside the data (see :mod:`hf_mediaref.hf._preview`; Ray's layer does not
#: import ``hf``).
_PREVIEW_DIR = "preview"


def _split_files(files: list[str], split: str | None, base: str) -> list[str]:
    """The Parquet files of ``split``, by the Hub's naming (``<split>-*.parquet``, ``<split>/*.parquet``,
    ``*-<split>.parquet``); all files when ``split`` is None. Files of the ``preview`` configuration
    (``preview/...``: thumbnails) are never the table's."""
    files = [
        f for f in files if not os.path.relpath(f, base).replace(os.sep, "/").startswith(_PREVIEW_DIR + "/")
    ]
    if split is None:
        return files
    pattern = re.compile(rf"(^|/|[-_.]){re.escape(split)}([-_./]|$)")
    chosen = [f for f in files if pattern.search(os.path.relpath(f, base).replace(os.sep, "/"))]
    if not chosen:
        raise FileNotFoundError(f"no Parquet file of split {split!r} under {base} (files: {files[:5]})")
    return chosen


def _saved_tables(path: Path, split: str | None) -> list[pa.Table]:
    """The Arrow tables of a ``save_to_disk`` folder (a ``Dataset``, or a split of a ``DatasetDict``)."""
    if (path / "dataset_dict.json").exists():
        splits = json.loads((path / "dataset_dict.json").read_text())["splits"]
        if split is None:
            if len(splits) != 1:
                raise ValueError(f"{path} holds splits {splits}: pass split=...")
            split = splits[0]
        if split not in splits:
            raise ValueError(f"split {split!r} is not in {path} (splits: {splits})")
        path = path / split
    state = json.loads((path / "state.json").read_text())
    tables = []
    for entry in state["_data_files"]:
        with pa.memory_map(str(path / entry["filename"])) as source:
            tables.append(pa.ipc.open_stream(source).read_all())
    return tables


def _hub_source(
    repo_id: str, revision: str | None, subpath: str, split: str | None, storage_options: dict[str, Any]
) -> tuple[list[str], Any, str]:
    """``(Parquet paths, pyarrow filesystem, media root)`` of a Hub dataset repo at the commit ``revision``
    points to now (one Hub API call for the commit, one listing); the root is
    ``hf://datasets/<repo>@<commit>/``."""
    hub = require("huggingface_hub", purpose="reading a Hub repo")
    from pyarrow.fs import FSSpecHandler, PyFileSystem

    sha = hub.HfApi(token=storage_options.get("token")).dataset_info(repo_id, revision=revision).sha
    fs = hub.HfFileSystem(**storage_options)
    base = f"datasets/{repo_id}@{sha}"
    folder = f"{base}/{subpath.strip('/')}" if subpath.strip("/") else base
    files = sorted(f for f in fs.glob(f"{folder}/**/*.parquet") if "/.cache/" not in f)
    files = _split_files(files, split, base)
    if not files:
        raise FileNotFoundError(f"no Parquet file under hf://{folder}")
    return files, PyFileSystem(FSSpecHandler(fs)), f"hf://{base}/"


def _files_root(paths: list[str]) -> str | None:
    """Where Parquet files (or folders of them) were read: the deepest local folder holding them all (after
    following symlinks), or the common folder of URLs of one scheme and host; ``None`` when they share
    none."""
    if not paths:
        return None
    if all(classify_uri(p) is UriKind.LOCAL for p in paths):
        folders = [os.path.dirname(os.path.abspath(p)) if not os.path.isdir(p) else p for p in paths]
        return os.path.commonpath([os.path.realpath(f) for f in folders])
    if any(classify_uri(p) is UriKind.LOCAL for p in paths):
        return None
    split = [(p if p.endswith("/") else p.rsplit("/", 1)[0]).rstrip("/").split("/") for p in paths]
    common: list[str] = []
    for segments in zip(*split):
        if len(set(segments)) > 1:
            break
        common.append(segments[0])
    if len(common) < 3 or not common[0].endswith(":") or common[1] or not common[2]:  # "scheme:", "", "host"
        return None  # different schemes or hosts
    return "/".join(common) + "/"


def read_mediaref(
    path: str | os.PathLike[str] | Sequence[str | os.PathLike[str]],
    *,
    split: str | None = None,
    root: str | os.PathLike[str] | MediaAccess | None = None,
    columns: Sequence[str] | None = None,
    revision: str | None = None,
    storage_options: dict[str, Any] | None = None,
    allow_uris: str | os.PathLike[str] | Iterable[Any] | None = None,
    access: MediaAccess | None = None,
    **read_parquet_args: Any,
) -> Any:
    """Read a dataset of media references into a ``ray.data.Dataset`` whose relative URIs are resolved
    against its media root, so that any worker can decode them.

    ``path`` may be (the root is always where the data was read from):

    - a local repo folder (Parquet files anywhere under it, e.g. ``data/train-00000-of-00001.parquet``):
      the root is the folder, after following symlinks;
    - a folder written by ``Dataset.save_to_disk`` (read into the object store from the driver): the root
      is the folder, as for ``hf_mediaref.load_from_disk``;
    - Parquet files (a path or a list, local or URLs): the root is the deepest folder holding them all;
    - a Hub dataset repo, ``"org/name"`` or ``"hf://datasets/org/name[@revision][/dir]"``: read from the
      commit ``revision`` (default ``main``) points to now, the root being ``hf://datasets/org/name@<commit>/``
      (one Hub API call for the commit, one listing; never for local data).

    Nothing stored in the data sets or widens the root: not the Parquet schema metadata, not ``state.json``
    nor ``dataset_info.json``. ``root=`` or ``access=`` replace it (the media live elsewhere).

    Uses ``ray.data.read_parquet`` (the struct column is read as ``struct<uri, pts_ns>``), not
    ``ray.data.from_huggingface``, which needs ``aiohttp`` and contacts the Hub even for local data.

    The dataset's :class:`hf_mediaref.MediaAccess` (the root, ``allow_uris``, and for a Hub repo the
    ``token`` of ``storage_options``) is a trust boundary, as for ``hf_mediaref.load_dataset``: the data is
    someone else's, so every ref, relative or absolute, must read inside the root (the folder after
    following symlinks, the Hub repo at its commit) or what ``allow_uris`` allows; it is checked as the
    blocks are read (see :func:`resolve_roots`), and the access is kept in the dataset's own ``DataContext``
    for the decoders (it applies to this dataset only).

    Args:
        path: see above.
        split: the split whose files to read (``train`` matches ``data/train-*.parquet``,
            ``train/*.parquet``...), or the split of a ``save_to_disk`` ``DatasetDict``; default: all files.
        root: the media root (a local folder, a URL or a :class:`hf_mediaref.MediaAccess`), replacing the
            one found from ``path``.
        columns: the media columns; default: every top-level ``struct<uri, pts_ns>`` column.
        revision: a branch, tag or commit of a Hub repo.
        storage_options: options of ``huggingface_hub.HfFileSystem`` (``token``...) for a Hub repo; its
            ``token`` also reads the repo's media.
        allow_uris: what refs may read beyond the media root: URI prefixes, local folders, schemes, or
            ``"*"`` to trust the dataset entirely (see :func:`hf_mediaref.parse_allow_uris`).
        access: the :class:`hf_mediaref.MediaAccess` to read the refs with, replacing the one made from
            ``path`` (widened by ``allow_uris``); not with ``root``.
        **read_parquet_args: passed to ``ray.data.read_parquet`` (``override_num_blocks``, ``columns``...).

    Returns:
        A ``ray.data.Dataset``; its media columns hold ``struct<uri: string, pts_ns: int64>``.

    Raises:
        FileNotFoundError: no Parquet file (of ``split``) under the folder.
        ValueError: a ``save_to_disk`` ``DatasetDict`` with several splits and no ``split``, a malformed
            ``allow_uris`` entry, or both ``root`` and ``access``.
        TypeError: ``access`` is not a ``MediaAccess``.
        MissingDependencyError: Ray (``pip install 'hf-mediaref[ray]'``) or, for Hub repos,
            ``huggingface_hub`` is not installed.
        UnresolvedPathError: (when the dataset runs) a relative URI of files that share no folder, without
            ``root=``.
        UntrustedRefError: (when the dataset runs) a ref that reads outside the media root and is not
            allowed, named in the message (:class:`~hf_mediaref.errors.PathEscapeError` for a ``..`` out of
            the root); how Ray reports it: see :func:`resolve_roots`.

    Example:
        ```python
        >>> from hf_mediaref import MediaAccess
        >>> from hf_mediaref.ray import MediaDecoder, read_mediaref
        >>> ds = read_mediaref("/data/robot-frames", split="train")
        >>> ds.take(1)[0]["frame"]
        {'uri': '/data/robot-frames/videos/ep0.mp4', 'pts_ns': 0}
        >>> hub = read_mediaref("org/robot-frames", split="train")  # root hf://datasets/org/robot-frames@<sha>/
        >>> cdn = read_mediaref("org/robot-frames", allow_uris=["https://cdn.example.com/"])
        >>> moved = read_mediaref("/data/saved", access=MediaAccess("/mnt/media", allow_uris=["s3://bucket/"]))
        ```
    """
    ray = require("ray", purpose="hf_mediaref.ray")
    given = None if root is None and access is None else make_access(root, allow_uris, access)
    options = dict(storage_options or {})
    found_root: str | None = None
    token = None
    dataset = None
    if isinstance(path, (str, os.PathLike)):
        text = os.fspath(path)
        hub_url = _HUB_URL.match(text)
        hub = (
            (hub_url.group(1), hub_url.group(2) or revision, hub_url.group(3))
            if hub_url
            else (text, revision, "")
            if _HUB_ID.match(text) and not os.path.exists(text) and not text.endswith(".parquet")
            else None
        )
        if hub is not None:
            files, filesystem, found_root = _hub_source(*hub, split, options)
            token = options.get("token")
            dataset = ray.data.read_parquet(files, filesystem=filesystem, **read_parquet_args)
        elif os.path.isdir(text):
            folder = Path(text)
            found_root = os.path.realpath(folder)
            if (folder / "state.json").exists() or (folder / "dataset_dict.json").exists():
                dataset = ray.data.from_arrow(_saved_tables(folder, split))
            else:
                files = sorted(str(p) for p in folder.rglob("*.parquet") if ".cache" not in p.parts)
                files = _split_files(files, split, str(folder))
                if not files:
                    raise FileNotFoundError(f"no Parquet file under {folder}")
                dataset = ray.data.read_parquet(files, **read_parquet_args)
    if dataset is None:
        paths = [os.fspath(path)] if isinstance(path, (str, os.PathLike)) else [os.fspath(p) for p in path]
        paths = [os.path.abspath(p) if os.path.exists(p) else p for p in paths]
        found_root = _files_root(paths)
        dataset = ray.data.read_parquet(paths, **read_parquet_args)
    if given is None:
        given = MediaAccess(found_root, allow_uris, token=token)
    return _resolved(dataset, given, columns)
