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
copies are downloaded, then the table goes through ``datasets``' own ``push_to_hub`` (no
``embed_storage``: the ref columns keep dictionary encoding and compression) with its commits staged
(:func:`hf_mediaref.hf._compat.staged_commits`), and the Parquet shards, the media, the card (with a usage
section) and datasets' deletions land as ONE ``create_commit``: an error anywhere before it leaves the repo
as it was. Every MediaRef column counts, ``decode=False`` ones included.
"""

from __future__ import annotations

import hashlib
import logging
import os
import posixpath
import re
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from stat import S_ISREG
from typing import Any, NamedTuple

import pyarrow as pa
import pyarrow.compute as pc
from datasets import Features
from huggingface_hub import CommitOperationAdd, HfApi, HfFileSystem

from ..arrow import resolve_uri
from ..errors import MediaNotFoundError, UnreadableMediaError, describe_uri
from ..io import UriKind, classify_uri, local_path, read_bytes, uri_scheme
from ._card import CARD_MARKER, dataset_card
from ._compat import config, staged_commits
from ._feature import MediaRefFeature, has_media, map_media_arrays
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
    """Leaf function: a ``struct<uri, pts_ns>`` array with every URI found in ``mapping`` replaced (Arrow
    dictionary encode + take)."""

    def __init__(self, mapping: dict[str, str]):
        self.mapping = mapping

    def __call__(self, leaf: pa.Array, _feature: MediaRefFeature) -> pa.Array:
        encoded = leaf.field("uri").dictionary_encode()
        dictionary = pa.array([self.mapping.get(u, u) for u in encoded.dictionary.to_pylist()], pa.string())
        mask = leaf.is_null() if leaf.null_count else None
        return pa.StructArray.from_arrays(
            [dictionary.take(encoded.indices), leaf.field("pts_ns")], fields=list(leaf.type), mask=mask
        )


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


# ----------------------------------------------------------------------------------------- card
def _existing_card(repo_id: str, revision: str | None, token: Any) -> str:
    fs = HfFileSystem(endpoint=config.HF_ENDPOINT, token=token)
    path = f"datasets/{repo_id}@{revision}/README.md" if revision else f"datasets/{repo_id}/README.md"
    try:
        return fs.read_text(path, encoding="utf-8")
    except FileNotFoundError:
        return ""


# ----------------------------------------------------------------------------------------- push
def _split_names(dataset: Any, push_kwargs: dict[str, Any]) -> list[str]:
    if isinstance(dataset, dict):
        return [str(name) for name in dataset]
    split = push_kwargs.get("split") or getattr(dataset, "split", None) or "train"
    return [str(split)]


def _check_names(dataset: Any, media_dir: str, push_kwargs: dict[str, Any]) -> None:
    """Split names as ``datasets`` accepts them; ``media_dir`` and ``data_dir`` as plain repo folders."""
    for name in _split_names(dataset, push_kwargs):
        if not _SPLIT_NAME.match(name):
            raise ValueError(
                f"cannot push: split name {name!r} must match {_SPLIT_NAME.pattern} (nothing was pushed)"
            )
    for what, folder in (("media_dir", media_dir), ("data_dir", push_kwargs.get("data_dir") or "data")):
        parts = folder.replace("\\", "/").split("/")
        if not folder or folder.startswith(("/", "~")) or any(p in ("", ".", "..") for p in parts):
            raise ValueError(f"cannot push: {what}={folder!r} must be a relative folder of the repo")


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


def _with_card(
    operations: list,
    repo_id: str,
    features: Features,
    data_dir: str,
    existing: str,
    media: dict[str, str],
    num_rows: dict[str, int],
) -> list:
    """``operations`` with the README (datasets' card, or the repo's) carrying the usage section once."""
    out, card = [], None
    for op in operations:
        if isinstance(op, CommitOperationAdd) and op.path_in_repo == "README.md":
            raw: Any = op.path_or_fileobj
            if isinstance(raw, (str, os.PathLike)):
                raw = Path(raw).read_bytes()
            elif hasattr(raw, "read"):
                raw.seek(0)
                raw = raw.read()
            card = bytes(raw).decode("utf-8")
        else:
            out.append(op)
    text = card if card is not None else existing
    if CARD_MARKER not in text:
        text = dataset_card(repo_id, features, data_dir, text, media=media, num_rows=num_rows)
    if card is not None or text != existing:
        out.append(CommitOperationAdd(path_in_repo="README.md", path_or_fileobj=text.encode("utf-8")))
    return out


def _rewrite_dataset(dataset: Any, mapping: dict[str, str]) -> Any:
    if isinstance(dataset, dict):
        return type(dataset)({name: _rewrite_dataset(split, mapping) for name, split in dataset.items()})
    fn = _RewriteTable(dataset.features, mapping)
    return (
        dataset.with_format("arrow")
        .map(fn, batched=True, features=dataset.features, desc="Rewriting media refs")
        .with_format(None)
    )


def push_to_hub(
    dataset: Any,
    repo_id: str,
    *,
    media_dir: str = "media",
    token: Any = None,
    private: bool | None = None,
    revision: str | None = None,
    commit_message: str | None = None,
    **push_kwargs: Any,
) -> Any:
    """Push ``dataset`` and the media it references to the Hub dataset repo ``repo_id``, as one commit.

    Validates everything first (split and folder names; every ref against the dataset's trust boundary;
    every local file's existence, type and size), downloads the media to copy from a remote root, rewrites
    the refs to repo-relative URIs and runs ``datasets``' ``push_to_hub`` for the table with its commits
    staged; then the shards, the media and the card land in one ``create_commit``. An error at any point
    before it leaves the repo as it was (a repo that did not exist may be left created and empty).

    What is uploaded: local files under the dataset's local media root (at their path under it), other
    local files of a dataset without a root or allowed by its allow-list (under ``media_dir``), and the
    media of a dataset loaded from another Hub repo or a URL root (copied at their path under that root).
    Refs outside the root that are not allowed raise before anything is written.

    Args:
        dataset: a ``Dataset`` or ``DatasetDict``.
        repo_id: ``"org/name"``.
        media_dir: the repo folder for local files outside the dataset's local media root.
        token, private, revision, commit_message: as in ``datasets.Dataset.push_to_hub``.
        **push_kwargs: more arguments for ``datasets``' ``push_to_hub`` (``split``, ``data_dir``,
            ``max_shard_size``, ``num_shards``...). Unless ``num_shards`` or ``max_shard_size`` is given, at
            least 8 shards are written (fewer only for fewer rows) so streaming DataLoader workers and ranks
            each get shards, and rows are grouped by video (each video's rows by time) so each shard holds
            whole videos where sizes allow; ``group_by_video=False`` keeps the row order.

    Returns:
        The ``CommitInfo`` of the commit.

    Raises:
        UntrustedRefError: a ref reads outside the dataset's media root and is not allowed.
        UnresolvedPathError: a relative ref and no media root.
        MediaNotFoundError: a referenced file does not exist.
        UnreadableMediaError: a referenced file is not a readable regular file, is empty or too large.
        ValueError: a bad split name, ``media_dir`` or ``data_dir``, two files for one repo path, or a media
            file that would land on ``README.md`` or under ``data_dir``.

    Example:
        ```python
        >>> import hf_mediaref
        >>> hf_mediaref.push_to_hub(ds, "me/robot-frames")  # uploads videos/*.mp4 once each
        >>> back = hf_mediaref.load_dataset("me/robot-frames", split="train")
        ```
    """
    _check_names(dataset, media_dir, push_kwargs)
    splits = list(dataset.values()) if isinstance(dataset, dict) else [dataset]
    mapping, uploads = plan_uploads(splits, media_dir, target=repo_id)
    data_dir = push_kwargs.get("data_dir") or "data"
    clash = sorted(p for p in uploads if p == "README.md" or p.startswith(data_dir.rstrip("/") + "/"))
    if clash:
        raise ValueError(
            f"cannot push: media files would land on the card or among the Parquet shards ({clash[:3]}); "
            "move them or pass another data_dir"
        )
    with tempfile.TemporaryDirectory(prefix="hf_mediaref-push-") as scratch:
        media = _media_operations(uploads, scratch)
        card_media = {op.path_in_repo: str(op.path_or_fileobj) for op in media}
        sidecars = _index_sidecars(card_media)  # local work, before anything reaches the Hub
        api = HfApi(endpoint=config.HF_ENDPOINT, token=token)
        created = not _repo_exists(api, repo_id)
        api.create_repo(repo_id, repo_type="dataset", private=private, exist_ok=True)
        try:
            rewritten = _rewrite_dataset(dataset, mapping) if mapping else dataset
            rewritten, push_kwargs = shard_for_streaming(rewritten, push_kwargs)  # whole videos per shard
            kwargs = dict(push_kwargs, token=token, private=private, revision=revision)
            if commit_message is not None:
                kwargs["commit_message"] = commit_message
            with staged_commits() as staged:
                rewritten.push_to_hub(repo_id, **kwargs)
            table_ops = [op for commit in staged for op in commit.operations]
            last = staged[-1].kwargs if staged else {}
            existing = (
                ""
                if any(getattr(op, "path_in_repo", None) == "README.md" for op in table_ops)
                else (_existing_card(repo_id, revision, token))
            )
            rows = (
                dict(dataset) if isinstance(dataset, dict) else {push_kwargs.get("split") or "train": dataset}
            )
            num_rows = {name: len(split) for name, split in rows.items()}
            card_args = (repo_id, splits[0].features, data_dir, existing, card_media, num_rows)
            operations = media + sidecars + _with_card(table_ops, *card_args)
            message = commit_message or f"Upload dataset and {len(media)} media file(s) with hf_mediaref"
            info = api.create_commit(
                repo_id,
                operations=operations,
                commit_message=message,
                commit_description=last.get("commit_description"),
                repo_type="dataset",
                revision=revision,
                create_pr=last.get("create_pr"),
                parent_commit=next(
                    (c.kwargs["parent_commit"] for c in staged if c.kwargs.get("parent_commit")), None
                ),
            )
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
