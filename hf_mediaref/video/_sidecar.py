"""Index sidecars: a video's keyframe index shipped beside it (``<media file>.mrindex``), so that a reader
on a fresh machine plans its decode without scanning the video (it reads the container header and the
blocks it decodes).

Format (version 1): gzip-compressed UTF-8 JSON, readable without hf_mediaref::

    {"format": "hf_mediaref.video_index", "version": 1,
     "media": {"size": 19012345, "sha256": "<hex of the whole file>",
               "head_bytes": 4096, "head_sha256": "<hex of its first head_bytes>"},
     "stream": {"index": 0, "time_base": "1/10240", "end_pts": ..., "width": 640, "height": 360,
                "codec": "h264", "pixel_format": "yuv420p", "keyframes_verified": false},
     "frames": {"count": N, "pts_delta": [...], "size": [...], "keyframes": [...],
                "file_order_delta": [...], "offset_gap": [...]}}

``frames`` lists every frame in presentation order: pts (stream ticks) as first value then differences,
packet sizes, and the positions of the frames a decode may start from. Byte offsets are stored in file
order: ``file_order_delta[j]`` is (the presentation position of the j-th packet in the file) - j (B-frame
reordering: small numbers), ``offset_gap[j]`` the bytes between the end of the previous packet and the
start of this one (0 for packets that follow each other). Everything compresses to little (a 6000-frame
video: ~14 KB, mostly the sizes). Where offsets are unknown, ``offset_delta`` (offsets in presentation
order, first value then differences) replaces the two. A reader refuses a ``version`` above its own and
anything malformed (the sidecar is then ignored).

Staleness. A sidecar describes one content, named by its SHA-256. A reader uses it only when the media it
opened is that content:

* a local file: its whole content's SHA-256 must be equal (computed once per version of the file: cached
  under its path, mtime, size and inode);
* the remote says the file's SHA-256 (the Hub's LFS ``sha256`` in an fsspec file's details): it must be equal;
* else the size must be equal, and so must the SHA-256 of the first ``head_bytes`` (4 KiB; 32 KiB in
  sidecars written before: read anyway to open the container). An HTTP ``ETag`` that is a 64-hex SHA-256
  equal to the sidecar's is accepted as proof too.

A stale sidecar is ignored (logged). Even a sidecar that passes is a hint, not the truth: every decode
checks the frames it produces against the index it was planned from, and a disagreement discards the index
and rebuilds it by a scan (:mod:`._truth`), so a tampered frame list never yields a wrong frame.

Bounds. Only ``<media URI>.mrindex`` is read; a local sidecar whose real path is outside the video's real
folder (a symlink out of it) is ignored, never read. Its size is known before it is read (``stat``, an HTTP
``HEAD``, fsspec's ``info``) and held, with its decompressed JSON, to :func:`sidecar_cap` (proportional to
the frames the media can plausibly hold); a larger one, or a gzip bomb, is ignored (logged) and the video
is indexed without it.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import logging
import os
import threading
import zlib
from collections import OrderedDict
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import DecodeTimeoutError, MediaNotFoundError, MediaRefError, describe_uri
from ..io import UriKind, classify_uri, local_path, open_media
from ._index import VideoIndex
from ._index_store import store_dir, store_enabled

logger = logging.getLogger(__name__)

__all__ = [
    "SIDECAR_SUFFIX",
    "SidecarMedia",
    "build_index_sidecars",
    "decode_sidecar",
    "encode_sidecar",
    "fetch_sidecar",
    "index_sidecar_uri",
    "sidecars_enabled",
    "write_index_sidecar",
]

#: Appended to a media file's name: ``videos/ep0.mp4`` -> ``videos/ep0.mp4.mrindex``.
SIDECAR_SUFFIX = ".mrindex"
FORMAT = "hf_mediaref.video_index"
VERSION = 1
#: How much of a file's head the staleness check hashes: what opening a container reads anyway (an HTTP
#: reader's first read, ``io.http_settings.small_read``; the container header: the MP4 ``ftyp`` and ``mdat``
#: or ``moov`` header, the Matroska EBML header, segment info and tracks). Sidecars written before hash 32
#: KiB; a reader hashes what the sidecar says.
HEAD_BYTES = 4 << 10
#: Caps on what a sidecar may hold, from the frames its media can plausibly have: at most one frame per
#: :data:`_MIN_FRAME_BYTES` of media (a packet and its container framing), at most :data:`_MAX_FRAMES`
#: (19 hours at 60 fps), and :data:`_JSON_BYTES_PER_FRAME` of JSON per frame (an honest sidecar writes about
#: 20). The gzip file and its decompressed JSON are both held to :func:`sidecar_cap` bytes.
_MIN_FRAME_BYTES = 16
_MAX_FRAMES = 1 << 22
_JSON_BYTES_PER_FRAME = 48
_JSON_BASE = 16 << 10
#: File name endings of the media :func:`build_index_sidecars` indexes.
VIDEO_SUFFIXES = (
    ".mp4",
    ".m4v",
    ".mov",
    ".mkv",
    ".webm",
    ".avi",
    ".ts",
    ".mts",
    ".m2ts",
    ".flv",
    ".mpg",
    ".mpeg",
)


def sidecar_cap(media_size: int | None) -> int:
    """The most bytes a sidecar of media of ``media_size`` bytes (None: unknown) may take, compressed or
    decompressed: proportional to the frames such media can plausibly hold."""
    frames = _MAX_FRAMES if media_size is None else min(_MAX_FRAMES, max(0, media_size) // _MIN_FRAME_BYTES)
    return _JSON_BASE + _JSON_BYTES_PER_FRAME * (frames + 64)


def _gunzip(data: bytes, cap: int) -> bytes:
    """The gzip member ``data`` decompressed, refusing more than ``cap`` bytes of output (a gzip bomb).

    Raises:
        ValueError: not gzip, truncated, trailing data, or more than ``cap`` bytes.
    """
    inflater = zlib.decompressobj(wbits=31)  # gzip framing
    try:
        out = inflater.decompress(data, cap + 1)
    except zlib.error as exc:
        raise ValueError(f"not a gzip JSON sidecar (zlib.error: {exc})") from exc
    if len(out) > cap or inflater.unconsumed_tail:
        raise ValueError(f"it decompresses to more than {cap:,} bytes")
    if not inflater.eof or inflater.unused_data:
        raise ValueError("not a gzip JSON sidecar (truncated, or data after its gzip stream)")
    return out


def sidecars_enabled() -> bool:
    """Whether readers look for sidecars (``HF_MEDIAREF_INDEX_SIDECARS=0`` turns the lookup off)."""
    value = os.environ.get("HF_MEDIAREF_INDEX_SIDECARS", "1").strip().lower()
    return value not in ("0", "false", "no", "off")


class SidecarMedia:
    """What a sidecar says about the media it indexes."""

    def __init__(self, size: int, sha256: str, head_bytes: int, head_sha256: str):
        self.size, self.sha256, self.head_bytes, self.head_sha256 = size, sha256, head_bytes, head_sha256


def index_sidecar_uri(uri: str) -> str | None:
    """Where the index sidecar of the media at ``uri`` lives: the same URI with :data:`SIDECAR_SUFFIX`
    appended to the file name (before any ``?query``); None for ``data:`` URIs.

    Args:
        uri: a media URI or local path.

    Returns:
        The sidecar's URI, or None.

    Example:
        ```python
        >>> index_sidecar_uri("hf://datasets/org/name@abc/videos/ep0.mp4")
        'hf://datasets/org/name@abc/videos/ep0.mp4.mrindex'
        ```
    """
    kind = classify_uri(uri)
    if kind is UriKind.DATA:
        return None
    if kind is UriKind.HTTP:
        cut = min((i for i in (uri.find("?"), uri.find("#")) if i >= 0), default=len(uri))
        return uri[:cut] + SIDECAR_SUFFIX + uri[cut:]
    return uri + SIDECAR_SUFFIX


# ----------------------------------------------------------------------------------------- format
def _deltas(values: np.ndarray) -> list[int]:
    return np.diff(values, prepend=0).tolist() if values.size else []


def _offsets_doc(offsets: np.ndarray, sizes: np.ndarray) -> dict[str, list[int]]:
    if offsets.size == 0 or offsets.min() < 0:
        return {"offset_delta": _deltas(offsets)}
    order = np.argsort(offsets, kind="stable")
    start, size = offsets[order], sizes[order]
    gap = start - np.concatenate([[0], start[:-1] + size[:-1]])
    return {"file_order_delta": (order - np.arange(order.size)).tolist(), "offset_gap": gap.tolist()}


def _offsets_of(frames: dict[str, Any], sizes: np.ndarray) -> np.ndarray:
    if "offset_delta" in frames:
        return np.cumsum(np.asarray(frames["offset_delta"], dtype=np.int64))
    order = np.asarray(frames["file_order_delta"], dtype=np.int64) + np.arange(sizes.size)
    if sorted(order.tolist()) != list(range(sizes.size)):
        raise ValueError("file_order_delta is not a permutation")
    gap = np.asarray(frames["offset_gap"], dtype=np.int64)
    size = sizes[order]
    start = np.cumsum(gap + np.concatenate([[0], size[:-1]]))
    offsets = np.empty(sizes.size, dtype=np.int64)
    offsets[order] = start
    return offsets


def _stream_doc(index: VideoIndex) -> dict[str, Any]:
    """The sidecar's ``stream`` object: the index's stream facts, the stream's number under ``index``."""
    facts = index.stream_facts()
    return {"index": facts.pop("stream_index"), **facts}


def encode_sidecar(index: VideoIndex, media: SidecarMedia) -> bytes:
    """The sidecar bytes for ``index`` of the media ``media`` describes (gzip JSON, see the module doc)."""
    offsets = index.packet_offsets if index.packet_offsets is not None else np.full(index.num_frames, -1)
    doc = {
        "format": FORMAT,
        "version": VERSION,
        "media": {
            "size": media.size,
            "sha256": media.sha256,
            "head_bytes": media.head_bytes,
            "head_sha256": media.head_sha256,
        },
        "stream": _stream_doc(index),
        "frames": {
            "count": index.num_frames,
            "pts_delta": _deltas(index.pts),
            "size": index.packet_sizes.tolist(),
            "keyframes": index.keyframes(),
            **_offsets_doc(np.asarray(offsets, dtype=np.int64), index.packet_sizes),
        },
    }
    text = json.dumps(doc, separators=(",", ":"))
    return gzip.compress(text.encode("utf-8"), compresslevel=9, mtime=0)


def decode_sidecar(data: bytes, *, max_bytes: int | None = None) -> tuple[SidecarMedia, VideoIndex]:
    """Parse sidecar bytes.

    Args:
        data: the gzip file.
        max_bytes: the most bytes its JSON may decompress to (default: :func:`sidecar_cap` of unknown media).

    Raises:
        ValueError: not a sidecar, too large, a newer format version, or inconsistent content.
    """
    text = _gunzip(data, sidecar_cap(None) if max_bytes is None else max_bytes)
    try:
        doc = json.loads(text.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"not a gzip JSON sidecar ({type(exc).__name__}: {exc})") from exc
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise ValueError("not an hf_mediaref video index")
    if not isinstance(doc.get("version"), int) or doc["version"] > VERSION:
        raise ValueError(f"sidecar format version {doc.get('version')!r}; this hf_mediaref reads {VERSION}")
    try:
        m, s, f = doc["media"], doc["stream"], doc["frames"]
        media = SidecarMedia(int(m["size"]), str(m["sha256"]), int(m["head_bytes"]), str(m["head_sha256"]))
        count = int(f["count"])
        pts = np.cumsum(np.asarray(f["pts_delta"], dtype=np.int64))
        sizes = np.asarray(f["size"], dtype=np.int64)
        if sizes.size != count:
            raise ValueError("frame arrays of different lengths")
        offsets = _offsets_of(f, sizes)
        keys = [int(k) for k in f["keyframes"]]
        if not count or not (pts.size == sizes.size == offsets.size == count):
            raise ValueError("frame arrays of different lengths")
        if (
            np.any(np.diff(pts) <= 0)
            or not keys
            or keys[0] != 0
            or keys != sorted(set(keys))
            or keys[-1] >= count
        ):
            raise ValueError("pts not increasing or keyframes out of range")
        facts = {key: value for key, value in s.items() if key != "index"}
        index = VideoIndex.from_stream_facts(
            {"stream_index": s["index"], **facts},
            pts=pts,
            packet_sizes=sizes,
            keyframe_positions=keys,
            packet_offsets=offsets,
        )
    except (KeyError, TypeError, ValueError, ZeroDivisionError) as exc:
        raise ValueError(f"malformed sidecar: {type(exc).__name__}: {exc}") from exc
    if index.end_pts <= int(pts[-1]):
        raise ValueError("end before the last frame")
    return media, index


# ----------------------------------------------------------------------------------------- reading
class _Refused(Exception):
    """A sidecar not to read (logged as ignored): too large, or a link out of the video's folder."""


def _read_local(uri: str, where: str, cap: int) -> bytes | None:
    """The bytes of the local sidecar ``where`` of the video ``uri``; None when there is none.

    Raises:
        _Refused: it is larger than ``cap``, or its real path is outside the video's real folder (a symlink
            out of the folder: sidecars obey the boundary media do).
    """
    path = local_path(where)
    if not os.path.isfile(path):
        return None
    home = os.path.dirname(os.path.realpath(local_path(uri)))
    if os.path.dirname(os.path.realpath(path)) != home:
        raise _Refused("it links out of the video's folder")
    with open(path, "rb") as f:
        size = os.fstat(f.fileno()).st_size
        if size > cap:
            raise _Refused(f"{size:,} bytes, more than the {cap:,} its video can need")
        data = f.read(cap + 1)
    if len(data) > cap:
        raise _Refused(f"more than the {cap:,} bytes its video can need")
    return data


def _read_remote(where: str, storage_options: dict | None, cap: int) -> bytes:
    """The bytes of the remote sidecar ``where``, its size known (HTTP ``HEAD``, fsspec ``info``) before any
    of it is read.

    Raises:
        _Refused: it is larger than ``cap``.
        MediaNotFoundError, MediaRefError: as :func:`hf_mediaref.io.open_media` and its reads.
    """
    with open_media(where, storage_options=storage_options) as f:
        if isinstance(f, str):  # pragma: no cover - a remote URI never opens as a path
            raise _Refused("not a remote file")
        size = f.seek(0, os.SEEK_END)
        if size > cap:
            raise _Refused(f"{size:,} bytes, more than the {cap:,} its video can need")
        f.seek(0)
        data = f.read(cap + 1)
    if len(data) > cap:
        raise _Refused(f"more than the {cap:,} bytes its video can need")
    return bytes(data)


def fetch_sidecar(
    uri: str, storage_options: dict | None = None, media_size: int | None = None
) -> tuple[SidecarMedia, VideoIndex] | None:
    """The parsed sidecar of ``uri``, or None when there is none, it cannot be read, it is malformed, too
    large for media of ``media_size`` bytes (:func:`sidecar_cap`), or (local) a link out of the video's
    folder (logged). Only ``uri`` + :data:`SIDECAR_SUFFIX` is ever read. Staleness is the caller's check
    (:func:`content_matches`), and the index it holds is a hint that decodes check (:mod:`._truth`).

    Raises:
        DecodeTimeoutError: the operation's deadline passed while it was read.
    """
    if not sidecars_enabled():
        return None
    where = index_sidecar_uri(uri)
    if where is None:
        return None
    cap = sidecar_cap(media_size)
    try:
        if classify_uri(where) in (UriKind.LOCAL, UriKind.FILE):
            data = _read_local(uri, where, cap)
            if data is None:
                return None
        else:
            data = _read_remote(where, storage_options, cap)
    except _Refused as exc:
        logger.warning("ignoring the index sidecar %s: %s", describe_uri(where), exc)
        return None
    except MediaNotFoundError:
        logger.debug("no index sidecar at %s", describe_uri(where))
        return None
    except DecodeTimeoutError:
        raise
    except (MediaRefError, OSError) as exc:
        logger.info("cannot read the index sidecar %s (%s); indexing without it", describe_uri(where), exc)
        return None
    try:
        return decode_sidecar(data, max_bytes=cap)
    except ValueError as exc:
        logger.warning("ignoring the index sidecar %s: %s", describe_uri(where), exc)
        return None


_HEX64 = frozenset("0123456789abcdef")


def _remote_sha256(source: Any) -> tuple[str | None, bool]:
    """``(sha256, authoritative)`` the remote reports for ``source``: the LFS sha256 of an fsspec file
    (authoritative), or an HTTP ETag that looks like one (proof only when equal)."""
    details = getattr(source, "details", None)
    if isinstance(details, dict):
        lfs = details.get("lfs")
        if isinstance(lfs, dict) and lfs.get("sha256"):
            return str(lfs["sha256"]).lower(), True
    etag = getattr(getattr(source, "raw", None), "etag", None)  # io.open_http's ETag
    if isinstance(etag, str):
        tag = etag.removeprefix("W/").strip('"').lower()
        if len(tag) == 64 and set(tag) <= _HEX64:
            return tag, False
    return None, False


def _source_size(source: Any) -> int | None:
    if isinstance(source, str):
        return os.stat(source).st_size
    try:
        here = source.tell()
        size = source.seek(0, os.SEEK_END)
        source.seek(here)
        return int(size)
    except (OSError, ValueError, AttributeError):
        return None


_SHA_CACHE_SIZE = 4096
_sha_cache: OrderedDict[tuple, str] = OrderedDict()
_sha_lock = threading.Lock()


def _stored_sha_path(key: tuple) -> Path:
    return store_dir() / "content-sha256" / hashlib.sha256(repr(key).encode()).hexdigest()


def _load_stored_sha(key: tuple) -> str | None:
    """The content hash a process of this machine computed for the file version ``key`` (the on-disk index
    store's folder; ``HF_MEDIAREF_INDEX_STORE=0``: none)."""
    if not store_enabled():
        return None
    try:
        with open(_stored_sha_path(key), encoding="ascii") as f:
            text = f.read(65).strip().lower()
    except (OSError, UnicodeDecodeError):
        return None
    return text if len(text) == 64 and set(text) <= _HEX64 else None


def _store_sha(key: tuple, value: str) -> None:
    if not store_enabled():
        return
    path = _stored_sha_path(key)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}-{threading.get_ident()}")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp.write_text(value, encoding="ascii")
        os.replace(tmp, path)
    except OSError as exc:
        logger.debug("cannot keep the content hash in %s: %s", path.parent, exc)


def local_sha256(path: str) -> str:
    """The SHA-256 (hex) of the local file ``path``, computed once per version of the file: kept in memory
    and in the on-disk index store's folder under its (real path, mtime, size, inode, device, ctime), so other
    processes (DataLoader workers) do not read the file again."""
    st = os.stat(path)
    key = (os.path.realpath(path), st.st_mtime_ns, st.st_size, st.st_ino, st.st_dev, st.st_ctime_ns)
    with _sha_lock:
        found = _sha_cache.get(key)
        if found is not None:
            _sha_cache.move_to_end(key)
            return found
    value = _load_stored_sha(key) or ""
    if not value:
        digest = hashlib.sha256()
        with open(path, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                digest.update(chunk)
        value = digest.hexdigest()
        _store_sha(key, value)
    with _sha_lock:
        _sha_cache[key] = value
        while len(_sha_cache) > _SHA_CACHE_SIZE:
            _sha_cache.popitem(last=False)
    return value


def content_matches(media: SidecarMedia, source: Any, read_head: Callable[[], bytes] | None = None) -> bool:
    """Whether the media behind ``source`` (a path or an open binary file) is the content ``media``
    describes; ``read_head`` returns its first ``media.head_bytes`` bytes (default: read from ``source``).

    A local file is compared by its whole content's SHA-256 (:func:`local_sha256`, once per file version);
    a remote one by the SHA-256 the remote reports (the Hub's LFS ``sha256``), else by size and head."""
    size = _source_size(source)
    if size is not None and size != media.size:
        return False
    if isinstance(source, str):
        return local_sha256(source) == media.sha256.lower()
    sha, authoritative = _remote_sha256(source)
    if sha is not None and (sha == media.sha256.lower() or authoritative):
        return sha == media.sha256.lower()
    if size is None:
        return False  # without a size, a head alone is not enough
    head = read_head() if read_head is not None else _read_head(source, media.head_bytes)
    return hashlib.sha256(head[: media.head_bytes]).hexdigest() == media.head_sha256


def _read_head(source: Any, n: int) -> bytes:
    if isinstance(source, str):
        with open(source, "rb") as f:
            return f.read(n)
    here = source.tell()
    try:
        source.seek(0)
        parts, left = [], n
        while left > 0:
            chunk = source.read(left)
            if not chunk:
                break
            parts.append(chunk)
            left -= len(chunk)
        return b"".join(parts)
    finally:
        source.seek(here)


# ----------------------------------------------------------------------------------------- writing
def _describe_file(path: str) -> SidecarMedia:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        head = f.read(HEAD_BYTES)
        digest.update(head)
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    size = os.stat(path).st_size
    return SidecarMedia(size, digest.hexdigest(), HEAD_BYTES, hashlib.sha256(head).hexdigest())


def _sidecar_bytes(path: str) -> bytes:
    import contextlib

    from ._container import OpenedVideo
    from ._errors import decode_errors
    from ._index import scan_index

    media = _describe_file(path)
    with decode_errors(path, "index"), contextlib.closing(OpenedVideo(path)) as video:
        index = scan_index(video.container, video.stream)  # the reference: a full demux scan
    if _describe_file(path).sha256 != media.sha256:
        raise MediaRefError(f"{describe_uri(path)} changed while it was indexed", uri=path)
    return encode_sidecar(index, media)


def write_index_sidecar(path: str | os.PathLike, dest: str | os.PathLike | None = None) -> Path:
    """Index the local video ``path`` (a full demux scan) and write its sidecar beside it.

    Readers of the video (local, over HTTP or from the Hub) then load the index from the sidecar instead of
    scanning the file, after checking that it describes the same content (see the docs' concept page
    "Indexes that ship with the data"). :func:`hf_mediaref.push_to_hub` writes sidecars for the videos it
    uploads.

    Args:
        path: a local video file.
        dest: where to write (default: ``path`` + ``".mrindex"``).

    Returns:
        The sidecar's path.

    Raises:
        MediaNotFoundError: ``path`` does not exist.
        MediaDecodeError: it is not a readable video.

    Example:
        ```python
        >>> from hf_mediaref.video import write_index_sidecar
        >>> write_index_sidecar("videos/ep0.mp4")
        PosixPath('videos/ep0.mp4.mrindex')
        ```
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise MediaNotFoundError(f"media file {describe_uri(path)} does not exist", uri=path)
    data = _sidecar_bytes(path)
    out = Path(dest) if dest is not None else Path(path + SIDECAR_SUFFIX)
    tmp = out.with_name(f".{out.name}.tmp-{os.getpid()}")
    tmp.write_bytes(data)
    os.replace(tmp, out)
    return out


def build_index_sidecars(files: Mapping[str, str]) -> dict[str, bytes]:
    """Sidecars for the videos among ``files`` (destination path -> local file), by file name ending.

    A file that cannot be indexed gets no sidecar (logged): readers then index it themselves.

    Args:
        files: destination path (e.g. a path in a Hub repo) -> local file.

    Returns:
        destination path + ``".mrindex"`` -> sidecar bytes.

    Example:
        ```python
        >>> build_index_sidecars({"videos/ep0.mp4": "/data/ep0.mp4"})
        {'videos/ep0.mp4.mrindex': b'...'}
        ```
    """
    out: dict[str, bytes] = {}
    for dest, local in sorted(files.items()):
        if not dest.lower().endswith(VIDEO_SUFFIXES):
            continue
        try:
            out[dest + SIDECAR_SUFFIX] = _sidecar_bytes(local)
        except MediaRefError as exc:
            logger.warning("no index sidecar for %s: %s", describe_uri(local), exc)
    return out
