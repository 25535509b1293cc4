"""Decoding inside ``Dataset.map_batches``: :func:`decode_batch` (for tasks) and :class:`MediaDecoder` (a
callable class, for tasks or an actor pool).

A batch is whatever Ray hands over: a ``pyarrow.Table`` (``batch_format="pyarrow"``), a dict of numpy arrays
(``"numpy"``, Ray's default; a struct column is an object array of dicts) or a ``pandas.DataFrame``
(``"pandas"``). The refs of all media columns of a batch go to one :func:`~hf_mediaref.batch_decode` call,
which groups them by video. The decoder uses as many threads as Ray granted the task or actor CPUs
(``num_cpus``, 1 by default), never the whole machine: Ray already runs one task per granted CPU.

The decoder's access (``access=``, or one built from ``root=`` and ``allow_uris=``: a
:class:`hf_mediaref.MediaAccess`, as for ``decode_transform(access=...)``) is a trust boundary: every ref of
the batch, relative or absolute, is checked against it in the worker that decodes it, and its ``http(s)``
reads follow its public-address rule (:func:`hf_mediaref.io.reading_with`). It pickles with the decoder to
tasks and actors, credentials included. Without one, a decoder running for a dataset from
:func:`~hf_mediaref.ray.resolve_roots` (or ``read_mediaref``) finds the accesses its refs were checked against
in the dataset's own ``DataContext`` (:data:`MEDIA_ROOTS_KEY`) and reads under their rule, so the host names
of ``http(s)`` refs are held to public addresses when this worker connects too. Nothing process-wide widens
what a decoder may read.
"""

from __future__ import annotations

import bisect
import os
import sys
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import pyarrow as pa

from .. import decode
from ..arrow import as_array, cast_to_storage, holds_refs, refs_from_storage
from ..decode import DecodeOptions
from ..errors import InvalidRefError
from ..io import MediaAccess, make_access, reading_with, require_access

__all__ = ["MEDIA_ROOTS_KEY", "MediaDecoder", "decode_batch", "granted_cpus", "remember_root"]

#: The key, in a Ray Dataset's own ``DataContext`` (``set_config``), of the accesses (:class:`MediaAccess`)
#: its refs were checked against when read: the context travels with the dataset to every task and actor
#: that runs it (pickled: credentials included).
MEDIA_ROOTS_KEY = "hf_mediaref.media_roots"


def remember_root(dataset: Any, access: MediaAccess) -> None:
    """Add ``access`` to the accesses kept in ``dataset``'s own ``DataContext`` (:data:`MEDIA_ROOTS_KEY`).

    Nothing is kept when the dataset's context is the process-wide current one (every later dataset would
    share it) or when Ray has no per-dataset context. Kept accesses only narrow: a decoder reading under
    several holds a URL to public addresses when any of them does.

    Args:
        dataset: a ``ray.data.Dataset``.
        access: the :class:`~hf_mediaref.MediaAccess` its refs are checked against.

    Raises:
        TypeError: ``access`` is not a ``MediaAccess``.
    """
    require_access(access)
    context = getattr(dataset, "context", None)
    ray_data = sys.modules.get("ray.data")
    if ray_data is None or context is None or not hasattr(context, "set_config"):
        return
    if context is ray_data.DataContext.get_current():
        return
    kept = tuple(context.get_config(MEDIA_ROOTS_KEY, None) or ())
    if access not in kept:
        context.set_config(MEDIA_ROOTS_KEY, (*kept, access))


def _context_roots() -> tuple[MediaAccess, ...]:
    """The accesses of the Ray Dataset this runs for (see :func:`remember_root`); none outside one."""
    ray_data = sys.modules.get("ray.data")
    if ray_data is None:
        return ()
    try:
        roots = ray_data.DataContext.get_current().get_config(MEDIA_ROOTS_KEY, None)
    except Exception:  # a Ray without key-value configs
        return ()
    return tuple(r for r in roots or () if isinstance(r, MediaAccess))


def granted_cpus() -> float | None:
    """The CPUs Ray granted the task or actor this runs in (its ``num_cpus``), or ``None`` outside one
    (Ray not imported or not initialized, or the driver)."""
    ray = sys.modules.get("ray")
    if ray is None or not ray.is_initialized():
        return None
    try:
        context = ray.get_runtime_context()
        if context.get_task_id() is None and context.get_actor_id() is None:
            return None
        return float(context.get_assigned_resources().get("CPU", 0.0))
    except Exception:  # an older Ray or an unusual worker: fall back to the process's CPUs
        return None


def _worker_options(options: DecodeOptions) -> DecodeOptions:
    """``options`` with ``max_workers`` set to the CPUs Ray granted (at least 1) unless the user set it."""
    if options.max_workers is not None:
        return options
    cpus = granted_cpus()
    return options if cpus is None else options.replace(max_workers=max(1, int(cpus)))


def _is_pandas(batch: Any) -> bool:
    pd = sys.modules.get("pandas")
    return pd is not None and isinstance(batch, pd.DataFrame)


def _columns_of(batch: Any) -> dict[str, Any]:
    """The batch's columns by name: Arrow chunked arrays for a table, numpy arrays (or lists) otherwise."""
    if isinstance(batch, pa.Table):
        return {name: batch.column(name) for name in batch.column_names}
    if _is_pandas(batch):
        return {str(name): batch[name].to_numpy() for name in batch.columns}
    if isinstance(batch, Mapping):
        return dict(batch)
    raise TypeError(
        f"expected a Ray Data batch (a pyarrow.Table, a dict of numpy arrays or a pandas.DataFrame), "
        f"got {type(batch).__name__}"
    )


def _as_storage(column: Any, name: str) -> pa.Array:
    """A batch column as a ``struct<uri, pts_ns>`` array (nulls kept)."""
    if isinstance(column, (pa.Array, pa.ChunkedArray)):
        return cast_to_storage(as_array(column))
    values = [
        {"uri": v.uri, "pts_ns": v.pts_ns} if v is not None and not isinstance(v, (Mapping, str)) else v
        for v in (column.tolist() if isinstance(column, np.ndarray) else column)
    ]
    try:
        return cast_to_storage(pa.array(values, from_pandas=True))
    except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError) as exc:
        raise InvalidRefError(f"column {name!r} of the batch does not hold media references: {exc}") from None


def _empty_frame(options: DecodeOptions) -> np.ndarray:
    """What a null ref decodes to: a frame with no pixels, ``(0, 0, 3)`` (``(3, 0, 0)`` channels first)."""
    return np.zeros((3, 0, 0) if options.channels_first else (0, 0, 3), np.uint8)


def _frames_column(
    frames: list[Any], valid: np.ndarray, options: DecodeOptions, stack: decode.FrameStack | None = None
) -> np.ndarray:
    """One column of frames. Numpy (and torch) frames: an ``(N, H, W, 3)`` array when all have one shape
    (``stack``, the array the decode wrote them into, where it holds them), else an object array of arrays
    (Ray stores both as tensor columns, and unifies them across batches); a null ref gets an empty frame, so
    the column stays a tensor column. PIL images: an object array, ``None`` for a null ref."""
    pil = options.output == "pil"
    arrays = [f if pil else f.cpu().numpy() if hasattr(f, "cpu") else f for f in frames]
    filled = stack.filled(arrays) if stack is not None else None
    if filled is not None:
        return filled
    if not pil and valid.all() and arrays and len({a.shape for a in arrays}) == 1:
        return np.stack(arrays)
    out = np.empty(len(valid), dtype=object)
    if not pil:
        empty = _empty_frame(options)
        for row in np.flatnonzero(~valid).tolist():
            out[row] = empty
    for row, frame in zip(np.flatnonzero(valid).tolist(), arrays):
        out[row] = frame
    return out


def _plain_column(column: Any) -> Any:
    """A column that is not decoded, as numpy (Arrow columns; others are kept as they are)."""
    if not isinstance(column, pa.ChunkedArray):
        return column
    try:
        return column.to_numpy(zero_copy_only=False)
    except (pa.ArrowNotImplementedError, pa.ArrowInvalid, TypeError):  # extension types (Ray's tensors...)
        values = np.empty(len(column), dtype=object)
        for row, value in enumerate(column.to_pylist()):
            values[row] = value
        return values


def _decode_columns(
    batch: Any, columns: Sequence[str] | None, access: MediaAccess | None, options: DecodeOptions
) -> dict[str, Any]:
    data = _columns_of(batch)
    names = list(columns) if columns is not None else [n for n, c in data.items() if holds_refs(c, n)]
    missing = [n for n in names if n not in data]
    if missing:
        raise KeyError(f"columns {missing} are not in the batch (columns: {list(data)})")
    refs: list[Any] = []
    spans: list[tuple[str, int, int, np.ndarray, decode.FrameStack | None]] = []
    for name in names:
        column_refs, valid = refs_from_storage(
            _as_storage(data[name], name), access, where=f"column {name!r}, row {{}} of the batch"
        )
        # a column of frames of one shape is one array: the decode writes each frame into its row
        stack = decode.FrameStack(len(column_refs)) if options.output != "pil" and valid.all() else None
        spans.append((name, len(refs), len(refs) + len(column_refs), valid, stack))
        refs += column_refs
    # reads follow the public-address rule and credentials of the access the refs were checked against:
    # the decoder's, else those of the dataset this runs for (its DataContext; checked when it was read)
    accesses = [access] if access is not None else list(_context_roots()) if refs else []
    options = options.with_credentials(accesses)
    with reading_with(accesses), decode.decoding_into(_into_stacks(spans)):
        frames = decode.batch_decode(refs, options=options) if refs else []
    out = {name: _plain_column(column) for name, column in data.items()}
    for name, start, end, valid, stack in spans:
        out[name] = _frames_column(frames[start:end], valid, options, stack)
    return out


def _into_stacks(spans: Sequence[tuple[str, int, int, np.ndarray, decode.FrameStack | None]]) -> decode.Into:
    """Request ``i`` of the batch's engine call goes into its row of its column's stack (if it has one)."""
    starts = [start for _, start, _, _, _ in spans]

    def into(request: int, shape: tuple[int, ...]) -> np.ndarray | None:
        k = bisect.bisect_right(starts, request) - 1
        _, start, _, _, stack = spans[k]
        return stack.slot(request - start, shape) if stack is not None else None

    return into


class MediaDecoder:
    """Decodes the media columns of Ray Data batches: for ``Dataset.map_batches``, as a class (an actor
    pool) or as an instance (tasks).

    On CPUs prefer an instance (tasks): Ray keeps its task worker processes from one run of a dataset to
    the next (an epoch), with their open videos and indexes, while an actor pool starts new processes on
    every run (seconds on a small machine; see the Ray Data section of docs/performance.md).

    Each call makes one :func:`~hf_mediaref.batch_decode` call for all refs of the batch (all media
    columns), grouped by video. Decoder threads match the CPUs Ray granted the task or actor (``num_cpus``
    of ``map_batches``, 1 by default) unless ``max_workers`` is given, so N workers on N cores run N
    threads, not N x cores.

    Remote media (``hf://``, ``s3://``, ``http(s)``): a call's reads go out together, but Ray gives a call
    nothing of the next batch, so let an actor run two calls at once, one decoding while the other waits on
    the network: ``compute=ActorPoolStrategy(size=N, max_concurrent_calls_per_actor=2,
    enable_true_multi_threading=True)`` where Ray has these arguments (see docs/guides/remote.md). One decoder
    serves concurrent calls.

    Args:
        columns: the media columns to decode; default: every column holding refs (a struct column with a
            ``uri`` field, or values that are ref dicts or ``MediaRef`` s).
        root: the media root relative URIs resolve against (a local folder or a URL), or a
            :class:`hf_mediaref.MediaAccess`; builds ``MediaAccess(root, allow_uris)``. Not needed for a
            dataset from :func:`~hf_mediaref.ray.read_mediaref`, whose URIs are resolved (and checked) as it
            is read.
        allow_uris: what refs may read beyond the root: URI prefixes, local folders, schemes, or ``"*"``
            (see :func:`hf_mediaref.parse_allow_uris`); needs ``root`` or ``access``.
        access: the :class:`hf_mediaref.MediaAccess` to read with (instead of ``root``; widened by
            ``allow_uris``). Like :func:`~hf_mediaref.ray.resolve_roots`' access it is a trust boundary:
            every ref of a batch, relative or absolute, must read inside its root or what it allows (public
            ``http(s)`` URLs and ``data:`` URIs are always allowed), and its credentials read the media. It
            pickles with the decoder to tasks and actors, credentials included. Without one refs are not
            checked (refs you built), but for a dataset from :func:`~hf_mediaref.ray.read_mediaref` /
            ``resolve_roots`` (checked when read) the decoder reads under the accesses kept in the dataset's
            own ``DataContext``: the host names of its ``http(s)`` refs are held to public addresses in the
            decoding worker too, and their credentials are used.
        options: a :class:`hf_mediaref.DecodeOptions` (default: ``DecodeOptions()``).
        **decode_options: fields of :class:`hf_mediaref.DecodeOptions` by name (``size``, ``output``,
            ``decoder``, ``strategy``, ``device``, ``max_workers``, ...); given ones override ``options``.

    Returns:
        (when called) a numpy batch (``dict`` of arrays) with every column of the input: each media column
        holds its frames, an ``(N, H, W, 3)`` uint8 array (``(N, 3, H, W)`` with ``channels_first``) when all
        rows have a frame of one shape, else an object array of frames (Ray stores both as tensor columns).
        A null ref gets an empty frame of shape ``(0, 0, 3)`` (no pixels, never a stand-in image; filter
        such rows before ``iter_torch_batches``); with ``output="pil"`` an object array of images, ``None``
        for a null ref. ``output="torch"`` frames come back as numpy arrays sharing the tensors' memory:
        Ray batches hold numpy arrays (``iter_torch_batches`` makes tensors of them).

    Raises:
        ValueError: invalid options, a ``data:`` root, a malformed ``allow_uris`` entry, ``allow_uris``
            without ``root`` or ``access``, or both ``root`` and ``access`` (raised when built).
        TypeError: ``access`` is not a ``MediaAccess`` (raised when built).
        TypeError: (when called) a batch that is not a ``pyarrow.Table``, a dict of arrays or a
            ``pandas.DataFrame``.
        KeyError: (when called) a named column is not in the batch.
        InvalidRefError: (when called) a malformed ref, naming its column and row in the batch.
        UnresolvedPathError: (when called) a relative URI and no root.
        UntrustedRefError: (when called) a ref that reads outside the access and is not allowed, named in the
            message (:class:`~hf_mediaref.errors.PathEscapeError` for a ``..`` out of it). Inside
            ``map_batches`` Ray Data reports it as a ``RayTaskError(UserCodeException)`` whose message holds
            the ``UntrustedRefError`` line naming the ref; with Ray's
            ``DataContext.raise_original_map_exception = True`` it is a ``RayTaskError(UntrustedRefError)``,
            which ``except UntrustedRefError`` catches (with its ``uri``).

    Example:
        ```python
        >>> import ray
        >>> from hf_mediaref import MediaAccess
        >>> from hf_mediaref.ray import MediaDecoder, read_mediaref
        >>> ds = read_mediaref("/data/robot-frames")  # relative URIs resolved against the folder
        >>> frames = ds.map_batches(MediaDecoder, fn_constructor_kwargs={"size": (224, 224)},
        ...                         batch_size=64, compute=ray.data.ActorPoolStrategy(size=2))
        >>> frames.take_batch(4)["frame"].shape
        (4, 224, 224, 3)
        >>> raw = ray.data.read_parquet("/data/robot-frames/data")  # relative refs, checked by the decoder
        >>> decoder = MediaDecoder(root="/data/robot-frames", allow_uris=["/mnt/shared/"])
        >>> frames = raw.map_batches(decoder, batch_size=64)
        >>> private = MediaDecoder(access=MediaAccess("hf://datasets/org/private@<commit>/", token="hf_..."))
        ```
    """

    def __init__(
        self,
        columns: Sequence[str] | None = None,
        *,
        root: str | os.PathLike[str] | MediaAccess | None = None,
        allow_uris: str | os.PathLike[str] | Iterable[Any] | None = None,
        access: MediaAccess | None = None,
        options: DecodeOptions | None = None,
        **decode_options: Any,
    ):
        self.columns = None if columns is None else [columns] if isinstance(columns, str) else list(columns)
        self.access = make_access(root, allow_uris, access)
        self.options = DecodeOptions.resolve(options, **decode_options)

    def __call__(self, batch: Any) -> dict[str, Any]:
        return _decode_columns(batch, self.columns, self.access, _worker_options(self.options))

    def __repr__(self) -> str:
        return f"MediaDecoder(columns={self.columns!r}, access={self.access!r}, {self.options})"


def decode_batch(
    batch: Any,
    columns: Sequence[str] | None = None,
    *,
    root: str | os.PathLike[str] | MediaAccess | None = None,
    allow_uris: str | os.PathLike[str] | Iterable[Any] | None = None,
    access: MediaAccess | None = None,
    options: DecodeOptions | None = None,
    **decode_options: Any,
) -> dict[str, Any]:
    """Decode the media columns of one Ray Data batch: a function for ``Dataset.map_batches`` (tasks).

    Same as ``MediaDecoder(columns, root=root, allow_uris=allow_uris, access=access, options=options,
    **decode_options)(batch)``; options are validated on every call, so for many batches prefer passing a
    :class:`MediaDecoder` instance.

    Args:
        batch: a ``pyarrow.Table``, a dict of numpy arrays (a struct column as an object array of dicts) or
            a ``pandas.DataFrame``.
        columns, root, allow_uris, access, options, **decode_options: as for :class:`MediaDecoder` (the
            access, given or built from ``root`` and ``allow_uris``, is a trust boundary).

    Returns:
        A numpy batch: every column of ``batch``, media columns holding their frames (see
        :class:`MediaDecoder`).

    Raises:
        TypeError: ``batch`` is none of the three batch kinds, or a name is not a decode option.
        KeyError: a named column is not in the batch.
        InvalidRefError: a malformed ref, naming its column and row in the batch.
        UnresolvedPathError: a relative URI and no root.
        UntrustedRefError: a ref that reads outside the access and is not allowed, named in the message.
        ValueError, TypeError: the access arguments are inconsistent (see :class:`MediaDecoder`).

    Example:
        ```python
        >>> from hf_mediaref.ray import decode_batch, read_mediaref
        >>> ds = read_mediaref("/data/robot-frames")
        >>> frames = ds.map_batches(decode_batch, fn_kwargs={"size": (224, 224)}, batch_size=64)
        ```
    """
    decoder = MediaDecoder(
        columns, root=root, allow_uris=allow_uris, access=access, options=options, **decode_options
    )
    return decoder(batch)
