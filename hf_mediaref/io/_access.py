"""``MediaAccess``: who may read what. The one access value, and the one resolver of stored URIs.

A :class:`MediaAccess` is passed down explicitly, from a loader or the user to the resolver and the byte
sources; nothing stored in data and no process-wide setting widens it. It holds:

- ``root``: where relative URIs resolve (a local folder or a URL), and the boundary of what may be read;
- ``allow_uris``: what may be read beyond the root (URI prefixes, local folders, schemes, ``"*"``);
- credentials (``storage_options``, ``token``): handed to fsspec / the Hub, never written to files, never
  shown by ``repr`` or JSON.

What may be read (:meth:`MediaAccess.check`): paths under a local root after following symlinks (a root inside
a Hugging Face cache snapshot also reaches that repo's ``blobs/``), URLs under a remote root without
``.``/``..`` segments, ``data:`` URIs, what ``allow_uris`` names, and ``http(s)`` URLs to public addresses.
An ``http(s)`` URL that is not allowed by ``allow_uris`` (the root included: a remote root passes the same
public-address rule as any ref) is read at public addresses only: a literal non-public address or
``localhost`` is refused when the URI is resolved, and a host name is checked when the socket connects
(:func:`reading_with` makes the access the rule of the running call; see :mod:`._network`).

It is a frozen ``dict`` of its JSON form (``{"root": ..., "allow_uris": [...]}``), so ``datasets`` can
store it in format kwargs (``save_to_disk`` writes them to ``state.json``); what comes back from such a file
is a plain ``dict``: data, which :meth:`MediaAccess.narrowed` may use to narrow an access the loader made,
never to widen it.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import posixpath
import re
from collections.abc import Iterable, Iterator, Mapping
from typing import Any, NamedTuple
from urllib.parse import unquote, urlsplit, urlunsplit

from ..errors import PathEscapeError, UnresolvedPathError, UntrustedRefError, describe_uri
from ._network import is_private_host, public_address_rule
from ._uri import UriKind, classify_uri, is_absolute_uri, join_uri, local_path, uri_scheme

__all__ = [
    "MediaAccess",
    "make_access",
    "normalize_root",
    "parse_allow_uris",
    "reading_with",
    "require_access",
    "unresolved_error",
]

logger = logging.getLogger(__name__)

_SCHEME_ONLY = re.compile(r"^([A-Za-z][A-Za-z0-9+.\-]+):?(?://)?$")
_HF_CACHE_SNAPSHOT = re.compile(r"^(.*[/\\](?:datasets|models|spaces)--[^/\\]+)[/\\]snapshots[/\\][^/\\]+$")
_HUB_REPO = re.compile(r"^hf://(?:datasets|buckets)/([^/@]+/[^/@]+)")
_FIX = "hf_mediaref.MediaAccess"


def normalize_root(root: str | os.PathLike[str]) -> str:
    """A root in the form the resolver uses: a local folder made absolute (``~`` expanded), a URL as given.

    Args:
        root: a local folder or a URL.

    Returns:
        The root as a string.

    Raises:
        ValueError: a ``data:`` URI.

    Example:
        ```python
        >>> from hf_mediaref.io import normalize_root
        >>> normalize_root("hf://datasets/org/name@abc/")
        'hf://datasets/org/name@abc/'
        ```
    """
    root = os.fspath(root)
    kind = classify_uri(root)
    if kind is UriKind.LOCAL:
        return os.path.abspath(os.path.expanduser(root))
    if kind is UriKind.DATA:
        raise ValueError("a data: URI cannot be a media root")
    return root


def _entry(value: Any) -> str:
    """One allow-list entry in its stored form: ``*``, ``scheme:``, a real absolute local path, or a URL
    prefix."""
    if isinstance(value, os.PathLike):
        value = os.fspath(value)
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"an allow_uris entry must be a non-empty string, got {value!r}")
    value = value.strip()
    if value == "*":
        return value
    scheme = _SCHEME_ONLY.match(value)
    if scheme is not None:
        return scheme.group(1).lower() + ":"
    kind = classify_uri(value)
    if kind in (UriKind.LOCAL, UriKind.FILE):
        return os.path.realpath(os.path.abspath(os.path.expanduser(local_path(value))))
    if kind is UriKind.DATA:
        raise ValueError("a data: URI is not an allow_uris prefix (data: refs are always allowed)")
    return value


def parse_allow_uris(allow_uris: str | os.PathLike[str] | Iterable[Any] | None) -> tuple[str, ...]:
    """Normalize an allow-list.

    Args:
        allow_uris: ``None``, one string (entries separated by commas or whitespace) or an iterable of
            entries. An entry is ``"*"`` (everything), a scheme (``"s3"``, ``"https:"``, ``"hf://"``: every
            URI of that scheme; ``"file"`` covers all local paths), a local directory (``"/mnt/shared"``,
            ``"~/data"``, ``"file:///mnt/shared"``: everything under it after following symlinks) or a URI
            prefix (``"https://cdn.example.com/videos/"``, ``"hf://datasets/org/name"``; it matches at a
            ``/``, ``@``, ``?`` or ``#`` boundary, so ``hf://datasets/org/name`` does not match
            ``hf://datasets/org/name2``).

    Returns:
        The entries in stored form (schemes as ``"name:"``, local directories as real absolute paths).

    Raises:
        ValueError: an empty or non-string entry, or a ``data:`` URI.

    Example:
        ```python
        >>> from hf_mediaref import parse_allow_uris
        >>> parse_allow_uris("s3, https://cdn.example.com/")
        ('s3:', 'https://cdn.example.com/')
        ```
    """
    if allow_uris is None:
        return ()
    if isinstance(allow_uris, (str, os.PathLike)):
        items: Iterable[Any] = [p for p in re.split(r"[\s,]+", os.fspath(allow_uris)) if p]
    else:
        items = allow_uris
    out: list[str] = []
    for item in items:
        entry = _entry(item)
        if entry not in out:
            out.append(entry)
    return tuple(out)


class _Allowed(NamedTuple):
    everything: bool
    schemes: frozenset[str]
    dirs: tuple[str, ...]  # real local paths
    prefixes: tuple[str, ...]  # URL prefixes


@functools.lru_cache(maxsize=256)
def _allowed(entries: tuple[str, ...]) -> _Allowed:
    schemes = frozenset(e[:-1] for e in entries if e != "*" and _SCHEME_ONLY.match(e))
    dirs = tuple(e for e in entries if e != "*" and e[:-1] not in schemes and os.path.isabs(e))
    prefixes = tuple(e for e in entries if e != "*" and e[:-1] not in schemes and e not in dirs)
    return _Allowed("*" in entries, schemes, dirs, prefixes)


def _has_dot_segments(rest: str) -> bool:
    path = unquote(rest.split("?", 1)[0].split("#", 1)[0]).replace("\\", "/")
    return any(segment in (".", "..") for segment in path.split("/"))


def _under_prefix(uri: str, prefix: str) -> bool:
    """``uri`` starts with ``prefix`` at a boundary and goes on without ``.``/``..`` segments."""
    if not uri.startswith(prefix):
        return False
    rest = uri[len(prefix) :]
    if not (prefix.endswith(("/", "@", ":")) or rest == "" or rest[0] in "/?#@"):
        return False
    return not _has_dot_segments(rest)


def _under_dir(path: str, directory: str) -> bool:
    return path == directory or path.startswith(directory.rstrip(os.sep) + os.sep)


def _suggestion(resolved: str, real: str | None) -> str:
    """What to allow for ``resolved``: its folder, its host, or its Hub repo."""
    if real is not None:
        return os.path.dirname(real) + os.sep
    if uri_scheme(resolved) == "hf":
        return "hf://" + "/".join(resolved[len("hf://") :].split("/")[:3]).split("@", 1)[0]
    parts = urlsplit(resolved)
    return f"{parts.scheme}://{parts.netloc}/"


def unresolved_error(uri: str) -> UnresolvedPathError:
    """The error for a relative URI read without a root: it names the URI and the one line that fixes it.

    Args:
        uri: the relative URI.

    Returns:
        An :class:`~hf_mediaref.errors.UnresolvedPathError` (to raise).
    """
    return UnresolvedPathError(
        f"relative media path {describe_uri(uri)} has no root to resolve against (the data does not say "
        "where its media are: the loader or you do). Load it with hf_mediaref.load_dataset(...) / "
        "hf_mediaref.load_from_disk(...), or pass access=hf_mediaref.MediaAccess(root=<the dataset's folder "
        "or hf://datasets/org/name@<commit>/>) to the format, transform or decoder",
        uri=uri,
    )


class MediaAccess(dict):
    """Who may read what: the root relative URIs resolve against and the boundary of what a dataset's refs
    may read, what is allowed beyond it, and the credentials to read with.

    Frozen (a ``dict`` of its JSON form that refuses changes), hashable, picklable (credentials included, for
    DataLoader workers and Ray actors), and JSON-serialisable without its credentials (``json.dumps(access)``
    gives ``{"root": ..., "allow_uris": [...]}``; ``datasets`` writes it so into ``state.json``).

    Args:
        root: a local folder (made absolute) or a URL (``hf://datasets/org/name@<commit>/``,
            ``https://host/dir/``, ``s3://bucket/prefix/``), or ``None`` (relative URIs cannot be read).
        allow_uris: what refs may read beyond the root (see :func:`parse_allow_uris`); ``"*"`` trusts the data
            entirely (your own dataset).
        storage_options: fsspec options for ``hf://``, ``s3://``... reads (credentials included).
        token: the Hub token for ``hf://`` media, as ``datasets``' ``token`` (a string, or ``True`` for the
            saved login); used when ``storage_options`` is not given.

    Raises:
        ValueError: a ``data:`` root or a malformed ``allow_uris`` entry.

    Example:
        ```python
        >>> from hf_mediaref import MediaAccess
        >>> access = MediaAccess(root="/data/repo", allow_uris=["https://cdn.example.com/"])
        >>> access.resolve("videos/a.mp4")
        '/data/repo/videos/a.mp4'
        >>> access.resolve("/etc/passwd")
        Traceback (most recent call last):
        hf_mediaref.errors.UntrustedRefError: '/etc/passwd' points outside the media root ...
        ```
    """

    __slots__ = ("_real_dirs", "storage_options", "token")

    root: str | None
    allow_uris: tuple[str, ...]

    def __init__(
        self,
        root: str | os.PathLike[str] | None = None,
        allow_uris: str | os.PathLike[str] | Iterable[Any] | None = None,
        *,
        storage_options: Mapping[str, Any] | None = None,
        token: Any = None,
    ):
        normalized = None if root is None else normalize_root(root)
        allow = parse_allow_uris(allow_uris)
        if storage_options is not None and not isinstance(storage_options, Mapping):
            raise ValueError(f"storage_options must be a dict, got {type(storage_options).__name__}")
        dict.__init__(self, root=normalized, allow_uris=list(allow))
        object.__setattr__(
            self, "storage_options", None if storage_options is None else dict(storage_options)
        )
        object.__setattr__(self, "token", token)
        object.__setattr__(self, "_real_dirs", {})

    # -- frozen ------------------------------------------------------------------------------------------
    def _frozen(self, *args: Any, **kwargs: Any) -> Any:
        raise TypeError("MediaAccess is frozen: build another one (MediaAccess(...), access.replace(...))")

    __setitem__ = __delitem__ = clear = pop = popitem = setdefault = update = __ior__ = _frozen

    def __setattr__(self, name: str, value: Any) -> None:
        self._frozen()

    def __getattr__(self, name: str) -> Any:
        if name in ("root", "allow_uris"):
            value = dict.__getitem__(self, name)
            return tuple(value) if name == "allow_uris" else value
        raise AttributeError(name)

    def __hash__(self) -> int:  # type: ignore[override]
        return hash((self.root, self.allow_uris, repr(self.storage_options), repr(self.token)))

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, MediaAccess):
            return NotImplemented
        return (self.root, self.allow_uris, self.storage_options, self.token) == (
            other.root,
            other.allow_uris,
            other.storage_options,
            other.token,
        )

    def __ne__(self, other: object) -> bool:
        equal = self.__eq__(other)
        return equal if equal is NotImplemented else not equal

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild, (self.root, self.allow_uris, self.storage_options, self.token))

    def __copy__(self) -> MediaAccess:
        return self

    def __deepcopy__(self, memo: dict) -> MediaAccess:
        return self

    def __repr__(self) -> str:
        creds = ", credentials=<hidden>" if self.storage_options is not None or self.token is not None else ""
        return f"MediaAccess(root={self.root!r}, allow_uris={list(self.allow_uris)!r}{creds})"

    # -- building ----------------------------------------------------------------------------------------
    def replace(self, **changes: Any) -> MediaAccess:
        """A copy with some fields changed (``root``, ``allow_uris``, ``storage_options``, ``token``)."""
        fields = {
            "root": self.root,
            "allow_uris": self.allow_uris,
            "storage_options": self.storage_options,
            "token": self.token,
        }
        unknown = set(changes) - set(fields)
        if unknown:
            raise TypeError(f"MediaAccess has no field(s) {sorted(unknown)}")
        return MediaAccess(**{**fields, **changes})

    def allowing(self, allow_uris: str | os.PathLike[str] | Iterable[Any] | None) -> MediaAccess:
        """This access with ``allow_uris`` added to its allow-list (itself when there is nothing to add)."""
        extra = [e for e in parse_allow_uris(allow_uris) if e not in self.allow_uris]
        return self.replace(allow_uris=self.allow_uris + tuple(extra)) if extra else self

    def narrowed(self, stored: Any) -> MediaAccess:
        """This access narrowed by what data says (a ``dict`` read back from ``state.json``, or a root
        string): a stored root is used only where it lies inside this access's root (a sub-folder, or a
        sub-path of the same repo at the same revision); a stored allow-list is ignored. Data never widens an
        access.

        Args:
            stored: a root, a ``{"root": ...}`` mapping, or ``None``.

        Returns:
            The narrowed access, or this one (a warning is logged when the stored root was outside it).
        """
        root = stored.get("root") if isinstance(stored, Mapping) else stored
        if not isinstance(root, str) or not root or self.root is None:
            return self
        if classify_uri(self.root) is UriKind.LOCAL:
            if classify_uri(root) is not UriKind.LOCAL:
                candidate = None
            else:
                candidate = os.path.realpath(os.path.join(self.root, root))
                inside = any(_under_dir(candidate, d) for d in self._local_dirs)
                candidate = candidate if inside else None
        else:
            base = self.root if self.root.endswith("/") else self.root + "/"
            joined = root if is_absolute_uri(root) else base + root.lstrip("/")
            candidate = joined if _under_prefix(joined, base) else None
        if candidate is None:
            logger.warning(
                "ignoring the media root %s stored in the data: it lies outside %s, where the dataset was "
                "loaded from (data can only narrow where its refs may read)",
                describe_uri(root),
                describe_uri(self.root),
            )
            return self
        return self.replace(root=candidate)

    # -- credentials -------------------------------------------------------------------------------------
    def engine_storage_options(self) -> dict[str, Any] | None:
        """The fsspec options reads use: ``storage_options`` as given, else the token for ``hf://`` only."""
        if self.storage_options is not None:
            return self.storage_options
        if self.token is not None:
            return {"hf": {"token": self.token}}
        return None

    def hub_repo(self) -> str | None:
        """``org/name`` of a Hub root, else ``None``."""
        match = _HUB_REPO.match(self.root or "")
        return match.group(1) if match else None

    # -- resolving ---------------------------------------------------------------------------------------
    def resolve(self, uri: str) -> str:
        """The URI to read for a stored ``uri``: a relative path joined onto the root, anything else as it is;
        checked against the boundary either way.

        Raises:
            UnresolvedPathError: ``uri`` is relative and there is no root.
            PathEscapeError: ``uri`` leaves the root with ``..`` and where it leads is not allowed.
            UntrustedRefError: ``uri`` reads outside the root and is not allowed.
        """
        if is_absolute_uri(uri):
            resolved = uri
        elif self.root is None:
            raise unresolved_error(uri)
        else:
            try:
                resolved = _join(self.root, uri)
            except PathEscapeError:
                return self._escaped(uri)
        self.check(uri, resolved)
        return resolved

    def check(self, stored: str, resolved: str) -> None:
        """Raise unless ``resolved`` (what ``stored`` resolved to) may be read.

        Raises:
            UntrustedRefError: ``resolved`` is outside the root and not allowed.
        """
        verdict = self._verdict(resolved)
        if verdict is not None:
            raise self._refuse(stored, resolved, *verdict)

    def public_only(self, url: str) -> bool:
        """Whether an ``http(s)`` request for ``url`` (a redirect target included) may connect to public
        addresses only: every URL not covered by ``allow_uris``."""
        allowed = _allowed(self.allow_uris)
        if allowed.everything or (uri_scheme(url) or "") in allowed.schemes:
            return False
        return not any(_under_prefix(url, p) for p in allowed.prefixes)

    @property
    def _local_dirs(self) -> tuple[str, ...]:
        """The real local folders inside the root (none for a remote root)."""
        if self.root is None or classify_uri(self.root) is not UriKind.LOCAL:
            return ()
        cached = self._real_dirs.get(None)
        if cached is None:
            real = os.path.realpath(self.root)
            snapshot = _HF_CACHE_SNAPSHOT.match(real)
            cached = (real, os.path.join(snapshot.group(1), "blobs")) if snapshot else (real,)
            self._real_dirs[None] = cached
        return cached

    def _escaped(self, stored: str) -> str:
        assert self.root is not None
        if classify_uri(self.root) is UriKind.LOCAL:
            target = os.path.normpath(os.path.join(self.root, stored))
        else:
            parts = urlsplit(self.root)
            path = posixpath.normpath(posixpath.join(parts.path or "/", stored.replace("\\", "/")))
            target = urlunsplit(parts._replace(path=path))
        verdict = self._verdict(target)
        if verdict is None:
            return target
        error = self._refuse(stored, target, "its '..' leads out of the root", verdict[1])
        raise PathEscapeError(str(error), uri=stored)

    def _verdict(self, resolved: str) -> tuple[str, str] | None:
        """``None`` when ``resolved`` may be read, else ``(why not, what to allow)``."""
        kind = classify_uri(resolved)
        if kind is UriKind.DATA:
            return None
        allowed = _allowed(self.allow_uris)
        if allowed.everything:
            return None
        if kind in (UriKind.LOCAL, UriKind.FILE):
            real = self._realpath(local_path(resolved))
            if any(_under_dir(real, d) for d in self._local_dirs):
                return None
            if "file" in allowed.schemes or any(_under_dir(real, d) for d in allowed.dirs):
                return None
            path = os.path.abspath(local_path(resolved))
            in_root = self.root is not None and bool(self._local_dirs) and _under_dir(path, self.root)
            why = "a symlink leading out of the dataset's folder" if in_root else "a local file"
            return why, _suggestion(resolved, real)
        scheme = uri_scheme(resolved) or ""
        if scheme in allowed.schemes or any(_under_prefix(resolved, p) for p in allowed.prefixes):
            return None
        root = self.root
        inside = (
            root is not None
            and classify_uri(root) is not UriKind.LOCAL
            and _under_prefix(resolved, root if root.endswith("/") else root + "/")
        )
        if kind is UriKind.HTTP:
            host = urlsplit(resolved).hostname or ""
            if not is_private_host(host):
                return None  # public names are checked again when the socket connects (public_only)
            return f"the non-public address {host!r}", _suggestion(resolved, None)
        if inside:
            return None
        if scheme == "hf":
            return "another Hub repo or revision than the one loaded", _suggestion(resolved, None)
        return f"a {scheme}:// location outside the root", _suggestion(resolved, None)

    def _realpath(self, path: str) -> str:
        """``os.path.realpath(path)``, with the real path of its folder cached (one ``lstat`` per file)."""
        head, name = os.path.split(path)
        if not os.path.isabs(path) or name in ("", ".", "..") or "/." in head or os.sep + "." in head:
            return os.path.realpath(path)  # dot segments: resolve them after the symlinks before them
        cache = self._real_dirs
        real_dir = cache.get(head)
        if real_dir is None:
            if len(cache) >= 4096:
                cache.clear()
            real_dir = cache[head] = os.path.realpath(head)
        candidate = os.path.join(real_dir, name)
        return os.path.realpath(candidate) if os.path.islink(candidate) else candidate

    def _refuse(self, stored: str, resolved: str, why: str, suggestion: str) -> UntrustedRefError:
        target = "" if stored == resolved else f" (resolved to {describe_uri(resolved)})"
        where = f"the media root {self.root!r} of its dataset" if self.root is not None else "its access"
        return UntrustedRefError(
            f"{describe_uri(stored)}{target} points outside {where} ({why}): refs of a dataset read only "
            f"where the loader read it from, and nothing was read. If you trust it, allow it: "
            f"access=access.allowing([{suggestion!r}]) (or allow_uris=[{suggestion!r}] to "
            f"hf_mediaref.load_dataset / load_from_disk / {_FIX}(...)); allow_uris='*' trusts the dataset "
            "entirely",
            uri=stored,
        )


def require_access(access: object) -> MediaAccess:
    """``access`` itself when it is a :class:`MediaAccess`; else ``TypeError`` (an access is never built from
    data that only looks like one, such as a dict that came back from JSON)."""
    if not isinstance(access, MediaAccess):
        raise TypeError(f"access must be a hf_mediaref.MediaAccess, got {type(access).__name__}")
    return access


def make_access(
    root: str | os.PathLike[str] | MediaAccess | None,
    allow_uris: str | os.PathLike[str] | Iterable[Any] | None,
    access: MediaAccess | None,
) -> MediaAccess | None:
    """The access of a function's ``root=`` / ``allow_uris=`` / ``access=`` arguments, built in one place:
    ``access`` (or a ``root`` that is a :class:`~hf_mediaref.MediaAccess`) widened by ``allow_uris``, else
    ``MediaAccess(root, allow_uris)``; ``None`` when neither a root nor an access is given.

    Raises:
        TypeError: ``access`` is not a ``MediaAccess``.
        ValueError: both ``root`` and ``access``; ``allow_uris`` without either; a ``data:`` root or a
            malformed ``allow_uris`` entry.
    """
    if access is not None:
        require_access(access)
        if root is not None:
            raise ValueError("pass root= or access=, not both (access.replace(root=...) changes its root)")
        return access.allowing(allow_uris)
    if isinstance(root, MediaAccess):
        return root.allowing(allow_uris)
    if root is None:
        if allow_uris:
            raise ValueError(
                "allow_uris= widens a root: pass root= or access= too "
                "(hf_mediaref.MediaAccess(root, allow_uris))"
            )
        return None
    return MediaAccess(root, allow_uris)


def _rebuild(root: str | None, allow: tuple[str, ...], storage_options: Any, token: Any) -> MediaAccess:
    return MediaAccess(root, allow, storage_options=storage_options, token=token)


@functools.lru_cache(maxsize=65536)
def _join(root: str, uri: str) -> str:
    return join_uri(root, uri)


@contextlib.contextmanager
def reading_with(access: MediaAccess | Iterable[MediaAccess] | None) -> Iterator[None]:
    """Within the block (and the threads that run a copy of its context), ``http(s)`` connections follow the
    public-address rule of ``access`` (:meth:`MediaAccess.public_only`; of several, a URL any of them holds to
    public addresses is held). ``None`` or none: the block keeps the rule it runs under (refs built in code
    add none)."""
    accesses = [access] if isinstance(access, MediaAccess) else list(access or ())
    if not accesses:
        yield
        return
    if len(accesses) == 1:
        rule = accesses[0].public_only
    else:
        rules = tuple(a.public_only for a in set(accesses))

        def rule(url: str) -> bool:
            return any(r(url) for r in rules)

    with public_address_rule(rule):
        yield
