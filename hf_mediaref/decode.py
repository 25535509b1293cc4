"""The decode façade: :func:`batch_decode` for any mix of images and video frames, and :class:`DecodeOptions`,
the one set of decode options that every entry point takes.

Every way of getting pixels goes through here: :func:`batch_decode`, ``MediaRef.to_rgb_array`` /
``to_pil_image``, the ``"mediaref"`` format of ``datasets``, :func:`hf_mediaref.decode_transform` and
:func:`hf_mediaref.embed`. Options are validated once, when a :class:`DecodeOptions` is built.

This module works on the two fields of a ref (``uri``, ``pts_ns``) and never imports the value types at run
time, so that ``MediaRef`` (above it) can call it: the import graph has no cycle."""

from __future__ import annotations

import collections
import concurrent.futures
import contextlib
import contextvars
import dataclasses
import functools
import logging
import operator
import os
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any, ClassVar, Literal, cast

import numpy as np

from ._deadline import deadline
from ._executor import Task, core_budget, run_tasks
from ._fields import coerce_pts_ns, coerce_uri, invalid_ref
from ._optional import require
from .errors import InvalidRefError, RemoteChangedError
from .io import (
    DEFAULT_IO_CONCURRENCY,
    MediaAccess,
    adopt_ranges,
    fetches_ahead,
    load_image_rgb,
    reading_with,
    release_ranges,
)
from .video import (
    BatchDecodingStrategy,
    ChannelsFirst,
    check_device,
    decoding_channels_first,
    forget_source,
    plan_videos,
    record_stats,
    writing_frames_into,
)

if TYPE_CHECKING:  # pragma: no cover
    from .core import MediaRef

__all__ = ["DECODERS", "ORIENTATIONS", "OUTPUTS", "DecodeOptions", "batch_decode"]

logger = logging.getLogger(__name__)

#: The decoder backends.
DECODERS = ("pyav", "torchcodec")
#: What a decoded frame is: a numpy array, a torch tensor or a PIL image.
OUTPUTS = ("numpy", "torch", "pil")
#: Which way up frames come: as displayed (rotation metadata applied) or as stored.
ORIENTATIONS = ("display", "stored")

_IMAGE_COST = 4.0  # an image load, in decoded-frame units, for scheduling


def _check_size(size: Any) -> tuple[int, int] | None:
    if size is None:
        return None
    try:
        height, width = (operator.index(v) for v in size)
    except (TypeError, ValueError):
        raise ValueError(f"size must be (height, width) with two ints, got {size!r}") from None
    if isinstance(size, (str, bytes)) or height < 1 or width < 1:
        raise ValueError(f"size must be (height, width) with positive ints, got {size!r}")
    return height, width


@dataclasses.dataclass(frozen=True)
class DecodeOptions:
    """How refs become pixels. Validated once, when built; every decode entry point accepts one.

    Args:
        decoder: ``"pyav"`` (default) or ``"torchcodec"``. Both return the same frame for the same ref.
        strategy: how frames of one video are grouped into seek + decode spans
            (:class:`~hf_mediaref.video.BatchDecodingStrategy` or its value); every strategy returns the same
            frames. Default ``SEQUENTIAL_PER_KEYFRAME_BLOCK``.
        size: ``(height, width)`` to resize to during colour conversion (images: bilinear), or ``None``.
        output: ``"numpy"`` (uint8 arrays), ``"torch"`` (uint8 tensors) or ``"pil"`` (RGB images).
        channels_first: ``(3, H, W)`` instead of ``(H, W, 3)`` (numpy and torch only).
        storage_options: fsspec options for remote URIs (``hf://``, ``s3://``...).
        max_workers: most threads a call keeps busy (decode workers x codec threads); default: the CPUs this
            process may use, or 1 inside a torch DataLoader worker.
        device: TorchCodec's decoding device, ``"cpu"`` or ``"cuda[:N]"`` (CUDA only with
            ``decoder="torchcodec"``).
        timeout: seconds the whole call may take, or ``None`` (each HTTP request still has its own deadline,
            ``HF_MEDIAREF_HTTP_DEADLINE``): no HTTP request outlives it and no decode task starts after it
            (:class:`~hf_mediaref.errors.DecodeTimeoutError`, or a ``RemoteAccessError`` for a cut request).
        io_concurrency: requests in flight per host for remote (``http(s)://``) media (default 16), apart from
            the decode threads: a batch fetches the byte ranges it needs (heads, indexes, keyframe blocks)
            with that many requests at once while it decodes; 1 reads as each decode asks (see
            ``docs/guides/remote.md``).
        orientation: ``"display"`` (default): frames as a player shows them, a video's rotation display
            matrix (phones write one) and an image's EXIF orientation applied, as TorchCodec does; ``size`` is
            then the displayed ``(height, width)``. ``"stored"``: the pixels as encoded, as a plain PyAV
            decode gives them.

    Raises:
        ValueError: for an unknown decoder, strategy, output or orientation, a malformed ``size``,
            ``channels_first`` with ``output="pil"``, ``max_workers < 1``, a non-positive ``timeout``, or a
            CUDA device with the PyAV decoder.

    Example:
        ```python
        >>> from hf_mediaref import DecodeOptions
        >>> opts = DecodeOptions(size=(224, 224), output="torch", channels_first=True)
        >>> opts.replace(decoder="torchcodec").decoder
        'torchcodec'
        ```
    """

    decoder: Literal["pyav", "torchcodec"] = "pyav"
    strategy: BatchDecodingStrategy = BatchDecodingStrategy.SEQUENTIAL_PER_KEYFRAME_BLOCK
    size: tuple[int, int] | None = None
    output: Literal["numpy", "torch", "pil"] = "numpy"
    channels_first: bool = False
    storage_options: dict[str, Any] | None = None
    max_workers: int | None = None
    device: str = "cpu"
    timeout: float | None = None
    orientation: Literal["display", "stored"] = "display"
    io_concurrency: int = DEFAULT_IO_CONCURRENCY

    def __post_init__(self) -> None:
        if self.decoder not in DECODERS:
            raise ValueError(f"unknown decoder {self.decoder!r}; use one of {DECODERS}")
        if self.output not in OUTPUTS:
            raise ValueError(f"output must be one of {OUTPUTS}, got {self.output!r}")
        strategy = (
            self.strategy
            if self.strategy is not None
            else BatchDecodingStrategy.SEQUENTIAL_PER_KEYFRAME_BLOCK
        )
        object.__setattr__(self, "strategy", BatchDecodingStrategy(strategy))
        object.__setattr__(self, "size", _check_size(self.size))
        if not isinstance(self.channels_first, (bool, np.bool_)):
            raise ValueError(f"channels_first must be a bool, got {self.channels_first!r}")
        if self.output == "pil" and self.channels_first:
            raise ValueError("channels_first does not apply to output='pil'")
        if self.storage_options is not None and not isinstance(self.storage_options, Mapping):
            raise ValueError(f"storage_options must be a dict, got {type(self.storage_options).__name__}")
        if self.max_workers is not None:
            workers = operator.index(self.max_workers)
            if workers < 1:
                raise ValueError(f"max_workers must be >= 1, got {self.max_workers}")
            object.__setattr__(self, "max_workers", workers)
        object.__setattr__(self, "device", check_device(self.device))
        if self.timeout is not None:
            if isinstance(self.timeout, bool) or not float(self.timeout) > 0:
                raise ValueError(f"timeout must be a positive number of seconds, got {self.timeout!r}")
            object.__setattr__(self, "timeout", float(self.timeout))
        if self.orientation not in ORIENTATIONS:
            raise ValueError(f"orientation must be one of {ORIENTATIONS}, got {self.orientation!r}")
        concurrency = operator.index(self.io_concurrency)
        if isinstance(self.io_concurrency, bool) or concurrency < 1:
            raise ValueError(f"io_concurrency must be >= 1, got {self.io_concurrency!r}")
        object.__setattr__(self, "io_concurrency", concurrency)
        if self.device != "cpu" and self.decoder != "torchcodec":
            raise ValueError(f"device={self.device!r} needs decoder='torchcodec' (PyAV decodes on the CPU)")

    def replace(self, **changes: Any) -> DecodeOptions:
        """A copy with ``changes`` applied (validated again); ``None`` values leave a field as it is."""
        given = {k: v for k, v in changes.items() if v is not None}
        return dataclasses.replace(self, **given) if given else self

    def with_credentials(self, access: MediaAccess | Iterable[MediaAccess] | None) -> DecodeOptions:
        """These options reading with the credentials of ``access`` (of several accesses, the first that has
        any; see :meth:`hf_mediaref.MediaAccess.engine_storage_options`), unless ``storage_options`` were
        given: given ones win."""
        if self.storage_options is not None:
            return self
        accesses = [access] if isinstance(access, MediaAccess) else list(access or ())
        creds = next((c for a in accesses if (c := a.engine_storage_options()) is not None), None)
        return self if creds is None else self.replace(storage_options=creds)

    @classmethod
    def resolve(cls, options: DecodeOptions | None = None, **changes: Any) -> DecodeOptions:
        """``options`` (default: ``DecodeOptions()``) with the given keyword arguments (not ``None``) applied.

        Entry points take an ``options`` object and the same names as keyword arguments; this merges them.

        Raises:
            TypeError: when ``options`` is not a :class:`DecodeOptions` or a name is not an option.
        """
        if options is None:
            options = cls()
        elif not isinstance(options, DecodeOptions):
            raise TypeError(f"options must be a DecodeOptions, got {type(options).__name__}")
        unknown = sorted(set(changes) - {f.name for f in dataclasses.fields(cls)})
        if unknown:
            raise TypeError(
                f"unknown decode option(s) {unknown}; options are {[f.name for f in dataclasses.fields(cls)]}"
            )
        return options.replace(**changes)


# ---------------------------------------------------------------------------------------------------- refs
def _ref_fields(refs: Iterable[Any], carried: list[Any] | None = None) -> list[tuple[str, int | None]]:
    """``(uri, pts_ns)`` of each ref: ``MediaRef`` s (or objects with those attributes) and mappings; a
    malformed one raises :class:`~hf_mediaref.errors.InvalidRefError` naming ``refs[i]`` and its value.
    ``carried``, when given, receives the access each ref carries (``MediaRef._access``: the dataset's that
    resolved it; ``None`` for a dict or a ref built in code)."""
    if isinstance(refs, (str, bytes, Mapping)) or hasattr(refs, "pts_ns") or not isinstance(refs, Iterable):
        raise TypeError(f"refs must be a sequence of MediaRef (or dicts), got {type(refs).__name__}")
    out = []
    for i, ref in enumerate(refs):
        if carried is not None:
            carried.append(_carried_access(ref))
        if ref is None:
            raise InvalidRefError(f"refs[{i}] is None, not a media reference")
        if isinstance(ref, Mapping):
            uri, pts = ref.get("uri"), ref.get("pts_ns")
            extra = sorted(set(ref) - {"uri", "pts_ns"})
            if extra:
                reason = f"a ref dict has keys 'uri' and 'pts_ns' only, got unexpected {extra}"
                raise invalid_ref(reason, uri, pts, where=f"refs[{i}]")
        elif hasattr(ref, "uri") and hasattr(ref, "pts_ns"):
            uri, pts = ref.uri, ref.pts_ns
        else:
            raise TypeError(f"refs[{i}] must be a MediaRef or a dict, got {type(ref).__name__}")
        try:
            out.append((coerce_uri(uri), coerce_pts_ns(pts)))
        except ValueError as exc:  # an InvalidRefError without its place
            raise invalid_ref(str(exc), uri, pts, where=f"refs[{i}]") from None
    return out


def _carried_access(ref: Any) -> MediaAccess | None:
    """The access a ``MediaRef`` carries (``MediaRef._access``: the dataset's that checked it); ``None`` for a
    ref built in code and anything else."""
    access = getattr(ref, "_access", None)
    return access if isinstance(access, MediaAccess) else None


# ---------------------------------------------------------------------------------------------------- output
def _to_output(frame: Any, options: DecodeOptions) -> Any:
    """An owned frame of the requested kind from a decoded (H, W, 3) frame (numpy array or torch tensor), or
    a (3, H, W) one that PyAV converted straight to planes (:class:`~.video._pyav.ChannelsFirst`, only when
    ``channels_first`` was asked for): written once, never transposed."""
    if isinstance(frame, ChannelsFirst):
        planar = frame.view(np.ndarray)
        if options.output == "torch":
            return require("torch", purpose='output="torch"').from_numpy(planar)
        return planar
    if options.output == "torch":
        torch = require("torch", purpose='output="torch"')
        tensor = frame if isinstance(frame, torch.Tensor) else torch.from_numpy(frame)
        return tensor.permute(2, 0, 1).contiguous() if options.channels_first else tensor
    if not isinstance(frame, np.ndarray):  # a tensor from TorchCodec
        frame = frame.cpu().numpy()
    if options.output == "pil":
        from PIL import Image

        return Image.fromarray(frame, "RGB")
    return np.ascontiguousarray(frame.transpose(2, 0, 1)) if options.channels_first else frame


def _copy(value: Any) -> Any:
    return value.clone() if hasattr(value, "clone") else value.copy()


def _assemble(frames: Sequence[Any], options: DecodeOptions) -> list[Any]:
    """One output per request; a frame answering several requests is copied: every element is its own."""
    out: list[Any] = []
    used: set[int] = set()
    for frame in frames:
        value = _to_output(frame, options)
        if id(frame) in used and options.output != "pil":
            value = _copy(value)
        used.add(id(frame))
        out.append(value)
    return out


#: A request's destination: given its request number in the engine call and the shape of its converted
#: frame, the array to write the frame into (C-contiguous uint8 of that shape, in the output layout), or None.
Into = Callable[[int, tuple[int, ...]], "np.ndarray | None"]

#: Where the engine calls started in this context write their frames (:func:`decoding_into`).
_INTO: contextvars.ContextVar[Into | None] = contextvars.ContextVar("hf_mediaref_decoding_into", default=None)


@contextlib.contextmanager
def decoding_into(into: Into | None) -> Iterator[None]:
    """Within the block, :func:`batch_decode` converts the frame of its request ``i`` straight into
    ``into(i, shape)`` when that gives an array (PyAV decodes; the first request of each frame), and returns
    it there: an output the caller laid out (a window's rows, :class:`~hf_mediaref.hf.FrameWindows`) written
    once, not stacked afterwards. Frames decoded elsewhere (TorchCodec, a video indexed again, a shape that
    does not fit) come back as they always do; the caller copies those. ``None``: no destinations."""
    token = _INTO.set(into)
    try:
        yield
    finally:
        _INTO.reset(token)


class FrameStack:
    """``count`` frames of one shape in one ``(count, *frame)`` uint8 array that an engine call writes them
    into (:func:`decoding_into`): allocated when the decode first writes into it, with that frame's shape.
    :meth:`slot` gives the destination of frame ``j``; :meth:`filled`, after the call, the array holding the
    frames it returned (each copied in unless it was written into its slot), or ``None`` where one does not
    fit. Thread-safe: spans decoding on several threads write into one stack."""

    def __init__(self, count: int):
        self.count = count
        self.array: np.ndarray | None = None
        self._lock = threading.Lock()

    def slot(self, j: int, shape: tuple[int, ...]) -> np.ndarray | None:
        """Where frame ``j`` of ``shape`` goes (None: another shape than the stack's)."""
        array = self.array
        if array is None:
            with self._lock:
                if self.array is None:
                    self.array = np.empty((self.count, *shape), dtype=np.uint8)
                array = self.array
        return array[j] if array.shape[1:] == shape else None

    def filled(self, frames: Sequence[Any]) -> np.ndarray | None:
        """The stack holding ``frames`` (numpy arrays or CPU tensors, in order; each copied in unless it is
        already its own slot, such as a frame two requests share, TorchCodec's or a rescan's); None when a
        frame does not fit (another shape, a GPU tensor, a PIL image) or nothing was written."""
        array = self.array
        if array is None or len(frames) != self.count:
            return None
        base, step = array.__array_interface__["data"][0], array.strides[0]
        for j, frame in enumerate(frames):
            if isinstance(frame, np.ndarray):
                address = frame.__array_interface__["data"][0] if frame.flags.c_contiguous else None
            elif getattr(getattr(frame, "device", None), "type", None) == "cpu":  # a torch tensor
                address = frame.data_ptr() if frame.is_contiguous() else None
                frame = frame.numpy()
            else:
                return None
            if frame.shape != array.shape[1:]:
                return None
            if address != base + j * step:  # not decoded into its slot
                array[j] = frame
        return array


# ---------------------------------------------------------------------------------------------------- batch
def batch_decode(
    refs: Sequence[MediaRef | Mapping[str, Any]],
    strategy: BatchDecodingStrategy | str | None = None,
    decoder: Literal["pyav", "torchcodec"] | None = None,
    *,
    size: tuple[int, int] | None = None,
    output: Literal["numpy", "torch", "pil"] | None = None,
    channels_first: bool | None = None,
    storage_options: dict[str, Any] | None = None,
    max_workers: int | None = None,
    device: str | None = None,
    timeout: float | None = None,
    orientation: Literal["display", "stored"] | None = None,
    io_concurrency: int | None = None,
    options: DecodeOptions | None = None,
    access: MediaAccess | None = None,
) -> list[Any]:
    """Load every ref (video frames and images) and return one RGB frame per ref, in input order.

    Each video is opened once and each needed keyframe block decoded once, whatever the order of the refs;
    blocks of every video and image loads run in parallel.

    Args:
        refs: ``MediaRef`` s or ``{"uri", "pts_ns"}`` dicts; duplicates, any order, many videos and
            still images (``pts_ns=None``) mixed.
        strategy: with ``decoder``, ``size``, ``output``, ``channels_first``, ``storage_options``,
            ``max_workers``, ``device``, ``timeout``, ``orientation`` and ``io_concurrency``: the fields of
            :class:`DecodeOptions`; given ones override ``options``.
        options: a :class:`DecodeOptions` (default: ``DecodeOptions()``).
        access: who may read what (:class:`~hf_mediaref.MediaAccess`): relative URIs resolve against its
            root, every URI is checked against it before anything is read, ``http(s)`` URLs it does not allow
            connect to public addresses only, and its credentials are used where no ``storage_options`` are
            given. ``None``: each ref reads under the access it carries (refs taken out of a dataset,
            ``ds[i]["frame"]``, carry the dataset's; refs of several datasets are decoded per dataset, in
            one call), and refs you built in code (and dicts), which carry none, are read as they are.

    Returns:
        One frame per ref, in order: ``(H, W, 3)`` uint8 (or ``(3, H, W)`` with ``channels_first``) numpy
        arrays, torch tensors or RGB PIL images. Every element is its own object, duplicates included.

    Raises:
        MediaNotFoundError: a file, object or URL does not exist.
        MediaDecodeError: corrupt or truncated media, or a decompression bomb.
        FrameOutOfRangeError: a ``pts_ns`` at or past the end of its video (the message gives the duration).
        UnsupportedURIError: a URI scheme that cannot be read.
        UnresolvedPathError: a relative URI and no ``access`` root to resolve it against.
        UntrustedRefError: a URI outside ``access`` (nothing is read).
        RemoteAccessError: a remote read failed (``RemoteChangedError``: a file changed twice while read).
        DecodeTimeoutError: the call did not finish within ``timeout``.
        ValueError / TypeError: malformed refs or options.

    Example:
        ```python
        >>> import hf_mediaref
        >>> from hf_mediaref import MediaRef
        >>> refs = [MediaRef("ep0.mp4", 1_500_000_000), MediaRef("goal.png"), MediaRef("ep0.mp4", 0)]
        >>> frames = hf_mediaref.batch_decode(refs, size=(224, 224), output="torch", channels_first=True)
        >>> frames[0].shape
        torch.Size([3, 224, 224])
        ```
    """
    opts = DecodeOptions.resolve(
        options,
        strategy=strategy,
        decoder=decoder,
        size=size,
        output=output,
        channels_first=channels_first,
        storage_options=storage_options,
        max_workers=max_workers,
        device=device,
        timeout=timeout,
        orientation=orientation,
        io_concurrency=io_concurrency,
    )
    carried: list[MediaAccess | None] = []
    fields = _ref_fields(refs, carried if access is None else None)
    record_stats(calls=1, requested_refs=len(fields))
    if not fields:
        return []
    groups = {access: range(len(fields))} if access is not None else _by_access(carried)
    planar = decoding_channels_first() if opts.channels_first else contextlib.nullcontext()
    with deadline(opts.timeout), planar:
        if len(groups) == 1:
            frames = _read_with(fields, opts, next(iter(groups)))
        else:  # refs of several datasets: each group under its own access, put back in order
            frames = [None] * len(fields)
            into = _INTO.get()
            for group_access, rows in groups.items():
                local = None if into is None else functools.partial(_in_group, into, rows)
                with decoding_into(local):
                    group = _read_with([fields[i] for i in rows], opts, group_access)
                for i, frame in zip(rows, group, strict=True):
                    frames[i] = frame
    record_stats(returned_frames=len(frames))
    return _assemble(frames, opts)


def _in_group(into: Into, rows: Sequence[int], request: int, shape: tuple[int, ...]) -> np.ndarray | None:
    """``into`` for the request numbered ``request`` in a group of the call's requests (``rows``)."""
    return into(rows[request], shape)


def _by_access(carried: list[MediaAccess | None]) -> dict[MediaAccess | None, Sequence[int]]:
    """The positions of the refs carrying each access (``None``: refs built in code, dicts); one group in the
    common case, refs all taken out of one dataset (one access object) or all built in code."""
    first = carried[0]
    if all(a is first for a in carried):
        return {first: range(len(carried))}
    groups: dict[MediaAccess | None, list[int]] = {}
    for i, a in enumerate(carried):
        groups.setdefault(a, []).append(i)
    return cast(dict[MediaAccess | None, Sequence[int]], groups)


def _read_with(
    fields: list[tuple[str, int | None]], options: DecodeOptions, access: MediaAccess | None
) -> list[Any]:
    """Decoded frames for ``fields`` read under ``access`` (resolved and checked against it, its credentials
    and its public-address rule), or as they are (``None``)."""
    if access is not None:
        fields = _resolved(fields, access)
        options = options.with_credentials(access)
    with reading_with(access):
        return _decode_checked(fields, options)


def _resolved(fields: list[tuple[str, int | None]], access: MediaAccess) -> list[tuple[str, int | None]]:
    """``fields`` with each distinct URI resolved and checked against ``access`` once."""
    resolved: dict[str, str] = {}
    out = []
    for uri, pts in fields:
        target = resolved.get(uri)
        if target is None:
            target = resolved[uri] = access.resolve(uri)
        out.append((target, pts))
    return out


_planners: dict[int, concurrent.futures.ThreadPoolExecutor] = {}


def fetch_ahead(
    refs: Sequence[MediaRef | Mapping[str, Any]],
    options: DecodeOptions | None = None,
    access: MediaAccess | None = None,
) -> concurrent.futures.Future | None:
    """Start, on a background thread, what a later :func:`batch_decode` of ``refs`` reads from remote
    (``http(s)``, ``hf://``, ``s3://``, ``gs://``) videos: their first touches (heads, indexes) and the byte
    ranges of their planned spans, at most ``options.io_concurrency`` requests in flight per host, so that the
    later call finds them fetched or in flight (a stream of batches: the next one's while this one decodes).
    Nothing is decoded and nothing is raised: the later call reads what is missing and raises what it raises.
    Returns the background job (None: nothing to fetch).

    Args:
        refs: as for :func:`batch_decode`.
        options: the :class:`DecodeOptions` of the later call.
        access: its :class:`~hf_mediaref.MediaAccess` (refs resolve and are checked against it; the fetches
            follow its public-address rule); ``None``: the fetches follow the rules of the accesses the refs
            carry (see :func:`batch_decode`).
    """
    opts = DecodeOptions.resolve(options)
    if opts.io_concurrency <= 1:
        return None
    try:
        carried: list[MediaAccess | None] = []
        fields = _ref_fields(refs, carried)
        if access is None:  # the accesses the refs carry: of several, fetched under all their rules
            accesses = [a for a in _by_access(carried) if a is not None]
            access = accesses[0] if len(accesses) == 1 and None not in carried else None
            rules: Any = accesses if access is None else access
        else:
            rules = access
        fields = [f for f in fields if f[1] is not None]
        if access is not None:
            fields = _resolved(fields, access)
            opts = opts.with_credentials(access)
    except Exception as exc:  # the later call raises it, naming the ref
        logger.debug("nothing fetched ahead: %s", exc)
        return None
    videos: dict[str, list[int]] = {}
    for uri, pts in fields:
        if fetches_ahead(uri):  # http(s), hf://, s3:// and gs://
            videos.setdefault(uri, []).append(cast(int, pts))
    if not videos:
        return None
    planned_for = _AheadOf(fields)  # the later call of these refs takes over what is fetched for it
    pid = os.getpid()  # a forked child (a DataLoader worker) starts its own thread
    planner = _planners.get(pid)
    if planner is None:
        planner = _planners[pid] = concurrent.futures.ThreadPoolExecutor(
            1, thread_name_prefix="hf_mediaref-plan"
        )
    return planner.submit(contextvars.copy_context().run, _plan_ahead, videos, opts, rules, planned_for)


class _AheadOf:
    """What the byte ranges :func:`fetch_ahead` fetches are fetched for (their owner in
    :mod:`hf_mediaref.io._ranges`): the later call of the same refs takes it (:meth:`take`) and adopts them
    (:func:`hf_mediaref.io._ranges.adopt`), so its reads count once and its end drops what they left; until
    then a batch decoding now that reads the same bytes adds its reads to them instead of taking them over."""

    #: The refs' keys of the latest fetches ahead, newest last (a few batches ahead at most are in use).
    _waiting: ClassVar[collections.OrderedDict[frozenset, _AheadOf]] = collections.OrderedDict()
    _lock: ClassVar[threading.Lock] = threading.Lock()

    def __init__(self, fields: list[tuple[str, int | None]]):
        key = frozenset(fields)
        with self._lock:
            self._waiting.pop(key, None)
            self._waiting[key] = self
            while len(self._waiting) > 64:
                self._waiting.popitem(last=False)

    @classmethod
    def take(cls, fields: list[tuple[str, int | None]]) -> _AheadOf | None:
        """What was fetched ahead for the video refs of ``fields``, or None (every call asks: when nothing was
        ever fetched ahead, no key is built)."""
        if not cls._waiting:
            return None
        with cls._lock:
            return cls._waiting.pop(frozenset(f for f in fields if f[1] is not None), None)


def _plan_ahead(
    videos: dict[str, list[int]], options: DecodeOptions, rules: Any, planned_for: _AheadOf
) -> None:
    try:
        with deadline(options.timeout), reading_with(rules):
            _plan(videos, options, core_budget(options.max_workers), planned_for, later=True)
    except Exception as exc:  # the later call reads (and raises) itself
        logger.debug("fetching ahead stopped: %s", exc)


def _plan(
    videos: dict[str, list[int]], options: DecodeOptions, budget: int, owner: object, later: bool = False
) -> list[Any]:
    """:func:`~hf_mediaref.video.plan_videos` of ``videos`` (URI -> times) with ``options``' fields: the one
    place the options reach the planner (a batch's decode and :func:`fetch_ahead`)."""
    return plan_videos(
        videos,
        decoder=options.decoder,
        strategy=options.strategy,
        size=options.size,
        storage_options=options.storage_options,
        device=options.device,
        orientation=options.orientation,
        budget=budget,
        io_concurrency=options.io_concurrency,
        owner=owner,
        later=later,
    )


def _load_image(uri: str, options: DecodeOptions, _threads: int) -> np.ndarray:
    return load_image_rgb(
        uri, size=options.size, storage_options=options.storage_options, orientation=options.orientation
    )


def _decode_checked(fields: list[tuple[str, int | None]], options: DecodeOptions) -> list[Any]:
    """:func:`_decode`, once more after a remote file changed under it (its cached index and decoders are
    dropped first); a second change raises :class:`~hf_mediaref.errors.RemoteChangedError`."""
    try:
        return _decode(fields, options)
    except RemoteChangedError as exc:
        logger.warning("%s; dropping what was cached of it and decoding the batch again", exc)
        if exc.uri is not None:
            forget_source(exc.uri, options.storage_options)
        return _decode(fields, options)


def _decode(fields: list[tuple[str, int | None]], options: DecodeOptions) -> list[Any]:
    """Decoded (H, W, 3) frames for ``fields``, in order (a frame shared by requests is one object)."""
    budget = core_budget(options.max_workers)
    videos: dict[str, list[int]] = {}
    images: dict[str, list[int]] = {}
    for i, (uri, pts) in enumerate(fields):
        (videos if pts is not None else images).setdefault(uri, []).append(i)
    owner = object()  # the byte ranges fetched ahead for this batch, dropped when it is done
    planned_for = _AheadOf.take(fields) if videos else None
    if planned_for is not None:  # fetched ahead of this call (fetch_ahead of the same refs)
        adopt_ranges(planned_for, owner)
    try:
        return _decode_planned(fields, options, budget, videos, images, owner)
    finally:
        release_ranges(owner)


def _decode_planned(
    fields: list[tuple[str, int | None]],
    options: DecodeOptions,
    budget: int,
    videos: dict[str, list[int]],
    images: dict[str, list[int]],
    owner: object,
) -> list[Any]:
    plans = _plan(
        {uri: [cast(int, fields[i][1]) for i in rows] for uri, rows in videos.items()}, options, budget, owner
    )
    tasks: list[Task] = [task for plan in plans for task in plan.tasks]
    tasks += [Task(_IMAGE_COST, functools.partial(_load_image, uri, options)) for uri in images]
    into = _INTO.get()
    if into is None or options.output == "pil":
        results = run_tasks(tasks, budget)
    else:
        with writing_frames_into(_destinations(plans, videos.values(), into)):
            results = run_tasks(tasks, budget)
    out: list[Any] = [None] * len(fields)
    done = 0
    for plan, rows in zip(plans, videos.values()):
        for i, frame in zip(rows, plan.frames(results[done : done + len(plan.tasks)])):
            out[i] = frame
        done += len(plan.tasks)
    for image, rows in zip(results[done:], images.values()):
        for i in rows:
            out[i] = image
    return out


#: A frame position's destination: the shape of its converted frame -> the array to write it into, or None.
_Slot = Callable[[tuple[int, ...]], "np.ndarray | None"]


def _destinations(
    plans: Sequence[Any], rows: Iterable[list[int]], into: Into
) -> dict[int, tuple[Any, dict[int, _Slot]]]:
    """For :func:`~hf_mediaref.video.writing_frames_into`: each plan's index (by identity), and for each frame
    position its first request's destination. An index two plans share gets none (copied as always)."""
    out: dict[int, tuple[Any, dict[int, _Slot]]] = {}
    shared: set[int] = set()
    for plan, requests in zip(plans, rows):
        if plan.index is None:
            continue
        key = id(plan.index)
        if key in out:
            shared.add(key)
            continue
        slots: dict[int, _Slot] = {}
        for request, position in zip(requests, plan.positions):
            if position not in slots:
                slots[position] = functools.partial(into, request)
        out[key] = (plan.index, slots)
    for key in shared:
        del out[key]
    return out
