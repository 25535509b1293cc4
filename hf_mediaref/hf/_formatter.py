"""The ``"mediaref"`` format: ``ds.with_format("mediaref", **decode_options)``.

For every batch (``ds[i:j]``, ``ds[[...]]``, ``ds.iter(batch_size=)``, ``map(batched=True)``, a DataLoader's
``__getitems__``) the formatter reads the decoding MediaRef columns as Arrow arrays, builds their refs in
Arrow (each distinct URI resolved against the media root once: :func:`hf_mediaref.arrow.refs_from_storage`),
and hands the whole batch to the engine in one ``batch_decode`` call, which decodes each video once. Other
columns, and ``decode=False`` MediaRef columns, are formatted as datasets' numpy, torch or python format would
(for ``output="numpy"``, ``"torch"``, ``"pil"``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from contextlib import nullcontext
from typing import Any

import numpy as np
import pyarrow as pa
from datasets import Features

from .. import decode
from ..arrow import refs_from_storage
from ..core import MediaRef
from ..decode import DecodeOptions
from ..io import MediaAccess, fetches_ahead, reading_with
from ._compat import (
    Formatter,
    NumpyFormatter,
    PythonFormatter,
    decode_nested_example,
    require_decoding,
    torch_formatter,
)
from ._feature import MediaRefFeature, fold_feature, has_media, map_media_arrays
from ._roots import with_hub_token
from ._windows import FrameWindows, as_windows, check_window_columns, plan_table_windows

__all__ = ["FORMAT_TYPE", "MediaRefFormatter", "decode_media_columns", "fetch_media_columns_ahead"]

#: The name of the format (``with_format("mediaref")``; alias ``"media_ref"``).
FORMAT_TYPE = "mediaref"

_Convert = Callable[[Any], Any]

logger = logging.getLogger(__name__)

#: Rows one formatter decodes one at a time before :meth:`MediaRefFormatter.format_row` logs how to batch.
ROW_BY_ROW_HINT = 64
_hinted = False


class _RefSlots:
    """Leaf function for :func:`map_media_arrays`: collects the refs of a batch and replaces each leaf array
    by the positions of its refs in :attr:`refs` (null for null rows)."""

    def __init__(self, access: MediaAccess | None = None) -> None:
        self.refs: list[MediaRef] = []
        self.where = "row {}"
        self.access = access
        self.accesses: set[MediaAccess] = set()  # what the refs were checked against: their reads' rules

    def column(self, name: str, feature: Any) -> _RefSlots:
        """Name the rows of column ``name`` in errors: by row for a MediaRef column, by the position among
        the column's refs of the batch for refs in lists or dicts."""
        quoted = repr(name).replace("{", "{{").replace("}", "}}")
        if isinstance(feature, MediaRefFeature):
            self.where = f"column {quoted}, row {{}} of the batch"
        else:
            self.where = f"column {quoted}, ref {{}} of the batch (the refs of its rows counted in order)"
        return self

    def __call__(self, array: pa.Array, feature: MediaRefFeature) -> pa.Array:
        access = self.access if self.access is not None else feature._media_access
        if access is not None:
            self.accesses.add(access)
        refs, valid = refs_from_storage(array, access, where=self.where)
        positions = np.full(len(valid), -1, dtype=np.int64)
        positions[valid] = np.arange(len(self.refs), len(self.refs) + len(refs))
        self.refs.extend(refs)
        return pa.array(positions, mask=~valid)


def _plain(feature: Any) -> _Convert | None:
    """How a non-media part of a media column is formatted: decoded as ``datasets`` would, or kept."""
    if not require_decoding(feature):
        return None
    return lambda value: None if value is None else decode_nested_example(feature, value)


def _converter(feature: Any, frames: list[Any]) -> _Convert | None:
    """The function turning a row of ref positions (from :class:`_RefSlots`) into a row of frames (``None``:
    the value is kept as it is)."""

    def media(f: MediaRefFeature) -> _Convert | None:
        if not f.decode:
            return _plain(f)
        return lambda position: None if position is None else frames[position]

    def sequence(f: Any, item: _Convert | None) -> _Convert | None:
        if item is None:
            return None
        return lambda values: None if values is None else [item(v) for v in values]

    def mapping(f: dict, fields: dict[str, _Convert | None]) -> _Convert | None:
        if all(c is None for c in fields.values()):
            return None
        return lambda row: (
            None if row is None else {k: row[k] if c is None else c(row[k]) for k, c in fields.items()}
        )

    return fold_feature(feature, media=media, other=_plain, sequence=sequence, mapping=mapping)


def decode_media_columns(
    pa_table: pa.Table,
    features: Mapping[str, Any],
    columns: list[str],
    options: DecodeOptions,
    access: MediaAccess | None = None,
    windows: FrameWindows | None = None,
) -> dict[str, list[Any]]:
    """Decode ``columns`` of ``pa_table`` with one engine call.

    Args:
        pa_table: the batch.
        features: the features of its columns.
        columns: the columns to decode (each holds a MediaRef feature with ``decode=True``).
        options: the decode options.
        access: the :class:`~hf_mediaref.MediaAccess` to read every column with (default: each column's own,
            attached by the loader or :func:`~hf_mediaref.hf.set_media_access`).
        windows: temporal windows (:class:`~hf_mediaref.hf.FrameWindows`); their columns' frames are requested
            in the same engine call.

    Returns:
        For each column a list with one value per row: a frame (``None`` for a null ref), or lists and dicts
        of frames for nested refs. Frames are not stacked, so a DataLoader (which splits the batch into rows
        and collates them) copies each frame once. A window column holds each row's stacked window, and its
        ``<column>_is_pad`` column is added.

    Raises:
        InvalidRefError: a stored row is no valid ref; the message names the column and the row in the batch.
        UntrustedRefError: a ref reads outside its column's media root and is not allowed.
        MediaRefError: the typed errors of :func:`hf_mediaref.batch_decode` for the media themselves.
    """
    found = _BatchRefs(pa_table, features, columns, options, access, windows)
    into = (
        found.plan.decoding_into(len(found.slots.refs), options) if found.plan is not None else nullcontext()
    )
    with reading_with(found.accesses), into:
        frames = decode.batch_decode(found.refs, options=options) if found.refs else []
    out = found.plan.assemble(frames[len(found.slots.refs) :], options) if found.plan is not None else {}
    for name in found.columns:
        rows = found.positions[name].to_pylist()
        convert = _converter(features[name], frames)
        out[name] = rows if convert is None else [convert(row) for row in rows]
    return out


def fetch_media_columns_ahead(
    pa_table: pa.Table,
    features: Mapping[str, Any],
    columns: list[str],
    options: DecodeOptions,
    access: MediaAccess | None = None,
    windows: FrameWindows | None = None,
) -> bool:
    """Start fetching what :func:`decode_media_columns` of the same arguments (a later call) reads from remote
    videos (:func:`hf_mediaref.decode.fetch_ahead`: in the background, under the reads' access rules).
    Nothing is raised: that call raises what it raises. Returns whether anything remote is fetched."""
    try:
        found = _BatchRefs(pa_table, features, columns, options, access, None)  # the rows' own refs
        if not any(fetches_ahead(ref.uri) for ref in found.refs):
            return False  # (a window's frames are in its row's video: no window is planned for nothing)
        if windows is not None:
            found = _BatchRefs(pa_table, features, columns, options, access, windows)
    except Exception as exc:
        logger.debug("nothing fetched ahead: %s", exc)
        return False
    with reading_with(found.accesses):
        return decode.fetch_ahead(found.refs, options) is not None


class _BatchRefs:
    """The refs of a batch's media ``columns`` (resolved and checked against their access), where each row's
    go (:class:`_RefSlots` positions), and the windows' plan with their refs after them."""

    def __init__(
        self,
        pa_table: pa.Table,
        features: Mapping[str, Any],
        columns: list[str],
        options: DecodeOptions,
        access: MediaAccess | None,
        windows: FrameWindows | None,
    ):
        window_columns = [name for name in columns if name in windows.offsets] if windows is not None else []
        self.columns = [name for name in columns if name not in window_columns]
        self.slots = _RefSlots(access)
        self.positions: dict[str, pa.Array] = {}
        for name in self.columns:
            column = pa_table[name]
            if column.num_chunks > 1:  # a gathered batch (ds[[i, j]], a sampler's batch) has a chunk per row
                column = column.combine_chunks()
            self.positions[name] = map_media_arrays(
                column, features[name], self.slots.column(name, features[name]), decoding=True
            )
        self.plan = None
        if windows is not None and window_columns:
            self.plan = plan_table_windows(pa_table, features, window_columns, options, windows, access)
        plan = self.plan
        self.refs = self.slots.refs + plan.refs if plan is not None else self.slots.refs
        self.accesses = self.slots.accesses | (plan.accesses if plan is not None else set())


class MediaRefFormatter(Formatter[Mapping, Any, Mapping]):
    """The formatter registered as ``"mediaref"``: decodes MediaRef columns to pixels a batch at a time.

    Built by ``datasets`` from ``ds.with_format("mediaref", **kwargs)``; options are validated then, so a bad
    option fails when the format is set.

    Args:
        features: the dataset's features (``datasets`` passes them).
        token_per_repo_id: passed by ``datasets``; used for the other columns' formatting, and for
            ``hf://`` media of a repo when no token came with the media root.
        options: a :class:`hf_mediaref.DecodeOptions` (default: ``DecodeOptions()``).
        access: a :class:`~hf_mediaref.MediaAccess` to read every media column with, instead of the one the
            loader attached (:func:`~hf_mediaref.hf.get_media_access`); widen that one with
            ``access=get_media_access(ds).allowing([...])``. Only a ``MediaAccess`` object counts: what
            ``load_from_disk`` restores from a saved ``state.json`` is data, and is ignored (with a warning).
        allow_uris: ignored, with a warning (format kwargs are saved to ``state.json`` by ``save_to_disk`` and
            restored from it, so an allow-list here could come from the data); use ``access=``.
        **decode_options: fields of :class:`hf_mediaref.DecodeOptions` by name (``decoder``, ``strategy``,
            ``size``, ``output``, ``channels_first``, ``storage_options``, ``max_workers``, ``device``,
            ``timeout``, ``orientation``); given ones override ``options``.
        windows: temporal windows, a :class:`hf_mediaref.hf.FrameWindows` or ``{column: [offsets in
            seconds]}``: each row of those columns becomes a stack of ``T`` frames, with a ``<column>_is_pad``
            column beside it (see :class:`~hf_mediaref.hf.FrameWindows`).

    Raises:
        ValueError: for invalid options (for instance ``device="cuda"`` with ``decoder="pyav"``) or windows.
        TypeError: for a name that is not a decode option.

    Example:
        ```python
        >>> batch = ds.with_format("mediaref", output="torch", size=(224, 224), max_workers=8)[:64]
        >>> batch["frame"][0].shape
        torch.Size([224, 224, 3])
        >>> gpu = ds.with_format("mediaref", decoder="torchcodec", device="cuda", output="torch")
        ```
    """

    def __init__(
        self,
        features: Features | None = None,
        token_per_repo_id: dict | None = None,
        options: DecodeOptions | None = None,
        access: Any = None,
        windows: FrameWindows | Mapping[str, Any] | None = None,
        allow_uris: Any = None,
        **decode_options: Any,
    ):
        super().__init__(features, token_per_repo_id)
        self.options = DecodeOptions.resolve(options, **decode_options)
        if access is not None and not isinstance(access, MediaAccess):
            logger.warning(
                "the 'mediaref' format ignores access=%s: only a hf_mediaref.MediaAccess counts (a saved "
                "state.json restores it as plain data, which cannot widen what a dataset reads)",
                type(access).__name__,
            )
            access = None
        if allow_uris:
            logger.warning(
                "the 'mediaref' format ignores allow_uris= (format kwargs may come back from a saved "
                "state.json): pass access=hf_mediaref.hf.get_media_access(ds).allowing(%r)",
                allow_uris,
            )
        self.access: MediaAccess | None = access
        self.windows = as_windows(windows)
        if self.windows is not None and features is not None:
            check_window_columns(self.windows, features)  # fails when the format is set
        self._rows = 0
        kwargs = {"features": features, "token_per_repo_id": token_per_repo_id}
        if self.options.output == "torch":
            self._rest = torch_formatter(**kwargs)
        elif self.options.output == "numpy":
            self._rest = NumpyFormatter(**kwargs)
        else:
            self._rest = PythonFormatter(**kwargs)

    def __repr__(self) -> str:
        windows = "" if self.windows is None else f", windows={self.windows!r}"
        return f"MediaRefFormatter(access={self.access!r}, {self.options}{windows})"

    def _features(self, pa_table: pa.Table) -> Features:
        return self.features if self.features is not None else Features.from_arrow_schema(pa_table.schema)

    def format_batch(self, pa_table: pa.Table) -> Mapping:
        """The batch as ``{column: values}``, media columns decoded with one engine call. One formatter asked
        for many one-row batches (``for row in ds``, a streaming dataset in a DataLoader) logs, once per
        process, how to decode in batches."""
        if pa_table.num_rows == 1:
            self._rows += 1
            if self._rows == ROW_BY_ROW_HINT:
                _hint_row_by_row()
        features = self._features(pa_table)
        if self.windows is not None:
            check_window_columns(self.windows, {n: features.get(n) for n in pa_table.column_names}, "batch")
        media = self._media_columns(pa_table, features)
        if not media:
            return self._with_value_windows(pa_table, self._rest.format_batch(pa_table))
        others = [name for name in pa_table.column_names if name not in media]
        rest = self._rest.format_batch(pa_table.select(others)) if others else {}
        options = self._reading_options(features, media)
        decoded = decode_media_columns(
            pa_table, features, media, options, access=self.access, windows=self.windows
        )
        out = {name: decoded[name] if name in decoded else rest[name] for name in pa_table.column_names}
        out.update((name, value) for name, value in decoded.items() if name not in out)  # windows' masks
        return self._with_value_windows(pa_table, out)

    def fetch_ahead(self, pa_table: pa.Table) -> bool:
        """Start fetching what :meth:`format_batch` of ``pa_table`` (a later call: a batch waiting for its
        turn) reads from remote videos, in the background (:func:`hf_mediaref.decode.fetch_ahead`); whether
        anything remote is fetched."""
        features = self._features(pa_table)
        media = self._media_columns(pa_table, features)
        if not media:
            return False
        options = self._reading_options(features, media)  # format_batch's: the fetched ranges' keys match
        return fetch_media_columns_ahead(pa_table, features, media, options, self.access, self.windows)

    @staticmethod
    def _media_columns(pa_table: pa.Table, features: Features) -> list[str]:
        """The columns of ``pa_table`` holding refs to decode."""
        return [name for name in pa_table.column_names if has_media(features.get(name), decoding=True)]

    def _reading_options(self, features: Features, media: list[str]) -> DecodeOptions:
        """The decode options with the access's credentials and, for ``hf://`` media, the repo's token."""
        options = self.options.with_credentials(self.access)
        return with_hub_token(options, [features[name] for name in media], self.token_per_repo_id)

    def _with_value_windows(self, pa_table: pa.Table, out: Mapping) -> Mapping:
        """``out`` with the value windows of the batch (and their masks) in place of their columns."""
        if self.windows is None or not self.windows.value_columns:
            return out
        needed = [self.windows.episode_column, self.windows.values.time_column]  # type: ignore[union-attr]
        missing = [c for c in needed if c not in pa_table.column_names]
        if missing:
            raise KeyError(
                f"windows: the episode and time columns {missing} are not in the batch (columns: "
                f"{pa_table.column_names}); keep them in the formatted columns"
            )
        episodes = pa_table[needed[0]].to_pylist()
        windowed = self.windows.value_windows(episodes, pa_table[needed[1]], self.options.output)
        return {**out, **windowed}

    def format_row(self, pa_table: pa.Table) -> Mapping:
        """One row (a batch of one, unpacked)."""
        return {name: values[0] for name, values in self.format_batch(pa_table).items()}

    def format_column(self, pa_table: pa.Table) -> Any:
        """The values of the table's only column."""
        return self.format_batch(pa_table)[pa_table.column_names[0]]


def _hint_row_by_row() -> None:
    global _hinted
    if _hinted:
        return
    _hinted = True
    logger.warning(
        "the 'mediaref' format is decoding %d+ rows one engine call each (rows iterated one at a time: a "
        "streaming dataset in a DataLoader, or `for row in ds`). Decode in batches: "
        "hf_mediaref.hf.decode_stream(ids, batch_size=N, ...) for a streaming dataset, ds.iter(batch_size=N) "
        "or a DataLoader with VideoBlockBatchSampler for a map-style one.",
        ROW_BY_ROW_HINT,
    )
