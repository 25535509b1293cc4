"""``batch_decode``: many refs (frames of many videos, still images, any URI kind) in one planned pass."""

from __future__ import annotations

from typing import Any, Iterable, Literal, Sequence

import numpy as np

from .._optional import require
from ..core.media_ref import MediaRef
from . import stats
from .base import BaseVideoDecoder
from .executor import Task, core_budget, run_tasks
from .planning import BatchDecodingStrategy

__all__ = ["batch_decode"]

_IMAGE_COST = 4.0  # an image load, in decoded-frame units, for scheduling


def _as_refs(refs: Iterable[Any]) -> list[MediaRef]:
    if isinstance(refs, (str, bytes, MediaRef)) or not isinstance(refs, Iterable):
        raise TypeError(f"refs must be a sequence of MediaRef (or dicts), got {type(refs).__name__}")
    out = []
    for i, ref in enumerate(refs):
        if ref is None:
            raise ValueError(f"refs[{i}] is None")
        out.append(ref if isinstance(ref, MediaRef) else MediaRef.model_validate(ref))
    return out


def _check_size(size: Any) -> tuple[int, int] | None:
    if size is None:
        return None
    try:
        height, width = (int(v) for v in size)
    except (TypeError, ValueError):
        raise ValueError(f"size must be (height, width), got {size!r}") from None
    if height < 1 or width < 1:
        raise ValueError(f"size must be positive, got {size!r}")
    return height, width


def _decoder_class(decoder: str) -> type[BaseVideoDecoder]:
    if decoder == "pyav":
        from .pyav_decoder import PyAVVideoDecoder

        return PyAVVideoDecoder
    if decoder == "torchcodec":
        from .torchcodec_decoder import TorchCodecVideoDecoder

        return TorchCodecVideoDecoder
    raise ValueError(f"unknown decoder {decoder!r}; use 'pyav' or 'torchcodec'")


def _to_output(frame: Any, output: str, channels_first: bool) -> Any:
    """An owned (H, W, 3) or (3, H, W) numpy array or torch tensor from a decoded frame."""
    if output == "torch":
        torch = require("torch", purpose='output="torch"')
        tensor = frame if isinstance(frame, torch.Tensor) else torch.from_numpy(frame)
        return tensor.permute(2, 0, 1).contiguous() if channels_first else tensor
    if not isinstance(frame, np.ndarray):  # a tensor from TorchCodec
        frame = frame.cpu().numpy()
    return np.ascontiguousarray(frame.transpose(2, 0, 1)) if channels_first else frame


def _copy(value: Any) -> Any:
    return value.clone() if hasattr(value, "clone") else value.copy()


def batch_decode(
    refs: Sequence[Any],
    strategy: BatchDecodingStrategy | str | None = None,
    decoder: Literal["pyav", "torchcodec"] = "pyav",
    *,
    size: tuple[int, int] | None = None,
    output: Literal["numpy", "torch"] = "numpy",
    channels_first: bool = False,
    storage_options: dict | None = None,
    max_workers: int | None = None,
    device: str = "cpu",
) -> list[Any]:
    """Load every ref (video frames and images) and return one RGB uint8 frame per ref, in input order.

    Args:
        refs: ``MediaRef`` s or anything ``MediaRef.model_validate`` accepts (dicts); duplicates, any order,
            many videos and still images (``pts_ns=None``) mixed.
        strategy: how frames of one video are grouped into seek + decode spans; every strategy returns the
            same frames. Default ``SEQUENTIAL_PER_KEYFRAME_BLOCK``.
        decoder: ``"pyav"`` or ``"torchcodec"`` (same frame for the same ref; pixels may differ slightly).
        size: ``(height, width)`` to resize to during colour conversion (images: bilinear).
        output: ``"numpy"`` arrays or ``"torch"`` uint8 tensors; (H, W, 3), or (3, H, W) with
            ``channels_first``. Every element is its own array, duplicates included.
        storage_options: fsspec options for remote URIs.
        max_workers: most threads to keep busy (decode workers x codec threads); default: the CPUs this
            process may use, or 1 inside a torch DataLoader worker.
        device: TorchCodec decoding device (``"cpu"`` or ``"cuda"``).

    The frame for ``pts_ns`` is the one on screen at that time (see ``hf_mediaref.video.planning``). Errors
    name the ref: :class:`~hf_mediaref.errors.MediaNotFoundError`, :class:`~hf_mediaref.errors.MediaDecodeError`
    (corrupt or truncated media), :class:`~hf_mediaref.errors.FrameOutOfRangeError` (at or past the end of
    the video; the message gives the video's duration).
    """
    items = _as_refs(refs)
    size = _check_size(size)
    if output not in ("numpy", "torch"):
        raise ValueError(f"output must be 'numpy' or 'torch', got {output!r}")
    if not items:
        return []
    strategy = BatchDecodingStrategy(strategy or BatchDecodingStrategy.SEQUENTIAL_PER_KEYFRAME_BLOCK)
    budget = core_budget(max_workers)

    videos: dict[str, list[int]] = {}
    images: dict[str, list[int]] = {}
    for i, ref in enumerate(items):
        (videos if ref.pts_ns is not None else images).setdefault(ref.uri, []).append(i)
    decoder_cls = _decoder_class(decoder) if videos else None

    # 1. open every video (its keyframe index is scanned on first use; scans run in parallel)
    options: dict[str, Any] = {"storage_options": storage_options}
    if decoder == "torchcodec":
        options["device"] = device
    decoders: list[BaseVideoDecoder] = run_tasks(
        [Task(1.0, lambda _threads, uri=uri: decoder_cls(uri, **options)) for uri in videos], budget)

    # 2. map times to frames and plan spans; images become tasks of their own
    tasks: list[Task] = []
    owners: list[int] = []  # the video number of each span task
    frame_of: dict[int, tuple[int, int]] = {}  # request -> (video number, frame position)
    for v, (dec, positions) in enumerate(zip(decoders, videos.values())):
        frames = dec.frames_at([items[i].pts_ns for i in positions], refs=[items[i] for i in positions])
        for i, frame in zip(positions, frames.tolist()):
            frame_of[i] = (v, frame)
        span_tasks = dec.span_tasks(dec.plan(frames, strategy), size=size)
        tasks.extend(span_tasks)
        owners.extend([v] * len(span_tasks))
    if images:
        from ..io.image import load_image_rgb

        for uri in images:
            tasks.append(Task(_IMAGE_COST, lambda _threads, uri=uri: load_image_rgb(
                uri, size=size, storage_options=storage_options)))

    # 3. decode everything, then assemble in input order
    results = run_tasks(tasks, budget)
    decoded: list[dict[int, Any]] = [{} for _ in decoders]
    for v, part in zip(owners, results):
        decoded[v].update(part)
    image_arrays = dict(zip(images, results[len(owners):]))

    out: list[Any] = []
    used: set[int] = set()
    for i, ref in enumerate(items):
        frame = image_arrays[ref.uri] if ref.pts_ns is None else decoded[frame_of[i][0]][frame_of[i][1]]
        value = _to_output(frame, output, channels_first)
        if id(frame) in used:
            value = _copy(value)
        used.add(id(frame))
        out.append(value)
    stats.record(returned_frames=len(out))
    return out
