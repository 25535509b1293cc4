"""RFC 2397 ``data:`` URIs: the parser (strict, with typed errors that never print a whole payload)."""

from __future__ import annotations

import base64
import binascii
from typing import NamedTuple
from urllib.parse import unquote, unquote_to_bytes

from ..errors import InvalidDataURIError, describe_uri

__all__ = ["DataURIParts", "parse_data_uri"]


class DataURIParts(NamedTuple):
    """The parts of a data URI: ``mimetype`` (lower-cased), ``parameters``, ``is_base64`` and the decoded
    ``data``."""

    mimetype: str
    parameters: dict[str, str]
    is_base64: bool
    data: bytes


def parse_data_uri(uri: str) -> DataURIParts:
    """Split an RFC 2397 ``data:`` URI into its media type, parameters and decoded payload.

    Args:
        uri: ``data:[<mediatype>][;<param>=<value>]*[;base64],<data>``. A missing media type means
            ``text/plain;charset=US-ASCII``. Base64 payloads may be percent-encoded, unpadded and wrapped.

    Returns:
        A :class:`DataURIParts`.

    Raises:
        InvalidDataURIError: for a wrong scheme, no comma, a malformed media type or parameter, or bad base64;
            the message shows only the first characters of the URI.
    """
    if uri[:5].lower() != "data:":
        raise InvalidDataURIError(f"not a data: URI (wrong scheme): {describe_uri(uri, 48)}", uri=uri)
    comma = uri.find(",")
    if comma < 0:
        raise InvalidDataURIError(
            f"malformed data URI (no comma before the payload): {describe_uri(uri, 48)}", uri=uri
        )
    tokens = uri[5:comma].split(";")
    is_base64 = len(tokens) > 0 and tokens[-1].strip().lower() == "base64"
    if is_base64:
        tokens.pop()
    mediatype = tokens[0].strip().lower() if tokens else ""
    params: dict[str, str] = {}
    for token in tokens[1:]:
        key, sep, value = token.partition("=")
        if not sep or not key.strip():
            raise InvalidDataURIError(
                f"malformed media-type parameter {token!r} in {describe_uri(uri, 48)}", uri=uri
            )
        params[key.strip().lower()] = unquote(value.strip())
    if not mediatype:
        mediatype = "text/plain"
        params.setdefault("charset", "US-ASCII")
    elif "/" not in mediatype:
        raise InvalidDataURIError(f"malformed media type {mediatype!r} in {describe_uri(uri, 48)}", uri=uri)
    payload = uri[comma + 1 :]
    if is_base64:
        if "%" in payload:
            payload = unquote(payload)
        payload = "".join(payload.split())
        payload += "=" * (-len(payload) % 4)
        try:
            data = base64.b64decode(payload, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise InvalidDataURIError(
                f"bad base64 payload ({exc}) in {describe_uri(uri, 48)}", uri=uri
            ) from exc
    else:
        data = unquote_to_bytes(payload)
    return DataURIParts(mediatype, params, is_base64, data)
