"""PyAV backend: execute decode spans on leased containers.

A span seeks to its keyframe and decodes forward. For H.264, HEVC and MPEG-2/4 video, packets of frames nobody
asked for are decoded with ``skip_frame="NONREF"``: the codec skips them when no other frame references them
(typically half the B-frames), which cannot change any other frame. Should a target's own frame go missing
while skipping, the span is decoded again without skipping, and the video stops skipping. Decoded frames are
matched to targets by pts; only targets are converted to RGB (``rgb24`` through the container's reusable
reformatter, resized in the same swscale call when ``size`` is given; never ``rgba``, which has crashed
swscale).

Seek verification: if the first frame after a seek comes later than a target, or a seek decodes nothing,
the keyframe is not a usable start (demuxers can flag every packet as a keyframe): the decoder drops it
from the index and backs off to the previous keyframe, down to the start of the stream. A target whose
exact frame never comes out of the decoder gets the frame on screen at its time among the decodable ones.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import numpy as np

from ..errors import MediaDecodeError, describe_uri
from . import _stats as stats
from ._base import BaseVideoDecoder, DimensionOrder
from ._container import OpenedVideo, lease_video
from ._index import VideoIndex
from ._planning import Span

logger = logging.getLogger(__name__)

__all__ = ["PyAVVideoDecoder"]


#: Codecs whose decoders skip exactly the packet's own picture under ``skip_frame="NONREF"`` (one picture
#: per packet, no hidden frames): skipping unwanted non-reference pictures cannot change any other frame.
_NONREF_SKIP_CODECS = frozenset({"h264", "hevc", "mpeg4", "mpeg2video", "mpeg1video"})


class _Overshoot(Exception):
    """The seek landed after the first target, or nothing decoded after it."""


class _SkipLostFrames(Exception):
    """A target's frame went missing while non-reference frames were skipped."""


def _to_rgb(video: OpenedVideo, frame: Any, size: tuple[int, int] | None) -> np.ndarray:
    height, width = size if size is not None else (None, None)
    # one swscale thread: workers already use every core, and auto-threading small frames only adds overhead
    rgb = video.reformatter.reformat(frame, format="rgb24", width=width, height=height, threads=1)
    return np.ascontiguousarray(rgb.to_ndarray())


#: Frames past the last target whose packets a decode may still read (B-frame reordering, frame threads).
_READ_MARGIN_FRAMES = 8


def _seek(video: OpenedVideo, index: VideoIndex, start: int, last: int) -> None:
    """Seek to keyframe ``start``, telling the source how many bytes decoding up to ``last`` will read."""
    if video.takes_read_hints:
        video.expect_read(int(index.packet_sizes[start : last + 1 + _READ_MARGIN_FRAMES].sum()))
    pts = int(index.pts[start])
    try:
        video.container.seek(pts, stream=video.stream, backward=True, any_frame=False)
    except Exception:
        if start != 0:
            raise
        video.container.seek(0, backward=True, any_frame=False)  # start of file, in AV_TIME_BASE units


def _decode_from(
    video: OpenedVideo,
    index: VideoIndex,
    start: int,
    targets: Sequence[int],
    size: tuple[int, int] | None,
    skip_nonref: bool,
) -> tuple[dict[int, np.ndarray], bool]:
    """Seek to keyframe ``start`` and decode until every target position is answered.

    Returns the frames and whether every target's own frame came out of the decoder.
    """
    target_pts = [int(index.pts[t]) for t in targets]
    out: dict[int, np.ndarray] = {}
    exact = True
    converted: dict[int, np.ndarray] = {}  # by frame pts: a frame answering several targets converts once
    decoded = 0

    def take(frame: Any, frame_pts: int) -> np.ndarray:
        arr = converted.get(frame_pts)
        if arr is None:
            arr = converted[frame_pts] = _to_rgb(video, frame, size)
        return arr

    _seek(video, index, start, max(targets))
    ctx = video.stream.codec_context
    wanted = set(target_pts)
    skipping = False
    prev: Any = None
    prev_pts = 0
    pending = 0
    try:
        for packet in video.container.demux(video.stream):
            skip = skip_nonref and packet.pts not in wanted  # a target's own packet must not be skipped
            if skip != skipping:
                ctx.skip_frame = "NONREF" if skip else "DEFAULT"
                skipping = skip
            for frame in packet.decode():
                decoded += 1
                pts = frame.pts if frame.pts is not None else frame.dts
                if pts is None:
                    continue
                while pending < len(targets) and target_pts[pending] < pts:
                    if prev is None:
                        if start != 0:
                            raise _Overshoot()
                        holder, holder_pts = frame, pts  # the target precedes the first decodable frame
                    else:
                        holder, holder_pts = prev, prev_pts
                    out[targets[pending]] = take(holder, holder_pts)
                    exact = False
                    pending += 1
                if pending < len(targets) and target_pts[pending] == pts:
                    out[targets[pending]] = take(frame, pts)
                    pending += 1
                if pending == len(targets):
                    return out, exact
                prev, prev_pts = frame, pts
        if prev is None:
            if start != 0:
                raise _Overshoot()
            raise MediaDecodeError(f"no frame of {describe_uri(video.uri)} could be decoded", uri=video.uri)
        for target in targets[pending:]:  # the stream ended early: the last frame stays on screen
            out[target] = take(prev, prev_pts)
            exact = False
        return out, exact
    finally:
        if skipping:
            ctx.skip_frame = "DEFAULT"
        if stats.is_collecting():
            packet_bytes = (
                int(index.packet_sizes[start : targets[-1] + 1].sum()) if video.counts_packet_bytes else 0
            )
            stats.record(
                decoded_frames=decoded, converted_frames=len(converted), seeks=1, bytes_read=packet_bytes
            )


def decode_span_pyav(
    video: OpenedVideo, index: VideoIndex, span: Span, size: tuple[int, int] | None = None
) -> dict[int, np.ndarray]:
    """Decode ``span`` on an open container, backing off to earlier keyframes when a seek overshoots."""
    start = span.start
    while True:
        skip_nonref = index.codec in _NONREF_SKIP_CODECS and index.nonref_skipping
        try:
            frames, exact = _decode_from(video, index, start, span.targets, size, skip_nonref)
        except _Overshoot:
            earlier = index.previous_keyframe(start)
            logger.debug(
                "%s: seek to frame %d overshot; retrying from frame %d",
                describe_uri(video.uri),
                start,
                earlier,
            )
            index.distrust(start)
            start = earlier
            continue
        if exact:
            return frames
        if skip_nonref:
            logger.info(
                "%s: frames went missing while skipping non-reference frames; decoding them all",
                describe_uri(video.uri),
            )
            index.nonref_skipping = False
            raise _SkipLostFrames()  # the codec may keep the skip setting: retry on a fresh container
        logger.warning(
            "%s: some requested frames never came out of the decoder; returned the frame on screen "
            "before each instead",
            describe_uri(video.uri),
        )
        return frames


class PyAVVideoDecoder(BaseVideoDecoder):
    """Decode frames of one video with PyAV (FFmpeg bundled in the ``av`` wheel); frames are numpy uint8
    arrays.

    Args:
        source: a URI or path of any kind hf_mediaref reads (local, ``file://``, ``http(s)://``, ``data:``,
        fsspec
            URLs), or a ``MediaRef``.
        storage_options: fsspec options for remote URIs.
        dimension_order: ``"NCHW"`` (default) or ``"NHWC"``.

    Raises:
        MissingDependencyError: PyAV is not installed.
        MediaNotFoundError, MediaDecodeError: the video is missing or cannot be opened and indexed.

    Example:
        ```python
        >>> from hf_mediaref.video import PyAVVideoDecoder
        >>> with PyAVVideoDecoder("ep0.mp4", dimension_order="NHWC") as dec:
        ...     frame = dec.get_frame_played_at(1.5)          # Frame(data, pts_seconds, duration_seconds)
        ...     clip = dec.get_frames_played_in_range(1.0, 2.0)
        ```
    """

    def __init__(
        self, source: Any, *, storage_options: dict | None = None, dimension_order: DimensionOrder = "NCHW"
    ):
        super().__init__(source, storage_options=storage_options, dimension_order=dimension_order)

    def _decode_span(
        self, span: Span, *, size: tuple[int, int] | None = None, threads: int = 1
    ) -> dict[int, Any]:
        while True:
            try:
                with lease_video(
                    self.uri, storage_options=self.storage_options, threads=threads, key=self._key
                ) as video:
                    return decode_span_pyav(video, self._index, span, size)
            except _SkipLostFrames:  # the lease closed that container; skipping is now off for this video
                continue

    def _stack(self, frames: Sequence[Any]) -> np.ndarray:
        if not frames:
            return np.empty((0, self._index.height, self._index.width, 3), dtype=np.uint8)
        return np.stack(frames)
