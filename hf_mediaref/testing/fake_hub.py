"""An offline stand-in for the Hugging Face Hub, faked at the ``HfApi`` / ``HfFileSystem`` boundary.

Everything above that boundary is the real ``datasets`` / ``huggingface_hub`` code: ``Dataset.push_to_hub``,
``load_dataset("org/name")`` (streaming or not) and ``hf://`` reads all run unchanged against repos kept as
folders under a local directory. Used by the tests and the examples; never talks to the network.

    with FakeHub(tmp_dir) as hub:
        ds.push_to_hub("me/frames")
        hub.repo_dir("me/frames")  # README.md, data/train-00000-of-00001.parquet, ...

The repos' histories are kept in ``<root>/.fake-hub.json``, so a subprocess can open the same hub (this file
imports nothing from hf_mediaref: a process without hf_mediaref can load it by its path). ``hub.tokens``
records the token every ``HfApi`` was made with and every ``hf://`` open was made with.

With :attr:`FakeHub.endpoint` set to the URL of an HTTP server, ``hf://`` files are read over HTTP as the
real filesystem reads them: its ``endpoint`` is that URL, its ``url()`` a file's resolve URL there, and its
files are ``huggingface_hub``'s own ``HfFileSystemFile`` (ranged GETs of that URL).
:meth:`FakeHub.resolve_tree` lays a folder out as those URLs, for a loopback HTTP server to serve (the
network API stays faked)::

    with FakeHub(tmp_dir) as hub, LatencyServer(hub.resolve_tree(tmp_dir / "www"), delay=0.05) as server:
        hub.endpoint = server.url
        access = MediaAccess(root=f"hf://datasets/me/clips@{hub.sha('me/clips')}/", token="hf_...")
"""

from __future__ import annotations

import hashlib
import importlib
import io
import json
import os
import shutil
import uuid
from pathlib import Path
from types import SimpleNamespace
from typing import Any
from unittest import mock

__all__ = ["FakeHub"]

# Modules that bind the Hub client classes by name (the fakes replace them there).
_CLIENT_MODULES = (
    "huggingface_hub",
    "datasets.load",
    "datasets.arrow_dataset",
    "datasets.dataset_dict",
    "datasets.iterable_dataset",
    "datasets.data_files",
    "datasets.hub",
    "hf_mediaref.hf._hub",
)


def _read_source(source: Any) -> bytes:
    if isinstance(source, (bytes, bytearray)):
        return bytes(source)
    if isinstance(source, (str, os.PathLike)):
        return Path(source).read_bytes()
    if isinstance(source, io.IOBase) or hasattr(source, "read"):
        source.seek(0)
        return source.read()
    raise TypeError(f"unsupported upload source {type(source).__name__}")


#: Files the Hub keeps in LFS (its default ``.gitattributes`` tracks these by extension): their ``info()`` and
#: open files carry ``lfs: {"sha256", "size"}``, as the real ``HfFileSystem``'s do.
_LFS_SUFFIXES = frozenset(
    {".mp4", ".mkv", ".webm", ".mov", ".avi", ".ts", ".gif", ".png", ".jpg", ".jpeg", ".webp", ".parquet"}
)


def _lfs_details(path: str) -> dict | None:
    """The ``lfs`` entry of a local file that the Hub would store in LFS (None for other files)."""
    if os.path.splitext(path)[1].lower() not in _LFS_SUFFIXES or not os.path.isfile(path):
        return None
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return {"sha256": digest.hexdigest(), "size": os.path.getsize(path), "pointer_size": 134}


def _response(status: int, repo_id: str) -> Any:
    """The HTTP response huggingface_hub's HTTP errors carry (from httpx or httpx2, whichever it uses)."""
    from huggingface_hub import errors

    response_type = getattr(errors, "Response", None)  # huggingface_hub < 0.26 names no Response: requests
    http = importlib.import_module(response_type.__module__.split(".")[0] if response_type else "requests")
    url = f"https://fake.hub/api/datasets/{repo_id}"
    if http.__name__ == "requests":  # huggingface_hub < 1.0: a requests.Response takes no arguments
        response = http.Response()
        response.status_code, response.url = status, url
        response.request = http.Request("GET", url).prepare()
        return response
    return http.Response(status, request=http.Request("GET", url))


class FakeHub:
    """Dataset repos stored as folders ``<root>/<org>__<name>/``; one linear history per repo (any revision
    reads the latest state). Use as a context manager to patch the Hub client classes everywhere they
    are used.
    """

    def __init__(self, root: str | os.PathLike):
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self.cache = self.root / ".download-cache"
        # repo_id -> commit shas, kept in <root>/.fake-hub.json so that another process (a test's
        # subprocess) opening a FakeHub on the same root sees the same repos
        self._state = self.root / ".fake-hub.json"
        state = json.loads(self._state.read_text()) if self._state.is_file() else {}
        self.commits: dict[str, list[str]] = state.get("commits", {})
        # shas differ between hubs, so datasets' caches never mix them up
        self._nonce = state.get("nonce") or uuid.uuid4().hex
        self.uploads: list[tuple[str, str]] = []  # (repo_id, path_in_repo) of every file added
        # (what, token) for every HfApi made and every file opened through hf://: what the boundary was given
        self.tokens: list[tuple[str, Any]] = []
        #: one entry per ``create_commit``: ``repo_id``, ``sha``, ``added`` and ``deleted`` paths, ``message``
        self.commit_log: list[SimpleNamespace] = []
        self._patches: list[Any] = []
        #: The HTTP server ``hf://`` files are read from at their resolve URLs (None: from the folders).
        self.endpoint: str | None = None

    def __repr__(self) -> str:
        state = "active" if self._patches else "inactive"
        return f"FakeHub({str(self.root)!r}, repos={sorted(self.commits)}, {state})"

    # ------------------------------------------------------------------ repo state
    def repo_dir(self, repo_id: str) -> Path:
        return self.root / repo_id.replace("/", "__")

    def sha(self, repo_id: str) -> str:
        return self.commits[repo_id][-1]

    def state(self, repo_id: str) -> dict[str, str]:
        """What a repo holds: ``{path: sha1 of its bytes}`` plus ``{"@commits": number of commits}`` (empty
        for a repo that does not exist); equal states mean nothing changed."""
        folder = self.repo_dir(repo_id)
        if repo_id not in self.commits:
            return {}
        files = {
            p.relative_to(folder).as_posix(): hashlib.sha1(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*"))
            if p.is_file()
        }
        return {**files, "@commits": str(len(self.commits[repo_id]))}

    def resolve_tree(self, folder: str | os.PathLike) -> Path:
        """Lay ``folder`` out as the Hub's resolve URLs (``datasets/<org>/<name>/resolve/<revision>/<path>``,
        for every commit of every repo and ``main``: links to the repo's folder, whose latest state any
        revision reads here), so that an HTTP server serving ``folder`` answers the URLs an ``hf://``
        filesystem with that server as its ``endpoint`` reads. Run it again after new commits.

        Returns:
            ``folder``.
        """
        out = Path(folder)
        for repo_id, shas in self.commits.items():
            resolve = out / "datasets" / repo_id / "resolve"
            resolve.mkdir(parents=True, exist_ok=True)
            for revision in [*shas, "main"]:
                link = resolve / revision
                if not link.is_symlink():
                    link.symlink_to(self.repo_dir(repo_id).resolve(), target_is_directory=True)
        return out

    def _commit(self, repo_id: str) -> str:
        history = self.commits.setdefault(repo_id, [])
        sha = hashlib.sha1(f"{self._nonce}:{repo_id}:{len(history)}".encode()).hexdigest()
        history.append(sha)
        self._state.write_text(json.dumps({"commits": self.commits, "nonce": self._nonce}))
        return sha

    def _require(self, repo_id: str) -> Path:
        # huggingface_hub.errors has these only since 0.25
        from huggingface_hub.utils import RepositoryNotFoundError

        path = self.repo_dir(repo_id)
        if repo_id not in self.commits or not path.is_dir():
            raise RepositoryNotFoundError(
                f"404: repository {repo_id} not found (fake hub)", response=_response(404, repo_id)
            )
        return path

    # ------------------------------------------------------------------ patching
    def __enter__(self) -> FakeHub:
        import fsspec

        api_cls, fs_cls = self.api_class(), self.filesystem_class()
        for name in _CLIENT_MODULES:
            try:
                module = importlib.import_module(name)
            except ModuleNotFoundError:  # a process without hf_mediaref (loading this file by its path)
                continue
            for attr, fake in (("HfApi", api_cls), ("HfFileSystem", fs_cls)):
                if hasattr(module, attr):
                    self._patches.append(mock.patch.object(module, attr, fake))
        self._patches.append(mock.patch("datasets.config.USE_PARQUET_EXPORT", False))
        # downloads land in the Hub cache, as hf_hub_download puts them: the fake's own folder
        self._patches.append(mock.patch("huggingface_hub.constants.HF_HUB_CACHE", str(self.cache)))
        self._patches.append(mock.patch("datasets.config.HF_UPDATE_DOWNLOAD_COUNTS", False))
        for patch in self._patches:
            patch.start()
        self._previous_hf = fsspec.registry.get("hf")
        fsspec.register_implementation("hf", fs_cls, clobber=True)
        return self

    def __exit__(self, *exc: object) -> None:
        import fsspec

        for patch in reversed(self._patches):
            patch.stop()
        self._patches.clear()
        if self._previous_hf is not None:
            fsspec.register_implementation("hf", self._previous_hf, clobber=True)

    # ------------------------------------------------------------------ HfApi
    def api_class(self) -> type:
        hub = self

        class FakeHfApi:
            def __init__(self, endpoint: str | None = None, token: Any = None, **kwargs: Any):
                self.token = token
                hub.tokens.append(("api", token))

            def repo_info(self, repo_id: str, *args: Any, **kwargs: Any) -> SimpleNamespace:
                hub._require(repo_id)
                return SimpleNamespace(id=repo_id, sha=hub.sha(repo_id), private=False)

            dataset_info = repo_info

            def create_repo(self, repo_id: str, *args: Any, exist_ok: bool = False, **kwargs: Any):
                path = hub.repo_dir(repo_id)
                if repo_id in hub.commits and not exist_ok:
                    raise FileExistsError(f"409: {repo_id} exists (fake hub)")
                if repo_id not in hub.commits:
                    path.mkdir(parents=True, exist_ok=True)
                    hub._commit(repo_id)
                return SimpleNamespace(repo_id=repo_id, url=f"https://fake.hub/datasets/{repo_id}")

            def create_branch(self, *args: Any, **kwargs: Any) -> None:
                return None

            def repo_exists(self, repo_id: str, *args: Any, **kwargs: Any) -> bool:
                return repo_id in hub.commits and hub.repo_dir(repo_id).is_dir()

            def delete_repo(self, repo_id: str, *args: Any, missing_ok: bool = False, **kwargs: Any) -> None:
                if not self.repo_exists(repo_id):
                    if missing_ok:
                        return
                    hub._require(repo_id)
                shutil.rmtree(hub.repo_dir(repo_id))
                del hub.commits[repo_id]
                hub._state.write_text(json.dumps({"commits": hub.commits, "nonce": hub._nonce}))

            def preupload_lfs_files(self, repo_id: str, additions: list, **kwargs: Any) -> None:
                hub._require(repo_id)
                for op in additions:  # datasets deletes its temp file after this call: keep the bytes
                    op.path_or_fileobj = _read_source(op.path_or_fileobj)

            def create_commit(
                self, repo_id: str, operations: list, *args: Any, **kwargs: Any
            ) -> SimpleNamespace:
                from huggingface_hub import CommitOperationAdd, CommitOperationDelete

                path = hub._require(repo_id)
                contents = {}  # read every source first: a failing one changes nothing (as on the Hub)
                for op in operations:
                    if isinstance(op, CommitOperationAdd):
                        contents[op.path_in_repo] = _read_source(op.path_or_fileobj)
                added, deleted = [], []
                for op in operations:
                    if isinstance(op, CommitOperationAdd):
                        target = path / op.path_in_repo
                        target.parent.mkdir(parents=True, exist_ok=True)
                        target.write_bytes(contents[op.path_in_repo])
                        hub.uploads.append((repo_id, op.path_in_repo))
                        added.append(op.path_in_repo)
                    elif isinstance(op, CommitOperationDelete):
                        (path / op.path_in_repo).unlink(missing_ok=True)
                        deleted.append(op.path_in_repo)
                sha = hub._commit(repo_id)
                hub.commit_log.append(
                    SimpleNamespace(
                        repo_id=repo_id,
                        sha=sha,
                        added=added,
                        deleted=deleted,
                        message=kwargs.get("commit_message"),
                    )
                )
                return SimpleNamespace(
                    oid=sha,
                    commit_url=f"https://fake.hub/datasets/{repo_id}/commit/{sha}",
                    pr_url=None,
                    repo_url=SimpleNamespace(repo_id=repo_id),
                )

            def hf_hub_download(
                self, repo_id: str, filename: str, *args: Any, revision: str | None = None, **kwargs: Any
            ) -> str:
                from huggingface_hub.utils import EntryNotFoundError

                source = hub._require(repo_id) / filename
                if not source.is_file():
                    raise EntryNotFoundError(f"404: {filename} not in {repo_id} (fake hub)")
                target = hub.cache / repo_id.replace("/", "__") / hub.sha(repo_id) / filename
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(source, target)
                return str(target)

            def list_repo_tree(
                self,
                repo_id: str,
                path_in_repo: str | None = None,
                *args: Any,
                recursive: bool = False,
                **kwargs: Any,
            ):
                """The files under ``path_in_repo`` (the repo root by default): ``RepoFile`` s, as the Hub's
                listing gives them; ``EntryNotFoundError`` for a folder that does not exist."""
                from huggingface_hub.hf_api import RepoFile
                from huggingface_hub.utils import EntryNotFoundError

                root = hub._require(repo_id)
                folder = root / path_in_repo if path_in_repo else root
                if not folder.is_dir():
                    raise EntryNotFoundError(f"404: {path_in_repo} not in {repo_id} (fake hub)")
                for path in sorted(folder.rglob("*") if recursive else folder.glob("*")):
                    if path.is_file():
                        rel = path.relative_to(root).as_posix()
                        yield RepoFile(path=rel, size=path.stat().st_size, oid=rel)

            def file_exists(self, repo_id: str, filename: str, *args: Any, **kwargs: Any) -> bool:
                return (hub._require(repo_id) / filename).is_file()

        return FakeHfApi

    # ------------------------------------------------------------------ HfFileSystem
    def filesystem_class(self) -> type:
        from fsspec import AbstractFileSystem
        from fsspec.implementations.local import LocalFileSystem
        from huggingface_hub import hf_file_system

        # HfFileSystemResolvedRepositoryPath since huggingface_hub 1.x; HfFileSystemResolvedPath before
        resolved_cls: Any = getattr(
            hf_file_system, "HfFileSystemResolvedRepositoryPath", hf_file_system.HfFileSystemResolvedPath
        )

        hub = self
        local = LocalFileSystem()

        class FakeHfFileSystem(AbstractFileSystem):
            """``hf://datasets/<org>/<name>[@rev]/<path>`` served from the fake hub's folders."""

            protocol = "hf"
            root_marker = ""

            def __init__(
                self,
                *args: Any,
                endpoint: str | None = None,
                token: Any = None,
                block_size: int | None = None,
                **kwargs: Any,
            ):
                super().__init__(*args, **kwargs)
                self.token = token
                self.block_size = block_size  # of the files read over HTTP, as HfFileSystem's
                self._api = SimpleNamespace(_build_hf_headers=self._headers)  # what HfFileSystemFile asks

            @property
            def endpoint(self) -> str | None:
                """Where files are read over HTTP: the hub's :attr:`FakeHub.endpoint` (None: its folders)."""
                return hub.endpoint

            def _headers(self) -> dict:
                from huggingface_hub.utils import build_hf_headers

                return build_hf_headers(token=self.token)

            def url(self, path: str) -> str:
                """The resolve URL of ``path`` at the endpoint (as ``HfFileSystem.url``)."""
                from huggingface_hub import hf_hub_url

                resolved = self.resolve_path(path)
                return hf_hub_url(
                    resolved.repo_id,
                    resolved.path_in_repo,
                    repo_type="dataset",
                    revision=resolved.revision,
                    endpoint=self.endpoint,
                )

            @classmethod
            def _strip_protocol(cls, path: Any) -> str:
                path = str(path)
                return (path[len("hf://") :] if path.startswith("hf://") else path).rstrip("/")

            def resolve_path(self, path: str, revision: str | None = None) -> Any:
                parts = self._strip_protocol(path).split("/")
                if len(parts) < 3 or parts[0] != "datasets":
                    raise NotImplementedError(f"fake hub serves dataset repos only, got {path!r}")
                name, _, rev = parts[2].partition("@")
                repo_id = f"{parts[1]}/{name}"
                try:
                    hub._require(repo_id)
                except Exception as exc:  # as HfFileSystem.resolve_path: a missing repo is a missing file
                    raise FileNotFoundError(path) from exc
                return resolved_cls(
                    "dataset", repo_id, rev or revision or hub.sha(repo_id), "/".join(parts[3:])
                )

            def _local(self, path: str) -> tuple[str, str]:
                resolved = self.resolve_path(path)
                prefix = f"datasets/{resolved.repo_id}@{resolved.revision}"
                return str(hub.repo_dir(resolved.repo_id) / resolved.path_in_repo), prefix

            def _to_hf(self, info: dict, base_local: str, base_hf: str) -> dict:
                rel = os.path.relpath(info["name"], base_local)
                name = base_hf if rel == "." else f"{base_hf}/{rel.replace(os.sep, '/')}"
                lfs = _lfs_details(info["name"]) if info.get("type") == "file" else None
                return {**info, "name": name, **({"lfs": lfs} if lfs else {})}

            def ls(self, path: str, detail: bool = True, **kwargs: Any) -> list:
                local_path, _ = self._local(path)
                base_hf = self._strip_protocol(path)
                entries = [self._to_hf(e, local_path, base_hf) for e in local.ls(local_path, detail=True)]
                return entries if detail else [e["name"] for e in entries]

            def info(self, path: str, **kwargs: Any) -> dict:
                local_path, _ = self._local(path)
                return self._to_hf(local.info(local_path), local_path, self._strip_protocol(path))

            def _open(self, path: str, mode: str = "rb", block_size: Any = None, **kwargs: Any) -> Any:
                if "r" not in mode:
                    raise PermissionError("the fake hub is read-only through hf://; push with HfApi")
                local_path, _ = self._local(path)
                hub.tokens.append((f"open {self._strip_protocol(path)}", self.token))
                if self.endpoint is not None:  # read over HTTP, by huggingface_hub's own file class
                    size = block_size or self.block_size or "default"
                    return hf_file_system.HfFileSystemFile(self, path, mode=mode, block_size=size, **kwargs)
                f = local._open(local_path, mode)
                # HfFileSystemFile.details: the file's info(), the LFS sha256 of media included
                f.details = self.info(path)
                return f

        return FakeHfFileSystem
