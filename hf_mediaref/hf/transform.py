"""``decode_transform``: the formatter's batched decoding as a picklable callable for
``ds.with_transform`` and
``IterableDataset.map(..., batched=True)``."""

from __future__ import annotations

import os
from typing import Any, Callable, Iterator, Optional, Sequence

from ..core import MediaRef
from ..io import is_absolute_uri
from .decoding import DecodeOptions, decode_refs
from .roots import normalize_root, resolve_uri, unresolved_error

__all__ = ["MediaDecodeTransform", "decode_transform", "map_refs"]


def _as_ref(value: Any) -> Optional[MediaRef]:
    if isinstance(value, MediaRef):
        return value
    if isinstance(value, dict) and "uri" in value and value.keys() <= {"uri", "pts_ns"}:
        return MediaRef(value["uri"], value.get("pts_ns"))
    return None


def _holds_refs(value: Any) -> bool:
    """Whether the first non-null leaf of ``value`` is a media reference."""
    if _as_ref(value) is not None:
        return True
    if isinstance(value, (list, tuple)):
        return next((_holds_refs(v) for v in value if v is not None), False)
    if isinstance(value, dict):
        return any(_holds_refs(v) for v in value.values())
    return False


def map_refs(value: Any, fn: Callable[[list[MediaRef]], list[Any]]) -> Any:
    """Replace every media reference inside ``value`` (nested lists/dicts) with ``fn``'s result for it.

    ``fn`` receives all references at once (one batch) and returns one value per reference.
    """
    refs: list[MediaRef] = []

    def collect(v: Any) -> None:
        ref = _as_ref(v)
        if ref is not None:
            refs.append(ref)
        elif isinstance(v, (list, tuple)):
            for item in v:
                collect(item)
        elif isinstance(v, dict):
            for item in v.values():
                collect(item)

    def rebuild(v: Any, results: Iterator[Any]) -> Any:
        if _as_ref(v) is not None:
            return next(results)
        if isinstance(v, (list, tuple)):
            return [rebuild(item, results) for item in v]
        if isinstance(v, dict):
            return {k: rebuild(item, results) for k, item in v.items()}
        return v

    collect(value)
    return rebuild(value, iter(fn(refs)))


class MediaDecodeTransform:
    """Decodes the media references of a batch (``{column: [MediaRef | dict | None, ...]}``) to pixels
    with one
    engine call. Picklable, so it works in DataLoader workers under fork, spawn and forkserver."""

    def __init__(
        self,
        columns: Optional[Sequence[str]] = None,
        root: Optional[str | os.PathLike] = None,
        **options: Any,
    ):
        self.columns = None if columns is None else list(columns)
        self.root = None if root is None else normalize_root(root)
        self.options = DecodeOptions(**options)

    def _resolve(self, refs: list[MediaRef]) -> list[MediaRef]:
        out = []
        for ref in refs:
            if not is_absolute_uri(ref.uri):
                if self.root is None:
                    raise unresolved_error(ref.uri)
                ref = MediaRef(resolve_uri(ref.uri, self.root), ref.pts_ns)
            out.append(ref)
        return out

    def __call__(self, batch: dict) -> dict:
        columns = (
            self.columns if self.columns is not None else [k for k, v in batch.items() if _holds_refs(v)]
        )
        missing = [c for c in columns if c not in batch]
        if missing:
            raise KeyError(
                f"decode_transform: columns {missing} are not in the batch (columns: {list(batch)})"
            )
        out = dict(batch)
        selected = {c: batch[c] for c in columns}
        decoded = map_refs(selected, lambda refs: decode_refs(self._resolve(refs), self.options))
        out.update(decoded)
        return out

    def __repr__(self) -> str:
        return f"decode_transform(columns={self.columns!r}, root={self.root!r}, {self.options})"


def decode_transform(
    columns: Optional[Sequence[str]] = None,
    *,
    root: Optional[str | os.PathLike] = None,
    decoder: str = "pyav",
    strategy: Any = None,
    size: Optional[tuple[int, int]] = None,
    output: str = "numpy",
    channels_first: bool = False,
    storage_options: Optional[dict] = None,
) -> MediaDecodeTransform:
    """A transform for ``ds.with_transform(...)`` that decodes media columns (all of them by default) in
    batches.

    ``root`` resolves relative URIs that the dataset did not resolve already (datasets loaded with
    :func:`hf_mediaref.load_dataset` decode to resolved refs). The options are those of the ``"mediaref"``
    format. Column values may be ``MediaRef`` s or ``{"uri", "pts_ns"}`` dicts (``decode=False`` columns),
    single or in (nested) lists and dicts.
    """
    return MediaDecodeTransform(
        columns,
        root=root,
        decoder=decoder,
        strategy=strategy,
        size=size,
        output=output,
        channels_first=channels_first,
        storage_options=storage_options,
    )
