"""The two fields of a media reference, ``uri`` and ``pts_ns``: their validation and shared constants.

This module sits below everything else (it imports only :mod:`hf_mediaref.errors`), so the value types, the
decode façade and the Arrow layer validate a ref the same way without importing each other."""

from __future__ import annotations

import operator
import os
from typing import Any

import numpy as np

from .errors import describe_uri

__all__ = ["INT64_MAX", "NS_PER_SECOND", "coerce_pts_ns", "coerce_uri", "describe_ref"]

#: The largest value an Arrow ``int64`` ``pts_ns`` can hold.
INT64_MAX = 2**63 - 1
#: Nanoseconds per second (``pts_ns`` is an integer number of nanoseconds).
NS_PER_SECOND = 1_000_000_000


def coerce_pts_ns(value: Any) -> int | None:
    """Validate a ``pts_ns`` value: ``None`` (an image) or whole nanoseconds in ``[0, 2**63 - 1]``.

    Args:
        value: ``None``, a Python or numpy integer, or an integral float.

    Returns:
        The timestamp as a Python ``int``, or ``None``.

    Raises:
        ValueError: for bools, strings, fractional floats, negative values and values beyond int64.
    """
    if value is None:
        return None
    if isinstance(value, (bool, np.bool_)):
        raise ValueError("pts_ns must be an integer number of nanoseconds, not a bool")
    if isinstance(value, (float, np.floating)):
        if not float(value).is_integer():
            raise ValueError(f"pts_ns must be a whole number of nanoseconds, got {value!r}")
        value = int(value)
    try:
        pts = operator.index(value)
    except TypeError:
        raise ValueError(f"pts_ns must be an int (nanoseconds), got {type(value).__name__}") from None
    if pts < 0:
        raise ValueError(f"pts_ns must be >= 0, got {pts}")
    if pts > INT64_MAX:
        raise ValueError(f"pts_ns {pts} does not fit in int64")
    return pts


def coerce_uri(value: Any) -> str:
    """Validate a ``uri`` value: a non-empty ``str`` or ``os.PathLike``, or a ``DataURI`` (an object with a
    ``uri`` string and no ``pts_ns``: a ``MediaRef`` is not a URI).

    Raises:
        ValueError: for other types and for the empty string.
    """
    inner = getattr(value, "uri", None)
    if isinstance(inner, str) and not isinstance(value, str) and not hasattr(value, "pts_ns"):
        value = inner
    if isinstance(value, os.PathLike):
        value = os.fspath(value)
    if not isinstance(value, str):
        raise ValueError(f"uri must be a str, os.PathLike or DataURI, got {type(value).__name__}")
    if not value:
        raise ValueError("uri must not be empty")
    return value


def describe_ref(uri: object, pts_ns: int | None) -> str:
    """How errors name a ref: ``MediaRef(uri='...', pts_ns=...)`` with a long URI shortened."""
    return f"MediaRef(uri={describe_uri(uri)}, pts_ns={pts_ns!r})"
