"""TorchCodec backend: spans run through ``torchcodec.decoders.VideoDecoder.get_frames_at``.

TorchCodec is given this engine's keyframe index as ``custom_frame_mappings``, so its frame ``i`` is our
frame ``i`` (the same frame as the PyAV backend for every ref) without TorchCodec's own full-file scan, and
its seeks use our verified keyframes. Frames come back as torch uint8 tensors (on ``device``).

TorchCodec needs torch and FFmpeg shared libraries; when it is missing or its libraries do not load
(it raises OSError/RuntimeError then), constructing a decoder raises
:class:`~hf_mediaref.errors.MissingDependencyError`.
"""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import Sequence
from typing import Any, cast

import numpy as np

from .._fields import NS_PER_SECOND
from ..errors import MediaDecodeError, MissingDependencyError, describe_uri
from ..io import open_media, source_version
from . import _stats as stats
from ._base import BaseVideoDecoder, DimensionOrder, Orientation, quarter_turns
from ._cache import decoder_cache
from ._container import OpenedVideo, fresh_key, hand_back, lease_video, take_fresh_source
from ._index import VideoIndex
from ._indexes import check_version
from ._planning import Span
from ._truth import check_span_bytes, check_span_packets, span_checked

logger = logging.getLogger(__name__)

__all__ = ["TorchCodecVideoDecoder", "check_device", "load_torchcodec"]

_HINT = (
    "install torch, then torchcodec (CPU torch: torchcodec 0.13; CUDA torch: the newest), and make FFmpeg's "
    "shared libraries available (Debian/Ubuntu: apt-get install ffmpeg); see docs/guides/torchcodec.md"
)


def load_torchcodec() -> Any:
    """The ``torchcodec.decoders`` module, or MissingDependencyError saying why it cannot load."""
    try:
        import torchcodec.decoders as decoders
    except ImportError as exc:
        raise MissingDependencyError(
            f"torchcodec is required for decoder='torchcodec' ({exc}); fix: {_HINT}"
        ) from exc
    except (OSError, RuntimeError) as exc:  # a broken libtorchcodec / missing FFmpeg .so
        raise MissingDependencyError(
            f"torchcodec is installed but cannot load its libraries ({type(exc).__name__}: {exc}); "
            f"fix: {_HINT}"
        ) from exc
    return decoders


def check_device(device: Any) -> str:
    """``device`` as a string, if it names a device TorchCodec decodes on (``"cpu"``, ``"cuda"``,
    ``"cuda:N"``).

    Raises:
        ValueError: for any other device.
    """
    name = str(device)
    if name != "cpu" and not name.startswith("cuda"):
        raise ValueError(f"device must be 'cpu' or 'cuda[:N]', got {device!r}")
    return name


def _create(decoders: Any, uri: str, source: Any, index: VideoIndex, mappings: str, **kw: Any) -> Any:
    """A TorchCodec decoder using our frame mappings; TorchCodec's own exact scan where it rejects them
    (TorchCodec 0.13 refuses mappings when the header lacks a duration, e.g. Matroska written live)."""
    common = dict(
        stream_index=index.stream_index,
        dimension_order="NHWC",
        num_ffmpeg_threads=kw["threads"],
        device=kw["device"],
        transforms=kw["transforms"],
    )
    wrap = (lambda: source) if isinstance(source, str) else (lambda: stats.CountingReader(source))
    try:
        return decoders.VideoDecoder(wrap(), custom_frame_mappings=mappings, **common)
    except ValueError as exc:
        logger.info(
            "TorchCodec rejected the frame mappings of %s (%s); using its exact scan",
            describe_uri(uri),
            str(exc).splitlines()[0],
        )
    if not isinstance(source, str):
        source.seek(0)
    decoder = decoders.VideoDecoder(wrap(), seek_mode="exact", **common)
    if decoder.metadata.num_frames != index.num_frames:
        raise MediaDecodeError(
            f"TorchCodec sees {decoder.metadata.num_frames} frames in {describe_uri(uri)}, "
            f"the index {index.num_frames}; use decoder='pyav'",
            uri=uri,
        )
    return decoder


class _OpenedTorchCodec:
    """A TorchCodec decoder over an owned source; used by one thread at a time."""

    def __init__(
        self,
        uri: str,
        index: VideoIndex,
        mappings: str,
        *,
        key: tuple,
        storage_options: dict | None,
        device: str,
        threads: int,
        size: tuple[int, int] | None,
    ):
        decoders = load_torchcodec()
        self._stack = contextlib.ExitStack()
        try:
            taken = take_fresh_source(key)  # the index's container read the header: reuse its bytes
            if taken is not None:
                source = taken[0]
                self._stack.enter_context(taken[1])
                if not isinstance(source, str):
                    source.seek(0)
            else:
                source = self._stack.enter_context(open_media(uri, storage_options=storage_options))
            check_version(index, source_version(source), uri)
            self.counts_packet_bytes = isinstance(source, str)
            transforms = None
            if size is not None:
                from torchcodec.transforms import Resize

                transforms = [Resize(list(size))]
            self.decoder = _create(
                decoders, uri, source, index, mappings, device=device, threads=threads, transforms=transforms
            )
        except BaseException:
            self._stack.close()
            raise
        stats.record(containers_opened=1)

    def close(self) -> None:
        self.decoder = None
        self._stack.close()


class TorchCodecVideoDecoder(BaseVideoDecoder):
    """Decode frames of one video with TorchCodec on ``device``; frames are torch uint8 tensors.

    Same frame selection and surface as :class:`~hf_mediaref.video.PyAVVideoDecoder`: TorchCodec is given this
    package's keyframe index as its frame mappings, so it returns the same frame for the same time.

    Args:
        source: a URI or path of any kind hf_mediaref reads, or a ``MediaRef``.
        device: ``"cpu"`` or ``"cuda[:N]"``.
        storage_options: fsspec options for remote URIs.
        dimension_order: ``"NCHW"`` (default) or ``"NHWC"``.
        orientation: ``"display"`` (default, TorchCodec's own: a rotation display matrix is applied) or
            ``"stored"`` (rotated videos are then decoded by the PyAV backend, as tensors on ``device``).

    Raises:
        MissingDependencyError: TorchCodec is missing or its FFmpeg libraries do not load.
        ValueError: for an unknown device.

    Example:
        ```python
        >>> from hf_mediaref.video import TorchCodecVideoDecoder
        >>> dec = TorchCodecVideoDecoder("ep0.mp4", device="cuda")
        >>> dec.get_frames_played_at([0.0, 1.5]).data.shape   # (2, 3, H, W) on the GPU
        ```
    """

    def __init__(
        self,
        source: Any,
        *,
        device: str = "cpu",
        storage_options: dict | None = None,
        dimension_order: DimensionOrder = "NCHW",
        orientation: Orientation = "display",
    ):
        load_torchcodec()
        self.device = check_device(device)
        super().__init__(
            source, storage_options=storage_options, dimension_order=dimension_order, orientation=orientation
        )
        self._mappings: tuple[VideoIndex, str] | None = None  # the index they were made of, the mappings
        self._reference: BaseVideoDecoder | None = None  # the PyAV decoder used where TorchCodec fails

    def _frame_mappings(self, index: VideoIndex) -> str:
        if self._mappings is None or self._mappings[0] is not index:
            self._mappings = (index, json.dumps(index.frame_mappings()))
        return self._mappings[1]

    #: TorchCodec is given the whole index as its frame mappings: a progressive index is completed first.
    _uses_snapshots = False

    #: consecutive spans of a chain asked of TorchCodec in one ``get_frames_at`` call: its C++ loop seeks
    #: only where the next frame is not decoded on to (our keyframe index is its frame mappings), so one call
    #: per video and batch costs the Python of one call, not one per span
    _spans_per_call = 16

    def _decode_span(
        self,
        span: Span,
        *,
        size: tuple[int, int] | None = None,
        threads: int = 1,
        index: VideoIndex | None = None,
        last: bool = False,
        held: Any = None,
    ) -> dict[int, Any]:
        return self._decode_spans((span,), size=size, threads=threads, index=index)

    def _decode_spans(
        self,
        spans: Sequence[Span],
        *,
        size: tuple[int, int] | None = None,
        threads: int = 1,
        index: VideoIndex | None = None,
        last: bool = False,
        held: Any = None,
    ) -> dict[int, Any]:
        idx = self._index if index is None else index
        # the index it was opened with (the object, not its id(), which a later index may reuse once this one
        # is gone): a rescanned index (._truth) opens new TorchCodec decoders
        key = ("torchcodec", self._key, self.device, threads, size, idx)

        def open_() -> _OpenedTorchCodec:
            return _OpenedTorchCodec(
                self.uri,
                idx,
                self._frame_mappings(idx),
                key=self._key,
                storage_options=self.storage_options,
                device=self.device,
                threads=threads,
                size=size,
            )

        if not idx.torchcodec_seeks_ok:
            return self._reference_decode(spans, size, threads, idx)
        hinted = not idx.scanned and idx.progressive is None and not idx.moov_tables
        for span in spans if hinted else ():
            if not span_checked(idx, span):
                # TorchCodec shows only the targets: check the span's packets (not against MP4 tables, which
                # TorchCodec's demuxer reads too: its returned pts are checked below), once per range and
                # index
                self._check_hinted(span, idx)
        targets = [t for span in spans for t in span.targets]
        try:
            with decoder_cache.lease(key, open_) as opened:
                other_timeline = self._other_timeline(opened.decoder, idx)
                turns = quarter_turns(getattr(opened.decoder.metadata, "rotation", 0))
                if other_timeline is None and not (turns and self.orientation == "stored"):
                    batch = opened.decoder.get_frames_at(targets)
        except RuntimeError as exc:  # TorchCodec's decode and seek failures
            return self._reference_decode(spans, size, threads, idx, why=f"it raised {exc}")
        if other_timeline is not None:
            return self._reference_decode(spans, size, threads, idx, why=other_timeline)
        if turns and self.orientation == "stored":  # TorchCodec always applies the rotation
            return self._reference_decode(spans, size, threads, idx)
        if not self._returned_targets(targets, batch.pts_seconds.tolist(), idx):
            # the PyAV decode judges the index first: a wrong hint is rescanned, not blamed on TorchCodec
            return self._reference_decode(
                spans, size, threads, idx, why="its seek returned frames of other times"
            )
        data = batch.data
        if stats.is_collecting():
            packet_bytes = sum(int(idx.packet_sizes[s.start : s.stop + 1].sum()) for s in spans)
            stats.record(
                decoded_frames=sum(s.decoded_frames for s in spans),
                converted_frames=len(targets),
                seeks=len(spans),
                bytes_read=packet_bytes if opened.counts_packet_bytes else 0,
            )
        return {target: data[i] for i, target in enumerate(targets)}

    def _other_timeline(self, decoder: Any, idx: VideoIndex) -> str | None:
        """Why TorchCodec's timestamps are not the index's (``None``: they are): where the container header
        says the stream begins differs from the first frame's pts. TorchCodec then labels frames with times of
        its own (seen in AVI, whose H.264 packets have pts one tick after their dts: TorchCodec returned the
        next frame under the requested frame's pts), which no pts check of its results can catch."""
        begin = getattr(decoder.metadata, "begin_stream_seconds_from_header", None)
        if (
            begin is None
            or abs(float(begin) - idx.begin_ns / NS_PER_SECOND) <= idx.tolerance_ns / NS_PER_SECOND
        ):
            return None
        return (
            f"its timeline begins at {float(begin):.6f} s (the container header), the first frame's pts at "
            f"{idx.begin_ns / NS_PER_SECOND:.6f} s"
        )

    def _check_hinted(self, span: Span, index: VideoIndex) -> None:
        """Check ``span`` of a hinted ``index`` against the container's packets (a demux, no decode).

        Raises:
            IndexMismatch: they disagree (the caller rescans the video).
        """
        fresh = cast("OpenedVideo | None", decoder_cache.take(fresh_key(self._key)))
        if fresh is None:
            with lease_video(self.uri, storage_options=self.storage_options, key=self._key) as (video, _):
                check_version(index, video.version, self.uri)
                check_span_packets(video, index, span)
            return
        # the container the index opened, whose source TorchCodec opens next (take_fresh_source) with what it
        # read kept in memory: the packets demuxed here are kept too, so TorchCodec does not fetch them again
        record = getattr(fresh.source, "record_next", None)
        if record is not None:
            record(check_span_bytes(index, span))
        ok = False
        try:
            check_version(index, fresh.version, self.uri)
            check_span_packets(fresh, index, span)
            ok = True
        finally:
            hand_back(fresh_key(self._key), fresh, ok)

    def _returned_targets(self, targets: Sequence[int], pts_seconds: list[float], idx: VideoIndex) -> bool:
        """Whether TorchCodec returned the ``targets``' own frames (their pts are the index's)."""
        if len(pts_seconds) != len(targets):
            return False
        tb = idx.time_base
        expected = (
            idx.pts[np.asarray(targets, dtype=np.int64)].astype(np.float64) * tb.numerator / tb.denominator
        )
        return bool(np.all(np.abs(np.asarray(pts_seconds) - expected) <= idx.tolerance_ns / NS_PER_SECOND))

    def _reference_decode(
        self,
        spans: Sequence[Span],
        size: tuple[int, int] | None,
        threads: int,
        index: VideoIndex,
        why: str | None = None,
    ) -> dict[int, Any]:
        """Decode ``spans`` with the PyAV backend (the same frames, checked), as tensors on ``device``.

        Used where TorchCodec returns frames of other times or fails (its seeks land elsewhere in some
        MPEG-TS files): the video then stays on PyAV. Where the PyAV decode shows a hinted index wrong, it
        raises :class:`~._truth.IndexMismatch` before TorchCodec is blamed.
        """
        import torch

        if self._reference is None:
            from ._pyav import PyAVVideoDecoder

            self._reference = PyAVVideoDecoder(
                self.uri, storage_options=self.storage_options, orientation=self.orientation
            )
        frames = self._reference._decode_spans(spans, size=size, threads=threads, index=index)
        if why is not None:
            index.torchcodec_seeks_ok = False
            logger.warning(
                "%s: TorchCodec is not reliable on this video (%s); decoding it with PyAV", self, why
            )
        return {t: torch.from_numpy(frame).to(self.device) for t, frame in frames.items()}

    def _stack(self, frames: Sequence[Any]) -> Any:
        import torch

        if not frames:
            return torch.empty((0, self._snapshot.height, self._snapshot.width, 3), dtype=torch.uint8)
        return torch.stack(list(frames))
