"""Keyframe indexes of remote videos, kept on disk so that a scan (a whole-file read) happens once per version
of a video, not once per process.

A DataLoader with N workers, or a new training run, would otherwise download every remote video N times just
to index it. An index is stored only when the source reports a version (HTTP ``ETag``/``Last-Modified``, an
fsspec file's etag/sha/mtime; see :func:`hf_mediaref.io.sources.source_version`), and it is looked up under
(URI, storage options, version, size): a changed remote file is scanned again.

Local files whose index took a scan (Matroska, WebM, MPEG-TS...: a read of the whole file; MP4's ``moov``
tables and sidecars are cheap to read again) are stored too, so a fresh process (a DataLoader or Ray worker)
does not scan them again. Their source key holds path, mtime, size and inode, and the stored version adds
the file's ``st_ctime_ns``, which every change of the file's content or metadata sets and no tool can set
back (``touch``, ``cp -p``, ``rsync -t`` and tar restore mtime, not ctime): a rewritten file is scanned again.

Settings (read at each use): ``HF_MEDIAREF_CACHE_DIR`` (default ``$XDG_CACHE_HOME/hf_mediaref`` or
``~/.cache/hf_mediaref``); ``HF_MEDIAREF_INDEX_STORE=0`` turns the store off. Files are written atomically, so
concurrent workers are safe; an unreadable file is ignored and rewritten.

A stored index is a hint, like a sidecar: decodes check it (:mod:`._truth`), and one they contradict is
replaced by a scan. Reads are capped: a file, or an array in it, larger than :data:`_MAX_BYTES` (an index of
4 million frames) is ignored (logged) before it is read.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
from pathlib import Path

import numpy as np

from ._identity import local_change_time
from ._index import VideoIndex

logger = logging.getLogger(__name__)

__all__ = ["load_stored_index", "local_store_version", "store_dir", "store_enabled", "store_index"]

_FORMAT = 1
#: The most bytes a stored index may take, on disk and as arrays: 32 bytes for each of 4 Mi frames (pts,
#: size, offset, keyframe position), and 1 MiB for the rest.
_MAX_BYTES = (1 << 20) + 32 * (1 << 22)


def store_enabled() -> bool:
    return os.environ.get("HF_MEDIAREF_INDEX_STORE", "1").strip().lower() not in ("0", "false", "no", "off")


def store_dir() -> Path:
    """Where indexes are kept: ``$HF_MEDIAREF_CACHE_DIR/indexes``."""
    root = os.environ.get("HF_MEDIAREF_CACHE_DIR")
    if not root:
        base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
        root = os.path.join(base, "hf_mediaref")
    return Path(root) / "indexes"


def local_store_version(uri: str, key: tuple) -> str | None:
    """The version a local file's index is stored under (its inode's change time), or None for a source
    that is not a local file, or a local file that is gone or no longer the one ``key`` names."""
    ctime = local_change_time(uri, key)
    return None if ctime is None else f"local:{ctime}"


def _path(key: tuple, version: str) -> Path:
    digest = hashlib.sha256(repr((_FORMAT, key, version)).encode()).hexdigest()
    return store_dir() / f"{digest}.npz"


def load_stored_index(key: tuple, version: str) -> VideoIndex | None:
    """The index stored for ``key`` (source key) at ``version``; None when absent, disabled or unreadable."""
    if not store_enabled():
        return None
    path = _path(key, version)
    try:
        size = path.stat().st_size
        if size > _MAX_BYTES:
            raise ValueError(f"{size:,} bytes, more than the {_MAX_BYTES:,} an index takes")
        with np.load(path, allow_pickle=False) as data:
            declared = sum(info.file_size for info in data.zip.infolist())
            if declared > _MAX_BYTES:
                raise ValueError(
                    f"its arrays hold {declared:,} bytes, more than the {_MAX_BYTES:,} an index takes"
                )
            meta = json.loads(str(data["meta"]))
            index = VideoIndex.from_stream_facts(
                meta,
                pts=data["pts"].astype(np.int64),
                packet_sizes=data["packet_sizes"].astype(np.int64),
                keyframe_positions=[int(k) for k in data["keyframes"]],
                packet_offsets=data["packet_offsets"].astype(np.int64) if "packet_offsets" in data else None,
            )
    except FileNotFoundError:
        return None
    except Exception as exc:  # a truncated or foreign file: scan again and overwrite it
        logger.warning("ignoring unreadable stored keyframe index %s: %s: %s", path, type(exc).__name__, exc)
        return None
    if meta.get("key") != repr(key) or index.num_frames == 0:
        return None
    return index


def store_index(key: tuple, version: str, index: VideoIndex) -> None:
    """Keep ``index`` for ``key`` at ``version`` (best effort: a failure to write is logged, not raised)."""
    if not store_enabled():
        return
    path = _path(key, version)
    meta = {"key": repr(key), **index.stream_facts()}
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=".npz")
        try:
            arrays: dict[str, np.ndarray] = {
                "meta": np.array(json.dumps(meta)),
                "pts": index.pts,
                "packet_sizes": index.packet_sizes,
                "keyframes": np.asarray(index.keyframes(), dtype=np.int64),
            }
            if index.packet_offsets is not None:
                arrays["packet_offsets"] = index.packet_offsets
            with os.fdopen(fd, "wb") as f:
                np.savez(f, **arrays)  # type: ignore[arg-type]
            os.replace(tmp, path)  # atomic: readers see the old file or the whole new one
        except BaseException:
            os.unlink(tmp)
            raise
    except OSError as exc:
        logger.warning("cannot store keyframe index in %s: %s", path.parent, exc)
