"""The Arrow storage of a media reference, ``struct<uri: string, pts_ns: int64>``, and casts to it."""

from __future__ import annotations

from collections.abc import Callable

import pyarrow as pa
import pyarrow.compute as pc

from .._fields import INT64_MAX, STORED_INVALID
from ..errors import InvalidRefError

__all__ = ["STORAGE_TYPE", "STORED_KEYS", "cast_to_storage", "map_uris"]

#: The Arrow type of a column of media references (``pts_ns`` null for images).
STORAGE_TYPE = pa.struct({"uri": pa.string(), "pts_ns": pa.int64()})
#: The fields of :data:`STORAGE_TYPE`.
STORED_KEYS = frozenset({"uri", "pts_ns"})


def _flag(values: pa.Array, bad: pa.Array, code: str) -> pa.Array:
    """``values`` (int64) with the reserved :data:`~hf_mediaref._fields.STORED_INVALID` value where ``bad``
    is true (nulls stay null)."""
    return pc.if_else(pc.fill_null(bad, False), pa.scalar(STORED_INVALID[code], pa.int64()), values)


def _uri_to_string(uri: pa.Array, names: list[str]) -> pa.Array:
    t = uri.type
    if pa.types.is_null(t) or pa.types.is_string(t) or pa.types.is_large_string(t):
        return uri.cast(pa.string())
    raise InvalidRefError(
        f"cannot read struct<{', '.join(names)}> as MediaRef: its 'uri' is {t}, not a string"
    )


def _pts_to_int64(pts: pa.Array, names: list[str]) -> pa.Array:
    """``pts_ns`` as int64; a non-null value no int64 can hold becomes a reserved value (see
    :mod:`hf_mediaref._fields`), so that its row, not the whole column, fails when it is read."""
    t = pts.type
    n = len(pts)
    if pa.types.is_null(t):
        return pa.nulls(n, pa.int64())
    if pa.types.is_boolean(t) or pa.types.is_string(t) or pa.types.is_large_string(t):
        code = "bool" if pa.types.is_boolean(t) else "string"
        return _flag(pa.nulls(n, pa.int64()), pc.is_valid(pts), code)
    if pa.types.is_floating(t):
        f = pts.cast(pa.float64())
        in_range = pc.and_(pc.greater_equal(f, -(2.0**63)), pc.less(f, 2.0**63))
        whole = pc.equal(pc.floor(f), f)  # false for NaN
        ok = pc.fill_null(pc.and_(whole, in_range), False)
        ints = pc.if_else(ok, f, pa.scalar(0.0)).cast(pa.int64())
        ints = pc.if_else(pc.is_valid(f), ints, pa.nulls(n, pa.int64()))
        ints = _flag(ints, pc.and_(pc.invert(whole), pc.is_valid(f)), "fractional")
        return _flag(ints, pc.and_(whole, pc.invert(in_range)), "out_of_range")
    if pa.types.is_integer(t):
        if pa.types.is_uint64(t):
            over = pc.greater(pts, pa.scalar(INT64_MAX, pa.uint64()))
            ints = pc.if_else(pc.fill_null(over, False), pa.scalar(0, pa.uint64()), pts).cast(pa.int64())
            return _flag(ints, over, "out_of_range")
        return pts.cast(pa.int64())
    raise InvalidRefError(
        f"cannot read struct<{', '.join(names)}> as MediaRef: its 'pts_ns' is {t}, not an integer"
    )


def _struct_children(storage: pa.StructArray) -> tuple[pa.Array, pa.Array]:
    names = [storage.type.field(i).name for i in range(storage.type.num_fields)]
    if "uri" not in names and set(names) == {"bytes", "path"}:
        raise InvalidRefError(
            "cannot read struct<bytes, path> as MediaRef: that is how datasets stores a Video (or Image) "
            "column, whose rows are whole files, while a MediaRef is one frame. Use "
            "hf_mediaref.from_videos(ds, column=...) to make one row per frame (the videos written once as "
            "files, each row a ref to one frame), or `hf-mediaref build --from-videos`"
        )
    if "uri" not in names:
        raise InvalidRefError(f"cannot read struct<{', '.join(names)}> as MediaRef: it has no 'uri' field")
    uri = _uri_to_string(storage.field("uri"), names)
    if "pts_ns" in names:
        pts = _pts_to_int64(storage.field("pts_ns"), names)
    else:
        pts = pa.nulls(len(storage), pa.int64())
    for name in sorted(set(names) - STORED_KEYS):
        pts = _flag(pts, pc.is_valid(storage.field(name)), "extra_fields")
    return uri, pts


def cast_to_storage(storage: pa.Array) -> pa.StructArray:
    """Cast an Arrow array of media references to :data:`STORAGE_TYPE`, keeping nulls.

    A column written by another tool may hold values no ref can have. The cast keeps them for the row that
    holds them to fail when it is read (an :class:`~hf_mediaref.errors.InvalidRefError` naming the row), so
    the other rows still load and decode: a negative ``pts_ns``, a null or empty ``uri`` are kept as they
    are; a ``pts_ns`` stored as a bool, a string, a fractional float or beyond int64, and a row whose fields
    other than ``uri`` and ``pts_ns`` are set, get a reserved negative ``pts_ns``
    (:data:`hf_mediaref._fields.STORED_INVALID`) that says which. Null ``pts_ns`` (images) stay null;
    integral floats become integers.

    Args:
        storage: a ``string`` / ``large_string`` array (image URIs), a struct with a ``uri`` field and
            optionally ``pts_ns`` (any integer or float type; bool and string values read as invalid rows),
            or an all-null array.

    Returns:
        A ``struct<uri: string, pts_ns: int64>`` array of the same length and validity.

    Raises:
        TypeError: for any other Arrow type.
        InvalidRefError: (a ``ValueError``) for a struct without ``uri``, with a ``uri`` that is not a string
            type or a ``pts_ns`` of a type that holds no numbers (lists, structs...).

    Example:
        ```python
        >>> import pyarrow as pa
        >>> from hf_mediaref.arrow import cast_to_storage
        >>> cast_to_storage(pa.array(["a.png", None])).to_pylist()
        [{'uri': 'a.png', 'pts_ns': None}, None]
        ```
    """
    n = len(storage)
    if pa.types.is_null(storage.type):
        return pa.array([None] * n, type=STORAGE_TYPE)
    if pa.types.is_string(storage.type) or pa.types.is_large_string(storage.type):
        uri, pts = storage.cast(pa.string()), pa.nulls(n, pa.int64())
    elif pa.types.is_struct(storage.type):
        uri, pts = _struct_children(storage)
    else:
        raise TypeError(f"cannot cast an Arrow {storage.type} array to MediaRef (struct<uri, pts_ns>)")
    mask = storage.is_null() if storage.null_count else None
    return pa.StructArray.from_arrays([uri, pts], fields=list(STORAGE_TYPE), mask=mask)


def map_uris(storage: pa.StructArray, fn: Callable[[str], str]) -> pa.StructArray:
    """``storage`` (a ``struct<uri, pts_ns, ...>`` array) with each ``uri`` replaced by ``fn(uri)``, called
    once per distinct URI (Arrow dictionary encode + take); null rows, null and empty URIs are kept as they
    are (for the reader to report), and so are the other fields. The one place that rewrites the URIs of a
    ref column: resolving them against a root, checking them, replacing uploaded paths."""
    encoded = pc.dictionary_encode(storage.field("uri"))
    uri_type = storage.type.field("uri").type
    dictionary = pa.array([fn(u) if u else u for u in encoded.dictionary.to_pylist()], uri_type)
    names = [storage.type.field(i).name for i in range(storage.type.num_fields)]
    children = [dictionary.take(encoded.indices) if n == "uri" else storage.field(n) for n in names]
    mask = storage.is_null() if storage.null_count else None
    return pa.StructArray.from_arrays(children, fields=list(storage.type), mask=mask)
