"""The trust boundary of a media root: the refs of a dataset loaded from a repo or folder stay inside it.

A :class:`MediaRoot` is the root a loader set (``hf_mediaref.load_dataset``, ``set_media_root``,
``decode_transform(root=...)``) together with what its user allowed beyond it. The one resolver
(:func:`hf_mediaref.arrow.resolve_uri`) asks it about every URI it resolves against it, relative or absolute:

- inside: paths under a local root after following symlinks (``os.path.realpath``; a root inside a Hugging
  Face cache snapshot also reaches that repo's ``blobs/``), URLs under a remote root (the same repo and
  revision for ``hf://``) without ``.``/``..`` segments; ``data:`` URIs (their bytes are in the ref);
- allowed: what ``allow_uris`` (on the root, the format, the transform) or the ``HF_MEDIAREF_ALLOW_URIS``
  environment variable names: URI prefixes (``https://cdn.example.com/``, ``hf://datasets/org/other``,
  ``/mnt/shared/``), schemes (``s3``, ``https:``), or ``*`` for everything;
- ``http(s)`` URLs to public addresses: literal non-public addresses and ``localhost`` are refused here,
  other host names are registered so that the HTTP layer connects to them at public addresses only
  (:mod:`hf_mediaref.io._network`);
- anything else raises :class:`~hf_mediaref.errors.UntrustedRefError` naming the ref and what to allow.

The allow-list pickles with the root (DataLoader workers, ``num_proc``); the environment variable is read
when a ref is checked.
"""

from __future__ import annotations

import functools
import os
import posixpath
import re
from collections.abc import Iterable
from typing import Any, NamedTuple
from urllib.parse import unquote, urlsplit, urlunsplit

from ..errors import PathEscapeError, UntrustedRefError, describe_uri
from ..io import UriKind, classify_uri, exempt_prefix, guard_host, is_private_host, local_path, uri_scheme

__all__ = ["ALLOW_URIS_ENV", "MediaRoot", "parse_allow_uris", "widen_root"]

#: The environment variable that widens every media root: entries as for ``allow_uris``, separated by
#: commas or whitespace.
ALLOW_URIS_ENV = "HF_MEDIAREF_ALLOW_URIS"

_SCHEME_ONLY = re.compile(r"^([A-Za-z][A-Za-z0-9+.\-]+):?(?://)?$")
_HF_CACHE_SNAPSHOT = re.compile(r"^(.*[/\\](?:datasets|models|spaces)--[^/\\]+)[/\\]snapshots[/\\][^/\\]+$")


class _Allowed(NamedTuple):
    everything: bool
    schemes: frozenset[str]
    dirs: tuple[str, ...]  # real local paths
    prefixes: tuple[str, ...]  # URL prefixes


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
    if classify_uri(value) in (UriKind.LOCAL, UriKind.FILE):
        return os.path.realpath(os.path.abspath(local_path(value)))
    if classify_uri(value) is UriKind.DATA:
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
        >>> from hf_mediaref.arrow import parse_allow_uris
        >>> parse_allow_uris("s3, https://cdn.example.com/")
        ('s3:', 'https://cdn.example.com/')
        ```
    """
    if allow_uris is None:
        return ()
    if isinstance(allow_uris, (str, os.PathLike)):
        text = os.fspath(allow_uris)
        items: Iterable[Any] = [p for p in re.split(r"[\s,]+", text) if p]
    else:
        items = allow_uris
    out: list[str] = []
    for item in items:
        entry = _entry(item)
        if entry not in out:
            out.append(entry)
    return tuple(out)


@functools.lru_cache(maxsize=64)
def _env_entries(value: str) -> tuple[str, ...]:
    return parse_allow_uris(value)


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


def _suggestion(resolved: str, kind: UriKind, real: str | None) -> str:
    """What to allow for ``resolved``: its folder, its host, or its Hub repo."""
    if real is not None:
        return os.path.dirname(real) + os.sep
    parts = urlsplit(resolved)
    if uri_scheme(resolved) == "hf":
        repo = "/".join(resolved[len("hf://") :].split("/")[:3]).split("@", 1)[0]
        return f"hf://{repo}"
    return f"{parts.scheme}://{parts.netloc}/"


class MediaRoot(str):
    """A media root (the string itself, as :func:`~hf_mediaref.arrow.normalize_root` makes it) that keeps
    the refs resolved against it inside it, but for what ``allow`` names.

    Made by :func:`~hf_mediaref.arrow.media_root`; pickles with its allow-list. A plain ``str`` root passed
    to the resolver confines nothing (roots given in code to code-built refs).

    Args:
        root: the normalized root.
        allow: entries from :func:`parse_allow_uris`.

    Example:
        ```python
        >>> from hf_mediaref.arrow import media_root, resolve_uri
        >>> root = media_root("/data/repo")
        >>> resolve_uri("videos/a.mp4", root)
        '/data/repo/videos/a.mp4'
        >>> resolve_uri("/etc/passwd", root)
        Traceback (most recent call last):
        hf_mediaref.errors.UntrustedRefError: '/etc/passwd' points outside the media root ...
        ```
    """

    allow: tuple[str, ...]

    def __new__(cls, root: str, allow: tuple[str, ...] = ()) -> MediaRoot:
        self = super().__new__(cls, root)
        self.allow = tuple(allow)
        return self

    def __reduce__(self) -> tuple[Any, ...]:
        return (MediaRoot, (str(self), self.allow))

    @functools.cached_property
    def _local_dirs(self) -> tuple[str, ...]:
        """The real local folders inside this root (none for a remote root)."""
        if classify_uri(self) is not UriKind.LOCAL:
            return ()
        real = os.path.realpath(self)
        snapshot = _HF_CACHE_SNAPSHOT.match(real)
        return (real, os.path.join(snapshot.group(1), "blobs")) if snapshot else (real,)

    def check(self, stored: str, resolved: str) -> None:
        """Raise unless ``resolved`` (what ``stored`` resolved to) may be read.

        Args:
            stored: the URI as the data holds it.
            resolved: the URI it resolved to against this root.

        Raises:
            UntrustedRefError: ``resolved`` is outside this root and not allowed.
        """
        verdict = self._verdict(stored, resolved)
        if verdict is not None:
            raise self._refuse(stored, resolved, *verdict)

    def escaped(self, stored: str) -> str:
        """What a relative ``stored`` whose ``..`` leaves this root names, when that place is allowed.

        Raises:
            PathEscapeError: it is not allowed (the message says how to allow it).
        """
        if classify_uri(self) is UriKind.LOCAL:
            target = os.path.normpath(os.path.join(self, stored))
        else:
            parts = urlsplit(self)
            path = posixpath.normpath(posixpath.join(parts.path or "/", stored.replace("\\", "/")))
            target = urlunsplit(parts._replace(path=path))
        verdict = self._verdict(stored, target)
        if verdict is None:
            return target
        error = self._refuse(stored, target, "its '..' leads out of the root", verdict[1])
        raise PathEscapeError(str(error), uri=stored)

    def _verdict(self, stored: str, resolved: str) -> tuple[str, str] | None:
        """``None`` when ``resolved`` may be read, else ``(why not, what to allow)``."""
        kind = classify_uri(resolved)
        if kind is UriKind.DATA:
            return None
        if kind in (UriKind.LOCAL, UriKind.FILE):
            real = self._realpath(local_path(resolved))
            if any(_under_dir(real, d) for d in self._local_dirs):
                return None
        else:
            root = str(self)
            if classify_uri(root) is not UriKind.LOCAL and _under_prefix(
                resolved, root if root.endswith("/") else root + "/"
            ):
                if kind is UriKind.HTTP:
                    exempt_prefix(root)  # the user set this root
                return None
        return self._outside(stored, resolved, kind)

    def _realpath(self, path: str) -> str:
        """``os.path.realpath(path)``, with the real path of its folder cached (one ``lstat`` per file)."""
        head, name = os.path.split(path)
        if not os.path.isabs(path) or name in ("", ".", "..") or "/." in head or os.sep + "." in head:
            return os.path.realpath(path)  # dot segments: resolve them after the symlinks before them
        cache = self.__dict__.setdefault("_real_dirs", {})
        real_dir = cache.get(head)
        if real_dir is None:
            if len(cache) >= 4096:
                cache.clear()
            real_dir = cache[head] = os.path.realpath(head)
        candidate = os.path.join(real_dir, name)
        return os.path.realpath(candidate) if os.path.islink(candidate) else candidate

    def _outside(self, stored: str, resolved: str, kind: UriKind) -> tuple[str, str] | None:
        """The verdict on a URI outside the root: ``None`` when allowed, else ``(why not, what to allow)``."""
        env = os.environ.get(ALLOW_URIS_ENV, "")
        allowed = _allowed(self.allow + _env_entries(env)) if env else _allowed(self.allow)
        if allowed.everything:
            return None
        if kind in (UriKind.LOCAL, UriKind.FILE):
            real = self._realpath(local_path(resolved))
            if "file" in allowed.schemes or any(_under_dir(real, d) for d in allowed.dirs):
                return None
            path = os.path.abspath(local_path(resolved))
            local_root = classify_uri(self) is UriKind.LOCAL and _under_dir(path, str(self))
            why = "a symlink leading out of the dataset's folder" if local_root else "a local file"
            return why, _suggestion(resolved, kind, real)
        scheme = uri_scheme(resolved) or ""
        if scheme in allowed.schemes:
            if kind is UriKind.HTTP:
                exempt_prefix(f"{scheme}:")
            return None
        match = next((p for p in allowed.prefixes if _under_prefix(resolved, p)), None)
        if match is not None:
            if kind is UriKind.HTTP:
                exempt_prefix(match)  # allowed: reached wherever it resolves to, even if guarded for others
            return None
        if kind is UriKind.HTTP:
            host = urlsplit(resolved).hostname or ""
            if not is_private_host(host):
                guard_host(host)
                return None
            why = f"the non-public address {host!r}"
        elif scheme == "hf":
            why = "another Hub repo or revision than the one loaded"
        else:
            why = f"a {scheme}:// location outside the root"
        return why, _suggestion(resolved, kind, None)

    def _refuse(self, stored: str, resolved: str, why: str, suggestion: str) -> UntrustedRefError:
        target = "" if stored == resolved else f" (resolved to {describe_uri(resolved)})"
        return UntrustedRefError(
            f"{describe_uri(stored)}{target} points outside the media root {str(self)!r} of its dataset "
            f"({why}): refs of a dataset loaded from a repo or folder read only inside its root, and nothing "
            f"was read. If you trust it, pass allow_uris=[{suggestion!r}] (to hf_mediaref.load_dataset, "
            f"set_media_root, the mediaref format, decode_transform, or hf_mediaref.ray's read_mediaref, "
            f"resolve_roots and MediaDecoder) or set {ALLOW_URIS_ENV}; "
            "allow_uris='*' trusts the dataset entirely",
            uri=stored,
        )


def widen_root(root: str | None, allow_uris: str | os.PathLike[str] | Iterable[Any] | None) -> str | None:
    """``root`` with ``allow_uris`` added to its allow-list (a :class:`MediaRoot` only; other roots confine
    nothing and come back as they are).

    Args:
        root: a root, or ``None``.
        allow_uris: entries as for :func:`parse_allow_uris`.

    Returns:
        The widened root.

    Example:
        ```python
        >>> from hf_mediaref.arrow import media_root, widen_root
        >>> widen_root(media_root("hf://datasets/org/a@abc/"), ["https://cdn.example.com/"]).allow
        ('https://cdn.example.com/',)
        ```
    """
    extra = parse_allow_uris(allow_uris)
    if not extra or not isinstance(root, MediaRoot):
        return root
    return MediaRoot(str(root), root.allow + tuple(e for e in extra if e not in root.allow))
