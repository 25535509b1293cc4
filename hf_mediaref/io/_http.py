"""HTTP(S) reads through ``requests``: total deadlines, bounded retries, checked Range requests and a seekable
Range-request file that stays tied to the version it was opened at.

Settings (read from the environment at import, patchable on :data:`settings`, exported as
``hf_mediaref.io.http_settings``):

- ``HF_MEDIAREF_HTTP_TIMEOUT`` (``settings.timeout``, seconds, default 30): the longest wait for any one
  socket operation (connecting, the response headers, one read of the body).
- ``HF_MEDIAREF_HTTP_DEADLINE`` (``settings.deadline``, seconds, default 120): the total time one request may
  take: a HEAD, a ranged GET or a whole GET, with its body download, its retries, its back-off pauses and
  the requests that complete a short ``206``. A server that trickles bytes fails with
  :class:`~hf_mediaref.errors.RemoteAccessError` ("... did not finish within N s") after about that long.
- ``HF_MEDIAREF_HTTP_RETRIES`` (``settings.retries``, default 3): how many times a failed request is tried
  again: connection errors, ``429`` and ``5xx`` answers (after ``Retry-After`` when the server sends one,
  else an exponential back-off from ``settings.backoff``, 0.25 s), and a connection dropped mid-body (the
  next request resumes from the byte reached).
- ``HF_MEDIAREF_HTTP_MAX_REQUESTS`` (``settings.max_requests``, default 64): the most requests one read
  (one buffer fill of a Range file) may take when the server answers with shorter ``206`` s than asked;
  more fails with RemoteAccessError instead of turning a keyframe block into thousands of requests.
- ``HF_MEDIAREF_HTTP_MAX_REDIRECTS`` (``settings.max_redirects``, default 10): a longer redirect chain (a
  loop) fails with RemoteAccessError.
- ``HF_MEDIAREF_HTTP_READAHEAD`` (``settings.readahead``, bytes, default 4 MiB): the largest read-ahead of
  a Range file; ``HF_MEDIAREF_HTTP_MIN_READAHEAD`` (``settings.min_readahead``, default 32 KiB): its
  read-ahead after a seek; ``HF_MEDIAREF_HTTP_SMALL_READ`` (``settings.small_read``, default 4 KiB): its
  first read of the file's head (the container's header, before anything is known about the file) and
  its read just past a byte range announced by the decoder (see :meth:`_RangeReader.announce`).

A whole operation above single requests (a batch decode) is bounded with :func:`http_deadline`::

    with hf_mediaref.io.http_deadline(30):
        ...  # every HTTP request in here ends by then: each uses min(its own deadline, what is left)

Passing that operation deadline (``timeout=`` of a decode is one) raises
:class:`~hf_mediaref.errors.DecodeTimeoutError` (a :class:`TimeoutError`) wherever it fires: before a
request, in a back-off, or in a read that stalls until it (its socket timeout is cut to what is left). A
request's own limits (``settings.timeout``, ``settings.deadline``) still raise RemoteAccessError.

The deadline lives in a :class:`contextvars.ContextVar`, so it follows the code into threads started with a
copy of the context (:func:`contextvars.copy_context`) and not into others.

What is checked, so that wrong bytes never reach a decoder: every ``206`` must carry a ``Content-Range``
that starts where the request started and ends no later than it asked, and a body of exactly that length
(an empty or longer ``206`` is an error); a ``200`` to a ranged request from a server that advertised
``Accept-Ranges: bytes`` is an error; a body shorter than its ``Content-Length`` is an incomplete read (the
rest is requested again, at most ``retries`` times). A Range file remembers the ETag, Last-Modified and
size it was opened at, sends ``If-Range`` with a strong ETag, and compares every later response with them:
a difference raises :class:`~hf_mediaref.errors.RemoteChangedError`. Errors: ``401``/``403`` raise
RemoteAccessError saying access was refused, ``404``/``410`` raise
:class:`~hf_mediaref.errors.MediaNotFoundError`; all messages name the URL. Servers that refuse HEAD
(``403``/``405``, as presigned URLs that sign only GET do) are probed with a ``Range: bytes=0-0`` GET.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import dataclasses
import email.utils
import io
import logging
import os
import re
import threading
import time
from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any

import requests
import urllib3
import urllib3.connection
from requests.adapters import HTTPAdapter

from .._deadline import current as current_deadline
from .._deadline import deadline
from ..errors import (
    DecodeTimeoutError,
    MediaNotFoundError,
    RemoteAccessError,
    RemoteChangedError,
    UntrustedRefError,
    describe_uri,
)
from . import _ranges
from ._network import is_public_address, needs_public_address, public_address_rule
from ._readahead import AdaptiveRangeFile

logger = logging.getLogger(__name__)

__all__ = ["http_deadline", "http_exists", "http_get", "open_http", "settings"]


@dataclasses.dataclass
class HttpSettings:
    """HTTP settings; see the module docstring for what each one bounds."""

    timeout: float = float(os.environ.get("HF_MEDIAREF_HTTP_TIMEOUT", 30))
    deadline: float = float(os.environ.get("HF_MEDIAREF_HTTP_DEADLINE", 120))
    retries: int = int(os.environ.get("HF_MEDIAREF_HTTP_RETRIES", 3))
    backoff: float = 0.25
    max_requests: int = int(os.environ.get("HF_MEDIAREF_HTTP_MAX_REQUESTS", 64))
    max_redirects: int = int(os.environ.get("HF_MEDIAREF_HTTP_MAX_REDIRECTS", 10))
    readahead: int = int(os.environ.get("HF_MEDIAREF_HTTP_READAHEAD", 4 << 20))
    min_readahead: int = int(os.environ.get("HF_MEDIAREF_HTTP_MIN_READAHEAD", 32 << 10))
    small_read: int = int(os.environ.get("HF_MEDIAREF_HTTP_SMALL_READ", 4 << 10))


settings = HttpSettings()
_local = threading.local()

_RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
_HEAD_REFUSED = (400, 403, 405, 501)  # answers of servers (presigned URLs) that sign or allow only GET
_BASE_HEADERS = {"Accept-Encoding": "identity"}  # byte ranges must count bytes of the file itself
_CHUNK = 256 << 10
_CONTENT_RANGE = re.compile(r"\s*bytes\s+(\d+)-(\d+)/(\d+|\*)\s*$")
# What a broken or stalled connection raises while a body is read (urllib3 wraps socket errors).
_BODY_ERRORS = (urllib3.exceptions.HTTPError, requests.exceptions.RequestException, OSError)


#: Bound every HTTP request made inside a ``with`` block (and in threads running a copy of its context) to end
#: within the given seconds: each request uses the earlier of its own deadline and this one.
http_deadline = deadline


class _Deadline:
    """When one logical request (with its retries and continuations) must end."""

    def __init__(self) -> None:
        now = time.monotonic()
        self.end, self.source = now + settings.deadline, "HF_MEDIAREF_HTTP_DEADLINE"
        outer = current_deadline()
        if outer is not None and outer < self.end:
            self.end, self.source = outer, "http_deadline"
        self.seconds = max(0.0, self.end - now)

    def remaining(self) -> float:
        return self.end - time.monotonic()

    def timeout(self) -> float:
        """The socket timeout for the next operation: ``settings.timeout``, or less near the deadline."""
        return max(0.001, min(settings.timeout, self.remaining()))

    @property
    def is_operation(self) -> bool:
        """Whether this is the running operation's deadline (:mod:`hf_mediaref._deadline`), not the
        request's own."""
        return self.source == "http_deadline"

    def capped(self) -> bool:
        """Whether the next socket timeout is cut short by the operation's deadline (a wait that times out
        then has reached that deadline, whatever the clock says a moment later)."""
        return self.is_operation and self.remaining() < settings.timeout

    def error(self, what: str, url: str) -> RemoteAccessError | DecodeTimeoutError:
        """The error of a passed deadline: :class:`~hf_mediaref.errors.DecodeTimeoutError` for the
        operation's (``timeout=``, :func:`http_deadline`), :class:`~hf_mediaref.errors.RemoteAccessError`
        for the request's own (``HF_MEDIAREF_HTTP_DEADLINE``)."""
        limit = f"within {self.seconds:.3g} s (the {self.source} limit)"
        message = f"{what} {describe_uri(url)} did not finish {limit}"
        if self.is_operation:
            return DecodeTimeoutError(f"{message}: the operation's timeout passed", uri=url)
        return RemoteAccessError(message, uri=url)

    def check(self, what: str, url: str) -> None:
        if self.remaining() <= 0:
            raise self.error(what, url)

    def pause(self, seconds: float, what: str, url: str) -> None:
        """Sleep ``seconds`` (a back-off), but not past the deadline."""
        time.sleep(max(0.0, min(seconds, self.remaining())))
        self.check(what, url)


class _NonPublicAddress(ValueError):
    """Raised inside urllib3 when a guarded connection reached a non-public address (a ValueError, so that
    neither urllib3 nor requests retries or wraps it)."""

    def __init__(self, host: str, address: str):
        super().__init__(f"{host} connected to the non-public address {address}")
        self.host, self.address = host, address


def _check_peer(sock: Any, host: str) -> Any:
    address = sock.getpeername()[0]
    if not is_public_address(address):
        sock.close()
        raise _NonPublicAddress(host, address)
    return sock


class _PublicHTTPConnection(urllib3.connection.HTTPConnection):
    def _new_conn(self) -> Any:
        return _check_peer(super()._new_conn(), self.host)


class _PublicHTTPSConnection(urllib3.connection.HTTPSConnection):
    def _new_conn(self) -> Any:
        return _check_peer(super()._new_conn(), self.host)


class _PublicHTTPPool(urllib3.HTTPConnectionPool):
    ConnectionCls = _PublicHTTPConnection


class _PublicHTTPSPool(urllib3.HTTPSConnectionPool):
    ConnectionCls = _PublicHTTPSConnection


class _PublicOnlyAdapter(HTTPAdapter):
    """An adapter whose every new connection (redirects included) must have reached a public address: the
    socket's peer is checked after connecting, so a DNS answer cannot change between check and use."""

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = {"http": _PublicHTTPPool, "https": _PublicHTTPSPool}


def _session(public_only: bool = False) -> requests.Session:
    """One session per thread and process (sessions are not fork- or thread-safe); retries are ours.

    ``public_only``: the session for URLs named by untrusted data (:mod:`._network`): its connections must
    reach public addresses, and it ignores the environment's proxies and ``.netrc`` credentials (a proxy
    would hide the address reached; credentials are not handed to hosts a dataset picked)."""
    if getattr(_local, "pid", None) != os.getpid():
        _local.sessions, _local.pid = {}, os.getpid()
    sess = _local.sessions.get(public_only)
    if sess is None:
        sess = requests.Session()
        adapter = _PublicOnlyAdapter(max_retries=0) if public_only else HTTPAdapter(max_retries=0)
        sess.mount("http://", adapter)
        sess.mount("https://", adapter)
        if public_only:
            sess.trust_env = False
            sess.verify = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE") or True
        _local.sessions[public_only] = sess
    sess.max_redirects = settings.max_redirects
    return sess


def _backoff(attempt: int) -> float:
    """The pause before retry ``attempt + 1``: none before the first (as urllib3), then 1, 2, 4... x
    backoff."""
    return 0.0 if attempt <= 0 else settings.backoff * (2 ** (attempt - 1))


def _retry_after(resp: requests.Response) -> float | None:
    """The seconds a ``Retry-After`` header asks for (a number or an HTTP date), or None."""
    value = (resp.headers.get("Retry-After") or "").strip()
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return max(0.0, (when - datetime.now(timezone.utc)).total_seconds())


def _status_error(resp: requests.Response, url: str, attempts: int) -> Exception:
    code, reason, where = resp.status_code, resp.reason, describe_uri(url)
    if code in (404, 410):
        return MediaNotFoundError(f"HTTP {code}: no media at {where}", uri=url)
    if code == 401:
        return RemoteAccessError(
            f"access refused (HTTP 401 {reason}) for {where}: the server wants credentials; a token may be "
            f"needed",
            uri=url,
        )
    if code == 403:
        return RemoteAccessError(f"access refused (HTTP 403 {reason}) for {where}", uri=url)
    tries = f" (after {attempts} attempts)" if attempts > 1 else ""
    return RemoteAccessError(f"HTTP {code} {reason} for {where}{tries}", uri=url)


def _request(
    method: str,
    url: str,
    deadline: _Deadline,
    headers: dict[str, str] | None = None,
    passthrough: tuple[int, ...] = (),
    what: str | None = None,
    query: str | None = None,
) -> requests.Response:
    """Send one request (following redirects) and return the streaming response, its body unread.

    Connection errors, timeouts and ``429``/``5xx`` answers are retried (``settings.retries`` times, with
    back-off or ``Retry-After``) within ``deadline``. Statuses in ``passthrough`` are returned, not raised;
    ``what`` starts the message of a passed deadline (default: "GET of"). ``query``: an encoded query string
    added to ``url`` on the wire only (a presigned URL's signature, :mod:`._remote`): messages name ``url``.

    Raises:
        MediaNotFoundError: HTTP 404 or 410.
        RemoteAccessError: any other failure, the deadline or a redirect loop.
    """
    what = what or f"{method} of"
    attempt = 0
    while True:
        deadline.check(what, url)
        capped = deadline.capped()
        try:
            resp = _session(needs_public_address(url)).request(
                method,
                url,
                headers={**_BASE_HEADERS, **(headers or {})},
                params=query or None,
                timeout=deadline.timeout(),
                stream=True,
                allow_redirects=True,
            )
        except _NonPublicAddress as exc:
            raise UntrustedRefError(
                f"refused to read {describe_uri(url)}: {exc} (the URL comes from a dataset's data, which may "
                "reach public addresses only; allow it with allow_uris=[...] on its MediaAccess)",
                uri=url,
            ) from None
        except requests.exceptions.TooManyRedirects as exc:
            raise RemoteAccessError(
                f"redirect loop: {describe_uri(url)} redirected more than {settings.max_redirects} times",
                uri=url,
            ) from exc
        except (requests.exceptions.ConnectionError, requests.exceptions.Timeout) as exc:
            if isinstance(exc, requests.exceptions.Timeout) and capped:
                raise deadline.error(what, url) from exc
            deadline.check(what, url)
            if attempt >= settings.retries:
                raise RemoteAccessError(
                    f"cannot read {describe_uri(url)}: {type(exc).__name__}: {exc}", uri=url
                ) from exc
            deadline.pause(_backoff(attempt), what, url)
            attempt += 1
            continue
        except requests.exceptions.RequestException as exc:
            raise RemoteAccessError(
                f"cannot read {describe_uri(url)}: {type(exc).__name__}: {exc}", uri=url
            ) from exc
        code = resp.status_code
        if code < 400 or code in passthrough:
            return resp
        resp.close()
        if code in _RETRY_STATUSES and attempt < settings.retries:
            asked = _retry_after(resp)
            delay = max(_backoff(attempt), asked or 0.0)
            if delay >= deadline.remaining():
                raise RemoteAccessError(
                    f"HTTP {code} {resp.reason} for {describe_uri(url)}; retrying after {delay:.3g} s would "
                    f"pass the deadline ({deadline.seconds:.3g} s, the {deadline.source} limit)",
                    uri=url,
                )
            logger.info("HTTP %s for %s; retrying in %.3g s", code, describe_uri(url), delay)
            deadline.pause(delay, what, url)
            attempt += 1
            continue
        raise _status_error(resp, url, attempt + 1)


class _Dropped(Exception):
    """The connection broke or stalled mid-body; ``data`` holds the bytes that arrived before."""

    def __init__(self, data: bytes, cause: BaseException):
        super().__init__(f"{type(cause).__name__}: {cause}")
        self.data, self.cause = data, cause


def _timed_out(exc: BaseException) -> bool:
    """Whether a read failed by its socket timeout (urllib3 and requests wrap :class:`TimeoutError`)."""
    seen: set[int] = set()
    cause: BaseException | None = exc
    while cause is not None and id(cause) not in seen:
        if isinstance(cause, (TimeoutError, urllib3.exceptions.TimeoutError, requests.exceptions.Timeout)):
            return True
        seen.add(id(cause))
        cause = cause.__cause__ or cause.__context__
    return False


def _set_read_timeout(resp: requests.Response, seconds: float) -> None:
    sock = getattr(getattr(resp.raw, "connection", None), "sock", None)
    if sock is not None:
        try:
            sock.settimeout(seconds)
        except OSError:
            pass


def _read_body(
    resp: requests.Response, url: str, deadline: _Deadline, limit: int | None, what: str = "download of"
) -> bytes:
    """Read the body in chunks as they arrive, checking the clock between them; the connection is released
    for reuse when the body was read whole, else closed.

    Args:
        limit: stop once more than this many bytes arrived (the caller reports a body longer than declared).
        what: the start of the deadline message ("download of", "reading bytes a-b of").

    Raises:
        _Dropped: the connection broke, ended short of ``Content-Length`` or stalled for ``settings.timeout``.
        RemoteAccessError: the deadline passed.
    """
    chunks: list[bytes] = []
    got = 0
    complete = False
    try:
        while True:
            if deadline.remaining() <= 0:
                break
            capped = deadline.capped()
            _set_read_timeout(resp, deadline.timeout())
            try:
                chunk = resp.raw.read1(_CHUNK)
            except _BODY_ERRORS as exc:
                if deadline.remaining() <= 0 or (capped and _timed_out(exc)):
                    break
                raise _Dropped(b"".join(chunks), exc) from exc
            if not chunk:
                complete = True
                break
            chunks.append(chunk)
            got += len(chunk)
            if limit is not None and got > limit:
                break
    finally:
        if complete:
            resp.raw.release_conn()
        else:
            resp.close()
    if not complete and (limit is None or got <= limit):
        raise deadline.error(what, url)
    return b"".join(chunks)


@dataclasses.dataclass
class _Validators:
    """What identifies one version of a remote file: its ETag, Last-Modified and size."""

    etag: str | None
    last_modified: str | None
    size: int | None

    @classmethod
    def of(cls, resp: requests.Response) -> _Validators:
        """The validators of a response: the size from ``Content-Range`` for a 206, else ``Content-Length``
        (of a HEAD or a 200)."""
        size: int | None = None
        if resp.status_code == 206:
            m = _CONTENT_RANGE.match(resp.headers.get("Content-Range", ""))
            if m and m.group(3) != "*":
                size = int(m.group(3))
        else:
            size = _int(resp.headers.get("Content-Length"))
        return cls(resp.headers.get("ETag"), resp.headers.get("Last-Modified"), size)

    def strong_etag(self) -> str | None:
        return self.etag if self.etag and not self.etag.startswith("W/") else None

    def differs(self, other: _Validators) -> bool:
        """Whether ``other`` describes another version (only what both responses say is compared)."""

        def norm(etag: str) -> str:
            return etag[2:] if etag.startswith("W/") else etag

        return bool(
            (self.etag and other.etag and norm(self.etag) != norm(other.etag))
            or (self.last_modified and other.last_modified and self.last_modified != other.last_modified)
            or (self.size is not None and other.size is not None and self.size != other.size)
        )

    def __str__(self) -> str:
        parts = [f"ETag {self.etag}" if self.etag else "", f"Last-Modified {self.last_modified}"]
        parts = [p for p in parts if p and not p.endswith("None")]
        parts.append(f"{self.size} bytes" if self.size is not None else "size unknown")
        return ", ".join(parts)


def _int(value: str | None) -> int | None:
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


def _changed(url: str, opened: _Validators, now: _Validators) -> RemoteChangedError:
    return RemoteChangedError(
        f"{describe_uri(url)} changed while it was read: opened at ({opened}), the server now sends ({now})",
        uri=url,
    )


def _download(
    url: str, opened: _Validators | None = None, sent: dict[str, str] | None = None, query: str | None = None
) -> bytes:
    """GET ``url`` whole within one deadline; a dropped connection resumes with a Range request from the byte
    reached when the server advertises ranges (else starts over), at most ``settings.retries`` times.

    Args:
        opened: the version a Range file was opened at; a response of another version raises.
        sent: headers sent with every request (a Hub token for its endpoint: see :mod:`._hub`).
        query: added to ``url`` on the wire only (a signature: see :func:`_request`).

    Raises:
        RemoteChangedError: the file changed (against ``opened``, or between the parts of a resumed read).
        RemoteAccessError, MediaNotFoundError: as :func:`_request`; an incomplete read past the retries.
    """
    deadline = _Deadline()
    parts: list[bytes] = []
    got = drops = 0
    first: _Validators | None = None
    resumable = False
    while True:
        resuming = first is not None and got > 0
        headers: dict[str, str] = dict(sent or {})
        if resuming:
            assert first is not None and first.size is not None
            headers["Range"] = f"bytes={got}-{first.size - 1}"
            if first.strong_etag():
                headers["If-Range"] = first.strong_etag() or ""
        resp = _request("GET", url, deadline, headers=headers, what="download of", query=query)
        try:
            now = _Validators.of(resp)
            if opened is not None and opened.differs(now):
                raise _changed(url, opened, now)
            if resuming:
                assert first is not None
                if first.differs(now):
                    raise _changed(url, first, now)
                if resp.status_code == 206:
                    _check_content_range(resp, url, got, (first.size or 0) - 1)
                else:  # a whole answer: start over with it
                    parts, got = [], 0
            else:
                first = now
                resumable = resp.headers.get("Accept-Ranges", "").lower() == "bytes" and now.size is not None
            expected = None if first.size is None else first.size - got
            body = _read_body(resp, url, deadline, limit=expected)
        except _Dropped as drop:
            parts.append(drop.data)
            got += len(drop.data)
            drops += 1
            if drops > settings.retries:
                total = "?" if first is None or first.size is None else f"{first.size:,}"
                raise RemoteAccessError(
                    f"incomplete read of {describe_uri(url)}: the connection dropped or stalled {drops} "
                    f"times; got {got:,} of {total} bytes (last: {drop})",
                    uri=url,
                ) from drop.cause
            if not resumable:
                parts, got = [], 0
            logger.info("%s: connection dropped at byte %d (%s); retrying", describe_uri(url), got, drop)
            deadline.pause(_backoff(drops - 1), "download of", url)
            continue
        except BaseException:
            resp.close()
            raise
        parts.append(body)
        got += len(body)
        if expected is not None and len(body) != expected:
            raise RemoteAccessError(
                f"{describe_uri(url)} sent {got:,} bytes but declared {first.size:,}", uri=url
            )
        return b"".join(parts)


def _check_content_range(resp: requests.Response, url: str, start: int, end: int) -> tuple[int, int]:
    """Check that a 206 answers ``bytes=start-end``: a ``Content-Range`` that starts at ``start`` and ends no
    later than ``end``, and a ``Content-Length`` (when sent) of that many bytes. Returns the range served.

    Raises:
        RemoteAccessError: the answer is for other bytes, empty or longer than asked.
    """
    where = describe_uri(url)
    header = resp.headers.get("Content-Range")
    m = _CONTENT_RANGE.match(header or "")
    if m is None:
        raise RemoteAccessError(
            f"{where} answered a request for bytes {start}-{end} with 206 and Content-Range {header!r}, "
            f"which names no byte range",
            uri=url,
        )
    first, last = int(m.group(1)), int(m.group(2))
    if first != start or last > end or last < first:
        raise RemoteAccessError(
            f"{where}: server returned bytes {first}-{last} for a request of {start}-{end}", uri=url
        )
    length = _int(resp.headers.get("Content-Length"))
    if length == 0:
        raise RemoteAccessError(
            f"{where}: server returned an empty 206 (no bytes) for a request of {start}-{end}", uri=url
        )
    if length is not None and length != last - first + 1:
        raise RemoteAccessError(
            f"{where}: server returned {length} bytes in a 206 for bytes {first}-{last} (a request of "
            f"{start}-{end})",
            uri=url,
        )
    return first, last


@dataclasses.dataclass
class _Probe:
    validators: _Validators
    ranges: bool  # the server serves byte ranges
    length: str | None  # the size as the server wrote it (part of the version string)


def _probe(
    url: str,
    deadline: _Deadline,
    head_only: bool = False,
    sent: dict[str, str] | None = None,
    query: str | None = None,
) -> _Probe:
    """HEAD ``url``; where HEAD is refused (403/405, presigned URLs), a ``Range: bytes=0-0`` GET. ``sent``:
    headers sent with each request; ``query``: added to ``url`` on the wire (:func:`_request`)."""
    head = _request("HEAD", url, deadline, headers=sent, passthrough=_HEAD_REFUSED, query=query)
    _ = head.content  # no body: read, the connection goes back to the pool for the next request
    head.close()
    if head.status_code < 400:
        v = _Validators.of(head)
        ranges = head.headers.get("Accept-Ranges", "").lower() == "bytes"
        return _Probe(v, ranges, head.headers.get("Content-Length"))
    logger.info("HEAD %s refused (HTTP %s); probing with a ranged GET", describe_uri(url), head.status_code)
    resp = _request("GET", url, deadline, headers={**(sent or {}), "Range": "bytes=0-0"}, query=query)
    v = _Validators.of(resp)
    if resp.status_code != 206 or head_only:
        resp.close()
        return _Probe(v, False, None if v.size is None else str(v.size))
    try:
        _check_content_range(resp, url, 0, 0)
        _read_body(resp, url, deadline, limit=1)
    except _Dropped:
        pass  # the size and version are known; the byte itself is not needed
    except BaseException:
        resp.close()
        raise
    return _Probe(v, v.size is not None, None if v.size is None else str(v.size))


class _NotRanged(Exception):
    """A ranged GET was not answered with usable partial content (a whole ``200``, a ``416``, a wrong
    ``Content-Range``, a body that broke off before its first byte): the caller takes its careful road."""


def _get_range(
    url: str,
    start: int,
    end: int,
    deadline: _Deadline,
    opened: _Validators | None = None,
    sent: dict[str, str] | None = None,
    query: str | None = None,
) -> tuple[bytes, _Validators]:
    """One ranged GET of bytes ``start``-``end`` (inclusive): the bytes it served from ``start`` (fewer than
    asked where the server sends a shorter ``206`` or the connection broke mid-body) and the response's
    validators (size from ``Content-Range``). With ``opened``, ``If-Range`` carries its strong ETag and an
    answer of another version raises. ``sent``: headers sent with it; ``query``: added to ``url`` on the wire
    (:func:`_request`).

    Raises:
        _NotRanged: no usable partial content (see there).
        RemoteChangedError: the answer is of another version than ``opened``.
        RemoteAccessError, MediaNotFoundError, DecodeTimeoutError: as :func:`_request`; the deadline.
    """
    what = f"reading bytes {start}-{end} of"
    headers = {**(sent or {}), "Range": f"bytes={start}-{end}"}
    strong = opened.strong_etag() if opened is not None else None
    if strong:
        headers["If-Range"] = strong
    resp = _request("GET", url, deadline, headers=headers, passthrough=(412, 416), what=what, query=query)
    try:
        now = _Validators.of(resp)
        if opened is not None and (opened.differs(now) or resp.status_code == 412):
            raise _changed(url, opened, now)
        if resp.status_code != 206:
            raise _NotRanged(f"HTTP {resp.status_code}")
        try:
            first, last = _check_content_range(resp, url, start, end)
        except RemoteAccessError as exc:
            raise _NotRanged(str(exc)) from exc
        try:
            body = _read_body(resp, url, deadline, last - first + 1, what)
        except _Dropped as drop:
            body = drop.data
    except BaseException:
        resp.close()
        raise
    if not body or len(body) > last - first + 1:
        raise _NotRanged(f"{len(body)} bytes for a request of {start}-{end}")
    return body, now


def _fetch_ahead(url: str, start: int, end: int) -> tuple[bytes, _Validators]:
    return _get_range(url, start, end - 1, _Deadline())


def prefetch(
    url: str,
    ranges: list[tuple[int, int, int]],
    concurrency: int = _ranges.DEFAULT_CONCURRENCY,
    owner: object = None,
    headers: dict[str, str] | None = None,
    query: str | None = None,
    key: str | None = None,
) -> int:
    """Fetch byte ranges of ``url`` ahead for the Range files that read them next (see :mod:`._ranges`):
    ``(start, end, uses)`` triples, ``[start, end)``, at most ``concurrency`` requests in flight per host,
    each a checked ranged GET under the running call's deadline and public-address rule, sending ``headers``
    (a Hub token for its endpoint: :mod:`._hub`) and ``query`` on the wire (a presigned URL's signature:
    :mod:`._remote`). ``key``: what they are kept under (:func:`~._ranges.store_key`; default: of ``url`` and
    ``headers``), which the file that takes them is opened with. Returns the requests sent."""
    if not headers and not query and key is None:
        return _ranges.prefetch(url, ranges, _fetch_ahead, concurrency, owner)
    sent = dict(headers) if headers else None

    def fetch(_key: str, start: int, end: int) -> tuple[bytes, _Validators]:
        return _get_range(url, start, end - 1, _Deadline(), sent=sent, query=query)

    return _ranges.prefetch(key or _ranges.store_key(url, sent), ranges, fetch, concurrency, owner)


def http_get(url: str) -> bytes:
    """Download ``url`` whole, within ``settings.deadline`` (and any :func:`http_deadline`).

    Args:
        url: an ``http://`` or ``https://`` URL.

    Returns:
        The body, complete (checked against ``Content-Length``).

    Raises:
        MediaNotFoundError: HTTP 404 or 410.
        RemoteChangedError: the file changed while a dropped download was resumed.
        RemoteAccessError: refused access, persistent errors, an incomplete body, the deadline.
    """
    return _download(url)


def http_exists(url: str) -> bool:
    """Cheap existence check: HEAD, or a 1-byte ranged GET where HEAD is refused (403/405).

    Args:
        url: an ``http://`` or ``https://`` URL.

    Returns:
        False for HTTP 404/410, True for a successful answer.

    Raises:
        RemoteAccessError: access refused, persistent errors or the deadline.
    """
    try:
        _probe(url, _Deadline(), head_only=True)
    except MediaNotFoundError:
        return False
    return True


class _RangeReader(AdaptiveRangeFile):
    """A raw, seekable file over HTTP Range requests: the adaptive read-ahead, the read hints
    (:meth:`announce`, :meth:`expect`) and the ranges fetched ahead of
    :class:`~._readahead.AdaptiveRangeFile`, each fetch a checked ranged GET.

    Every read is tied to the version (ETag, Last-Modified, size) seen when the file was opened: ranged GETs
    send ``If-Range`` with a strong ETag, and any response of another version raises
    :class:`~hf_mediaref.errors.RemoteChangedError`.

    ``headers`` go with every request (a Hub token for its endpoint: ``requests`` drops ``Authorization``
    on a redirect to another host). ``configured``: the URL comes from the user's configuration (the Hub
    endpoint an ``hf://`` file is read from, :mod:`._hub`), not from a dataset's data: the running call's
    public-address rule (:mod:`._network`) does not apply to its requests.

    ``query`` goes on the wire with every request, never into a message (a presigned URL's signature:
    :mod:`._remote`); ``renew`` gives a fresh one, asked once per read that the server refuses with ``403``
    (the signature expired while the file was open). ``key``: what the ranges fetched ahead for this file are
    kept under (default :func:`~._ranges.store_key` of ``url`` and ``headers``).
    """

    def __init__(
        self,
        url: str,
        readahead: int | None = None,
        head: bool = False,
        headers: dict[str, str] | None = None,
        configured: bool = False,
        query: str | None = None,
        key: str | None = None,
        renew: Callable[[], str] | None = None,
    ):
        self.url = url
        self._sent = dict(headers) if headers else None
        self._query = query
        self._renew = renew
        self._key = key or _ranges.store_key(url, self._sent)  # of the ranges fetched ahead for this file
        self._configured = configured
        self._init_readahead(readahead or settings.readahead, settings.min_readahead, settings.small_read)
        with self._rule():
            probe = (
                self._open_ranged(url)
                if head
                else _probe(url, _Deadline(), sent=self._sent, query=self._query)
            )
        self._opened = probe.validators
        self._size = probe.validators.size
        validator = probe.validators.etag or probe.validators.last_modified
        #: Changes when the resource changes (validator + size); None when the server sends no validator.
        self.version = f"{validator}; {probe.length}" if validator else None
        #: The ETag the file was opened at (None without one): a content hash on some servers.
        self.etag = probe.validators.etag
        if self._size is None or not probe.ranges:
            logger.info("%s does not advertise range requests; downloading it whole", describe_uri(url))
            with self._rule():
                self._load_whole()

    def _rule(self) -> contextlib.AbstractContextManager[None]:
        """The public-address rule this file's requests (and the ranges it takes) run under: none for a
        ``configured`` URL, else the running call's."""
        return public_address_rule(None) if self._configured else contextlib.nullcontext()

    def _open_ranged(self, url: str) -> _Probe:
        """Size and version from the head of the file, with its first bytes: a head fetched ahead
        (:mod:`._ranges`), else one ranged GET of ``small_read`` bytes, whose ``Content-Range`` total and
        validators say what a HEAD would (one round trip fewer). A server that does not answer it with
        partial content is probed as before (HEAD, or a 1-byte GET where HEAD is refused)."""
        deadline = _Deadline()  # one for the wait for a head fetched ahead and the request after it
        hit = self._take(0, deadline)
        if hit is None:
            try:
                hit = 0, *_get_range(url, 0, self._small - 1, deadline, sent=self._sent, query=self._query)
            except _NotRanged as exc:
                logger.debug(
                    "%s: a ranged GET of its head gave no partial content (%s)", describe_uri(url), exc
                )
                return _probe(url, _Deadline(), sent=self._sent, query=self._query)
            self.requests += 1
            self.bytes_read += len(hit[1])
        _, data, validators = hit
        if validators.size is None:
            return _probe(url, _Deadline(), sent=self._sent, query=self._query)
        self._buf, self._buf_start = data, 0
        self._window = max(1, min(self._small, len(data)))
        return _Probe(validators, True, str(validators.size))

    def _take(self, pos: int, deadline: _Deadline | None = None) -> tuple[int, bytes, _Validators] | None:
        """The bytes fetched ahead that hold ``pos`` (:mod:`._ranges`), waited for within ``deadline``."""
        deadline = deadline or _Deadline()
        try:
            return _ranges.take(self._key, pos, self.taken_ahead, deadline.remaining())
        except concurrent.futures.TimeoutError:
            raise deadline.error(f"waiting for byte {pos} of", self.url) from None

    def take_ahead(self, pos: int, deadline: _Deadline | None = None) -> bool:
        """Serve the read at ``pos`` from bytes fetched ahead (:mod:`._ranges`), checked against the version
        opened; False when none hold ``pos``.

        Raises:
            RemoteChangedError: they are of another version.
        """
        hit = self._take(pos, deadline)
        if hit is None:
            return False
        start, data, validators = hit
        if self._opened.differs(validators):
            _ranges.forget(self._key)
            raise _changed(self.url, self._opened, validators)
        self._took(data, start)
        return True

    def _load_whole(self) -> None:
        data = _download(self.url, self._opened, self._sent, self._query)
        self.bytes_read += len(data)
        self.requests += 1
        self._fallback, self._size = io.BytesIO(data), len(data)
        self._fallback.seek(self._pos)

    def _new_deadline(self) -> _Deadline:
        return _Deadline()

    def _fetch(self, start: int, length: int, deadline: _Deadline | None = None) -> None:
        """Fetch ``[start, start + length)`` into the buffer, within one deadline: a short 206 is continued
        from where it ended and a dropped connection from the byte reached, in at most
        ``settings.max_requests`` requests.

        Raises:
            RemoteChangedError: a response of another version than the one opened.
            RemoteAccessError: a wrong answer (other bytes, empty, longer, a 200), too many requests or
                drops, the deadline.
        """
        url, end = self.url, start + length - 1
        what = f"reading bytes {start}-{end} of"
        deadline = deadline or _Deadline()  # a wait for bytes fetched ahead that failed counts in it
        parts: list[bytes] = []
        pos, sent, drops, largest = start, 0, 0, 0
        renewed = self._renew is None  # a read refused (403) with an old signature is signed anew once
        while pos <= end:
            if sent >= settings.max_requests:
                raise RemoteAccessError(
                    f"reading bytes {start}-{end} of {describe_uri(url)} took more than {sent} requests (the "
                    f"server sends at most {largest:,} bytes per answer; HF_MEDIAREF_HTTP_MAX_REQUESTS)",
                    uri=url,
                )
            headers = {**(self._sent or {}), "Range": f"bytes={pos}-{end}"}
            if self._opened.strong_etag():
                headers["If-Range"] = self._opened.strong_etag() or ""
            passthrough = (412, 416) if renewed else (403, 412, 416)
            resp = _request(
                "GET", url, deadline, headers=headers, passthrough=passthrough, what=what, query=self._query
            )
            sent += 1
            self.requests += 1
            if resp.status_code == 403:
                resp.close()
                assert self._renew is not None
                logger.info("%s: HTTP 403 for bytes %d-%d; signing its URL anew", describe_uri(url), pos, end)
                try:
                    self._query, renewed = self._renew(), True
                except Exception as exc:
                    raise _status_error(resp, url, sent) from exc
                continue
            try:
                now = _Validators.of(resp)
                if self._opened.differs(now) or resp.status_code == 412:
                    raise _changed(url, self._opened, now)
                if resp.status_code != 206:
                    raise RemoteAccessError(
                        f"{describe_uri(url)} answered a request for bytes {pos}-{end} with HTTP "
                        f"{resp.status_code} (not 206 partial content) although it advertised range requests",
                        uri=url,
                    )
                first, last = _check_content_range(resp, url, pos, end)
                body = _read_body(resp, url, deadline, last - first + 1, what)
            except _Dropped as drop:
                self.bytes_read += len(drop.data)
                parts.append(drop.data)
                pos += len(drop.data)
                drops += 1
                if drops > settings.retries:
                    raise RemoteAccessError(
                        f"incomplete read of bytes {start}-{end} of {describe_uri(url)}: the connection "
                        f"dropped or stalled {drops} times (last: {drop})",
                        uri=url,
                    ) from drop.cause
                logger.info("%s: connection dropped at byte %d (%s); resuming", describe_uri(url), pos, drop)
                deadline.pause(_backoff(drops - 1), what, url)
                continue
            except BaseException:
                resp.close()
                raise
            self.bytes_read += len(body)
            if len(body) > last - first + 1:
                raise RemoteAccessError(
                    f"{describe_uri(url)}: server sent more than the {last - first + 1} bytes {first}-{last} "
                    f"it declared (a request of {pos}-{end})",
                    uri=url,
                )
            if not body:
                raise RemoteAccessError(
                    f"{describe_uri(url)}: server returned an empty 206 for a request of {pos}-{end}", uri=url
                )
            largest = max(largest, len(body))
            parts.append(body)
            pos += len(body)
        self._buf, self._buf_start = b"".join(parts), start


def open_http(
    url: str,
    readahead: int | None = None,
    head: bool = False,
    headers: dict[str, str] | None = None,
    configured: bool = False,
    query: str | None = None,
    key: str | None = None,
    renew: Callable[[], str] | None = None,
) -> io.BufferedReader:
    """A seekable binary file over ``url`` that reads with Range requests and an adaptive read-ahead.

    Args:
        url: an ``http://`` or ``https://`` URL.
        readahead: the largest read-ahead in bytes (default ``settings.readahead``).
        head: the caller reads the file's head first (a container's header): the open fetches it (the head
            fetched ahead for a batch, else a ranged GET of ``settings.small_read`` bytes) and takes the size
            and version from that answer, with no HEAD request. Without it the open sends a HEAD.
        headers: sent with every request (a Hub token for its endpoint, :mod:`._hub`; ``requests`` drops
            ``Authorization`` on a redirect to another host).
        configured: ``url`` comes from the user's configuration (a Hub endpoint, an S3 endpoint), not from
            data: the running call's public-address rule does not apply to it.
        query: an encoded query string sent with every request and never shown (a presigned URL's
            signature, :mod:`._remote`); errors name ``url``.
        key: what ranges fetched ahead for this file are kept under (:func:`prefetch` with the same key).
        renew: gives a fresh ``query`` when a read is refused with ``403`` (an expired signature); asked once
            per read.

    Returns:
        A buffered reader; its ``raw`` has ``version`` (ETag or Last-Modified and size, for keying what is
        learned from the file; None without validators), ``bytes_read``, ``requests``, ``announce()`` and
        ``expect()``. ``read1`` returns what one fetch holds (fewer bytes than asked at the end of an
        announced range or after the small first read); ``read`` fills its answer as usual.

    Raises:
        MediaNotFoundError: HTTP 404 or 410.
        RemoteAccessError: the probe (HEAD, or a 1-byte GET) failed; reads raise it (or
            :class:`~hf_mediaref.errors.RemoteChangedError`) later.
    """
    return io.BufferedReader(
        _RangeReader(url, readahead, head, headers, configured, query, key, renew), buffer_size=32 << 10
    )  # FFmpeg reads 32 KiB blocks
