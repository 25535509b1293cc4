"""Windows over value columns (numbers, lists, fixed-size arrays): LeRobot's ``delta_timestamps`` on actions
and states (action chunks), beside the frame windows of MediaRef columns.

A row's window of a value column holds the values of the rows of its episode *nearest* its time plus each
offset (LeRobot's ``round(offset * fps)`` rows away, for rows at a constant rate), clamped into the episode;
its ``<column>_is_pad`` entry is ``True`` where the wanted time lies outside the episode by more than half a
row interval (LeRobot pads where ``index + round(offset * fps)`` leaves the episode). The rows of a batch do
not hold the values of the rows around them, so :meth:`~hf_mediaref.hf.FrameWindows.from_dataset` reads the
window columns, the episode column and the time column of the whole dataset once (:class:`ValueTable`: the
values as numpy arrays, in episode and time order), and each batch looks its windows up there (pure numpy, no
decode).

A row's time is its time column: a MediaRef column (its ``pts_ns``) or a number of seconds (LeRobot's
``timestamp``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from .._fields import NS_PER_SECOND
from ..errors import WindowError

__all__ = ["ValueTable", "episode_key", "python_times_ns", "times_ns_of", "values_of"]

#: The smallest padding tolerance (an episode of one row; timestamps stored as float32 seconds).
_MIN_TOLERANCE_NS = 1_000_000


def episode_key(value: Any) -> Any:
    """A hashable Python scalar for an episode value (numpy / torch scalars included)."""
    return value.item() if hasattr(value, "item") else value


def values_of(array: Any, column: str) -> np.ndarray:
    """The values of an Arrow array (or chunked array) as one regular numpy array: ``(n,)`` for numbers and
    bools, ``(n, L, ...)`` for (nested) lists and fixed-size arrays whose rows all have the same shape.

    Raises:
        WindowError: a type that cannot be windowed (strings, structs, MediaRefs, ...), a null, or lists of
            different lengths.
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    if isinstance(array, pa.ChunkedArray):
        array = array.combine_chunks()
    if isinstance(array, pa.ExtensionArray):  # datasets' Array2D..5D
        array = array.storage
    kind = array.type
    if array.null_count:
        raise WindowError(f"windows over column {column!r}: it holds nulls (a window needs a value per row)")
    if pa.types.is_integer(kind) or pa.types.is_floating(kind) or pa.types.is_boolean(kind):
        return np.asarray(array.to_numpy(zero_copy_only=False))
    if pa.types.is_list(kind) or pa.types.is_large_list(kind) or pa.types.is_fixed_size_list(kind):
        lengths = pc.list_value_length(array).to_numpy(zero_copy_only=False)
        if lengths.size and (lengths != lengths[0]).any():
            raise WindowError(
                f"windows over column {column!r}: its lists have different lengths ({int(lengths.min())} to "
                f"{int(lengths.max())}); only values of one shape stack into a window"
            )
        inner = values_of(array.flatten(), column)
        return inner.reshape(len(array), int(lengths[0]) if lengths.size else 0, *inner.shape[1:])
    raise WindowError(
        f"windows over column {column!r} of type {kind}: only MediaRef columns (frames), numbers, bools and "
        "(nested) lists or arrays of them can be windowed"
    )


def times_ns_of(array: Any, column: str) -> np.ndarray:
    """Each row's time in ns from an Arrow time column: a MediaRef column's ``pts_ns``, or seconds.

    Raises:
        WindowError: another type, or a null time.
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    if isinstance(array, pa.ChunkedArray):
        array = array.combine_chunks()
    kind = array.type
    if pa.types.is_struct(kind) and kind.get_field_index("pts_ns") >= 0:
        array = pc.struct_field(array, "pts_ns")
        if array.null_count:
            raise WindowError(f"time column {column!r} holds image refs or nulls (no pts_ns): no row times")
        return np.asarray(array.to_numpy(zero_copy_only=False), dtype=np.int64)
    if pa.types.is_integer(kind) or pa.types.is_floating(kind):
        if array.null_count:
            raise WindowError(f"time column {column!r} holds nulls: every row needs a time")
        seconds = np.asarray(array.to_numpy(zero_copy_only=False), dtype=np.float64)
        return np.round(seconds * NS_PER_SECOND).astype(np.int64)
    raise WindowError(
        f"time column {column!r} of type {kind}: a row's time is a MediaRef column (its pts_ns) or a number "
        "of seconds (LeRobot's 'timestamp')"
    )


def python_times_ns(values: Sequence[Any], column: str) -> np.ndarray:
    """:func:`times_ns_of` for a batch's Python values (MediaRefs, ref dicts, numbers of seconds)."""
    out = np.empty(len(values), dtype=np.int64)
    for i, value in enumerate(values):
        pts = getattr(value, "pts_ns", None)
        if pts is None and isinstance(value, Mapping):
            pts = value.get("pts_ns")
        if pts is not None:
            out[i] = int(pts)
        elif isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool):
            out[i] = round(float(value) * NS_PER_SECOND)
        else:
            raise WindowError(
                f"time column {column!r}, row {i} of the batch: {type(value).__name__} is not a time (a ref "
                "with a pts_ns, or seconds)"
            )
    return out


@dataclasses.dataclass(frozen=True, eq=False)
class ValueTable:
    """A dataset's value window columns, rows in episode then time order.

    Args:
        time_column: the column giving each row's time.
        times_ns: ``(N,)`` every row's time, sorted within each episode.
        episodes: ``{episode: (start, stop)}``: the rows of each episode in ``times_ns`` and ``arrays``.
        arrays: ``{column: (N, ...) numpy array}``: the values, rows in the same order.
    """

    time_column: str
    times_ns: np.ndarray
    episodes: Mapping[Any, tuple[int, int]]
    arrays: Mapping[str, np.ndarray]

    @classmethod
    def build(cls, table: Any, columns: Sequence[str], episode_column: str, time_column: str) -> ValueTable:
        """From an Arrow table holding ``columns``, the episode column and the time column.

        Raises:
            WindowError: a column that cannot be windowed, or two rows of an episode at the same time.
        """
        times = times_ns_of(table[time_column], time_column)
        episodes = np.asarray(table[episode_column].to_pylist(), dtype=object)
        keys = [episode_key(e) for e in episodes]
        codes: dict[Any, int] = {}
        code = np.fromiter((codes.setdefault(k, len(codes)) for k in keys), dtype=np.int64, count=len(keys))
        order = np.lexsort((times, code))
        times, code = times[order], code[order]
        same = np.flatnonzero((np.diff(code) == 0) & (np.diff(times) == 0))
        if same.size:
            names = {v: k for k, v in codes.items()}
            raise WindowError(
                f"windows: two rows of episode {names[int(code[same[0]])]!r} have the same time "
                f"{int(times[same[0]])} ns in {time_column!r}: a window needs one row per time"
            )
        bounds = np.flatnonzero(np.diff(code)) + 1
        starts = np.concatenate([[0], bounds]) if code.size else np.empty(0, np.int64)
        stops = np.concatenate([bounds, [code.size]]) if code.size else np.empty(0, np.int64)
        names = {v: k for k, v in codes.items()}
        ranges = {names[int(code[s])]: (int(s), int(e)) for s, e in zip(starts, stops)}
        arrays = {column: values_of(table[column], column)[order] for column in columns}
        return cls(time_column, times, ranges, arrays)

    def windows(
        self,
        column: str,
        offsets_ns: np.ndarray,
        episodes: Sequence[Any],
        times_ns: Sequence[int | None],
    ) -> tuple[list[np.ndarray | None], list[np.ndarray | None]]:
        """Each row's window of ``column`` (``(T, ...)``) and padding mask (``(T,)``); ``None`` for a row
        without a time.

        Raises:
            KeyError: a row's episode is not in the table.
        """
        values = self.arrays[column]
        out: list[np.ndarray | None] = []
        masks: list[np.ndarray | None] = []
        for i, (episode, t) in enumerate(zip(episodes, times_ns)):
            if t is None:
                out.append(None)
                masks.append(None)
                continue
            key = episode_key(episode)
            if key not in self.episodes:
                raise KeyError(
                    f"column {column!r}, row {i} of the batch: episode {key!r} is not in the dataset the "
                    "windows were built from (FrameWindows.from_dataset)"
                )
            start, stop = self.episodes[key]
            times = self.times_ns[start:stop]
            wanted = int(t) + offsets_ns
            after = np.clip(np.searchsorted(times, wanted), 1, max(times.size - 1, 1))
            before = after - 1
            if times.size == 1:
                nearest = np.zeros(wanted.size, dtype=np.int64)
            else:
                nearest = np.where(wanted - times[before] <= times[after] - wanted, before, after)
            half = int(np.median(np.diff(times))) // 2 if times.size > 1 else 0
            tolerance = max(half, _MIN_TOLERANCE_NS)
            masks.append((wanted < times[0] - tolerance) | (wanted > times[-1] + tolerance))
            out.append(values[start + nearest])
        return out, masks
