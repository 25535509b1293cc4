"""``hf://`` repo files read over the Hub's resolve URLs, so that they share the HTTP road: Range files tied
to one version, checked ``206`` answers, deadlines, and byte ranges fetched ahead with many requests in flight
(:mod:`._ranges`).

``HfFileSystem`` reads a file with one ranged GET of ``{endpoint}/{type}s/{repo}/resolve/{revision}/{path}``
per buffer fill, one after another, and its ``cat_ranges`` is fsspec's serial default (a sync filesystem).
:func:`hub_location` asks the filesystem itself where the file is (``resolve_path``: repo, revision, path in
the repo; its ``endpoint`` and ``token``) and gives the same URL with the headers ``huggingface_hub`` sends
(``build_hf_headers``: the token as ``Authorization``): the requests are the ones ``HfFileSystem`` would
make, sent by :mod:`._http`. A path with empty, ``.`` or ``..`` segments (which a URL would resolve into
another path of the endpoint) is left to fsspec.

A path pinned to a commit (``datasets/org/name@<40 hex digits>/path``, what a dataset's refs resolve to) is
read without asking the Hub's API first (``resolve_path`` asks it whether the repo and revision exist, once
per filesystem object, which ``HfFileSystem`` makes per thread): a missing one answers 404 at its resolve URL
(:class:`~hf_mediaref.errors.MediaNotFoundError`), a private one without a token 401.

Guarantees: the revision is the one in the URI (the commit the loader resolved, for a dataset's refs), so
every read is of that commit; the Range file also compares every answer's ETag and size with those it
opened at (:class:`~hf_mediaref.errors.RemoteChangedError`). The token comes from the filesystem's options
(``MediaAccess.storage_options`` / ``token``), never from data, and goes only to the endpoint: ``requests``
drops ``Authorization`` when the Hub redirects to another host (its CDN). The endpoint is the user's
configuration, not a dataset's, so the data's public-address rule (:mod:`._network`) does not apply to it
(``HfFileSystem`` reads it the same way). Files of buckets (``hf://buckets/...``: mutable, no revision)
and filesystems that name no endpoint stay on fsspec's file object.
"""

from __future__ import annotations

import dataclasses
import re
from typing import Any

from .._version import __version__

__all__ = ["HubLocation", "hub_location"]

#: A file of a dataset, Space or model repo at a commit: ``{datasets|spaces|models}/org/name@<sha>/path``
#: (other paths, a model's without its prefix included, are resolved by the filesystem).
_PINNED = re.compile(r"^(datasets|spaces|models)/([^/@]+/[^/@]+)@([0-9a-f]{40})/(.+)$")
_REPO_TYPES = {"datasets": "dataset", "spaces": "space", "models": "model"}


@dataclasses.dataclass(frozen=True)
class HubLocation:
    """Where an ``hf://`` repo file is read over HTTP: its resolve URL and the headers to send there."""

    url: str
    headers: dict[str, str] = dataclasses.field(repr=False)  # the token: never shown


def hub_location(fs: Any, path: str) -> HubLocation | None:
    """The resolve URL and headers of the ``hf://`` repo file ``path`` of the filesystem ``fs`` (an
    ``HfFileSystem``), or None where ``fs`` names no endpoint or ``path`` is not a repo file (a bucket).

    Raises:
        FileNotFoundError: the repo or revision does not exist (``resolve_path``).
    """
    endpoint = getattr(fs, "endpoint", None)
    resolve = getattr(fs, "resolve_path", None)
    if not isinstance(endpoint, str) or not endpoint or resolve is None:
        return None
    pinned = _PINNED.match(path.removeprefix("hf://"))
    repo_type: str | None
    repo_id: Any
    revision: Any
    in_repo: Any
    if pinned is not None:
        repo_type, (repo_id, revision, in_repo) = _REPO_TYPES[pinned.group(1)], pinned.group(2, 3, 4)
    else:
        resolved = resolve(path)
        repo_id, revision = getattr(resolved, "repo_id", None), getattr(resolved, "revision", None)
        in_repo, repo_type = getattr(resolved, "path_in_repo", None), getattr(resolved, "repo_type", None)
    if not (isinstance(repo_id, str) and isinstance(revision, str) and isinstance(in_repo, str) and in_repo):
        return None
    if any(part in ("", ".", "..") for part in in_repo.split("/")):  # an HTTP client would resolve them
        return None  # fsspec's file object reads it, as before (the access refuses such refs in a repo)
    from huggingface_hub import hf_hub_url
    from huggingface_hub.utils import build_hf_headers

    url = hf_hub_url(
        repo_id,
        in_repo,
        repo_type=repo_type,
        revision=revision,
        endpoint=endpoint.rstrip("/"),
    )
    headers = build_hf_headers(
        token=getattr(fs, "token", None), library_name="hf_mediaref", library_version=__version__
    )
    return HubLocation(url, dict(headers))
