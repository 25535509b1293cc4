"""Where a remote fsspec file is read over HTTP, so that it shares the HTTP road (:mod:`._http`): Range files
tied to one version, checked ``206`` answers, deadlines, and byte ranges fetched ahead with many requests in
flight (:mod:`._ranges`) instead of fsspec's file object, which reads one buffer at a time.

:func:`remote_location` asks the filesystem itself, through its public API, and gives a
:class:`RemoteLocation` (the URL, the headers and the query string to send), or None where the file stays on
fsspec's file object. One case per backend:

- ``hf://`` (``HfFileSystem``): the repo file's resolve URL with the token header (:mod:`._hub`).
- ``s3://`` (``s3fs.S3FileSystem``): a presigned GET URL from the filesystem's own ``sign`` (botocore signs it
  on this machine: no request), at the endpoint and with the credentials of its options (``endpoint_url``,
  ``key``/``secret``, a profile...), of the object's version where the path pins one (``?versionId=`` with
  ``version_aware=True``). An ``anon=True`` filesystem signs nothing: the plain URL of the object. Each open
  of a file (each container open) and each fetch ahead signs anew, valid :data:`S3_EXPIRY` seconds; a read
  that the endpoint refuses with ``403`` (a signature that expired while its container stayed open, or
  temporary credentials that were renewed) signs once more and asks again. Stays on fsspec: a filesystem
  with extra request parameters (``requester_pays``, ``s3_additional_kwargs`` such as SSE-C keys: headers a
  presigned URL does not carry), a key with empty, ``.`` or ``..`` segments (a URL would resolve them into
  another key), and a filesystem that cannot sign (no credentials found: fsspec raises what it raises).
- ``gs://``: not over HTTP. ``gcsfs`` gives an object's URL (``url``), but documents no way to get its
  credentials' request headers (``credentials.apply`` is undocumented) and its OAuth tokens expire within the
  hour, so a file kept open would need them renewed; its ``sign`` needs ``google-cloud-storage`` and
  credentials that can sign, which most users' are not. So a ``gs://`` object is read through the filesystem
  itself, at the generation its open saw, its planned ranges fetched ahead through the filesystem's async
  API with many requests in flight (:mod:`._pinned`): gcsfs carries and renews its own credentials.
- every other protocol: fsspec's file object.

Guarantees, as for ``hf://``: the endpoint and the credentials are the user's configuration
(``MediaAccess.storage_options``), never a ref's: a ref names a bucket and a key, which botocore checks and
places in the path of the configured endpoint (or its virtual host), never in the host of another one. So
the data's public-address rule (:mod:`._network`) does not apply to the endpoint (s3fs reads it the same
way): the Range file is opened ``configured``. The signature goes in the query string on the wire only
(:class:`RemoteLocation` ``query``): errors, logs and ``repr`` name the URL without it (an error of the
open names the ref too: :func:`~._sources.open_media`); the secret key never leaves botocore. Ranges fetched
ahead are kept under the URL and a digest of the filesystem's options (:func:`~._ranges.filesystem_token`:
fsspec's token of the filesystem's class and options), the same for every signature of one user's
filesystem, another for other credentials.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
from collections.abc import Callable
from typing import Any

from ._hub import hub_location
from ._ranges import filesystem_token, store_key
from ._uri import uri_scheme

__all__ = ["S3_EXPIRY", "RemoteLocation", "reads_over_http", "remote_location"]

logger = logging.getLogger(__name__)

#: Seconds a presigned ``s3://`` URL is valid: each open signs anew, and a read refused once it expired signs
#: again, so this bounds only how long a leaked URL would work.
S3_EXPIRY = 3600


@dataclasses.dataclass(frozen=True)
class RemoteLocation:
    """Where a remote fsspec file is read over HTTP.

    ``url`` is what messages name (no secret in it). ``headers`` (a token) and ``query`` (a signature) go
    with every request and are never shown; ``key`` is what ranges fetched ahead are kept under
    (:func:`~._ranges.store_key`); ``renew`` gives a fresh ``query`` (a signature that expired)."""

    url: str
    headers: dict[str, str] = dataclasses.field(repr=False)
    query: str | None = dataclasses.field(default=None, repr=False)
    key: str | None = dataclasses.field(default=None, repr=False)
    renew: Callable[[], str] | None = dataclasses.field(default=None, repr=False, compare=False)


def remote_location(uri: str, fs: Any, path: str) -> RemoteLocation | None:
    """Where the file ``path`` of the fsspec filesystem ``fs`` (``uri``'s) is read over HTTP, or None where it
    stays on fsspec's file object (see the module docstring for each protocol).

    Raises:
        FileNotFoundError: an ``hf://`` repo or revision that does not exist.
    """
    scheme = uri_scheme(uri)
    if scheme == "hf":
        hub = hub_location(fs, path)
        return (
            None if hub is None else RemoteLocation(hub.url, hub.headers, key=store_key(hub.url, hub.headers))
        )
    if scheme in ("s3", "s3a"):
        return _s3_location(fs, path)
    return None


def reads_over_http(uri: str) -> bool:
    """Whether files of ``uri``'s protocol may be read over HTTP (:func:`remote_location`), which decides
    whether their byte ranges are planned and fetched ahead."""
    return uri_scheme(uri) in ("hf", "s3", "s3a")


def _s3_location(fs: Any, path: str) -> RemoteLocation | None:
    sign = getattr(fs, "sign", None)
    split = getattr(fs, "split_path", None)
    if (
        sign is None
        or split is None
        or getattr(fs, "req_kw", None)
        or getattr(fs, "s3_additional_kwargs", None)
    ):
        return None  # requester pays, SSE-C keys...: request parameters a presigned URL does not carry
    try:
        bucket, key, version = split(path)
    except Exception as exc:
        logger.debug("s3 path %r not split: %s", path, exc)
        return None
    if not (isinstance(bucket, str) and isinstance(key, str) and bucket and key):
        return None
    if any(part in ("", ".", "..") for part in key.split("/")):  # an HTTP client would resolve them
        return None
    try:
        url, query = _split_signed(sign(path, expiration=S3_EXPIRY))
    except Exception as exc:  # no credentials, an invalid bucket name...: fsspec's file object says it
        logger.debug("s3 file %r not signed (%s): read through fsspec", path, type(exc).__name__)
        return None
    if version and "versionId=" not in url:
        return None  # never read another version than the path pins
    return RemoteLocation(
        url,
        {},
        query=query,
        key=store_key(url, {"reader": filesystem_token(fs)}),
        renew=functools.partial(_resign, sign, path, url),
    )


def _split_signed(signed: str) -> tuple[str, str | None]:
    """A presigned URL as ``(the URL shown: without its signature, its version kept; the rest of its query,
    encoded as it came)``."""
    base, _, query = signed.partition("?")
    kept = [p for p in query.split("&") if p.startswith("versionId=")]
    secret = [p for p in query.split("&") if p and not p.startswith("versionId=")]
    url = base + ("?" + "&".join(kept) if kept else "")
    return url, "&".join(secret) or None


def _resign(sign: Callable[..., str], path: str, url: str) -> str:
    """A fresh signature for the file ``url`` (the same URL: the filesystem signs the same object)."""
    again, query = _split_signed(sign(path, expiration=S3_EXPIRY))
    if again != url:
        raise RuntimeError("the filesystem signed another URL than the file's")
    return query or ""
