"""The ``"mediaref"`` format: ``ds.with_format("mediaref", decoder=, strategy=, size=, output=)``.

For every batch (``ds[i:j]``, ``ds[[...]]``, ``ds.iter(batch_size=)``, ``map(batched=True)``, a DataLoader's
``__getitems__``) the formatter reads the MediaRef columns as Arrow arrays, groups rows by URI in Arrow (each
distinct URI is resolved against the media root once), and hands the whole batch to the video engine in one
``batch_decode`` call, which decodes each video once. Other columns are formatted as datasets' numpy, torch or
python format would (for ``output="numpy"``, ``"torch"``, ``"pil"``).
"""

from __future__ import annotations

from typing import Any, Iterator, Mapping, Optional

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from datasets import Features, LargeList, List
from datasets.features.features import decode_nested_example, require_decoding
from datasets.formatting.formatting import Formatter, PythonFormatter
from datasets.formatting.np_formatter import NumpyFormatter

from ..core import MediaRef
from ..errors import describe_uri
from ..io import is_absolute_uri
from .decoding import DecodeOptions, decode_refs
from .feature import MediaRefFeature
from .grouping import group_by_uri, media_columns_arrays
from .roots import resolve_uri, unresolved_error

__all__ = ["MediaRefFormatter", "FORMAT_TYPE", "has_media"]

FORMAT_TYPE = "mediaref"


def has_media(feature: Any) -> bool:
    """Whether ``feature`` holds a decoding ``MediaRefFeature`` (directly, in a list or in a dict)."""
    if isinstance(feature, MediaRefFeature):
        return feature.decode
    if isinstance(feature, dict):
        return any(has_media(f) for f in feature.values())
    if isinstance(feature, (list, tuple)):
        return any(has_media(f) for f in feature)
    if isinstance(feature, (List, LargeList)):
        return has_media(feature.feature)
    return False


class _Batch:
    """Collects the refs of one formatted batch (in a fixed walk order) and puts the decoded frames back."""

    def __init__(self) -> None:
        self.refs: list[MediaRef] = []

    # ---------------------------------------------------------------- collecting
    def collect(self, array: pa.Array, feature: Any) -> Any:
        """Return a template of ``array`` whose MediaRef leaves are registered in ``self.refs``."""
        if isinstance(array, pa.ChunkedArray):
            array = array.combine_chunks() if array.num_chunks != 1 else array.chunk(0)
        if isinstance(feature, MediaRefFeature) and feature.decode:
            return ("leaf", self._collect_leaf(array, feature))
        if isinstance(feature, (list, tuple, List, LargeList)) and has_media(feature):
            child = feature[0] if isinstance(feature, (list, tuple)) else feature.feature
            lengths = pc.list_value_length(array).to_pylist()
            return ("list", lengths, self.collect(array.flatten(), child))
        if isinstance(feature, dict) and has_media(feature):
            valid = array.is_valid().to_pylist()
            fields = {name: self.collect(array.field(name), sub) for name, sub in feature.items()}
            return ("dict", valid, fields)
        values = array.to_pylist()
        if require_decoding(feature):
            values = [decode_nested_example(feature, v) if v is not None else None for v in values]
        return ("plain", values)

    def _collect_leaf(self, array: pa.Array, feature: MediaRefFeature) -> np.ndarray:
        uri, pts, valid = media_columns_arrays(array)
        groups = group_by_uri(uri)
        codes = groups.codes if valid is None else np.where(valid, groups.codes, -1)
        used = np.zeros(len(groups), dtype=bool)
        used[codes[codes >= 0]] = True
        root = feature._media_root
        resolved: list[Optional[str]] = [None] * len(groups)
        for g in np.flatnonzero(used).tolist():
            resolved[g] = _resolve(groups.uris[g], root)
        construct = MediaRef.model_construct
        refs = self.refs
        for code, pts_ns in zip(codes.tolist(), pts.to_pylist()):
            if code >= 0:
                if pts_ns is not None and pts_ns < 0:
                    raise ValueError(
                        f"pts_ns must be >= 0, got {pts_ns} for {describe_uri(groups.uris[code])}"
                    )
                refs.append(construct(uri=resolved[code], pts_ns=pts_ns))
        return codes >= 0

    # ---------------------------------------------------------------- filling
    def fill(self, template: Any, frames: Iterator[Any]) -> list:
        kind = template[0]
        if kind == "leaf":
            return [next(frames) if ok else None for ok in template[1].tolist()]
        if kind == "list":
            _, lengths, child = template
            flat = self.fill(child, frames)
            rows, pos = [], 0
            for n in lengths:
                if n is None:
                    rows.append(None)
                    continue
                items = flat[pos : pos + n]
                pos += n
                rows.append(items)
            return rows
        if kind == "dict":
            _, valid, fields = template
            columns = {name: self.fill(sub, frames) for name, sub in fields.items()}
            return [
                {name: col[i] for name, col in columns.items()} if ok else None for i, ok in enumerate(valid)
            ]
        return template[1]


def _resolve(uri: str, root: Optional[str]) -> str:
    if root is None:
        if not is_absolute_uri(uri):
            raise unresolved_error(uri)
        return uri
    return resolve_uri(uri, root)


def decode_media_columns(
    pa_table: pa.Table, features: Mapping[str, Any], columns: list[str], options: DecodeOptions
) -> dict[str, Any]:
    """Decode ``columns`` of ``pa_table`` with one engine call. A column becomes a list with one frame per row
    (None for null refs; lists and dicts of frames for nested refs): frames are not stacked, so a DataLoader
    (which splits the batch into rows and collates them) copies each frame once."""
    batch = _Batch()
    templates = {name: batch.collect(pa_table[name], features[name]) for name in columns}
    frames = iter(decode_refs(batch.refs, options))
    return {name: batch.fill(template, frames) for name, template in templates.items()}


class MediaRefFormatter(Formatter[Mapping, Any, Mapping]):
    """Formatter registered as ``"mediaref"``: decodes MediaRef columns to pixels a batch at a time."""

    def __init__(
        self,
        features: Optional[Features] = None,
        token_per_repo_id: Optional[dict] = None,
        decoder: str = "pyav",
        strategy: Any = None,
        size: Optional[tuple[int, int]] = None,
        output: str = "numpy",
        channels_first: bool = False,
        storage_options: Optional[dict] = None,
    ):
        super().__init__(features, token_per_repo_id)
        self.options = DecodeOptions(
            decoder=decoder,
            strategy=strategy,
            size=size,
            output=output,
            channels_first=channels_first,
            storage_options=storage_options,
        )
        if output == "torch":
            from datasets.formatting.torch_formatter import TorchFormatter

            self._rest: Formatter = TorchFormatter(features=features, token_per_repo_id=token_per_repo_id)
        elif output == "numpy":
            self._rest = NumpyFormatter(features=features, token_per_repo_id=token_per_repo_id)
        else:
            self._rest = PythonFormatter(features=features, token_per_repo_id=token_per_repo_id)

    def _features(self, pa_table: pa.Table) -> Features:
        return self.features if self.features is not None else Features.from_arrow_schema(pa_table.schema)

    def format_batch(self, pa_table: pa.Table) -> Mapping:
        features = self._features(pa_table)
        media = [name for name in pa_table.column_names if has_media(features.get(name))]
        if not media:
            return self._rest.format_batch(pa_table)
        others = [name for name in pa_table.column_names if name not in media]
        rest = self._rest.format_batch(pa_table.select(others)) if others else {}
        decoded = decode_media_columns(pa_table, features, media, self.options)
        return {name: decoded[name] if name in decoded else rest[name] for name in pa_table.column_names}

    def format_row(self, pa_table: pa.Table) -> Mapping:
        return {name: values[0] for name, values in self.format_batch(pa_table).items()}

    def format_column(self, pa_table: pa.Table) -> Any:
        return self.format_batch(pa_table)[pa_table.column_names[0]]
