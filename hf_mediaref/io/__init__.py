"""URIs and bytes: classify and join URIs, parse ``data:`` URIs, read bytes or open a seekable source (local,
``file://``, ``http(s)://`` with Range reads, ``data:``, fsspec), and encode/decode still images.

The layer below the video engine and the value types; it knows nothing of either. Public: ``MediaAccess``
(also ``hf_mediaref.MediaAccess``) and ``parse_allow_uris``; the other names are the internal API of the
layers above. Modules (private): ``_uri`` (pure string logic), ``_data_uri`` (RFC 2397 parser), ``_http``
(requests: retries, Range-request file, connections checked for public addresses), ``_access``
(``MediaAccess``: the access value and the one resolver), ``_network`` (which addresses are public; the
running call's public-address rule), ``_ranges`` (byte ranges fetched ahead, many requests in flight),
``_hub`` (``hf://`` repo files at the Hub's resolve URLs, read on the HTTP road), ``_remote`` (where a remote
fsspec file is read over HTTP: ``hf://``, ``s3://`` presigned), ``_pinned`` (``gs://`` objects read at a
pinned generation through gcsfs's async API), ``_readahead`` (the seekable file remote reads share:
read-ahead, read hints, ranges fetched ahead first), ``_positioned`` (a raw file keeping its own position),
``_sources`` (where bytes come from), ``_image`` (Pillow), ``_grid`` (``image_grid``: frames as one
labelled picture).
"""

from __future__ import annotations

from ._access import MediaAccess, parse_allow_uris
from ._access import make_access as make_access
from ._access import normalize_root as normalize_root
from ._access import reading_with as reading_with
from ._access import require_access as require_access
from ._access import unresolved_error as unresolved_error
from ._data_uri import DataURIParts as DataURIParts
from ._data_uri import parse_data_uri as parse_data_uri
from ._grid import image_grid as image_grid
from ._http import http_deadline as http_deadline
from ._http import settings as http_settings  # noqa: F401 (internal API, renamed)
from ._image import IMAGE_FORMATS as IMAGE_FORMATS
from ._image import check_pixel_limit as check_pixel_limit
from ._image import decode_image as decode_image
from ._image import encode_image as encode_image
from ._image import load_image as load_image
from ._image import load_image_rgb as load_image_rgb
from ._image import resize_rgb as resize_rgb
from ._image import sniff_mimetype as sniff_mimetype
from ._image import to_rgb as to_rgb
from ._network import is_private_host as is_private_host
from ._network import is_public_address as is_public_address
from ._network import needs_public_address as needs_public_address
from ._positioned import PositionedFile as PositionedFile
from ._ranges import DEFAULT_CONCURRENCY as DEFAULT_IO_CONCURRENCY  # noqa: F401 (internal API, renamed)
from ._ranges import EVERY_OPEN as READ_BY_EVERY_OPEN  # noqa: F401 (internal API, renamed)
from ._ranges import adopt as adopt_ranges  # noqa: F401 (internal API, renamed)
from ._ranges import coalesce as coalesce_ranges  # noqa: F401 (internal API, renamed)
from ._ranges import release as release_ranges  # noqa: F401 (internal API, renamed)
from ._sources import MediaSource as MediaSource
from ._sources import fetches_ahead as fetches_ahead
from ._sources import open_media as open_media
from ._sources import place_file as place_file
from ._sources import prefetch_media as prefetch_ranges  # noqa: F401 (internal API, renamed)
from ._sources import read_bytes as read_bytes
from ._sources import source_version as source_version
from ._sources import uri_exists as uri_exists
from ._sources import walk_folder as walk_folder
from ._uri import UriKind as UriKind
from ._uri import classify_uri as classify_uri
from ._uri import is_absolute_uri as is_absolute_uri
from ._uri import is_remote_uri as is_remote_uri
from ._uri import join_uri as join_uri
from ._uri import local_path as local_path
from ._uri import uri_scheme as uri_scheme

# What a user types: the access value (also hf_mediaref.MediaAccess) and the allow-list parser. Every other
# name above is the package-level internal API of the layers above (they import it from here, never from a
# private module: the import-linter contract "Private modules stay inside their package"); it stays
# importable, but is no promise to users and not in __all__.
__all__ = ["MediaAccess", "parse_allow_uris"]
