"""The Arrow storage of a media reference, ``struct<uri: string, pts_ns: int64>``, and casts to it."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc

__all__ = ["STORAGE_TYPE", "STORED_KEYS", "cast_to_storage"]

#: The Arrow type of a column of media references (``pts_ns`` null for images).
STORAGE_TYPE = pa.struct({"uri": pa.string(), "pts_ns": pa.int64()})
#: The fields of :data:`STORAGE_TYPE`.
STORED_KEYS = frozenset({"uri", "pts_ns"})


def _struct_children(storage: pa.StructArray) -> tuple[pa.Array, pa.Array]:
    names = [storage.type.field(i).name for i in range(storage.type.num_fields)]
    if "uri" not in names:
        raise ValueError(f"cannot cast struct<{', '.join(names)}> to MediaRef: it has no 'uri' field")
    extra = sorted(set(names) - STORED_KEYS)
    if extra:
        raise ValueError(f"cannot cast struct<{', '.join(names)}> to MediaRef: unexpected fields {extra}")
    uri = storage.field("uri").cast(pa.string())
    if "pts_ns" not in names:
        return uri, pa.nulls(len(storage), pa.int64())
    return uri, storage.field("pts_ns").cast(pa.int64())


def cast_to_storage(storage: pa.Array) -> pa.StructArray:
    """Cast an Arrow array of media references to :data:`STORAGE_TYPE`, keeping nulls.

    Args:
        storage: a ``string`` / ``large_string`` array (image URIs), a struct with a ``uri`` field and
            optionally ``pts_ns`` (any integer type), or an all-null array.

    Returns:
        A ``struct<uri: string, pts_ns: int64>`` array of the same length and validity.

    Raises:
        TypeError: for any other Arrow type.
        ValueError: for a struct without ``uri`` or with other fields, and for negative ``pts_ns``.

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
    if pts.null_count < n and pc.any(pc.less(pts, 0)).as_py():
        bad = pc.filter(pts, pc.less(pts, 0))[0].as_py()
        raise ValueError(f"pts_ns must be >= 0 nanoseconds, found {bad}")
    mask = storage.is_null() if storage.null_count else None
    return pa.StructArray.from_arrays([uri, pts], fields=list(STORAGE_TYPE), mask=mask)
