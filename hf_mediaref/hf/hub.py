"""``push_to_hub``: push a dataset together with the local media files its refs point at.

Each referenced local file is uploaded once (however many rows point at it) and the refs are rewritten to
repo-relative URIs, so ``hf_mediaref.load_dataset(repo_id)`` anywhere resolves them to
``hf://datasets/<repo_id>@<commit>/<path>``. Files under the dataset's local media root keep their layout;
others go to ``<media_dir>/<hash of their folder>/<name>``. Remote URLs and ``data:`` URIs are left as they
are. The table itself is pushed by ``datasets``' own ``push_to_hub`` (no ``embed_storage``: the ref columns
keep dictionary encoding and compression), and the dataset card explains how to load it with and without
hf_mediaref.
"""

from __future__ import annotations

import hashlib
import logging
import os
import posixpath
from typing import Any, Iterable, Optional

import pyarrow as pa
import pyarrow.compute as pc
from datasets import Features, LargeList, List, Value, config
from huggingface_hub import CommitOperationAdd, HfApi, HfFileSystem

from ..errors import MediaNotFoundError, describe_uri
from ..io import UriKind, classify_uri, is_absolute_uri, local_path
from .feature import MediaRefFeature
from .formatter import has_media
from .roots import get_media_root, resolve_uri, unresolved_error

__all__ = ["push_to_hub", "dataset_card", "CARD_MARKER"]

logger = logging.getLogger(__name__)

CARD_MARKER = "<!-- hf_mediaref: usage -->"


# ----------------------------------------------------------------------------------------- Arrow walks
def _chunks(array: Any) -> list[pa.Array]:
    return list(array.chunks) if isinstance(array, pa.ChunkedArray) else [array]


def _stored_uris(array: Any, feature: Any) -> set[str]:
    """Distinct URIs stored in a (nested) MediaRef column."""
    found: set[str] = set()
    for chunk in _chunks(array):
        if isinstance(feature, MediaRefFeature):
            valid = chunk.is_valid()
            found.update(pc.unique(pc.filter(chunk.field("uri"), valid)).to_pylist())
        elif isinstance(feature, (List, LargeList, list, tuple)):
            child = feature[0] if isinstance(feature, (list, tuple)) else feature.feature
            found |= _stored_uris(chunk.flatten(), child)
        elif isinstance(feature, dict):
            for name, sub in feature.items():
                if has_media(sub):
                    found |= _stored_uris(pc.struct_field(chunk, name), sub)
    found.discard(None)
    return found


def _rewrite(array: pa.Array, feature: Any, mapping: dict[str, str]) -> pa.Array:
    """``array`` with every stored URI found in ``mapping`` replaced (Arrow dictionary encode + take)."""
    if isinstance(feature, MediaRefFeature):
        uri = array.field("uri")
        encoded = uri.dictionary_encode()
        dictionary = pa.array([mapping.get(u, u) for u in encoded.dictionary.to_pylist()], pa.string())
        new_uri = dictionary.take(encoded.indices)
        mask = array.is_null() if array.null_count else None
        return pa.StructArray.from_arrays(
            [new_uri, array.field("pts_ns")], fields=list(array.type), mask=mask
        )
    if isinstance(feature, (List, LargeList, list, tuple)):
        child = feature[0] if isinstance(feature, (list, tuple)) else feature.feature
        values = _rewrite(array.values, child, mapping)
        cls = pa.LargeListArray if pa.types.is_large_list(array.type) else pa.ListArray
        mask = array.is_null() if array.null_count else None
        return cls.from_arrays(array.offsets, values, mask=mask)
    if isinstance(feature, dict):
        fields = [array.type.field(i) for i in range(array.type.num_fields)]
        children = [
            _rewrite(array.field(f.name), feature[f.name], mapping)
            if has_media(feature[f.name])
            else array.field(f.name)
            for f in fields
        ]
        mask = array.is_null() if array.null_count else None
        return pa.StructArray.from_arrays(children, fields=fields, mask=mask)
    return array


class _RewriteTable:
    """Picklable ``map`` function (arrow format) applying :func:`_rewrite` to the media columns."""

    def __init__(self, features: Features, mapping: dict[str, str]):
        self.features, self.mapping = features, mapping

    def __call__(self, table: pa.Table) -> pa.Table:
        for name in table.column_names:
            if has_media(self.features.get(name)):
                column = pa.chunked_array(
                    [_rewrite(c, self.features[name], self.mapping) for c in table[name].chunks],
                    table.schema.field(name).type,
                )
                table = table.set_column(table.column_names.index(name), name, column)
        return table


# ----------------------------------------------------------------------------------------- planning
def _repo_path(path: str, root: Optional[str], media_dir: str) -> str:
    """Where a local file goes in the repo: its path under the dataset's local root, else under media_dir."""
    if root is not None and classify_uri(root) is UriKind.LOCAL:
        rel = os.path.relpath(path, root)
        if not rel.startswith(os.pardir + os.sep) and rel != os.pardir and not os.path.isabs(rel):
            return rel.replace(os.sep, "/")
    folder = hashlib.sha1(os.path.dirname(path).encode()).hexdigest()[:10]
    return posixpath.join(media_dir, folder, os.path.basename(path))


def plan_uploads(splits: Iterable[Any], media_dir: str = "media") -> tuple[dict[str, str], dict[str, str]]:
    """For the datasets in ``splits``: (stored URI -> repo-relative URI, repo path -> local file to
    upload)."""
    mapping: dict[str, str] = {}
    uploads: dict[str, str] = {}
    for split in splits:
        root = get_media_root(split)
        table = split.with_format("arrow")[:]
        for name, feature in split.features.items():
            if not has_media(feature):
                continue
            for uri in sorted(_stored_uris(table[name], feature)):
                kind = classify_uri(uri)
                if kind not in (UriKind.LOCAL, UriKind.FILE):
                    continue  # remote URLs and data: URIs are pushed as they are
                resolved = uri
                if not is_absolute_uri(uri):
                    if root is None:
                        raise unresolved_error(uri)
                    resolved = resolve_uri(uri, root)
                    if classify_uri(resolved) not in (UriKind.LOCAL, UriKind.FILE):
                        continue  # relative to a remote root (e.g. a Hub repo): stays relative
                path = os.path.abspath(local_path(resolved))
                if not os.path.isfile(path):
                    raise MediaNotFoundError(
                        f"cannot push: media file {describe_uri(path)} (ref {describe_uri(uri)}) "
                        "does not exist",
                        uri=uri,
                    )
                repo_path = _repo_path(path, root, media_dir)
                if uploads.setdefault(repo_path, path) != path:
                    raise ValueError(
                        f"two media files map to {repo_path!r} in the repo: {uploads[repo_path]!r} "
                        f"and {path!r}"
                    )
                mapping[uri] = repo_path
    return mapping, uploads


# ----------------------------------------------------------------------------------------- card
def _plain_features(feature: Any) -> Any:
    if isinstance(feature, MediaRefFeature):
        return {"uri": Value("string"), "pts_ns": Value("int64")}
    if isinstance(feature, dict):
        return {k: _plain_features(v) for k, v in feature.items()}
    if isinstance(feature, (list, tuple)):
        return [_plain_features(feature[0])]
    if isinstance(feature, List):
        return List(_plain_features(feature.feature), length=feature.length)
    if isinstance(feature, LargeList):
        return LargeList(_plain_features(feature.feature))
    return feature


def dataset_card(repo_id: str, features: Features, data_dir: str = "data", existing: str = "") -> str:
    """README text with a usage section: loading with hf_mediaref, and reading the refs as plain structs."""
    media = [name for name, f in features.items() if has_media(f)]
    plain = Features(_plain_features(dict(features))).to_dict()
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


def _existing_card(repo_id: str, revision: Optional[str], token: Any) -> str:
    fs = HfFileSystem(endpoint=config.HF_ENDPOINT, token=token)
    path = f"datasets/{repo_id}@{revision}/README.md" if revision else f"datasets/{repo_id}/README.md"
    try:
        return fs.read_text(path, encoding="utf-8")
    except FileNotFoundError:
        return ""


# ----------------------------------------------------------------------------------------- push
def push_to_hub(
    dataset: Any,
    repo_id: str,
    *,
    media_dir: str = "media",
    token: Any = None,
    private: Optional[bool] = None,
    revision: Optional[str] = None,
    commit_message: Optional[str] = None,
    **push_kwargs: Any,
) -> Any:
    """Push ``dataset`` (``Dataset`` or ``DatasetDict``) and the local media files it references to
    ``repo_id``.

    Uploads each referenced local file once, rewrites those refs to repo-relative URIs, then calls
    ``datasets``' ``push_to_hub`` (``push_kwargs`` go to it: ``split``, ``data_dir``, ``max_shard_size``...).
    Returns what ``datasets`` returns (the commit info).
    """
    splits = list(dataset.values()) if isinstance(dataset, dict) else [dataset]
    mapping, uploads = plan_uploads(splits, media_dir)
    api = HfApi(endpoint=config.HF_ENDPOINT, token=token)
    api.create_repo(repo_id, repo_type="dataset", private=private, exist_ok=True)
    operations = [CommitOperationAdd(path_in_repo=p, path_or_fileobj=f) for p, f in sorted(uploads.items())]
    existing = _existing_card(repo_id, revision, token)
    if CARD_MARKER not in existing:
        card = dataset_card(repo_id, splits[0].features, push_kwargs.get("data_dir") or "data", existing)
        operations.append(CommitOperationAdd(path_in_repo="README.md", path_or_fileobj=card.encode("utf-8")))
    if operations:
        api.create_commit(
            repo_id,
            operations=operations,
            repo_type="dataset",
            revision=revision,
            commit_message=f"Upload {len(uploads)} media file(s) with hf_mediaref",
        )
        logger.info("uploaded %d media file(s) to %s", len(uploads), repo_id)
    rewritten = _rewrite_dataset(dataset, mapping) if mapping else dataset
    kwargs = dict(push_kwargs, token=token, private=private, revision=revision)
    if commit_message is not None:
        kwargs["commit_message"] = commit_message
    return rewritten.push_to_hub(repo_id, **kwargs)


def _rewrite_dataset(dataset: Any, mapping: dict[str, str]) -> Any:
    if isinstance(dataset, dict):
        return type(dataset)({name: _rewrite_dataset(split, mapping) for name, split in dataset.items()})
    fn = _RewriteTable(dataset.features, mapping)
    return (
        dataset.with_format("arrow")
        .map(fn, batched=True, features=dataset.features, desc="Rewriting media refs")
        .with_format(None)
    )
