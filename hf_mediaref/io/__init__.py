"""URIs and bytes: classify and join URIs, parse ``data:`` URIs, read bytes or open a seekable source (local,
``file://``, ``http(s)://`` with Range reads, ``data:``, fsspec), and encode/decode still images.

The layer below the video engine and the value types; it knows nothing of either. Modules (private): ``_uri``
(pure string logic), ``_data_uri`` (RFC 2397 parser), ``_http`` (requests: retries, Range-request file,
connections checked for public addresses), ``_access`` (``MediaAccess``: the access value and the one
resolver), ``_network`` (which addresses are public; the running call's public-address rule), ``_sources``
(where bytes come from), ``_image`` (Pillow).
"""

from __future__ import annotations

from ._access import (
    MediaAccess,
    make_access,
    normalize_root,
    parse_allow_uris,
    reading_with,
    unresolved_error,
)
from ._data_uri import DataURIParts, parse_data_uri
from ._http import http_deadline
from ._http import settings as http_settings
from ._image import (
    IMAGE_FORMATS,
    check_pixel_limit,
    decode_image,
    encode_image,
    load_image,
    load_image_rgb,
    resize_rgb,
    sniff_mimetype,
    to_rgb,
)
from ._network import is_private_host, is_public_address
from ._sources import MediaSource, open_media, read_bytes, source_version, uri_exists
from ._uri import UriKind, classify_uri, is_absolute_uri, is_remote_uri, join_uri, local_path, uri_scheme

__all__ = [
    "IMAGE_FORMATS",
    "DataURIParts",
    "MediaAccess",
    "MediaSource",
    "UriKind",
    "check_pixel_limit",
    "classify_uri",
    "decode_image",
    "encode_image",
    "http_deadline",
    "http_settings",
    "is_absolute_uri",
    "is_private_host",
    "is_public_address",
    "is_remote_uri",
    "join_uri",
    "load_image",
    "load_image_rgb",
    "local_path",
    "make_access",
    "normalize_root",
    "open_media",
    "parse_allow_uris",
    "parse_data_uri",
    "read_bytes",
    "reading_with",
    "resize_rgb",
    "sniff_mimetype",
    "source_version",
    "to_rgb",
    "unresolved_error",
    "uri_exists",
    "uri_scheme",
]
