"""``MediaRefFeature``: a ``datasets`` column type whose values are :class:`~hf_mediaref.MediaRef` references.

Arrow storage is ``struct<uri: string, pts_ns: int64>`` (``pts_ns`` null for images). Decoding is cheap: a row
decodes to a ``MediaRef`` (its URI resolved against the dataset's media root, see
:mod:`hf_mediaref.hf.roots`), never to pixels; pixels come from the ``"mediaref"`` format or
:func:`hf_mediaref.decode_transform`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any, ClassVar, Optional

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ..core import DataURI
from .._fields import INT64_MAX
from ..core import MediaRef
from ..errors import describe_uri
from .roots import resolve_uri

__all__ = ["MediaRefFeature", "STORAGE_TYPE"]

#: The Arrow type of a MediaRef column.
STORAGE_TYPE = pa.struct({"uri": pa.string(), "pts_ns": pa.int64()})

_STORED_KEYS = frozenset({"uri", "pts_ns"})


@dataclass
class MediaRefFeature:
    """A column of media references: frames of videos (``pts_ns`` set) or images (``pts_ns=None``).

    ``encode_example`` accepts a :class:`~hf_mediaref.MediaRef`, a ``{"uri", "pts_ns"}`` dict, a URI string or
    path (an image), a :class:`~hf_mediaref.DataURI`, or a numpy array / PIL image (embedded as a PNG data
    URI). With ``decode=True`` (default) rows read back as ``MediaRef``; with ``decode=False`` as plain dicts.
    """

    decode: bool = True
    id: Optional[str] = field(default=None, repr=False)
    dtype: ClassVar[str] = "hf_mediaref.MediaRef"
    pa_type: ClassVar[Any] = STORAGE_TYPE
    _type: str = field(default="MediaRef", init=False, repr=False)
    # Runtime-only state (not a dataclass field: never serialized, not part of equality). Set by
    # hf_mediaref.hf.roots.set_media_root; survives copy, pickle and the datasets operations that keep
    # features.
    _media_root: ClassVar[Optional[str]] = None

    def __call__(self) -> pa.DataType:
        return self.pa_type

    # ------------------------------------------------------------------ encoding
    def encode_example(self, value: Any) -> Optional[dict]:
        """Turn a supported value into the stored ``{"uri": str, "pts_ns": int | None}`` dict."""
        if value is None:
            return None
        if isinstance(value, MediaRef):
            return {"uri": value.uri, "pts_ns": value.pts_ns}
        if isinstance(value, dict):
            return _encode_dict(value)
        if isinstance(value, str):
            if not value:
                raise ValueError("cannot encode an empty string as a media reference")
            return {"uri": value, "pts_ns": None}
        if isinstance(value, os.PathLike):
            return {"uri": os.fspath(value), "pts_ns": None}
        if isinstance(value, DataURI):
            return {"uri": value.uri, "pts_ns": None}
        if isinstance(value, np.ndarray) or _is_pil_image(value):
            return {"uri": DataURI.from_image(value, format="png").uri, "pts_ns": None}
        raise TypeError(
            f"cannot encode a {type(value).__name__} as a media reference; expected MediaRef, "
            "dict with 'uri', str/PathLike URI, DataURI, numpy array or PIL image"
        )

    def cast_storage(self, storage: pa.Array) -> pa.StructArray:
        """Cast ``string``/``large_string`` (image URIs), partial structs (``uri`` with or without
        ``pts_ns``) and
        all-null arrays to ``struct<uri: string, pts_ns: int64>``, keeping nulls."""
        n = len(storage)
        mask = storage.is_null() if storage.null_count else None
        if pa.types.is_null(storage.type):
            return pa.array([None] * n, type=self.pa_type)
        if pa.types.is_string(storage.type) or pa.types.is_large_string(storage.type):
            uri = storage.cast(pa.string())
            pts = pa.nulls(n, pa.int64())
        elif pa.types.is_struct(storage.type):
            names = [storage.type.field(i).name for i in range(storage.type.num_fields)]
            if "uri" not in names:
                raise ValueError(f"cannot cast struct<{', '.join(names)}> to MediaRef: it has no 'uri' field")
            extra = sorted(set(names) - _STORED_KEYS)
            if extra:
                raise ValueError(
                    f"cannot cast struct<{', '.join(names)}> to MediaRef: unexpected fields {extra}"
                )
            uri = storage.field("uri").cast(pa.string())
            pts = storage.field("pts_ns").cast(pa.int64()) if "pts_ns" in names else pa.nulls(n, pa.int64())
        else:
            raise TypeError(f"cannot cast an Arrow {storage.type} array to MediaRef (struct<uri, pts_ns>)")
        if pts.null_count < n and pc.any(pc.less(pts, 0)).as_py():
            bad = pc.filter(pts, pc.less(pts, 0))[0].as_py()
            raise ValueError(f"pts_ns must be >= 0 nanoseconds, found {bad}")
        return pa.StructArray.from_arrays([uri, pts], fields=list(self.pa_type), mask=mask)

    # ------------------------------------------------------------------ decoding
    def decode_example(self, value: Any, token_per_repo_id: Optional[dict] = None) -> Any:
        """Return a :class:`MediaRef` (URI resolved against the media root); idempotent on ``MediaRef``
        input."""
        if not self.decode:
            return value
        if isinstance(value, MediaRef):
            ref = value
        else:
            ref = MediaRef(value["uri"], value.get("pts_ns"))
        root = self._media_root
        if root is not None:
            resolved = resolve_uri(ref.uri, root)
            if resolved is not ref.uri:
                ref = MediaRef(resolved, ref.pts_ns)
        return ref

    def flatten(self) -> "MediaRefFeature | dict":
        """``self`` when decoding, else the plain ``uri`` / ``pts_ns`` sub-columns."""
        from datasets import Value

        return self if self.decode else {"uri": Value("string"), "pts_ns": Value("int64")}


def _encode_dict(value: dict) -> dict:
    uri = value.get("uri")
    pts = value.get("pts_ns")
    if (
        type(uri) is str
        and uri
        and (pts is None or (type(pts) is int and 0 <= pts <= INT64_MAX))
        and value.keys() <= _STORED_KEYS
    ):
        return value if len(value) == 2 else {"uri": uri, "pts_ns": pts}  # already encoded: the fast path
    extra = sorted(set(value) - _STORED_KEYS)
    if extra:
        raise ValueError(f"a media reference dict has keys 'uri' and 'pts_ns' only, got unexpected {extra}")
    if uri is None:
        raise ValueError(f"a media reference dict needs a 'uri', got {describe_uri(value)}")
    ref = MediaRef(uri, pts)
    return {"uri": ref.uri, "pts_ns": ref.pts_ns}


def _is_pil_image(value: Any) -> bool:
    import sys

    pil = sys.modules.get("PIL.Image")
    return pil is not None and isinstance(value, pil.Image)
