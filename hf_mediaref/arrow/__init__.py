"""The Arrow layer of media references, without ``datasets``: the storage type and casts to it, references
from a ``struct<uri, pts_ns>`` array, grouping rows by URI, media roots, the one resolver of relative
URIs and the trust boundary of roots.

Imports pyarrow, numpy and the lower layers of hf_mediaref only, never ``datasets``, so that adapters for
other Arrow-based tools (Ray Data, Daft, Polars...) can build on it; :mod:`hf_mediaref.hf` builds the
``datasets`` integration on it. Modules (private): ``_storage``, ``_refs``, ``_grouping``, ``_roots``,
``_trust``.
"""

from __future__ import annotations

from ._grouping import UriGroups, group_by_uri, video_blocks
from ._refs import RefArrays, ref_arrays, refs_from_storage
from ._roots import media_root, normalize_root, resolve_ref, resolve_uri, unresolved_error
from ._storage import STORAGE_TYPE, cast_to_storage
from ._trust import ALLOW_URIS_ENV, MediaRoot, parse_allow_uris, widen_root

__all__ = [
    "ALLOW_URIS_ENV",
    "STORAGE_TYPE",
    "MediaRoot",
    "RefArrays",
    "UriGroups",
    "cast_to_storage",
    "group_by_uri",
    "media_root",
    "normalize_root",
    "parse_allow_uris",
    "ref_arrays",
    "refs_from_storage",
    "resolve_ref",
    "resolve_uri",
    "unresolved_error",
    "video_blocks",
    "widen_root",
]
