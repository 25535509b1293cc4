"""``push_to_hub``: push a dataset together with the local media files its refs point at.

Each referenced local file is uploaded once (however many rows point at it) and the refs are rewritten to
repo-relative URIs, so ``hf_mediaref.load_dataset(repo_id)`` anywhere resolves them to
``hf://datasets/<repo_id>@<commit>/<path>``. Files under the dataset's local media root keep their layout;
others go to ``<media_dir>/<hash of their folder>/<name>``. Remote URLs and ``data:`` URIs are left as they
are. The table itself is pushed by ``datasets``' own ``push_to_hub`` (no ``embed_storage``: the ref columns
keep dictionary encoding and compression), and the dataset card explains how to load it with and without
hf_mediaref. Every MediaRef column counts, ``decode=False`` ones included.
"""

from __future__ import annotations

import hashlib
import logging
import os
import posixpath
from collections.abc import Iterable, Iterator
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
from datasets import Features
from huggingface_hub import CommitOperationAdd, HfApi, HfFileSystem

from ..arrow import resolve_uri
from ..errors import MediaNotFoundError, describe_uri
from ..io import UriKind, classify_uri, local_path
from ._compat import config
from ._feature import MediaRefFeature, has_media, map_media_arrays, plain_features
from ._roots import get_media_root
from ._sharding import shard_for_streaming

__all__ = ["CARD_MARKER", "dataset_card", "plan_uploads", "push_to_hub"]

logger = logging.getLogger(__name__)

#: Marks the usage section hf_mediaref adds to a dataset card (added once).
CARD_MARKER = "<!-- hf_mediaref: usage -->"

_LOCAL = (UriKind.LOCAL, UriKind.FILE)


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
def _repo_path(path: str, root: str | None, media_dir: str) -> str:
    """Where a local file goes in the repo: its path under the dataset's local root, else under media_dir."""
    if root is not None and classify_uri(root) is UriKind.LOCAL:
        rel = os.path.relpath(path, root)
        if not rel.startswith(os.pardir + os.sep) and rel != os.pardir and not os.path.isabs(rel):
            return rel.replace(os.sep, "/")
    folder = hashlib.sha1(os.path.dirname(path).encode()).hexdigest()[:10]
    return posixpath.join(media_dir, folder, os.path.basename(path))


def _local_files(split: Any) -> Iterator[tuple[str, str]]:
    """``(stored URI, absolute local path)`` of every local file the refs of ``split`` point at.

    Raises:
        UnresolvedPathError: a relative ref and no media root.
        MediaNotFoundError: a referenced file does not exist.
    """
    root = get_media_root(split)
    table = split.with_format("arrow")[:]
    for name, feature in split.features.items():
        for uri in sorted(_stored_uris(table[name], feature)) if has_media(feature) else ():
            if classify_uri(uri) not in _LOCAL:
                continue  # remote URLs and data: URIs are pushed as they are
            resolved = resolve_uri(uri, root)
            if classify_uri(resolved) not in _LOCAL:
                continue  # relative to a remote root (e.g. a Hub repo): stays relative
            path = os.path.abspath(local_path(resolved))
            if not os.path.isfile(path):
                msg = f"cannot push: media file {describe_uri(path)} (ref {describe_uri(uri)}) does not exist"
                raise MediaNotFoundError(msg, uri=uri)
            yield uri, path


def plan_uploads(splits: Iterable[Any], media_dir: str = "media") -> tuple[dict[str, str], dict[str, str]]:
    """What to upload and how to rewrite the refs.

    Args:
        splits: ``Dataset`` s.
        media_dir: the repo folder for files outside the dataset's local media root.

    Returns:
        ``(mapping, uploads)``: stored URI -> repo-relative URI, and repo path -> local file to upload.

    Raises:
        UnresolvedPathError: a relative ref and no media root.
        MediaNotFoundError: a referenced file does not exist.
        ValueError: two different files would land on the same repo path.
    """
    mapping: dict[str, str] = {}
    uploads: dict[str, str] = {}
    for split in splits:
        root = get_media_root(split)
        for uri, path in _local_files(split):
            repo_path = _repo_path(path, root, media_dir)
            if uploads.setdefault(repo_path, path) != path:
                raise ValueError(
                    f"two media files map to {repo_path!r} in the repo: {uploads[repo_path]!r} and {path!r}"
                )
            mapping[uri] = repo_path
    return mapping, uploads


# ----------------------------------------------------------------------------------------- card
def dataset_card(repo_id: str, features: Features, data_dir: str = "data", existing: str = "") -> str:
    """README text with a usage section: loading with hf_mediaref, and reading the refs as plain structs.

    Args:
        repo_id: the dataset repo.
        features: the dataset's features.
        data_dir: where ``datasets`` writes the Parquet shards in the repo.
        existing: the current README (kept, the section is appended), or ``""``.

    Returns:
        The README text.
    """
    media = [name for name, f in features.items() if has_media(f)]
    plain = Features(plain_features(dict(features))).to_dict()
    section = f"""{CARD_MARKER}
## Media references

Columns {", ".join(f"`{c}`" for c in media)} hold media references: Arrow
`struct<uri: string, pts_ns: int64>`. `pts_ns` is the presentation time (nanoseconds) of a video frame,
or null for an image. A relative `uri` is relative to this repository's root
(`hf://datasets/{repo_id}@<revision>/<uri>`); `data:` URIs embed the image.

### Load with [hf_mediaref](https://pypi.org/project/hf-mediaref/)

```python
import hf_mediaref

ds = hf_mediaref.load_dataset("{repo_id}", split="train")  # resolves relative URIs against this repo
ds[0]["{media[0] if media else "frame"}"]  # a MediaRef (nothing decoded yet)
frames = ds.with_format("mediaref", output="torch")[:8]  # decoded in one batch, each video once
```

### Read the refs as plain structs (without hf_mediaref)

```python
from datasets import Features, load_dataset

features = Features.from_dict({plain!r})
ds = load_dataset("parquet", data_files="hf://datasets/{repo_id}/{data_dir}/*.parquet", features=features)
```

or `pyarrow.parquet.read_table(...)` / pandas / DuckDB on the Parquet files in `{data_dir}/`. `datasets`
without `hf_mediaref` imported cannot parse this card's `media_ref` dtype, hence the explicit `features=`.
"""
    body = existing.rstrip() + "\n\n" if existing.strip() else f"# {repo_id}\n\n"
    return body + section


def _existing_card(repo_id: str, revision: str | None, token: Any) -> str:
    fs = HfFileSystem(endpoint=config.HF_ENDPOINT, token=token)
    path = f"datasets/{repo_id}@{revision}/README.md" if revision else f"datasets/{repo_id}/README.md"
    try:
        return fs.read_text(path, encoding="utf-8")
    except FileNotFoundError:
        return ""


# ----------------------------------------------------------------------------------------- push
def _commit_media(api: Any, repo_id: str, uploads: dict[str, str], card: str | None, revision: Any) -> None:
    """Commit the media files (and the card, when given) in one commit."""
    operations = [CommitOperationAdd(path_in_repo=p, path_or_fileobj=f) for p, f in sorted(uploads.items())]
    if card is not None:
        operations.append(CommitOperationAdd(path_in_repo="README.md", path_or_fileobj=card.encode("utf-8")))
    if not operations:
        return
    api.create_commit(
        repo_id,
        operations=operations,
        repo_type="dataset",
        revision=revision,
        commit_message=f"Upload {len(uploads)} media file(s) with hf_mediaref",
    )
    logger.info("uploaded %d media file(s) to %s", len(uploads), repo_id)


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
    """Push ``dataset`` and the local media files it references to the Hub dataset repo ``repo_id``.

    Uploads each referenced local file once (one commit, with the card's usage section the first time),
    rewrites those refs to repo-relative URIs, then calls ``datasets``' ``push_to_hub`` for the table.

    Args:
        dataset: a ``Dataset`` or ``DatasetDict``.
        repo_id: ``"org/name"``.
        media_dir: the repo folder for files outside the dataset's local media root.
        token, private, revision, commit_message: as in ``datasets.Dataset.push_to_hub``.
        **push_kwargs: more arguments for ``datasets``' ``push_to_hub`` (``split``, ``data_dir``,
            ``max_shard_size``, ``num_shards``...). Unless ``num_shards`` or ``max_shard_size`` is given, at
            least 8 shards are written (fewer only for fewer rows) so streaming DataLoader workers and ranks
            each get shards, and rows are grouped by video (each video's rows by time) so each shard holds
            whole videos where sizes allow; ``group_by_video=False`` keeps the row order.

    Returns:
        What ``datasets``' ``push_to_hub`` returns (the commit info).

    Raises:
        UnresolvedPathError: a relative ref and no media root (nothing is uploaded).
        MediaNotFoundError: a referenced file does not exist (nothing is uploaded).

    Example:
        ```python
        >>> import hf_mediaref
        >>> hf_mediaref.push_to_hub(ds, "me/robot-frames")  # uploads videos/*.mp4 once each
        >>> back = hf_mediaref.load_dataset("me/robot-frames", split="train")
        ```
    """
    splits = list(dataset.values()) if isinstance(dataset, dict) else [dataset]
    mapping, uploads = plan_uploads(splits, media_dir)
    api = HfApi(endpoint=config.HF_ENDPOINT, token=token)
    api.create_repo(repo_id, repo_type="dataset", private=private, exist_ok=True)
    existing = _existing_card(repo_id, revision, token)
    card = None
    if CARD_MARKER not in existing:
        card = dataset_card(repo_id, splits[0].features, push_kwargs.get("data_dir") or "data", existing)
    _commit_media(api, repo_id, uploads, card, revision)
    rewritten = _rewrite_dataset(dataset, mapping) if mapping else dataset
    rewritten, push_kwargs = shard_for_streaming(rewritten, push_kwargs)  # whole videos per shard
    kwargs = dict(push_kwargs, token=token, private=private, revision=revision)
    if commit_message is not None:
        kwargs["commit_message"] = commit_message
    return rewritten.push_to_hub(repo_id, **kwargs)
