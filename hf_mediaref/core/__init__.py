"""The value types: :class:`MediaRef` (a pointer to an image or to the video frame on screen at a time) and
:class:`DataURI` (media embedded in an RFC 2397 ``data:`` URI). Immutable, validated, serializable.

Modules (private): ``_media_ref``, ``_data_uri``.
"""

from __future__ import annotations

from ._data_uri import DataURI
from ._media_ref import MediaRef

__all__ = ["DataURI", "MediaRef"]
