"""``decode_transform``: the format's batched decoding as a picklable callable for ``ds.with_transform`` and
``IterableDataset.map(..., batched=True)``.

Its batches are plain Python values (``datasets`` has already formatted them), so refs are found by walking
the values with :func:`hf_mediaref.arrow.map_refs`, the package's one walk over Python values
(:func:`~hf_mediaref.hf.embed` uses it too); where features are known, walks go through
:func:`hf_mediaref.hf._feature.fold_feature`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

from .. import decode
from ..arrow import as_ref, holds_refs, map_refs, resolve_ref
from ..core import MediaRef
from ..decode import DecodeOptions
from ..errors import WindowError
from ..io import MediaAccess, make_access
from ._windows import FrameWindows, as_windows, plan_windows

__all__ = ["MediaDecodeTransform", "decode_transform"]


_RAY_HINT = "for Ray Data batches use hf_mediaref.ray.MediaDecoder"


def _array_of_refs(column: Any) -> bool:
    """Whether ``column`` is an array (numpy, Arrow, pandas) holding refs: this transform cannot walk it."""
    if isinstance(column, (list, tuple, str, bytes, dict, MediaRef)) or not hasattr(column, "__len__"):
        return False
    return holds_refs(column)


def _check_batch(batch: Any, columns: Sequence[str] | None) -> None:
    """Raise ``TypeError`` for a batch this transform would otherwise return undecoded: not a dict of
    columns (a pandas DataFrame, a pyarrow Table, a numpy struct array), or a column of refs held in an
    array rather than a list."""
    if not isinstance(batch, Mapping):
        raise TypeError(
            f"decode_transform takes a batch as a dict of columns (lists of values, as datasets gives), got "
            f"{type(batch).__module__}.{type(batch).__name__}; {_RAY_HINT}"
        )
    for name in columns if columns is not None else list(batch):
        if name in batch and _array_of_refs(batch[name]):
            raise TypeError(
                f"decode_transform: column {name!r} holds media references in a "
                f"{type(batch[name]).__module__}.{type(batch[name]).__name__}, not a list; {_RAY_HINT}"
            )


class MediaDecodeTransform:
    """Decodes the media references of a batch (``{column: [MediaRef | dict | None, ...]}``) to pixels with
    one engine call. Built by :func:`decode_transform`; picklable, so it works in DataLoader workers under
    fork, spawn and forkserver.

    Args:
        columns: the columns to decode (``None``: every column holding refs).
        root: the media root for relative refs (see :func:`hf_mediaref.arrow.normalize_root`), or ``None``;
            like :func:`~hf_mediaref.hf.set_media_root`'s, it is a trust boundary for the refs resolved
            against it.
        options: the decode options (default: ``DecodeOptions()``).
        allow_uris: what refs may read beyond ``root`` (see :func:`hf_mediaref.parse_allow_uris`).
        windows: temporal windows (:class:`~hf_mediaref.hf.FrameWindows`, or ``{column: [offsets]}``), or
            ``None``.
        access: a :class:`~hf_mediaref.MediaAccess` (instead of ``root``).

    Raises:
        KeyError: (when called) a named column is not in the batch.
        TypeError: (when called) a batch that is not a dict of columns (a pandas DataFrame, a pyarrow
            Table, a numpy struct array) or refs held in an array, not a list (Ray Data batches: use
            :class:`hf_mediaref.ray.MediaDecoder`).
        InvalidRefError: (when called) a malformed ref dict, naming its column and row in the batch.
        UnresolvedPathError: (when called) a relative ref and no root.
        UntrustedRefError: (when called) a ref reads outside ``root`` and is not allowed.

    Example:
        ```python
        >>> from hf_mediaref import DecodeOptions
        >>> from hf_mediaref.hf import MediaDecodeTransform
        >>> opts = DecodeOptions(size=(64, 64))
        >>> transform = MediaDecodeTransform(["frame"], root="/data/repo", options=opts)
        >>> transform({"frame": [{"uri": "videos/ep0.mp4", "pts_ns": 0}]})["frame"][0].shape
        (64, 64, 3)
        ```
    """

    def __init__(
        self,
        columns: Sequence[str] | None = None,
        root: str | os.PathLike[str] | None = None,
        options: DecodeOptions | None = None,
        allow_uris: Any = None,
        windows: FrameWindows | dict[str, Any] | None = None,
        access: MediaAccess | None = None,
    ):
        self.columns = None if columns is None else list(columns)
        self.access = make_access(root, allow_uris, access)
        self.options = options if options is not None else DecodeOptions()
        self.windows = as_windows(windows)

    def _decode(self, refs: list[MediaRef]) -> list[Any]:
        if not refs:
            return []
        if self.access is None:  # a relative ref has no root to resolve against: raise, naming it
            refs = [resolve_ref(ref, None) for ref in refs]
        # with an access, batch_decode resolves and checks each distinct URI once, reads under its rule
        return decode.batch_decode(refs, options=self.options, access=self.access)

    def __call__(self, batch: dict) -> dict:
        _check_batch(batch, self.columns)
        columns = self.columns
        if columns is None:
            columns = [k for k, v in batch.items() if holds_refs(v, k, nested=True)]
        window_columns = self.windows.columns if self.windows is not None else []
        columns = [c for c in columns if c not in window_columns]
        missing = [c for c in [*columns, *window_columns] if c not in batch]
        if missing:
            raise KeyError(
                f"decode_transform: columns {missing} are not in the batch (columns: {list(batch)})"
            )
        if not window_columns:
            decoded = map_refs({c: batch[c] for c in columns}, self._decode)
            return {**batch, **decoded}
        assert self.windows is not None
        plan = self._window_plan(batch)
        windowed: dict[str, list[Any]] = self._value_windows(batch) if self.windows.value_columns else {}

        def decode_all(refs: list[MediaRef]) -> list[Any]:  # one engine call for the batch and its windows
            with plan.decoding_into(len(refs), self.options):
                frames = self._decode([*refs, *plan.refs])
            windowed.update(plan.assemble(frames[len(refs) :], self.options))
            return frames[: len(refs)]

        decoded = map_refs({c: batch[c] for c in columns}, decode_all)
        return {**batch, **decoded, **windowed}

    def _value_windows(self, batch: dict) -> dict[str, list[Any]]:
        assert self.windows is not None and self.windows.values is not None
        needed = [self.windows.episode_column, self.windows.values.time_column]
        missing = [c for c in needed if c not in batch]
        if missing:
            raise KeyError(
                f"decode_transform: the windows' episode and time columns {missing} are not in the batch "
                f"(columns: {list(batch)})"
            )
        episodes, times = list(batch[needed[0]]), list(batch[needed[1]])
        return self.windows.value_windows(episodes, times, self.options.output, from_python=True)

    def fetch_ahead(self, batch: dict) -> None:
        """Start fetching, in the background, what decoding ``batch`` (a later call) reads from remote videos
        (:func:`hf_mediaref.decode.fetch_ahead`): a stream's next batch while this one decodes."""
        refs: list[MediaRef] = []

        def collect(found: list[MediaRef]) -> list[Any]:
            refs.extend(found)
            return found

        try:
            columns = self.columns or [k for k, v in batch.items() if holds_refs(v, k, nested=True)]
            map_refs({c: batch[c] for c in columns if c in batch}, collect)
        except Exception:  # the decode of the batch raises it
            return
        decode.fetch_ahead(refs, self.options, self.access)

    def _window_plan(self, batch: dict) -> Any:
        assert self.windows is not None
        refs: dict[str, list[MediaRef | None]] = {}
        for column in self.windows.frame_columns:
            values = list(batch[column])
            refs[column] = [
                None if value is None else as_ref(value, (column, i)) for i, value in enumerate(values)
            ]
            for i, (value, ref) in enumerate(zip(values, refs[column])):
                if value is not None and ref is None:
                    raise WindowError(
                        f"decode_transform: column {column!r}, row {i} of the batch is not a media reference "
                        f"({type(value).__name__}); a window column of values needs the dataset's other "
                        "rows: build the windows with FrameWindows.from_dataset"
                    )
            refs[column] = [None if ref is None else resolve_ref(ref, self.access) for ref in refs[column]]
        episodes = None
        if self.windows.episode_column is not None:
            if self.windows.episode_column not in batch:
                raise KeyError(
                    f"decode_transform: episode column {self.windows.episode_column!r} is not in the batch "
                    f"(columns: {list(batch)})"
                )
            episodes = list(batch[self.windows.episode_column])
        # the bounds are read under this transform's access, else under the accesses the refs carry
        return plan_windows(self.windows, refs, episodes, self.options, self.access)

    def __repr__(self) -> str:
        windows = f", windows={self.windows}" if self.windows is not None else ""
        return f"decode_transform(columns={self.columns!r}, access={self.access!r}, {self.options}{windows})"


def decode_transform(
    columns: Sequence[str] | None = None,
    *,
    root: str | os.PathLike[str] | None = None,
    options: DecodeOptions | None = None,
    allow_uris: Any = None,
    windows: FrameWindows | dict[str, Any] | None = None,
    access: MediaAccess | None = None,
    **decode_options: Any,
) -> MediaDecodeTransform:
    """A transform for ``ds.with_transform(...)`` or ``IterableDataset.map(..., batched=True)`` that decodes
    media columns to pixels, one engine call per batch.

    Column values may be ``MediaRef`` s (rows of a ``MediaRefFeature`` column) or ``{"uri", "pts_ns"}`` dicts
    (``decode=False`` columns, raw structs), single or in (nested) lists and dicts.

    Args:
        columns: the columns to decode; default: every column whose first non-null value holds a ref.
        root: resolves relative URIs the dataset did not resolve already (datasets loaded with
            :func:`hf_mediaref.load_dataset` or given a root with :func:`set_media_root` read as resolved
            refs). A trust boundary like :func:`~hf_mediaref.hf.set_media_root`'s: every ref resolved
            against it, relative or absolute, must read inside it or under ``allow_uris``. Rows of a dataset
            with a media root are resolved (and checked against that root) by the dataset itself.
        options: a :class:`hf_mediaref.DecodeOptions` (default: ``DecodeOptions()``).
        allow_uris: what refs may read beyond ``root`` (see :func:`hf_mediaref.parse_allow_uris`).
        access: a :class:`~hf_mediaref.MediaAccess` to resolve and check refs with, and whose public-address
            rule their ``http(s)`` reads follow (instead of ``root``; ``allow_uris`` widens it). Without one,
            refs are read as the dataset resolved them (checked against its access when they were read).
        **decode_options: fields of :class:`hf_mediaref.DecodeOptions` by name (``decoder``, ``strategy``,
            ``size``, ``output``, ``channels_first``, ``storage_options``, ``max_workers``, ``device``,
            ``timeout``, ``orientation``); given ones override ``options``.
        windows: temporal windows, a :class:`hf_mediaref.hf.FrameWindows` or ``{column: [offsets in
            seconds]}``: each ref of those columns becomes a stack of ``T`` frames decoded in the batch's
            engine call, and a ``<column>_is_pad`` column is added.

    Returns:
        A picklable callable ``batch -> batch``.

    Raises:
        ValueError: for invalid options (raised here, not at the first batch); both ``root`` and ``access``;
            ``allow_uris`` without either.
        TypeError: for a name that is not a decode option, or an ``access`` that is not a ``MediaAccess``.
        UnresolvedPathError: (when called) a relative URI and no root.
        UntrustedRefError: (when called) a ref reads outside ``root`` (or its dataset's root) unallowed.
        TypeError: (when called) a batch that is not a dict of columns or refs held in arrays (Ray Data's
            batches: use :class:`hf_mediaref.ray.MediaDecoder`).

    Example:
        ```python
        >>> from hf_mediaref.hf import decode_transform
        >>> ds = ds.with_transform(decode_transform(output="torch", size=(224, 224)))
        >>> ds[:8]["frame"][0].shape
        torch.Size([224, 224, 3])
        >>> streamed = ids.map(decode_transform(decoder="torchcodec", device="cuda"), batched=True)
        ```
    """
    opts = DecodeOptions.resolve(options, **decode_options)
    return MediaDecodeTransform(
        columns, root=root, options=opts, allow_uris=allow_uris, windows=windows, access=access
    )
