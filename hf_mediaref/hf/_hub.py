"""``push_to_hub``: push a dataset together with the media its refs point at, as one commit.

Each referenced file is uploaded once (however many rows point at it) and the refs are rewritten to
repo-relative URIs, so ``hf_mediaref.load_dataset(repo_id)`` anywhere resolves them to
``hf://datasets/<repo_id>@<commit>/<path>``. Local files under the dataset's local media root keep their
layout; other local files go to ``<media_dir>/<hash of their folder>/<name>``. Media of a dataset whose root
is remote (loaded from another Hub repo, or a URL root) are copied into the repo at their path under that
root, so no ref dangles; pushing back to the repo a dataset was loaded from copies nothing. Absolute remote
refs (public ``http(s)`` URLs, allowed locations) and ``data:`` URIs are left as they are.

The trust boundary of the dataset's media root holds (:class:`hf_mediaref.MediaAccess`): a ref outside
the root and not allowed raises :class:`~hf_mediaref.errors.UntrustedRefError` before anything is written.
Everything is validated first (split and folder names, every ref, every file's existence, type and size),
copies are downloaded, then the Parquet shards are written here (``Dataset.shard(contiguous=True)`` +
``Dataset.to_parquet``: the features in the schema metadata, named and laid out as ``datasets``' own
``push_to_hub`` does; no ``embed_storage``, so the ref columns keep dictionary encoding and compression), the
card's YAML is updated as ``datasets`` updates it (:func:`hf_mediaref.hf._card.card_metadata`), and the
shards, the media, their index sidecars, the card and the deletion of the replaced shards land as ONE
``HfApi.create_commit`` with ``parent_commit`` set to the commit they were planned against: an error
anywhere before it leaves the repo as it was. Nothing of ``datasets`` or ``huggingface_hub`` is replaced
or patched: the push calls ``Dataset`` methods, ``HfApi`` / ``HfFileSystem``, and reads the card with the
classes ``datasets`` uses for it (through :mod:`hf_mediaref.hf._compat`). Every MediaRef column counts,
``decode=False`` ones included.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import posixpath
import re
import tempfile
import time
from collections.abc import Iterable, Iterator
from stat import S_ISREG
from typing import Any, NamedTuple

import pyarrow as pa
import pyarrow.compute as pc
from datasets import Features, SplitInfo
from huggingface_hub import CommitOperationAdd, CommitOperationDelete, HfApi, HfFileSystem
from huggingface_hub.hf_api import RepoFile  # not exported at the top level before huggingface_hub 0.25
from huggingface_hub.utils import EntryNotFoundError, HfHubHTTPError

from ..arrow import map_uris, resolve_uri
from ..errors import MediaNotFoundError, UnreadableMediaError, describe_uri
from ..io import UriKind, classify_uri, local_path, read_bytes, uri_scheme
from ._card import CARD_MARKER, card_metadata, dataset_card
from ._compat import config, embed_table_storage, require_decoding
from ._feature import MediaRefFeature, has_media, map_media_arrays
from ._preview import PREVIEW_DIR, preview_files
from ._roots import get_media_access
from ._sharding import shard_for_streaming

__all__ = ["CARD_MARKER", "MAX_FILE_BYTES", "dataset_card", "plan_uploads", "push_to_hub"]

logger = logging.getLogger(__name__)

#: The largest media file a push accepts (the Hub's limit per file).
MAX_FILE_BYTES = 50 * 10**9

_LOCAL = (UriKind.LOCAL, UriKind.FILE)
_SPLIT_NAME = re.compile(r"^\w+(\.\w+)*$")  # datasets' rule for split names
_HF_ROOT = re.compile(r"^hf://datasets/([^/@]+/[^/@]+)(?:@[^/]*)?/?")


# ----------------------------------------------------------------------------------------- Arrow
def _stored_uris(array: pa.Array | pa.ChunkedArray, feature: Any) -> set[str]:
    """Distinct URIs stored in a (nested) MediaRef column."""
    found: set[str] = set()

    def collect(leaf: pa.Array, _feature: MediaRefFeature) -> pa.Array:
        found.update(pc.unique(pc.filter(leaf.field("uri"), leaf.is_valid())).to_pylist())
        return leaf

    map_media_arrays(array, feature, collect)
    found.discard(None)
    return found


class _RewriteUris:
    """Leaf function: a ``struct<uri, pts_ns>`` array with every URI found in ``mapping`` replaced
    (:func:`hf_mediaref.arrow.map_uris`)."""

    def __init__(self, mapping: dict[str, str]):
        self.mapping = mapping

    def __call__(self, leaf: pa.Array, _feature: MediaRefFeature) -> pa.Array:
        return map_uris(leaf, lambda uri: self.mapping.get(uri, uri))


class _RewriteTable:
    """Picklable ``map`` function (arrow format) rewriting the URIs of the media columns."""

    def __init__(self, features: Features, mapping: dict[str, str]):
        self.features, self.rewrite = features, _RewriteUris(mapping)

    def __call__(self, table: pa.Table) -> pa.Table:
        for i, name in enumerate(table.column_names):
            if has_media(self.features.get(name)):
                table = table.set_column(
                    i, name, map_media_arrays(table[name], self.features[name], self.rewrite)
                )
        return table


# ----------------------------------------------------------------------------------------- planning
class _Media(NamedTuple):
    """One file to upload: a local path, or a remote URI to copy (``remote=True``)."""

    source: str
    remote: bool


def _repo_path(path: str, root: str | None, media_dir: str) -> str:
    """Where a local file goes in the repo: its path under the dataset's local root, else under media_dir."""
    if root is not None and classify_uri(root) is UriKind.LOCAL:
        rel = os.path.relpath(path, root)
        if not rel.startswith(os.pardir + os.sep) and rel != os.pardir and not os.path.isabs(rel):
            return rel.replace(os.sep, "/")
    folder = hashlib.sha1(os.path.dirname(path).encode()).hexdigest()[:10]
    return posixpath.join(media_dir, folder, os.path.basename(path))


def _checked_file(uri: str, path: str) -> None:
    """Raise unless ``path`` is a readable, non-empty regular file the Hub accepts."""
    try:
        stat = os.stat(path)
    except FileNotFoundError:
        msg = f"cannot push: media file {describe_uri(path)} (ref {describe_uri(uri)}) does not exist"
        raise MediaNotFoundError(msg, uri=uri) from None
    except OSError as exc:
        raise UnreadableMediaError(
            f"cannot push: {describe_uri(path)} (ref {describe_uri(uri)}): {exc}", uri=uri
        ) from exc
    if not S_ISREG(stat.st_mode) or not os.access(path, os.R_OK):
        raise UnreadableMediaError(
            f"cannot push: {describe_uri(path)} (ref {describe_uri(uri)}) is not a readable regular file",
            uri=uri,
        )
    if not 0 < stat.st_size <= MAX_FILE_BYTES:
        raise UnreadableMediaError(
            f"cannot push: {describe_uri(path)} (ref {describe_uri(uri)}) has {stat.st_size:,} bytes (a "
            f"media file has between 1 and {MAX_FILE_BYTES:,})",
            uri=uri,
        )


def _inside_remote_root(resolved: str, root: str) -> str | None:
    """The path of ``resolved`` under the remote ``root`` (``None`` when it is not under it)."""
    prefix = root if root.endswith("/") else root + "/"
    if not resolved.startswith(prefix):
        return None
    rel = resolved[len(prefix) :].split("?", 1)[0].split("#", 1)[0]
    return rel or None


def _plan_split(
    split: Any, media_dir: str, target: str | None
) -> Iterator[tuple[str, str | None, _Media | None]]:
    """``(stored URI, repo path or None, media to upload or None)`` for every distinct ref of ``split``:
    a repo path of ``None`` leaves the ref as it is.

    Raises:
        UntrustedRefError: a ref reads outside the dataset's media root and is not allowed.
        UnresolvedPathError: a relative ref and no media root.
        MediaNotFoundError, UnreadableMediaError: a local file is missing, not a regular file, empty or too
            large.
    """
    access = get_media_access(split)
    root = None if access is None else access.root
    source_repo = _HF_ROOT.match(root) if root is not None else None
    same_repo = source_repo is not None and source_repo.group(1) == target
    table = split.with_format("arrow")[:]
    for name, feature in split.features.items():
        for uri in sorted(_stored_uris(table[name], feature)) if has_media(feature) else ():
            if classify_uri(uri) is UriKind.DATA:
                continue  # the bytes are in the ref
            resolved = resolve_uri(uri, access)  # the trust boundary: raises for refs outside the root
            if classify_uri(resolved) in _LOCAL:
                path = os.path.abspath(local_path(resolved))
                _checked_file(uri, path)
                yield uri, _repo_path(path, root, media_dir), _Media(path, False)
                continue
            rel = _inside_remote_root(resolved, root) if root is not None and uri_scheme(root) else None
            if rel is None:
                yield uri, None, None  # an absolute remote ref (public URL, allowed location): kept
            elif same_repo:
                yield uri, rel, None  # already in the target repo
            else:
                yield uri, rel, _Media(resolved, True)  # copied from the source repo or URL root


def plan_uploads(
    splits: Iterable[Any], media_dir: str = "media", target: str | None = None
) -> tuple[dict[str, str], dict[str, str]]:
    """What to upload and how to rewrite the refs; validates every ref (nothing is read but file metadata).

    Args:
        splits: ``Dataset`` s.
        media_dir: the repo folder for local files outside the dataset's local media root.
        target: the repo pushed to (``"org/name"``): media of a dataset loaded from it are not copied again.

    Returns:
        ``(mapping, uploads)``: stored URI -> repo-relative URI, and repo path -> source (a local file, or
        the remote URI of a file to copy into the repo).

    Raises:
        UntrustedRefError: a ref reads outside the dataset's media root and is not allowed.
        UnresolvedPathError: a relative ref and no media root.
        MediaNotFoundError: a referenced local file does not exist.
        UnreadableMediaError: a referenced local file is not a readable regular file, is empty or too large.
        ValueError: two different files would land on the same repo path.
    """
    mapping: dict[str, str] = {}
    uploads: dict[str, str] = {}
    for split in splits:
        for uri, repo_path, media in _plan_split(split, media_dir, target):
            if repo_path is None:
                continue
            mapping[uri] = repo_path
            if media is not None and uploads.setdefault(repo_path, media.source) != media.source:
                raise ValueError(
                    f"two media files map to {repo_path!r} in the repo: {uploads[repo_path]!r} and "
                    f"{media.source!r}"
                )
    return mapping, {path: source for path, source in uploads.items()}


# ----------------------------------------------------------------------------------------- names
class _Target(NamedTuple):
    """Where the splits go: the configuration, its folder of shards, and the split names pushed."""

    config_name: str
    data_dir: str
    splits: list[str]


def _target(dataset: Any, config_name: str, data_dir: str | None, split: str | None) -> _Target:
    """Split names, ``data_dir`` and ``config_name`` as ``datasets``' ``push_to_hub`` takes them.

    Raises:
        ValueError: a bad split name or configuration name.
    """
    if config_name == "data":
        raise ValueError("cannot push: config_name cannot be 'data' (nothing was pushed)")
    if isinstance(dataset, dict):
        names = [str(name) for name in dataset]
    else:
        names = [str(split or getattr(dataset, "split", None) or "train")]
    for name in names:
        if not _SPLIT_NAME.match(name):
            raise ValueError(
                f"cannot push: split name {name!r} must match {_SPLIT_NAME.pattern} (nothing was pushed)"
            )
    folder = data_dir or (config_name if config_name != "default" else "data")
    return _Target(config_name, folder, names)


def _check_folders(media_dir: str, data_dir: str) -> None:
    """``media_dir`` and ``data_dir`` as plain repo folders."""
    for what, folder in (("media_dir", media_dir), ("data_dir", data_dir)):
        parts = folder.replace("\\", "/").split("/")
        if not folder or folder.startswith(("/", "~")) or any(p in ("", ".", "..") for p in parts):
            raise ValueError(f"cannot push: {what}={folder!r} must be a relative folder of the repo")


def _check_shard_options(dataset: Any, max_shard_size: Any, num_shards: Any) -> None:
    """The shard options and split features ``datasets``' ``push_to_hub`` accepts."""
    if isinstance(dataset, dict):
        if num_shards is not None and not isinstance(num_shards, dict):
            raise ValueError(
                "cannot push: a DatasetDict takes num_shards per split, e.g. {'train': 8, 'test': 2}"
            )
        given = any(n is not None for n in (num_shards or {}).values())
        features = [split.features for split in dataset.values()]
        if any(f != features[0] for f in features[1:]):
            raise ValueError("cannot push: all the splits of a DatasetDict must have the same features")
    else:
        given = num_shards is not None
    if max_shard_size is not None and given:
        raise ValueError("cannot push: give max_shard_size or num_shards, not both")


# ----------------------------------------------------------------------------------------- repo state
class _RepoState(NamedTuple):
    """What the push reads of the target revision before it writes anything there."""

    sha: str  #: the commit the push's commit must follow (``parent_commit``)
    files: dict[str, int]  #: path -> size of the files under the shard folders
    card: str | None  #: README.md
    legacy_infos: dict | None  #: dataset_infos.json


def _list_files(api: Any, repo_id: str, folder: str, sha: str) -> dict[str, int]:
    """``{path: size}`` of the files under ``folder`` of the repo at commit ``sha`` (empty when none)."""
    try:
        entries = list(
            api.list_repo_tree(
                repo_id, path_in_repo=folder, recursive=True, repo_type="dataset", revision=sha
            )
        )
    except EntryNotFoundError:
        return {}
    prefix = folder + "/"
    return {e.path: int(e.size) for e in entries if isinstance(e, RepoFile) and e.path.startswith(prefix)}


def _read_text(repo_id: str, sha: str, filename: str, token: Any) -> str | None:
    """A text file of the repo at commit ``sha`` (``None`` when there is none)."""
    fs = HfFileSystem(endpoint=config.HF_ENDPOINT, token=token)
    try:
        return fs.read_text(f"datasets/{repo_id}@{sha}/{filename}", encoding="utf-8", newline="")
    except FileNotFoundError:
        return None


def _repo_state(api: Any, repo_id: str, revision: str | None, data_dir: str, token: Any) -> _RepoState:
    """The revision's commit, and what the push reads at that commit: the files of ``data_dir`` (and of
    ``data/``, for splits pushed before cards had ``configs``), the card and the legacy
    ``dataset_infos.json``."""
    sha = api.repo_info(repo_id, repo_type="dataset", revision=revision).sha
    files: dict[str, int] = {}
    for folder in sorted({data_dir, "data"}):
        files.update(_list_files(api, repo_id, folder, sha))
    legacy = _read_text(repo_id, sha, config.DATASETDICT_INFOS_FILENAME, token)
    card = _read_text(repo_id, sha, config.REPOCARD_FILENAME, token)
    return _RepoState(sha, files, card, json.loads(legacy) if legacy else None)


# A shard of a split pushed before cards had ``configs`` (datasets'
# PUSH_TO_HUB_WITHOUT_METADATA_CONFIGS_SPLIT_PATTERN_SHARDED)
_LEGACY_SHARD = re.compile(r"^data/(?P<split>[^/]+)-\d{5}-of-\d{5}[^/]*\.[^/]+$")


def _legacy_splits(files: Iterable[str]) -> list[str]:
    found: dict[str, None] = {}
    for path in sorted(files):
        if match := _LEGACY_SHARD.match(path):
            found.setdefault(match["split"])
    return list(found)


# ----------------------------------------------------------------------------------------- shards
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([KMGT]i?B|B)?\s*$", re.IGNORECASE)
_UNITS = {"": 1, "B": 1, "KB": 10**3, "MB": 10**6, "GB": 10**9, "TB": 10**12}
_UNITS |= {"KIB": 2**10, "MIB": 2**20, "GIB": 2**30, "TIB": 2**40}


def _size_in_bytes(size: int | str) -> int:
    """``max_shard_size`` as bytes: an int, or a string like ``"500MB"`` / ``"1GiB"``."""
    if isinstance(size, int):
        return size
    match = _SIZE.match(size)
    if match is None:
        raise ValueError(f"cannot push: max_shard_size={size!r} is not a size (an int, or like '500MB')")
    return int(float(match[1]) * _UNITS[(match[2] or "").upper()])


def _nbytes(split: Any) -> int:
    """The in-memory size of a split's rows (of the rows it selects, for a selection), as datasets
    estimates it for the card's ``num_bytes``."""
    table_rows = split.data.num_rows
    return int(split.data.nbytes * len(split) / table_rows) if table_rows else 0


def _shard_count(split: Any, num_shards: int | None, max_shard_size: int | str | None) -> int:
    if num_shards is not None:
        return max(int(num_shards), 1)
    limit = _size_in_bytes(max_shard_size if max_shard_size is not None else config.MAX_SHARD_SIZE)
    return int(_nbytes(split) / limit) + 1


def _embeds(features: Features) -> bool:
    """Whether ``datasets`` would embed files of a column (an ``Image`` / ``Audio`` / ... column) on push."""
    return any(require_decoding(f, ignore_decode_attribute=True) for f in features.values())


def _write_shards(
    split: Any, name: str, num_shards: int, data_dir: str, scratch: str, embed_files: bool
) -> tuple[list[CommitOperationAdd], int]:
    """Write ``split`` as ``num_shards`` contiguous Parquet files (as ``datasets`` names and writes them: the
    features in the schema metadata) and return their commit operations and total size."""
    operations, size = [], 0
    folder = tempfile.mkdtemp(prefix=f"{name}-", dir=scratch)
    for i in range(num_shards):
        shard = split.shard(num_shards=num_shards, index=i, contiguous=True)
        if embed_files:  # Image / Audio columns: their files' bytes go into the shard, as datasets does
            shard = shard.with_format("arrow").map(embed_table_storage, batched=True, keep_in_memory=True)
        path = os.path.join(folder, f"{i:05d}.parquet")
        shard.with_format(None).to_parquet(path)
        size += os.path.getsize(path)
        path_in_repo = f"{data_dir}/{name}-{i:05d}-of-{num_shards:05d}.parquet"
        operations.append(CommitOperationAdd(path_in_repo=path_in_repo, path_or_fileobj=path))
    return operations, size


def _shard_operations(
    splits: dict[str, Any],
    shards: dict[str, int],
    data_dir: str,
    scratch: str,
    embed_external_files: bool,
) -> tuple[list[CommitOperationAdd], list[SplitInfo], list[int]]:
    """Every split's shards: their operations, the ``SplitInfo`` s and the uploaded sizes for the card."""
    operations: list[CommitOperationAdd] = []
    infos, sizes = [], []
    for name, split in splits.items():
        embed_files = embed_external_files and _embeds(split.features)
        ops, size = _write_shards(split, name, shards[name], data_dir, scratch, embed_files)
        operations += ops
        infos.append(SplitInfo(name=name, num_bytes=_nbytes(split), num_examples=len(split)))
        sizes.append(size)
    return operations, infos, sizes


def _old_shards(files: dict[str, int], data_dir: str, splits: list[str] | None) -> dict[str, int]:
    """The files a push replaces: ``{data_dir}/{split}-*`` of each pushed split, or every file directly in
    ``data_dir`` (``splits`` ``None``: a DatasetDict replaces the configuration's splits), as datasets."""
    prefix = data_dir + "/"
    direct = {p: s for p, s in files.items() if p.startswith(prefix) and "/" not in p[len(prefix) :]}
    if splits is None:
        return direct
    return {p: s for p, s in direct.items() if any(p[len(prefix) :].startswith(f"{n}-") for n in splits)}


# ----------------------------------------------------------------------------------------- card
def _with_card(
    metadata_card: str,
    repo_id: str,
    features: Features,
    data_dir: str,
    media: dict[str, str],
    num_rows: dict[str, int],
    description: str | None = None,
    preview: str | None = None,
) -> CommitOperationAdd:
    """The README operation: the card with its updated YAML and the usage section (added once)."""
    text = metadata_card
    if CARD_MARKER not in text:
        text = dataset_card(
            repo_id,
            features,
            data_dir,
            text,
            media=media,
            num_rows=num_rows,
            description=description,
            preview=preview,
        )
    return CommitOperationAdd(path_in_repo=config.REPOCARD_FILENAME, path_or_fileobj=text.encode("utf-8"))


# ----------------------------------------------------------------------------------------- push
def _media_operations(uploads: dict[str, str], scratch: str) -> list[CommitOperationAdd]:
    """The commit operations of the media files; remote sources are downloaded into ``scratch`` first."""
    operations = []
    for i, (repo_path, source) in enumerate(sorted(uploads.items())):
        if classify_uri(source) not in _LOCAL:
            data = read_bytes(source)
            if not 0 < len(data) <= MAX_FILE_BYTES:
                raise UnreadableMediaError(
                    f"cannot push: {describe_uri(source)} has {len(data):,} bytes", uri=source
                )
            copy = os.path.join(scratch, f"{i:08d}")
            with open(copy, "wb") as f:
                f.write(data)
            source = copy
        operations.append(CommitOperationAdd(path_in_repo=repo_path, path_or_fileobj=source))
    return operations


def _rewrite_dataset(dataset: Any, mapping: dict[str, str]) -> Any:
    if isinstance(dataset, dict):
        return type(dataset)({name: _rewrite_dataset(split, mapping) for name, split in dataset.items()})
    fn = _RewriteTable(dataset.features, mapping)
    return (
        dataset.with_format("arrow")
        .map(fn, batched=True, features=dataset.features, desc="Rewriting media refs")
        .with_format(None)
    )


def _sharded(
    dataset: Any, names: list[str], num_shards: Any, max_shard_size: Any, group_by_video: bool
) -> tuple[dict[str, Any], dict[str, int]]:
    """Each split to push, reordered so its shards hold whole videos (:func:`shard_for_streaming`), and its
    shard count."""
    kwargs = {"num_shards": num_shards, "max_shard_size": max_shard_size, "group_by_video": group_by_video}
    planned, kwargs = shard_for_streaming(dataset, kwargs)
    splits = dict(planned) if isinstance(planned, dict) else {names[0]: planned}
    counts = kwargs.get("num_shards")
    per_split = counts if isinstance(counts, dict) else dict.fromkeys(splits, counts)
    shards = {
        name: _shard_count(split, per_split.get(name), max_shard_size) for name, split in splits.items()
    }
    return splits, shards


#: How many times the commit is planned and sent when another commit lands on the revision in between.
_COMMIT_ATTEMPTS = 3


class _Table(NamedTuple):
    """The written shards of a push."""

    features: Features
    operations: list[CommitOperationAdd]
    splits: list[SplitInfo]
    uploaded: list[int]  #: bytes of Parquet per split
    replace_all: bool  #: a DatasetDict: the pushed splits replace the configuration's


def _card_and_deletions(
    state: _RepoState,
    table: _Table,
    target: _Target,
    repo_id: str,
    set_default: bool | None,
    media: dict[str, str],
    num_rows: dict[str, int],
    card: dict[str, Any],
) -> tuple[list[CommitOperationAdd], list[CommitOperationDelete]]:
    """The card (and legacy ``dataset_infos.json``) operations and the deletions of the replaced shards,
    planned against the repo at ``state.sha``."""
    old = _old_shards(state.files, target.data_dir, None if table.replace_all else target.splits)
    new_paths = {op.path_in_repo for op in table.operations}
    deletions = [CommitOperationDelete(path_in_repo=p) for p in sorted(old) if p not in new_paths]
    start = len(target.data_dir) + 1
    deleted = [sum(s for p, s in old.items() if p[start:].startswith(f"{n}-")) for n in target.splits]
    metadata_card, legacy_infos = card_metadata(
        state.card,
        config_name=target.config_name,
        features=table.features,
        splits=table.splits,
        uploaded_sizes=table.uploaded,
        deleted_sizes=deleted,
        data_dir=target.data_dir,
        set_default=set_default,
        replace_splits=table.replace_all,
        legacy_infos=state.legacy_infos,
        legacy_splits=_legacy_splits(state.files),
        license=card.get("license"),
        tags=card.get("tags"),
        extra_configs=card.get("configs"),
    )
    operations = [
        _with_card(
            metadata_card,
            repo_id,
            table.features,
            target.data_dir,
            media,
            num_rows,
            card.get("description"),
            card.get("sheet"),
        )
    ]
    if legacy_infos is not None:
        legacy = json.dumps(legacy_infos).encode("utf-8")
        operations.append(
            CommitOperationAdd(path_in_repo=config.DATASETDICT_INFOS_FILENAME, path_or_fileobj=legacy)
        )
    return operations, deletions


def push_to_hub(
    dataset: Any,
    repo_id: str,
    *,
    media_dir: str = "media",
    config_name: str = "default",
    set_default: bool | None = None,
    split: str | None = None,
    data_dir: str | None = None,
    token: Any = None,
    private: bool | None = None,
    revision: str | None = None,
    commit_message: str | None = None,
    commit_description: str | None = None,
    create_pr: bool | None = False,
    max_shard_size: int | str | None = None,
    num_shards: int | dict[str, int | None] | None = None,
    group_by_video: bool = True,
    embed_external_files: bool = True,
    num_proc: int | None = None,
    license: str | None = None,
    tags: Iterable[str] | None = None,
    preview: int = 0,
) -> Any:
    """Push ``dataset`` and the media it references to the Hub dataset repo ``repo_id``, as one commit.

    Validates everything first (split and folder names; every ref against the dataset's trust boundary;
    every local file's existence, type and size), downloads the media to copy from a remote root, rewrites
    the refs to repo-relative URIs, writes the Parquet shards, and sends the shards, the media, their index
    sidecars, the card and the deletion of the shards they replace as one ``create_commit`` whose
    ``parent_commit`` is the revision's commit read before: an error at any point before it leaves the repo
    as it was (a repo the push created is deleted again). The repo reads like one ``datasets``' own
    ``push_to_hub`` wrote: ``{data_dir}/{split}-XXXXX-of-NNNNN.parquet`` shards with the features in their
    schema metadata, and a card whose YAML has ``dataset_info`` and ``configs``.

    What is uploaded: local files under the dataset's local media root (at their path under it), other
    local files of a dataset without a root or allowed by its allow-list (under ``media_dir``), and the
    media of a dataset loaded from another Hub repo or a URL root (copied at their path under that root).
    Refs outside the root that are not allowed raise before anything is written.

    Args:
        dataset: a ``Dataset`` or ``DatasetDict`` (a DatasetDict replaces every split of the configuration;
            a ``Dataset`` replaces its split and keeps the others).
        repo_id: ``"org/name"``.
        media_dir: the repo folder for local files outside the dataset's local media root.
        config_name: with ``set_default``, ``split``, ``data_dir``, ``token``, ``private``, ``revision``,
            ``commit_message``, ``commit_description``, ``create_pr``, ``max_shard_size`` and
            ``embed_external_files``: as in ``datasets.Dataset.push_to_hub`` (``data_dir`` defaults to
            ``config_name``, or ``"data"`` for the default configuration).
        num_shards: shards per split (for a DatasetDict, a dict by split). Unless ``num_shards`` or
            ``max_shard_size`` is given, at least 8 shards are written (fewer only for fewer rows) so
            streaming DataLoader workers and ranks each get shards.
        group_by_video: reorder the rows by video (each video's rows by time) so each shard holds whole
            videos where sizes allow (not with ``max_shard_size``); ``False`` keeps the row order.
        num_proc: accepted for ``datasets``' signature; the shards are written in this process.
        license: the card's ``license`` (a Hub license id such as ``"cc-by-4.0"``).
        tags: tags added to the card (with ``hf-mediaref``). The card also shows how the dataset was built
            when its ``info.description`` says (``from_videos`` and ``hf-mediaref build`` write it).
        preview: push a contact sheet of this many frames (shown in the card) and their thumbnails as a
            ``preview`` configuration of ``datasets.Image`` rows, which the Hub's viewer shows as pictures
            (``preview/``; 0, the default: none).

    Returns:
        The ``CommitInfo`` of the commit.

    Raises:
        UntrustedRefError: a ref reads outside the dataset's media root and is not allowed.
        UnresolvedPathError: a relative ref and no media root.
        MediaNotFoundError: a referenced file does not exist.
        UnreadableMediaError: a referenced file is not a readable regular file, is empty or too large.
        ValueError: a bad split or configuration name, ``media_dir`` or ``data_dir``, both ``num_shards``
            and ``max_shard_size``, two files for one repo path, a media file that would land on
            ``README.md`` or under ``data_dir``, or features that differ from the configuration's other
            splits on the Hub.

    Example:
        ```python
        >>> import hf_mediaref
        >>> hf_mediaref.push_to_hub(ds, "me/robot-frames")  # uploads videos/*.mp4 once each
        >>> back = hf_mediaref.load_dataset("me/robot-frames", split="train")
        ```
    """
    del num_proc  # one process writes the shards
    target = _target(dataset, config_name, data_dir, split)
    _check_folders(media_dir, target.data_dir)
    _check_shard_options(dataset, max_shard_size, num_shards)
    originals = list(dataset.values()) if isinstance(dataset, dict) else [dataset]
    mapping, uploads = plan_uploads(originals, media_dir, target=repo_id)
    clash = sorted(
        p
        for p in uploads
        if p == "README.md"
        or p.startswith(target.data_dir + "/")
        or (preview and p.startswith(PREVIEW_DIR + "/"))
    )
    if clash:
        raise ValueError(
            f"cannot push: media files would land on the card or among the Parquet shards ({clash[:3]}); "
            "move them or pass another data_dir"
        )
    with tempfile.TemporaryDirectory(prefix="hf_mediaref-push-") as scratch:
        media = _media_operations(uploads, scratch)
        card_media = {op.path_in_repo: str(op.path_or_fileobj) for op in media}
        shown = preview_files(originals[0], scratch, target.splits[0], preview) if preview else {}
        media += [
            CommitOperationAdd(path_in_repo=p, path_or_fileobj=f) for p, f in shown.get("files", {}).items()
        ]
        sidecars = _index_sidecars(card_media)  # local work, before anything reaches the Hub
        rewritten = _rewrite_dataset(dataset, mapping) if mapping else dataset
        splits, shards = _sharded(rewritten, target.splits, num_shards, max_shard_size, group_by_video)
        features = next(iter(splits.values())).features
        table_ops, split_infos, uploaded = _shard_operations(
            splits, shards, target.data_dir, scratch, embed_external_files
        )
        api = HfApi(endpoint=config.HF_ENDPOINT, token=token)
        created = not _repo_exists(api, repo_id)
        api.create_repo(repo_id, repo_type="dataset", private=private, exist_ok=True)
        try:
            if revision is not None and not revision.startswith("refs/pr/"):
                api.create_branch(repo_id, branch=revision, repo_type="dataset", exist_ok=True)
            table = _Table(features, table_ops, split_infos, uploaded, isinstance(dataset, dict))
            num_rows = {name: len(s) for name, s in zip(target.splits, originals)}
            card = {
                "license": license,
                "tags": ["hf-mediaref", *(tags or ())],
                "description": originals[0].info.description,
                "sheet": shown.get("sheet"),
                "configs": shown.get("configs"),
            }
            message = commit_message or f"Upload dataset and {len(media)} media file(s) with hf_mediaref"
            for attempt in range(1, _COMMIT_ATTEMPTS + 1):
                state = _repo_state(api, repo_id, revision, target.data_dir, token)
                card_ops, deletions = _card_and_deletions(
                    state, table, target, repo_id, set_default, card_media, num_rows, card
                )
                try:
                    info = api.create_commit(
                        repo_id,
                        operations=[*media, *sidecars, *table_ops, *card_ops, *deletions],
                        commit_message=message,
                        commit_description=commit_description,
                        repo_type="dataset",
                        revision=revision,
                        create_pr=create_pr,
                        parent_commit=state.sha,
                    )
                    break
                except HfHubHTTPError as exc:
                    status = getattr(getattr(exc, "response", None), "status_code", None)
                    if status not in (409, 412) or attempt == _COMMIT_ATTEMPTS:
                        raise
                    logger.info(  # another commit landed first: plan the card and deletions again
                        "push to %s: the revision moved (HTTP %s), retrying (%d/%d)",
                        repo_id,
                        status,
                        attempt,
                        _COMMIT_ATTEMPTS,
                    )
                    time.sleep(attempt)
        except BaseException:
            if created:  # a repo this push made: gone again, as if the push never started
                _delete_new_repo(api, repo_id)
            raise
    logger.info("pushed %d media file(s) and the table to %s in one commit", len(media), repo_id)
    return info


def _repo_exists(api: Any, repo_id: str) -> bool:
    try:
        return bool(api.repo_exists(repo_id, repo_type="dataset"))
    except Exception:  # cannot tell: never delete it
        return True


def _delete_new_repo(api: Any, repo_id: str) -> None:
    try:
        api.delete_repo(repo_id, repo_type="dataset", missing_ok=True)
        logger.info("push to %s failed: deleted the repo it had created", repo_id)
    except Exception as exc:  # the push's own error is the one to raise
        logger.warning("push to %s failed, and the repo it created could not be deleted: %s", repo_id, exc)


# ----------------------------------------------------------------------------------------- index sidecars
def _index_sidecars(uploads: dict[str, str]) -> list[Any]:
    """Each uploaded video's keyframe index beside it (``<path>.mrindex``): readers skip their scans."""
    from ..video import build_index_sidecars

    sidecars = build_index_sidecars(uploads)
    return [CommitOperationAdd(path_in_repo=p, path_or_fileobj=b) for p, b in sorted(sidecars.items())]
