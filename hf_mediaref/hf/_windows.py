"""Temporal windows: several frames per row, at fixed time offsets from the row's own frame.

``windows={"frame": [-0.2, -0.1, 0.0]}`` on the ``"mediaref"`` format or :func:`decode_transform` replaces
each row's ``frame`` by the frames on screen at ``pts - 0.2 s``, ``pts - 0.1 s`` and ``pts`` (stacked: ``(T,
H, W, 3)``, or ``(T, 3, H, W)`` with ``channels_first``) and adds a ``frame_is_pad`` column (``(T,)``
bools), the behaviour of LeRobot's ``delta_timestamps``. Every window frame of a batch is requested in the
batch's one engine call, so a video's keyframe blocks are decoded once for all rows and offsets.

Boundaries: a window time outside the row's valid range is *clamped* into it (the nearest valid frame is
returned) and *padded* (its mask entry is ``True``). The valid range is the row's episode, when the windows
know the episodes (:meth:`FrameWindows.from_dataset` reads them from a column of the whole dataset, since
the rows of one batch do not show where an episode starts or ends): from the episode's first to its last
frame time (within 1 ms). Without episodes it is the video: from its first frame to its end (the last frame
stays on screen until then). Times that are not frame-aligned select frames by the playback rule (the frame
on screen at that time).

The planning here is pure (:func:`window_times`); the format and the transform call :func:`plan_windows` and
:meth:`WindowPlan.assemble` around their single ``batch_decode`` call.

Value columns (numbers, lists, fixed-size arrays: LeRobot's actions and states) are windowed too, by
:meth:`FrameWindows.from_dataset`, which reads their values from the whole dataset (:mod:`._value_windows`):
each row gets the values of the rows of its episode nearest its time plus each offset, with the same
clamping and ``<column>_is_pad``, in the same batch call. Any other window column is a
:class:`~hf_mediaref.errors.WindowError`, never a silent no-op.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from .. import decode
from .._fields import INT64_MAX, NS_PER_SECOND, describe_ref
from ..core import MediaRef
from ..decode import DecodeOptions
from ..errors import FrameOutOfRangeError, WindowError
from ..io import MediaAccess, reading_with
from ._feature import MediaRefFeature
from ._value_windows import ValueTable, episode_key, python_times_ns, times_ns_of

if TYPE_CHECKING:  # pragma: no cover
    import pyarrow as pa

__all__ = [
    "PAD_SUFFIX",
    "FrameWindows",
    "WindowPlan",
    "as_windows",
    "check_window_columns",
    "plan_table_windows",
    "plan_windows",
    "window_times",
]

#: The mask column of window column ``c`` is ``c + PAD_SUFFIX`` (LeRobot's name).
PAD_SUFFIX = "_is_pad"
#: Window times this close outside an episode's first / last frame time still count as inside (timestamps
#: stored as floats, offsets in seconds); the playback rule's largest tolerance.
_EDGE_TOLERANCE_NS = 1_000_000

_Ranges = dict[str, dict[Any, tuple[int, int]]]


def _check_offsets(offsets: Any) -> dict[str, tuple[float, ...]]:
    if not isinstance(offsets, Mapping) or not offsets:
        raise WindowError(f"windows must map column names to lists of offsets in seconds, got {offsets!r}")
    out: dict[str, tuple[float, ...]] = {}
    for column, values in offsets.items():
        if not isinstance(column, str):
            raise WindowError(f"window column names must be strings, got {column!r}")
        if isinstance(values, (str, bytes)) or not isinstance(values, Sequence) or len(values) == 0:
            raise WindowError(
                f"windows[{column!r}] must be a non-empty list of offsets in seconds, got {values!r}"
            )
        seconds = []
        for v in values:
            if isinstance(v, bool) or not isinstance(v, (int, float, np.integer, np.floating)):
                raise WindowError(f"windows[{column!r}]: offsets are numbers of seconds, got {v!r}")
            if not math.isfinite(float(v)):
                raise WindowError(f"windows[{column!r}]: offsets must be finite, got {v!r}")
            seconds.append(float(v))
        out[column] = tuple(seconds)
    return out


@dataclasses.dataclass(frozen=True)
class FrameWindows:
    """Which frames each row of a window column gets: its time plus each offset, clamped to a valid range.

    Pass one as ``windows=`` to ``ds.with_format("mediaref", ...)`` or :func:`hf_mediaref.decode_transform`
    (a plain ``{column: offsets}`` dict there means ``FrameWindows(offsets)``: no episodes, windows clamped to
    their video).

    Args:
        offsets: ``{column: [seconds, ...]}``: for each MediaRef column (a video frame per row), the offsets
            in seconds of its window frames from the row's own time, in output order (``[-0.2, -0.1, 0.0]``:
            two past frames and the current one). ``T = len(offsets[column])`` frames per row. Value columns
            (numbers, lists, arrays) need the dataset's other rows: :meth:`from_dataset`.
        episode_column: the column holding each row's episode (it must be in every batch), or ``None``.
        episode_ranges: ``{column: {episode: (first_ns, last_ns)}}``: the time of the first and last frame of
            each episode in that column's video; required with ``episode_column``. Built by
            :meth:`from_dataset`, or by hand for a streamed dataset (e.g. from LeRobot's ``meta/episodes``).
        values: the value columns' rows (built by :meth:`from_dataset`), or ``None``.

    Raises:
        WindowError: (a ``ValueError``) for empty or non-numeric offsets, an ``episode_column`` without ranges
            (or ranges without a column), ranges missing a window column, or values without an episode column.

    Example:
        ```python
        >>> from hf_mediaref.hf import FrameWindows
        >>> offsets = {"frame": [-0.2, -0.1, 0.0]}
        >>> windows = FrameWindows.from_dataset(ds, offsets, episode_column="episode_index")
        >>> batch = ds.with_format("mediaref", windows=windows, output="torch", channels_first=True)[:64]
        >>> batch["frame"][0].shape, batch["frame_is_pad"][0]
        (torch.Size([3, 3, 96, 128]), tensor([ True, False, False]))
        ```
    """

    offsets: Mapping[str, Sequence[float]]
    episode_column: str | None = None
    episode_ranges: Mapping[str, Mapping[Any, tuple[int, int]]] | None = dataclasses.field(
        default=None, repr=False
    )
    values: ValueTable | None = dataclasses.field(default=None, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "offsets", _check_offsets(self.offsets))
        if (self.episode_column is None) != (self.episode_ranges is None):
            raise WindowError(
                "episode_column and episode_ranges go together: build the windows with "
                "FrameWindows.from_dataset(ds, offsets, episode_column=...) or pass both"
            )
        value_columns = list(self.values.arrays) if self.values is not None else []
        if value_columns and self.episode_column is None:
            raise WindowError(
                "value windows need an episode_column: build them with FrameWindows.from_dataset"
            )
        unknown = [c for c in value_columns if c not in self.offsets]
        if unknown:
            raise WindowError(f"values of column(s) {unknown} that have no offsets")
        if self.episode_ranges is not None:
            media = [c for c in self.offsets if c not in value_columns]
            missing = [c for c in media if c not in self.episode_ranges]
            if missing:
                raise WindowError(f"episode_ranges has no ranges for window column(s) {missing}")
            ranges: _Ranges = {
                column: {
                    episode_key(ep): (int(lo), int(hi))
                    for ep, (lo, hi) in self.episode_ranges[column].items()
                }
                for column in media
            }
            object.__setattr__(self, "episode_ranges", ranges)

    @property
    def columns(self) -> list[str]:
        """The window columns."""
        return list(self.offsets)

    @property
    def value_columns(self) -> list[str]:
        """The window columns of values (numbers, lists, arrays), windowed from :attr:`values`."""
        return list(self.values.arrays) if self.values is not None else []

    @property
    def frame_columns(self) -> list[str]:
        """The window columns of MediaRefs (frames decoded from their videos)."""
        return [c for c in self.offsets if c not in self.value_columns]

    def value_windows(
        self, episodes: Sequence[Any], times: Any, output: str, *, from_python: bool = False
    ) -> dict[str, list[Any]]:
        """The value columns' windows of a batch and their ``_is_pad`` masks (``output="torch"``: tensors,
        else numpy arrays).

        Args:
            episodes: each row's episode.
            times: the batch's time column (an Arrow array, or its Python values with ``from_python``).
            output: the decode output (``"torch"``, ``"numpy"``, ``"pil"``).
            from_python: ``times`` are Python values (refs, dicts, seconds), not Arrow.

        Raises:
            WindowError: a time column of the wrong type. KeyError: an episode not in :attr:`values`.
        """
        assert self.values is not None
        column = self.values.time_column
        times_ns = python_times_ns(times, column) if from_python else times_ns_of(times, column)
        out: dict[str, list[Any]] = {}
        for name in self.value_columns:
            found, pads = self.values.windows(name, self.offsets_ns(name), episodes, times_ns.tolist())
            windows: list[Any] = list(found)
            masks: list[Any] = list(pads)
            if output == "torch":
                import torch

                windows = [None if w is None else torch.from_numpy(w) for w in windows]
                masks = [None if m is None else torch.from_numpy(m) for m in masks]
            out[name] = windows
            out[name + PAD_SUFFIX] = masks
        return out

    def offsets_ns(self, column: str) -> np.ndarray:
        """The offsets of ``column`` in nanoseconds (int64)."""
        return np.array([round(s * NS_PER_SECOND) for s in self.offsets[column]], dtype=np.int64)

    @classmethod
    def from_dataset(
        cls,
        dataset: Any,
        offsets: Mapping[str, Sequence[float]],
        *,
        episode_column: str,
        time_column: str | None = None,
    ) -> FrameWindows:
        """Windows whose episodes are read from ``dataset``: for each MediaRef window column and episode, the
        times of its first and last frame (one pass over two columns, in Arrow); for each value window column
        (numbers, lists, fixed-size arrays: actions, states), its values, in episode and time order, so each
        row's window holds the values of the rows of its episode nearest its time plus each offset
        (LeRobot's ``delta_timestamps``; see docs/guides/windows.md).

        Args:
            dataset: a ``datasets.Dataset`` (its rows as selected, shuffled or filtered).
            offsets: ``{column: [seconds, ...]}`` (see the class).
            episode_column: the column naming each row's episode.
            time_column: for value windows, the column giving each row's time: a MediaRef column (its
                ``pts_ns``) or seconds. Default: ``"timestamp"`` (LeRobot's) where the dataset has it, else
                the first MediaRef window column, else the first MediaRef column.

        Returns:
            A :class:`FrameWindows` with ``episode_ranges`` (and ``values``) filled.

        Raises:
            TypeError: ``dataset`` is not a map-style ``datasets.Dataset`` (a streamed dataset cannot be read
                ahead: pass ``episode_ranges`` yourself).
            WindowError: a named column is not in ``dataset`` (also a ``KeyError`` before), a window column of
                a type without windows (strings, structs), no time column for value windows, or two rows of
                an episode at the same time.
            ValueError: an episode's refs in a window column point into several files.
        """
        import pyarrow as pa
        import pyarrow.compute as pc
        from datasets import Dataset

        if not isinstance(dataset, Dataset):
            raise TypeError(
                f"from_dataset needs a datasets.Dataset, got {type(dataset).__name__}; for a streamed "
                "dataset pass FrameWindows(offsets, episode_column=..., episode_ranges=...)"
            )
        checked = _check_offsets(offsets)
        names = [episode_column, *checked]
        missing = [c for c in names if c not in dataset.column_names]
        if missing:
            raise WindowError(f"columns {missing} are not in the dataset (columns: {dataset.column_names})")
        features = dataset.features
        media = [c for c in checked if isinstance(features[c], MediaRefFeature)]
        value_columns = [c for c in checked if c not in media]
        if value_columns and time_column is None:
            refs = [c for c in dataset.column_names if isinstance(features[c], MediaRefFeature)]
            time_column = "timestamp" if "timestamp" in dataset.column_names else (media or refs or [None])[0]
            if time_column is None:
                raise WindowError(
                    f"windows over value column(s) {value_columns} need each row's time: pass time_column= "
                    "(a MediaRef column, or a column of seconds)"
                )
        if time_column is not None and time_column not in dataset.column_names:
            raise WindowError(f"time column {time_column!r} is not in the dataset ({dataset.column_names})")
        extra = [time_column] if value_columns and time_column not in names else []
        table = dataset.select_columns(names + extra).with_format("arrow")[:]
        values = None
        if value_columns:
            assert time_column is not None
            values = ValueTable.build(table, value_columns, episode_column, time_column)
        episodes = table[episode_column]
        ranges: _Ranges = {}
        for column in media:
            refs = table[column]
            grouped = (
                pa.table(
                    {
                        "episode": episodes,
                        "pts": pc.struct_field(refs, "pts_ns"),
                        "uri": pc.struct_field(refs, "uri"),
                    }
                )
                .group_by("episode")
                .aggregate([("pts", "min"), ("pts", "max"), ("uri", "count_distinct")])
            )
            several = pc.filter(grouped["episode"], pc.greater(grouped["uri_count_distinct"], 1)).to_pylist()
            if several:
                raise ValueError(
                    f"episode {several[0]!r} has frames in several files of column {column!r}: an episode's "
                    "window range is a span of one video"
                )
            ranges[column] = {
                ep: (lo, hi)
                for ep, lo, hi in zip(
                    grouped["episode"].to_pylist(),
                    grouped["pts_min"].to_pylist(),
                    grouped["pts_max"].to_pylist(),
                )
                if lo is not None
            }
        return cls(checked, episode_column=episode_column, episode_ranges=ranges, values=values)


def check_window_columns(windows: FrameWindows, features: Mapping[str, Any], where: str = "dataset") -> None:
    """Raise :class:`WindowError` where a window column is not in ``features`` (the ``where``: the dataset's
    or the batch's), or is not a MediaRef column and has no values (a plain ``{column: offsets}`` dict on a
    value column)."""
    missing = [c for c in windows.columns if c not in features]
    if missing:
        raise WindowError(f"windows: columns {missing} are not in the {where} (columns: {list(features)})")
    for column in windows.frame_columns:
        feature = features[column]
        if not isinstance(feature, MediaRefFeature):
            raise WindowError(
                f"windows: column {column!r} is not a MediaRef column ({type(feature).__name__}): windows "
                "over numbers, lists and arrays read the other rows of the dataset; build them with "
                f"FrameWindows.from_dataset(ds, {{{column!r}: offsets}}, episode_column=...)"
            )


def as_windows(windows: FrameWindows | Mapping[str, Sequence[float]] | None) -> FrameWindows | None:
    """``windows`` as a :class:`FrameWindows` (a dict of offsets: no episodes), or ``None``."""
    if windows is None or isinstance(windows, FrameWindows):
        return windows
    if isinstance(windows, Mapping):
        return FrameWindows(windows)
    raise TypeError(f"windows must be a FrameWindows or a dict of offsets, got {type(windows).__name__}")


def window_times(
    pts_ns: np.ndarray,
    offsets_ns: np.ndarray,
    low_ns: np.ndarray,
    high_ns: np.ndarray,
    valid_from_ns: np.ndarray,
    valid_to_ns: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """The decode time and the padding flag of every window frame (pure).

    Args:
        pts_ns: ``(n,)`` the rows' own times.
        offsets_ns: ``(T,)`` the window's offsets.
        low_ns, high_ns: ``(n,)`` the times a padded frame is clamped to (first and last valid frame time).
        valid_from_ns, valid_to_ns: ``(n,)`` the inclusive range of times that are not padding.

    Returns:
        ``(times, pad)``, both ``(n, T)``: the clamped times (int64) and where the wanted time was outside
        the valid range (bool).
    """
    wanted = np.asarray(pts_ns, dtype=np.int64)[:, None] + np.asarray(offsets_ns, dtype=np.int64)[None, :]
    pad = (wanted < np.asarray(valid_from_ns)[:, None]) | (wanted > np.asarray(valid_to_ns)[:, None])
    times = np.clip(wanted, np.asarray(low_ns)[:, None], np.asarray(high_ns)[:, None])
    return np.maximum(times, 0), pad


def _video_bounds(uris: list[str], options: DecodeOptions) -> dict[str, tuple[int, int, int]]:
    """``(first frame time, last frame time, end)`` in ns of each video, from its (cached) index."""
    from .._executor import core_budget
    from ..video import plan_videos

    plans = plan_videos(
        {uri: [] for uri in uris},
        decoder="pyav",  # the index only: no container is opened when it is cached
        storage_options=options.storage_options,
        budget=core_budget(options.max_workers),
    )
    out = {}
    for uri, plan in zip(uris, plans):
        idx = plan.decoder._index_for([0, INT64_MAX])  # first and last frames (from Cues: 2 blocks, no scan)
        out[uri] = (idx.begin_ns, int(idx.frame_ns[-1]), idx.end_ns)
    return out


@dataclasses.dataclass
class WindowPlan:
    """The window frames one batch requests (:attr:`refs`, each distinct time once), and how their frames
    become window columns."""

    columns: dict[str, tuple[list[int], np.ndarray, np.ndarray]]  # column -> (rows with a ref, pad, slots)
    rows: int
    refs: list[MediaRef]
    accesses: set[Any] = dataclasses.field(default_factory=set)  # what the refs were checked against
    #: (column, k) -> the k-th windowed row's frames, written by the decode (:meth:`decoding_into`)
    _windows: dict[tuple[str, int], decode.FrameStack] = dataclasses.field(default_factory=dict, repr=False)

    def decoding_into(self, first: int, options: DecodeOptions) -> Any:
        """The context of the engine call whose requests from ``first`` on are :attr:`refs`: each ref's frame
        is decoded straight into its first window slot (:func:`hf_mediaref.decode.decoding_into`), so
        :meth:`assemble` stacks nothing it does not have to (``output="pil"``: nothing is written)."""
        if options.output == "pil":
            return decode.decoding_into(None)
        home: dict[int, tuple[decode.FrameStack, int]] = {}  # the ref's first window slot: (window, offset)
        for column, (_, _, slots) in self.columns.items():
            for k in range(slots.shape[0]):
                window = self._windows[column, k] = decode.FrameStack(slots.shape[1])
                for j, ref in enumerate(slots[k].tolist()):
                    home.setdefault(ref, (window, j))

        def into(request: int, shape: tuple[int, ...]) -> np.ndarray | None:
            slot = home.get(request - first)
            return slot[0].slot(slot[1], shape) if slot is not None else None

        return decode.decoding_into(into)

    def assemble(self, frames: Sequence[Any], options: DecodeOptions) -> dict[str, list[Any]]:
        """The window columns and their ``_is_pad`` columns from the decoded ``frames`` of :attr:`refs`
        (in order): each row's frames stacked (``(T, H, W, 3)`` or ``(T, 3, H, W)``; a list of its own PIL
        images for ``output="pil"``), its mask a ``(T,)`` bool array (a tensor for ``output="torch"``);
        ``None`` for a null ref. A row whose frames were decoded into its window (:meth:`decoding_into`)
        gets that window, its other frames copied in."""
        out: dict[str, list[Any]] = {}
        for column, (rows, pad, slots) in self.columns.items():
            values: list[Any] = [None] * self.rows
            masks: list[Any] = [None] * self.rows
            for k, row in enumerate(rows):
                picked = [frames[i] for i in slots[k]]
                window = self._windows.pop((column, k), None)
                filled = window.filled(picked) if window is not None else None
                values[row] = _stack(picked, options) if filled is None else _as_output(filled, options)
                masks[row] = _mask(pad[k], options)
            out[column] = values
            out[column + PAD_SUFFIX] = masks
        return out


def _as_output(window: np.ndarray, options: DecodeOptions) -> Any:
    if options.output == "torch":
        import torch

        return torch.from_numpy(window)
    return window


def _stack(frames: list[Any], options: DecodeOptions) -> Any:
    """One row's window (stacking copies: frames shared by windows are not shared by the results)."""
    if options.output == "pil":
        return [frame.copy() for frame in frames]
    if options.output == "torch":
        import torch

        return torch.stack(frames)
    return np.stack(frames)


def _mask(pad: np.ndarray, options: DecodeOptions) -> Any:
    if options.output == "torch":
        import torch

        return torch.from_numpy(pad.copy())
    return pad.copy()


def plan_windows(
    windows: FrameWindows,
    refs: Mapping[str, Sequence[MediaRef | None]],
    episodes: Sequence[Any] | None,
    options: DecodeOptions,
    accesses: Any = None,
) -> WindowPlan:
    """The refs of every window frame of a batch.

    Args:
        windows: the windows.
        refs: for each window column, one resolved ref (or ``None``) per row of the batch.
        episodes: each row's episode (the batch's ``episode_column``), or ``None`` without episodes.
        options: the decode options (``storage_options`` to open videos for their bounds).
        accesses: the :class:`~hf_mediaref.MediaAccess` (or several) the refs were checked against, whose
            public-address rules opening videos for their bounds follows; ``None``: the accesses the refs
            carry (see :func:`hf_mediaref.batch_decode`). A window frame's ref carries the access of the
            ref it is around.

    Returns:
        A :class:`WindowPlan`: its :attr:`~WindowPlan.refs` go to the batch's engine call.

    Raises:
        InvalidRefError: a window column holds an image ref (``pts_ns`` null).
        FrameOutOfRangeError: a row's own time is outside its episode, or at or past the end of its video.
        KeyError: a row's episode has no range.
    """
    n = len(next(iter(refs.values()))) if refs else 0
    bounds: dict[str, tuple[int, int, int]] = {}
    if windows.episode_ranges is None:
        uris = sorted({r.uri for column in refs.values() for r in column if r is not None})
        if accesses is None:
            accesses = {r._access for column in refs.values() for r in column if r is not None} - {None}
        with reading_with(accesses):
            bounds = _video_bounds(uris, options) if uris else {}
    columns: dict[str, tuple[list[int], np.ndarray, np.ndarray]] = {}
    slot_of: dict[tuple[str, int], int] = {}  # (uri, time) -> position in the plan's refs
    carried: dict[tuple[str, int], MediaAccess | None] = {}  # (uri, time) -> the access of its row's ref
    for column, column_refs in refs.items():
        rows = [i for i, r in enumerate(column_refs) if r is not None]
        present = [column_refs[i] for i in rows]
        for i, ref in zip(rows, present):
            assert ref is not None
            if ref.pts_ns is None:
                from ..errors import InvalidRefError

                raise InvalidRefError(
                    f"column {column!r}, row {i} of the batch: {describe_ref(ref.uri, None)} is an image; "
                    "windows need video frames",
                    uri=ref.uri,
                )
        pts = np.array([r.pts_ns for r in present], dtype=np.int64)  # type: ignore[union-attr]
        if windows.episode_ranges is not None:
            assert episodes is not None
            table = windows.episode_ranges[column]
            spans = []
            for i in rows:
                key = episode_key(episodes[i])
                if key not in table:
                    raise KeyError(
                        f"column {column!r}, row {i} of the batch: episode {key!r} has no range in the "
                        "windows' episode_ranges (build them with FrameWindows.from_dataset)"
                    )
                spans.append(table[key])
            low = np.array([s[0] for s in spans], dtype=np.int64).reshape(-1)
            high = np.array([s[1] for s in spans], dtype=np.int64).reshape(-1)
            valid_from, valid_to = low - _EDGE_TOLERANCE_NS, high + _EDGE_TOLERANCE_NS
        else:
            facts = [bounds[r.uri] for r in present]  # type: ignore[union-attr]
            low = np.array([f[0] for f in facts], dtype=np.int64).reshape(-1)
            high = np.array([f[1] for f in facts], dtype=np.int64).reshape(-1)
            valid_from = low - _EDGE_TOLERANCE_NS
            valid_to = np.array([f[2] - 1 for f in facts], dtype=np.int64).reshape(-1)
        outside = np.flatnonzero((pts < valid_from) | (pts > valid_to))
        if outside.size:
            k = int(outside[0])
            ref = present[k]
            assert ref is not None
            where = "its episode" if windows.episode_ranges is not None else "its video"
            raise FrameOutOfRangeError(
                f"column {column!r}, row {rows[k]} of the batch: {describe_ref(ref.uri, ref.pts_ns)} is "
                f"outside {where} ({int(valid_from[k]) + _EDGE_TOLERANCE_NS} ns to {int(high[k])} ns)",
                uri=ref.uri,
            )
        times, pad = window_times(pts, windows.offsets_ns(column), low, high, valid_from, valid_to)
        width = len(windows.offsets[column])
        pad = pad.reshape(len(rows), width)
        slots = np.empty((len(rows), width), dtype=np.int64)
        for k, (ref, row_times) in enumerate(zip(present, times.reshape(len(rows), width).tolist())):
            assert ref is not None
            for j, t in enumerate(row_times):
                slots[k, j] = slot_of.setdefault((ref.uri, int(t)), len(slot_of))
                carried.setdefault((ref.uri, int(t)), ref._access)
        columns[column] = (rows, pad, slots)
    unique = [_window_ref(uri, t, carried[uri, t]) for uri, t in slot_of]
    return WindowPlan(columns, n, unique)


def _window_ref(uri: str, pts_ns: int, access: MediaAccess | None) -> MediaRef:
    """A window frame's ref, carrying the access of the ref it is around (if any)."""
    if access is None:
        return MediaRef.model_construct(uri=uri, pts_ns=pts_ns)
    return MediaRef._checked(uri, pts_ns, access)


def plan_table_windows(
    pa_table: pa.Table,
    features: Mapping[str, Any],
    columns: list[str],
    options: DecodeOptions,
    windows: FrameWindows,
    access: Any = None,
) -> WindowPlan:
    """:func:`plan_windows` for the MediaRef ``columns`` of an Arrow batch (the ``"mediaref"`` format's);
    refs are resolved against ``access`` (a :class:`~hf_mediaref.MediaAccess`), else each column's own.

    Raises:
        ValueError: a window column is not a MediaRef column.
        KeyError: the episode column is not in the batch.
    """
    from ..arrow import refs_from_storage

    refs: dict[str, list[MediaRef | None]] = {}
    accesses = set()
    for name in columns:
        feature = features[name]
        if not isinstance(feature, MediaRefFeature):
            raise WindowError(
                f"window column {name!r} must be a MediaRef column, not {type(feature).__name__}"
            )
        quoted = repr(name).replace("{", "{{").replace("}", "}}")
        where = f"column {quoted}, row {{}} of the batch"
        column_access = access if access is not None else feature._media_access
        if column_access is not None:
            accesses.add(column_access)
        found, valid = refs_from_storage(pa_table[name], column_access, where=where)
        column: list[MediaRef | None] = [None] * len(valid)
        for i, ref in zip(np.flatnonzero(valid).tolist(), found):
            column[i] = ref
        refs[name] = column
    episodes = None
    if windows.episode_column is not None:
        if windows.episode_column not in pa_table.column_names:
            raise KeyError(
                f"windows: episode column {windows.episode_column!r} is not in the batch "
                f"(columns: {pa_table.column_names}); keep it in the formatted columns"
            )
        episodes = pa_table[windows.episode_column].to_pylist()
    plan = plan_windows(windows, refs, episodes, options, accesses)
    plan.accesses |= accesses
    return plan
