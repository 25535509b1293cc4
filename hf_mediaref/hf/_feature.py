"""``MediaRefFeature``, the ``datasets`` column type of media references, and the one walker over nested
features.

Arrow storage is ``struct<uri: string, pts_ns: int64>`` (``pts_ns`` null for images; see
:mod:`hf_mediaref.arrow`). A row decodes to a ``MediaRef`` (its URI resolved against the dataset's media
root), never to pixels; pixels come from the ``"mediaref"`` format or
:func:`~hf_mediaref.hf.decode_transform`.

**The ``decode=False`` rule.** ``decode`` only says how rows are *read*: with ``decode=False`` a column reads
as plain ``{"uri", "pts_ns"}`` dicts, and the ``"mediaref"`` format does not decode it to pixels (it formats
it like any struct column). Everything that works on the stored references themselves treats every
``MediaRefFeature`` alike, whatever its ``decode``: the media root, :func:`~hf_mediaref.hf.embed`,
:func:`~hf_mediaref.hf.push_to_hub` (uploads and URI rewriting), the dataset card and the batch sampler.
Walkers take ``decoding=True`` to see only the columns that decode.

Every walk over nested features (``dict`` / ``Features``, ``List``, ``LargeList``, ``[feature]``) is
:func:`fold_feature`; the helpers below derive from it, and :func:`map_media_arrays` walks Arrow data along
it.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar, TypeVar

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from datasets import LargeList, List, Value

from .._fields import INT64_MAX, coerce_ref, invalid_ref
from ..arrow import STORAGE_TYPE, STORED_KEYS, cast_to_storage
from ..core import DataURI, MediaRef
from ..io import MediaAccess, is_absolute_uri, require_access

__all__ = [
    "MEDIA_REF_ID",
    "READ_BACK",
    "MediaRefFeature",
    "fold_feature",
    "has_media",
    "map_media_arrays",
    "media_features",
    "plain_features",
    "ref_columns",
    "upgrade_feature",
    "upgrade_features",
    "with_access",
]

T = TypeVar("T")


#: The ``id`` of the ``uri`` sub-feature that marks a MediaRef column in serialized features (the card's YAML,
#: Parquet / Arrow schema metadata, ``dataset_info.json``). ``datasets`` keeps a ``Value``'s ``id`` and
#: ignores it, so without hf_mediaref the column reads as the plain struct; with hf_mediaref imported the
#: struct is read back as a :class:`MediaRefFeature` (see :func:`upgrade_feature`).
MEDIA_REF_ID = "hf_mediaref.MediaRef"
#: The marker of a ``decode=False`` column.
MEDIA_REF_NO_DECODE_ID = "hf_mediaref.MediaRef;decode=false"
_MARKERS = {MEDIA_REF_ID: True, MEDIA_REF_NO_DECODE_ID: False}


@dataclass(init=False, repr=False)
class MediaRefFeature:
    """A column of media references: frames of videos (``pts_ns`` set) or images (``pts_ns=None``).

    Args:
        decode: read rows as :class:`~hf_mediaref.MediaRef` (default) or, with ``False``, as plain
            ``{"uri", "pts_ns"}`` dicts that the ``"mediaref"`` format does not decode to pixels.
        id: accepted for symmetry with ``datasets``' features; not kept.
        access: the :class:`~hf_mediaref.MediaAccess` the column's refs read with (runtime state, never
            serialized; part of equality). Loaders set it: see :func:`~hf_mediaref.hf.set_media_access`.

    ``encode_example`` accepts a ``MediaRef``, a ``{"uri", "pts_ns"}`` dict, a URI string or path (an image),
    a :class:`~hf_mediaref.DataURI`, or a numpy array / PIL image (embedded as a PNG data URI). The access
    a dataset's refs read with (its root included) is runtime state kept on the feature object (see
    :func:`~hf_mediaref.hf.set_media_access`): never serialized, part of equality. A ``MediaRefFeature()``
    you construct has none: its column reads like a table built in code.

    **Serialized as a plain struct.** The dataclass fields are the two sub-features ``uri`` /
    ``pts_ns``, so everything ``datasets`` writes (card YAML, Parquet and Arrow schema metadata,
    ``dataset_info.json``) describes the column as ``struct<uri: string, pts_ns: int64>``, readable by
    ``datasets`` without hf_mediaref; the ``uri`` sub-feature's ``id`` (:data:`MEDIA_REF_ID`) marks it, and
    hf_mediaref reads it back as a ``MediaRefFeature``. Files written by hf_mediaref <= 0.x
    (``_type: MediaRef``) still load with hf_mediaref imported.

    Example:
        ```python
        >>> from datasets import Dataset, Features
        >>> from hf_mediaref import MediaRef
        >>> from hf_mediaref.hf import MediaRefFeature
        >>> ds = Dataset.from_dict(
        ...     {"frame": [MediaRef("/data/ep0.mp4", 1_000_000_000), "/data/goal.png"]},
        ...     features=Features({"frame": MediaRefFeature()}),
        ... )
        >>> ds[1]["frame"]
        MediaRef(uri='/data/goal.png', pts_ns=None)
        ```
    """

    # The serialized form (see the class docstring): not constructor arguments, always written.
    uri: Value = field(init=False)
    pts_ns: Value = field(init=False)
    dtype: ClassVar[str] = "hf_mediaref.MediaRef"
    pa_type: ClassVar[Any] = STORAGE_TYPE
    id: ClassVar[str | None] = None
    # Runtime-only state (a class attribute, so not a dataclass field): set per object by set_media_root.
    _media_access: ClassVar[MediaAccess | None] = None

    def __init__(self, decode: bool = True, id: str | None = None, access: MediaAccess | None = None):
        self.pts_ns = Value("int64")
        self.decode = decode
        if access is not None:
            self._media_access = require_access(access)  # type: ignore[misc]  # runtime state, per object

    @property
    def decode(self) -> bool:
        """Whether rows read as :class:`~hf_mediaref.MediaRef` (settable, as ``datasets`` does on copies)."""
        return _MARKERS.get(self.uri.id, True)

    @decode.setter
    def decode(self, value: bool) -> None:
        self.uri = Value("string", id=MEDIA_REF_ID if value else MEDIA_REF_NO_DECODE_ID)

    def __repr__(self) -> str:
        args = [] if self.decode else ["decode=False"]
        if self._media_access is not None:
            args.append(f"access={self._media_access!r}")
        return f"MediaRefFeature({', '.join(args)})"

    def __eq__(self, other: object) -> bool:
        """Equal when both decode alike and read with the same access: two columns whose refs read with
        different accesses are different columns (``concatenate_datasets`` refuses to align them rather than
        reading one dataset's relative URIs against the other's root)."""
        if not isinstance(other, MediaRefFeature):
            return NotImplemented
        return self.decode == other.decode and self._media_access == other._media_access

    __hash__ = None  # type: ignore[assignment]  # mutable runtime state, like datasets' other features

    def __call__(self) -> pa.DataType:
        return self.pa_type

    def encode_example(self, value: Any) -> dict[str, Any] | None:
        """Turn a supported value into the stored ``{"uri": str, "pts_ns": int | None}`` dict.

        Raises:
            InvalidRefError: (a ``ValueError``) for an empty URI or one with a NUL byte, a dict with other
                keys or without ``uri``, a bad ``pts_ns``.
            TypeError: for a value of another type.
        """
        if value is None:
            return None
        if isinstance(value, MediaRef):
            return {"uri": value.uri, "pts_ns": value.pts_ns}
        if isinstance(value, dict):
            return _encode_dict(value)
        if isinstance(value, (str, os.PathLike)):
            uri, _ = coerce_ref(value, None)
            return {"uri": uri, "pts_ns": None}
        if isinstance(value, DataURI):
            return {"uri": value.uri, "pts_ns": None}
        if isinstance(value, np.ndarray) or _is_pil_image(value):
            return {"uri": DataURI.from_image(value, format="png").uri, "pts_ns": None}
        raise TypeError(
            f"cannot encode a {type(value).__name__} as a media reference; expected MediaRef, "
            "dict with 'uri', str/PathLike URI, DataURI, numpy array or PIL image"
        )

    def cast_storage(self, storage: pa.Array) -> pa.StructArray:
        """Cast ``string`` / ``large_string`` (image URIs), partial structs and all-null arrays to the storage
        type, keeping nulls (see :func:`hf_mediaref.arrow.cast_to_storage`)."""
        return cast_to_storage(storage)

    def decode_example(self, value: Any, token_per_repo_id: dict | None = None) -> Any:
        """A :class:`~hf_mediaref.MediaRef` with its URI resolved against the media root (a relative URI stays
        relative when there is no root) and checked against the column's access, which it carries (decoding
        it without ``access=`` reads under that access's rules); the stored dict itself with ``decode=False``.
        Idempotent.

        Raises:
            InvalidRefError: the stored row is no valid ref (a null, empty or NUL-holding ``uri``, a negative
                ``pts_ns``, or one stored as a bool, string or fraction): raised when the row is read, naming
                the value (``datasets`` does not tell a feature which row it decodes).
            PathEscapeError: a relative URI that leaves the media root.
        """
        if not self.decode:
            return value
        if isinstance(value, MediaRef):
            uri, pts = value.uri, value.pts_ns
        else:
            uri, pts = coerce_ref(value.get("uri"), value.get("pts_ns"))
        access = self._media_access
        if access is None:
            return value if isinstance(value, MediaRef) else MediaRef.model_construct(uri=uri, pts_ns=pts)
        if access.root is not None or is_absolute_uri(uri):
            uri = access.resolve(uri)  # else no root: relative as stored (reading it says how to fix that)
        return MediaRef._checked(uri, pts, access)  # the one place a dataset's refs get their access

    def flatten(self) -> MediaRefFeature | dict[str, Any]:
        """``self`` when decoding, else the plain ``uri`` / ``pts_ns`` sub-columns."""
        return self if self.decode else {"uri": Value("string"), "pts_ns": Value("int64")}


#: The access of a MediaRef column read back from its serialized form (files, Arrow schema metadata): no root,
#: nothing allowed beyond public ``http(s)`` URLs and ``data:`` URIs. Where the data came from is the loader's
#: to say (:func:`hf_mediaref.load_dataset`, :func:`~hf_mediaref.hf.set_media_access`), never the data's.
READ_BACK = MediaAccess(None)


def upgrade_feature(feature: Any) -> Any:
    """``feature`` itself, or a :class:`MediaRefFeature` when it is the marked plain struct that a MediaRef
    column serializes to (``{"uri": Value("string", id=MEDIA_REF_ID), "pts_ns": Value("int64")}``), with the
    access :data:`READ_BACK`; not recursive (:func:`fold_feature` applies it at every level,
    :func:`upgrade_features` rebuilds a whole feature).

    Example:
        ```python
        >>> from datasets import Value
        >>> from hf_mediaref.hf._feature import MEDIA_REF_ID, upgrade_feature
        >>> upgrade_feature({"uri": Value("string", id=MEDIA_REF_ID), "pts_ns": Value("int64")})
        MediaRefFeature(access=MediaAccess(root=None, allow_uris=[]))
        ```
    """
    if type(feature) is not dict or feature.keys() != STORED_KEYS:
        return feature
    uri, pts = feature["uri"], feature["pts_ns"]
    if not (isinstance(uri, Value) and isinstance(pts, Value) and uri.id in _MARKERS):
        return feature
    if uri.dtype != "string" or pts.dtype != "int64":
        return feature
    return MediaRefFeature(decode=_MARKERS[uri.id], access=READ_BACK)


def _encode_dict(value: dict) -> dict[str, Any]:
    uri = value.get("uri")
    pts = value.get("pts_ns")
    if (
        type(uri) is str
        and uri
        and (pts is None or (type(pts) is int and 0 <= pts <= INT64_MAX))
        and value.keys() <= STORED_KEYS
    ):
        return value if len(value) == 2 else {"uri": uri, "pts_ns": pts}  # already encoded: the fast path
    extra = sorted(set(value) - STORED_KEYS)
    if extra:
        reason = f"a media reference dict has keys 'uri' and 'pts_ns' only, got unexpected {extra}"
        raise invalid_ref(reason, uri, pts)
    uri, pts = coerce_ref(uri, pts)
    return {"uri": uri, "pts_ns": pts}


def _is_pil_image(value: Any) -> bool:
    pil = sys.modules.get("PIL.Image")
    return pil is not None and isinstance(value, pil.Image)


# ---------------------------------------------------------------------------------------------- the walker
def fold_feature(
    feature: Any,
    media: Callable[[MediaRefFeature], T],
    other: Callable[[Any], T],
    sequence: Callable[[Any, T], T],
    mapping: Callable[[dict, dict[str, T]], T],
) -> T:
    """Walk a (nested) feature bottom-up, combining what each part gives: the one walker over features.

    Like ``datasets.features.features._visit``, it descends into ``dict`` / ``Features``, ``List``,
    ``LargeList`` and ``[feature]`` (``Sequence`` builds a ``List`` or a dict of them). The marked plain
    struct a MediaRef column serializes to (what plain ``datasets`` reads back: see :func:`upgrade_feature`)
    is a media column too: ``media`` gets a fresh ``MediaRefFeature`` for it, with no access.

    Args:
        feature: a feature type or a ``Features`` mapping.
        media: the result for a ``MediaRefFeature``.
        other: the result for any other leaf (``Value``, ``Image``, ...).
        sequence: the result for a list feature, given the list feature and its item's result.
        mapping: the result for a dict feature, given the dict and its fields' results.

    Returns:
        What the callbacks build for ``feature``.

    Example:
        ```python
        >>> from datasets import List, Value
        >>> from hf_mediaref.hf import MediaRefFeature
        >>> from hf_mediaref.hf._feature import fold_feature
        >>> fold_feature(
        ...     {"clip": List(MediaRefFeature()), "n": Value("int32")},
        ...     media=lambda f: 1, other=lambda f: 0,
        ...     sequence=lambda f, child: child, mapping=lambda f, fields: sum(fields.values()),
        ... )
        1
        ```
    """

    def fold(sub: Any) -> T:
        if isinstance(sub, MediaRefFeature):
            return media(sub)
        if type(sub) is dict and (upgraded := upgrade_feature(sub)) is not sub:
            return media(upgraded)
        if isinstance(sub, dict):
            return mapping(sub, {name: fold(child) for name, child in sub.items()})
        if isinstance(sub, (list, tuple)):
            return sequence(sub, fold(sub[0]))
        if isinstance(sub, (List, LargeList)):
            return sequence(sub, fold(sub.feature))
        return other(sub)

    return fold(feature)


def _rebuilt_sequence(f: Any, child: Any) -> Any:
    """The list feature ``f`` (``[feature]``, ``List``, ``LargeList``) around a rebuilt item ``child``."""
    if isinstance(f, (list, tuple)):
        return [child]
    return List(child, length=f.length) if isinstance(f, List) else LargeList(child)


def upgrade_features(feature: Any) -> Any:
    """``feature`` with every marked plain struct (see :func:`upgrade_feature`) turned into a
    :class:`MediaRefFeature`, at any depth (its ``MediaRefFeature`` objects kept as they are); ``feature``
    itself when it holds no media."""
    if not has_media(feature):
        return feature

    return fold_feature(
        feature,
        media=lambda f: f,
        other=lambda f: f,
        sequence=_rebuilt_sequence,
        mapping=lambda f, fields: type(f)(fields),
    )


def with_access(feature: Any, access: MediaAccess | None, decode: bool | None = None) -> Any:
    """``feature`` rebuilt with a new :class:`MediaRefFeature` reading with ``access`` for each of its media
    columns (marked plain structs included), at any depth, each with ``decode`` (``None``: as it was); the
    objects in ``feature`` are not changed (some derived datasets, such as ``rename_column`` /
    ``select_columns``, share them with their parent)."""
    return fold_feature(
        feature,
        media=lambda f: MediaRefFeature(decode=f.decode if decode is None else decode, access=access),
        other=lambda f: f,
        sequence=_rebuilt_sequence,
        mapping=lambda f, fields: type(f)(fields),
    )


def media_features(feature: Any, *, decoding: bool = False) -> list[MediaRefFeature]:
    """Every ``MediaRefFeature`` inside ``feature`` (only those with ``decode=True`` when ``decoding``)."""
    return fold_feature(
        feature,
        media=lambda f: [f] if f.decode or not decoding else [],
        other=lambda f: [],
        sequence=lambda f, child: child,
        mapping=lambda f, fields: [m for found in fields.values() for m in found],
    )


def has_media(feature: Any, *, decoding: bool = False) -> bool:
    """Whether ``feature`` holds a ``MediaRefFeature`` (directly, in lists or in dicts); with ``decoding``,
    one that decodes (``decode=True``)."""
    return bool(media_features(feature, decoding=decoding))


def ref_columns(features: Any) -> list[str]:
    """The top-level columns of ``features`` (a dataset's ``Features``) that are a ``MediaRefFeature``: the
    frame columns a sampler, a shard plan, a preview or the command line work on (nested refs:
    :func:`has_media`)."""
    return [str(name) for name, feature in features.items() if isinstance(feature, MediaRefFeature)]


def plain_features(feature: Any) -> Any:
    """``feature`` with every ``MediaRefFeature`` replaced by the plain struct ``{"uri": string, "pts_ns":
    int64}``: the features that read the same data without hf_mediaref."""

    return fold_feature(
        feature,
        media=lambda f: {"uri": Value("string"), "pts_ns": Value("int64")},
        other=lambda f: f,
        sequence=_rebuilt_sequence,
        mapping=lambda f, fields: type(f)(fields),
    )


# ---------------------------------------------------------------------------------------------- Arrow data
ArrayFn = Callable[[pa.Array, MediaRefFeature], pa.Array]
_Transform = Callable[[pa.Array], pa.Array]


def _map_list(array: pa.Array, item: _Transform) -> pa.Array:
    """``array`` (list, large list or fixed-size list) with ``item`` applied to the values of its rows."""
    mask = array.is_null() if array.null_count else None
    if pa.types.is_fixed_size_list(array.type):
        size = array.type.list_size
        values = array.values.slice(array.offset * size, len(array) * size)
        return pa.FixedSizeListArray.from_arrays(item(values), size, mask=mask)
    lengths = pc.fill_null(pc.list_value_length(array), 0).to_numpy(zero_copy_only=False)
    large = pa.types.is_large_list(array.type)
    offsets = pa.array(np.concatenate([[0], np.cumsum(lengths)]), pa.int64() if large else pa.int32())
    cls = pa.LargeListArray if large else pa.ListArray
    return cls.from_arrays(offsets, item(array.flatten()), mask=mask)


def _map_struct(array: pa.StructArray, fields: dict[str, _Transform | None]) -> pa.Array:
    """``array`` with each field's transform (if any) applied to that field's child."""
    old = [array.type.field(i) for i in range(array.type.num_fields)]
    # flatten(): the children with the struct's own nulls merged in. Arrow leaves a child's values under a
    # null parent unspecified (datasets 4.0 writes a valid {"uri": "", "pts_ns": 0} there), so field() would
    # hand the leaf function refs of rows that are null.
    parts = array.flatten() if array.null_count else [array.field(i) for i in range(len(old))]
    children = []
    for f, part in zip(old, parts, strict=True):
        transform = fields.get(f.name)
        children.append(part if transform is None else transform(part))
    new = [
        pa.field(f.name, child.type, f.nullable, f.metadata) for f, child in zip(old, children, strict=True)
    ]
    mask = array.is_null() if array.null_count else None
    return pa.StructArray.from_arrays(children, fields=new, mask=mask)


def _array_transform(feature: Any, fn: ArrayFn, decoding: bool) -> _Transform | None:
    """Compile ``feature`` into a function of its Arrow data (``None`` where no media leaf is below)."""

    def media(f: MediaRefFeature) -> _Transform | None:
        return (lambda array: fn(array, f)) if f.decode or not decoding else None

    def sequence(f: Any, item: _Transform | None) -> _Transform | None:
        return None if item is None else (lambda array: _map_list(array, item))

    def mapping(f: dict, fields: dict[str, _Transform | None]) -> _Transform | None:
        if all(t is None for t in fields.values()):
            return None
        return lambda array: _map_struct(array, fields)

    return fold_feature(feature, media=media, other=lambda f: None, sequence=sequence, mapping=mapping)


def map_media_arrays(
    array: pa.Array | pa.ChunkedArray, feature: Any, fn: ArrayFn, *, decoding: bool = False
) -> pa.Array | pa.ChunkedArray:
    """Apply ``fn`` to the Arrow array of every media leaf of a (nested) column and rebuild the lists and
    structs around the results: the one walker over Arrow data of media columns.

    Args:
        array: the column's data (a chunked array is mapped chunk by chunk).
        feature: the column's feature.
        fn: called as ``fn(leaf_array, leaf_feature)`` for each ``struct<uri, pts_ns>`` leaf array (the rows
            of all lists flattened into one array, sliced to the rows present); returns an array of the same
            length (of any type: the rebuilt column takes its type).
        decoding: visit only media leaves with ``decode=True``.

    Returns:
        The rebuilt column (``array`` itself when ``feature`` holds no media leaf to visit).

    Example:
        ```python
        >>> import pyarrow as pa
        >>> from datasets import List
        >>> from hf_mediaref.hf import MediaRefFeature
        >>> from hf_mediaref.hf._feature import map_media_arrays
        >>> column = pa.array([[{"uri": "a.mp4", "pts_ns": 0}], None], pa.list_(MediaRefFeature()()))
        >>> map_media_arrays(column, List(MediaRefFeature()), lambda a, f: a.field("uri")).to_pylist()
        [['a.mp4'], None]
        ```
    """
    transform = _array_transform(feature, fn, decoding)
    if transform is None:
        return array
    if isinstance(array, pa.ChunkedArray):
        if array.num_chunks == 0:
            return array
        return pa.chunked_array([transform(chunk) for chunk in array.chunks])
    return transform(array)
