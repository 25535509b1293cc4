"""The Arrow layer of media references, without ``datasets``: the storage type and casts to it, references
from a ``struct<uri, pts_ns>`` array, grouping rows by URI, resolving stored URIs against a
:class:`~hf_mediaref.MediaAccess`.

Imports pyarrow, numpy and the lower layers of hf_mediaref only, never ``datasets``, so that adapters for
other Arrow-based tools (Ray Data, Daft, Polars...) can build on it; :mod:`hf_mediaref.hf` builds the
``datasets`` integration on it. Modules (private): ``_storage``, ``_columns``, ``_refs``, ``_grouping``,
``_roots``.
"""

from __future__ import annotations

import warnings as _warnings
from typing import Any as _Any

from ..io import MediaAccess as MediaAccess
from ..io import normalize_root as normalize_root
from ..io import parse_allow_uris as parse_allow_uris
from ..io import unresolved_error as unresolved_error
from ._columns import as_ref as as_ref
from ._columns import holds_refs as holds_refs
from ._columns import is_ref_type as is_ref_type
from ._columns import map_refs as map_refs
from ._grouping import UriGroups, group_by_uri, video_blocks
from ._grouping import as_array as as_array
from ._refs import RefArrays, ref_arrays, refs_from_storage
from ._roots import media_root as media_root
from ._roots import resolve_ref, resolve_uri
from ._storage import STORAGE_TYPE, cast_to_storage
from ._storage import STORED_KEYS as STORED_KEYS
from ._storage import map_uris as map_uris

# Package-level internal API (as_array, STORED_KEYS, map_uris; what a ref is: as_ref, is_ref_type, holds_refs,
# map_refs): the layers above import it from here, never from a private module (the import-linter contract
# "Private modules stay inside their package"); not in __all__. Also importable, not in __all__: the io names
# earlier versions showed here (MediaAccess and parse_allow_uris are public at the top level; normalize_root,
# unresolved_error) and media_root (deprecated, warns when called).
__all__ = [
    "STORAGE_TYPE",
    "RefArrays",
    "UriGroups",
    "cast_to_storage",
    "group_by_uri",
    "ref_arrays",
    "refs_from_storage",
    "resolve_ref",
    "resolve_uri",
    "video_blocks",
]


def __getattr__(name: str) -> _Any:
    """Names of earlier versions: ``MediaRoot`` (now :class:`~hf_mediaref.MediaAccess`), ``widen_root``
    (``access.allowing``)."""
    if name == "MediaRoot":
        _warnings.warn("hf_mediaref.arrow.MediaRoot is now hf_mediaref.MediaAccess", DeprecationWarning, 2)
        return MediaAccess
    if name == "widen_root":
        _warnings.warn("widen_root(access, allow) is now access.allowing(allow)", DeprecationWarning, 2)
        return lambda access, allow: access.allowing(allow) if isinstance(access, MediaAccess) else access
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
