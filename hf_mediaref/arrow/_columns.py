"""What is a media reference, in every form a batch or a schema holds one: the one place that decides.

A *value* is a ref when it is a :class:`~hf_mediaref.MediaRef` or a dict with ``uri`` and at most ``pts_ns``
besides (or with both and other keys that are all ``None``, as a struct column with more fields reads): see
:func:`as_ref`. An Arrow *type* stores refs when it is the same shape as a struct: a string ``uri`` field and
at most ``pts_ns`` besides, or both and other fields (:func:`~hf_mediaref.arrow.cast_to_storage` flags the
rows where those are set): see :func:`is_ref_type`. A *column* holds refs by its type (Arrow arrays, numpy
struct arrays) or, for plain values (lists, object arrays), by its first non-null value: see
:func:`holds_refs`. :func:`map_refs` is the package's one walk over plain Python values.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pyarrow as pa

from .._fields import coerce_ref, invalid_ref
from ..core import MediaRef
from ._storage import STORED_KEYS

__all__ = ["as_ref", "holds_refs", "is_ref_type", "map_refs", "walk_refs"]

_Path = tuple[Any, ...]


def _where(path: _Path) -> str | None:
    """How an error names the place of a value: ``column 'frame', row 3 of the batch`` for a batch of
    columns, ``row 3`` for a column, then any nested keys and indices (``['obs'][0]``)."""
    if not path:
        return None
    if len(path) >= 2 and isinstance(path[0], str) and isinstance(path[1], int):
        head, rest = f"column {path[0]!r}, row {path[1]} of the batch", path[2:]
    elif isinstance(path[0], int):
        head, rest = f"row {path[0]}", path[1:]
    else:
        head, rest = "value", path
    return head + "".join(f"[{p!r}]" for p in rest)


def _ref_fields(names: Any) -> bool:
    """Whether struct field ``names`` are those of a ref: ``uri`` and at most ``pts_ns``, or both and more."""
    names = set(names)
    return "uri" in names and (names <= STORED_KEYS or "pts_ns" in names)


def as_ref(value: Any, path: _Path = ()) -> MediaRef | None:
    """``value`` as a ref (a ``MediaRef``, a dict with ``uri`` and at most ``pts_ns`` besides, or one with
    both and other keys that are all ``None``, as a struct column with more fields reads), else ``None``; a
    ref dict whose fields are malformed, or one with ``uri``, ``pts_ns`` and other keys set, raises
    :class:`~hf_mediaref.errors.InvalidRefError` naming ``path`` (``(column, row, *keys)``)."""
    if isinstance(value, MediaRef):
        return value
    if not isinstance(value, dict) or "uri" not in value:
        return None
    extra = sorted(k for k in value.keys() - STORED_KEYS if value[k] is not None)
    if value.keys() <= STORED_KEYS or ("pts_ns" in value and not extra):
        uri, pts = coerce_ref(value["uri"], value.get("pts_ns"), where=_where(path))
        return MediaRef.model_construct(uri=uri, pts_ns=pts)
    if "pts_ns" in value:
        reason = f"a ref has fields 'uri' and 'pts_ns' only, got unexpected {extra} set"
        raise invalid_ref(reason, value["uri"], value["pts_ns"], where=_where(path))
    return None


def walk_refs(value: Any, visit: Callable[[MediaRef], Any], path: _Path = ()) -> Any:
    """``value`` rebuilt with every media reference (see :func:`as_ref`; inside lists, tuples and dicts at
    any depth) replaced by ``visit(ref)``, in depth-first order; ``path`` is where ``value`` sits, for
    errors."""
    ref = as_ref(value, path)
    if ref is not None:
        return visit(ref)
    if isinstance(value, (list, tuple)):
        return [walk_refs(item, visit, (*path, i)) for i, item in enumerate(value)]
    if isinstance(value, dict):
        return {key: walk_refs(item, visit, (*path, key)) for key, item in value.items()}
    return value


def map_refs(value: Any, fn: Callable[[list[MediaRef]], list[Any]]) -> Any:
    """Replace every media reference inside ``value`` (nested lists / dicts) with ``fn``'s result for it.

    Args:
        value: a Python value: a ref, or lists / dicts holding refs (``MediaRef`` s or ``{"uri", "pts_ns"}``
            dicts) and other values.
        fn: receives all refs at once (one batch) and returns one value per ref.

    Returns:
        ``value`` rebuilt with the results in place of the refs (lists and tuples become lists).

    Raises:
        InvalidRefError: a ref dict with a malformed field, or with keys other than ``uri`` and ``pts_ns``
            besides both; the message names where it is (``column 'frame', row 3 of the batch`` for a batch
            of columns, ``row 3`` for a list).

    Example:
        ```python
        >>> from hf_mediaref import MediaRef
        >>> from hf_mediaref.arrow import map_refs
        >>> map_refs([[MediaRef("a.png")], None, {"uri": "b.mp4", "pts_ns": 0}], lambda refs: [r.uri for r
        ... in refs])
        [['a.png'], None, 'b.mp4']
        ```
    """
    refs: list[MediaRef] = []
    walk_refs(value, refs.append)
    results = iter(fn(refs))
    return walk_refs(value, lambda ref: next(results))


def is_ref_type(arrow_type: pa.DataType) -> bool:
    """Whether an Arrow type stores media references: a struct with a ``string`` / ``large_string``
    ``uri`` field and at most ``pts_ns`` besides, or with both and other fields.

    Args:
        arrow_type: a ``pyarrow.DataType`` (a schema field's ``.type``).

    Returns:
        ``True`` for a ref struct; ``False`` for anything else, plain strings included (a string column is
        read as image URIs only where the caller names it).
    """
    if not pa.types.is_struct(arrow_type):
        return False
    names = [arrow_type.field(i).name for i in range(arrow_type.num_fields)]
    if not _ref_fields(names):
        return False
    uri = arrow_type.field("uri").type
    return bool(pa.types.is_string(uri) or pa.types.is_large_string(uri))


def holds_refs(column: Any, name: str | None = None, *, nested: bool = False) -> bool:
    """Whether a batch column holds media references.

    Arrow arrays by their type (:func:`is_ref_type`); numpy struct arrays by their fields; other numpy arrays
    only when of ``object`` dtype; plain values (a list, a tuple, an object array, a pandas Series) by their
    first non-null value (:func:`as_ref`); a single value by itself.

    Args:
        column: the column.
        name: its name, for the error of a malformed ref dict.
        nested: also look inside the first non-null value (lists and dicts at any depth), as
            :func:`map_refs` finds refs; otherwise that value must be a ref itself.

    Returns:
        Whether the column holds refs.

    Raises:
        InvalidRefError: the value looked at is a ref dict with a malformed field.
    """
    if isinstance(column, (pa.Array, pa.ChunkedArray)):
        return is_ref_type(column.type)
    if isinstance(column, (str, bytes)):
        return False
    if isinstance(column, (MediaRef, dict)):
        return as_ref(column, () if name is None else (name,)) is not None
    dtype = getattr(column, "dtype", None)
    if dtype is not None and getattr(dtype, "names", None):
        return _ref_fields(dtype.names)
    if dtype is not None and str(dtype) != "object":
        return False
    if not hasattr(column, "__iter__"):
        return False
    first = next(((i, row) for i, row in enumerate(column) if row is not None), None)
    if first is None:
        return False
    path = (first[0],) if name is None else (name, first[0])
    if not nested:
        return as_ref(first[1], path) is not None
    found: list[MediaRef] = []
    walk_refs(first[1], found.append, path)
    return bool(found)
