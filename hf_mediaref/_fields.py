"""The two fields of a media reference, ``uri`` and ``pts_ns``: their validation and shared constants.

This module sits below everything else (it imports only :mod:`hf_mediaref.errors`), so the value types, the
decode façade and the Arrow layer validate a ref the same way without importing each other.

**Stored values Arrow cannot hold.** A ``pts_ns`` written by another tool as a bool, a string, a fractional
float or a value beyond int64 has no ``int64`` to be cast to, yet the rows around it are fine. The cast to the
storage type (:func:`hf_mediaref.arrow.cast_to_storage`) therefore stores such a value as one of a few
reserved negative numbers at the very bottom of int64 (:data:`STORED_INVALID`), and a ref whose fields other
than ``uri`` and ``pts_ns`` are set the same way. No valid ref has a negative ``pts_ns``, so the row reads as
invalid, and the error raised when it is read (:class:`~hf_mediaref.errors.InvalidRefError`) says what was
stored (:func:`pts_problem`).
"""

from __future__ import annotations

import operator
import os
import sys
from typing import Any

import numpy as np

from .errors import InvalidRefError, UndecodedRefError, describe_uri

__all__ = [
    "INT64_MAX",
    "INT64_MIN",
    "NS_PER_SECOND",
    "STORED_INVALID",
    "coerce_pts_ns",
    "coerce_ref",
    "coerce_uri",
    "describe_ref",
    "invalid_ref",
    "pts_problem",
    "stored_array",
]

#: The largest value an Arrow ``int64`` ``pts_ns`` can hold.
INT64_MAX = 2**63 - 1
#: The smallest ``int64``; the reserved values of :data:`STORED_INVALID` start here.
INT64_MIN = -(2**63)
#: Nanoseconds per second (``pts_ns`` is an integer number of nanoseconds).
NS_PER_SECOND = 1_000_000_000

#: What a stored ``pts_ns`` that no ``int64`` could hold is replaced with by the cast to the storage type, by
#: what was stored: the reserved values at the bottom of int64 (see the module docstring).
STORED_INVALID = {
    "bool": INT64_MIN,
    "string": INT64_MIN + 1,
    "fractional": INT64_MIN + 2,
    "out_of_range": INT64_MIN + 3,
    "extra_fields": INT64_MIN + 4,
}
_STORED_SHOWN = {
    STORED_INVALID["bool"]: "<a bool>",
    STORED_INVALID["string"]: "<a string>",
    STORED_INVALID["fractional"]: "<a fraction>",
    STORED_INVALID["out_of_range"]: "<beyond int64>",
    STORED_INVALID["extra_fields"]: "<extra fields set>",
}
_STORED_REASONS = {
    STORED_INVALID["bool"]: "pts_ns was stored as a bool, not an integer number of nanoseconds",
    STORED_INVALID["string"]: "pts_ns was stored as a string, not an integer number of nanoseconds",
    STORED_INVALID["fractional"]: "pts_ns was stored as a float that is not a whole number (or NaN)",
    STORED_INVALID["out_of_range"]: "pts_ns was stored as a number beyond int64",
    STORED_INVALID["extra_fields"]: "the stored ref has fields other than 'uri' and 'pts_ns' set",
}


def pts_problem(pts: int) -> str:
    """Why a negative ``pts_ns`` is invalid: one of the reserved :data:`STORED_INVALID` values, or a negative
    number.

    Args:
        pts: a negative integer.

    Returns:
        The reason, for an error message.
    """
    return _STORED_REASONS.get(pts, f"pts_ns must be >= 0, got {pts}")


def coerce_pts_ns(value: Any) -> int | None:
    """Validate a ``pts_ns`` value: ``None`` (an image) or whole nanoseconds in ``[0, 2**63 - 1]``.

    Args:
        value: ``None``, a Python or numpy integer, or an integral float.

    Returns:
        The timestamp as a Python ``int``, or ``None``.

    Raises:
        InvalidRefError: (a ``ValueError``) for bools, strings, fractional floats, negative values and values
            beyond int64.
    """
    if value is None:
        return None
    if isinstance(value, (bool, np.bool_)):
        raise InvalidRefError("pts_ns must be an integer number of nanoseconds, not a bool")
    if isinstance(value, (float, np.floating)):
        if not float(value).is_integer():
            raise InvalidRefError(f"pts_ns must be a whole number of nanoseconds, got {value!r}")
        value = int(value)
    try:
        pts = operator.index(value)
    except TypeError:
        raise InvalidRefError(f"pts_ns must be an int (nanoseconds), got {type(value).__name__}") from None
    if pts < 0:
        raise InvalidRefError(pts_problem(pts))
    if pts > INT64_MAX:
        raise InvalidRefError(f"pts_ns {pts} does not fit in int64")
    return pts


def coerce_uri(value: Any) -> str:
    """Validate a ``uri`` value: a non-empty ``str`` or ``os.PathLike`` without NUL bytes, or a ``DataURI``
    (an object with a ``uri`` string and no ``pts_ns``: a ``MediaRef`` is not a URI).

    Args:
        value: the ``uri``.

    Returns:
        The URI as a ``str``.

    Raises:
        InvalidRefError: (a ``ValueError``) for ``None``, other types, the empty string and a NUL byte.
    """
    inner = getattr(value, "uri", None)
    if isinstance(inner, str) and not isinstance(value, str) and not hasattr(value, "pts_ns"):
        value = inner
    if isinstance(value, os.PathLike):
        value = os.fspath(value)
    if value is None:
        raise InvalidRefError("uri is missing (None)")
    if not isinstance(value, str):
        raise InvalidRefError(f"uri must be a str, os.PathLike or DataURI, got {type(value).__name__}")
    if not value:
        raise InvalidRefError("uri must not be empty", uri=value)
    if "\x00" in value:
        raise InvalidRefError(f"uri {describe_uri(value)} contains a NUL byte", uri=value)
    return value


def invalid_ref(reason: str, uri: Any, pts_ns: Any, *, where: str | None = None) -> InvalidRefError:
    """The error for a malformed ref, naming where it was found and its value.

    Args:
        reason: what is wrong.
        uri: the ``uri`` as given or stored (a long one is shortened in the message).
        pts_ns: the ``pts_ns`` as given or stored.
        where: where the ref was found (``"refs[3]"``, ``"row 2 of the batch"``, ``"column 'frame', row
            5"``), or ``None`` when it is not known.

    Returns:
        An :class:`~hf_mediaref.errors.InvalidRefError` whose ``uri`` is ``uri`` when it is a string.
    """
    at = f" at {where}" if where else ""
    shown = describe_uri(uri) if isinstance(uri, str) else repr(uri)
    pts = _STORED_SHOWN.get(pts_ns, repr(pts_ns)) if type(pts_ns) is int else repr(pts_ns)
    return InvalidRefError(
        f"invalid media reference{at}: {reason} (uri={shown}, pts_ns={pts})",
        uri=uri if isinstance(uri, str) else None,
    )


def coerce_ref(uri: Any, pts_ns: Any, *, where: str | None = None) -> tuple[str, int | None]:
    """Validate both fields of a ref (:func:`coerce_uri`, :func:`coerce_pts_ns`).

    Args:
        uri: the ``uri``.
        pts_ns: the ``pts_ns``.
        where: where the ref was found, for the message (see :func:`invalid_ref`).

    Returns:
        ``(uri, pts_ns)``, validated.

    Raises:
        InvalidRefError: either field is malformed; the message names ``where`` and the value.
    """
    try:
        return coerce_uri(uri), coerce_pts_ns(pts_ns)
    except InvalidRefError as exc:
        raise invalid_ref(str(exc), uri, pts_ns, where=where) from None


def describe_ref(uri: object, pts_ns: int | None) -> str:
    """How errors name a ref: ``MediaRef(uri='...', pts_ns=...)`` with a long URI shortened."""
    return f"MediaRef(uri={describe_uri(uri)}, pts_ns={pts_ns!r})"


#: ``datasets``' writer: its ``cast_to_python_objects`` helper turns any value with ``__array__`` into that
#: array's item (the same name and module from ``datasets`` 4.0 to 5.x).
_WRITER = ("datasets.features.features", "_cast_to_python_objects")
#: ``datasets``' ``"numpy"`` / ``"torch"`` / ``"jax"`` / ``"tensorflow"`` formats, which call ``__array__`` on
#: every value they tensorize (``_recursive_tensorize`` of ``datasets.formatting.<x>_formatter``).
_FORMATS = "_recursive_tensorize"


def stored_array(value: Any, uri: str, pts_ns: int | None, what: str, dtype: Any = None) -> np.ndarray:
    """A media reference's ``__array__``, by who asks: ``datasets``' writer gets a 0-d object array holding
    the stored ``{"uri", "pts_ns"}`` dict; ``datasets``' tensor formats and numeric dtypes get
    :class:`~hf_mediaref.errors.UndecodedRefError` naming the ``"mediaref"`` format; anyone else (NumPy
    building an object array of refs) a 0-d object array holding ``value`` itself.

    ``datasets`` stores values it does not know through ``cast_to_python_objects``, which turns a value with
    ``__array__`` into that array's item: that is how ``Dataset.map``, ``from_dict`` and ``from_list`` store a
    ``MediaRef`` as its struct with nothing of ``datasets`` replaced. Its ``"torch"`` / ``"numpy"`` formats
    ask the same protocol for an array they can tensorize, which a reference is not: pixels come from the
    ``"mediaref"`` format, a batch at a time, with the dataset's access. The caller is told apart by the frame
    that calls ``__array__`` (:data:`_WRITER`, :data:`_FORMATS`; checked on the oldest and newest ``datasets``
    the package supports).

    Args:
        value: the reference.
        uri: its URI.
        pts_ns: its presentation time (``None`` for an image).
        what: the class name, for the error.
        dtype: the dtype NumPy asks for (``None`` or ``object`` hold the reference).

    Returns:
        The 0-d object array.

    Raises:
        UndecodedRefError: (a ``TypeError``) for ``datasets``' tensor formats and numeric dtypes.
    """
    caller = sys._getframe(2)  # 0: here, 1: the value's __array__, 2: who asked it
    module, function = caller.f_globals.get("__name__", ""), caller.f_code.co_name
    stored = np.empty((), dtype=object)
    if (module, function) == _WRITER:
        stored[()] = {"uri": uri, "pts_ns": pts_ns}
        return stored
    numeric = dtype is not None and np.dtype(dtype) != np.dtype(object)
    if numeric or (function == _FORMATS and module.startswith("datasets.formatting.")):
        raise UndecodedRefError(
            f"{describe_ref(uri, pts_ns)} is a media reference ({what}), not an array: decode a ref column "
            'with ds.with_format("mediaref", output="torch") (or output="numpy"), which decodes each batch '
            "in one call; hf_mediaref.batch_decode(refs) or .to_rgb_array() decode refs yourself; "
            'ds.with_format("pandas"), ds.to_pandas() and object arrays (np.array(refs)) keep the refs as '
            "values"
        )
    stored[()] = value
    return stored
