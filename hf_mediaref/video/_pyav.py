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


class _SpanDecode:
    """One seek to keyframe ``start`` and a forward decode that answers the sorted ``targets`` (positions).

    ``frames`` maps each target to its RGB frame; ``exact`` stays True while every target got its own frame.
    """

    def __init__(
        self,
        video: OpenedVideo,
        index: VideoIndex,
        start: int,
        targets: Sequence[int],
        size: tuple[int, int] | None,
        skip_nonref: bool,
    ):
        self.video, self.index, self.start, self.targets, self.size = video, index, start, targets, size
        self.target_pts = [int(index.pts[t]) for t in targets]
        self.wanted = set(self.target_pts) if skip_nonref else None  # a target's own packet is never skipped
        self.frames: dict[int, np.ndarray] = {}
        self.exact = True
        self._converted: dict[int, np.ndarray] = {}  # by pts: a frame answering several targets converts once
        self._pending = 0  # targets[:_pending] are answered
        self._prev: Any = None  # the last decoded frame and its pts
        self._prev_pts = 0
        self._skipping = False
        self._decoded = 0

    def run(self) -> tuple[dict[int, np.ndarray], bool]:
        """Decode until every target is answered; raises :class:`_Overshoot` when the seek landed too late."""
        _seek(self.video, self.index, self.start, max(self.targets))
        try:
            for packet in self.video.container.demux(self.video.stream):
                self._set_skipping(self.wanted is not None and packet.pts not in self.wanted)
                for frame in packet.decode():
                    self._decoded += 1
                    if self._on_frame(frame):
                        return self.frames, self.exact
            return self._on_end_of_stream()
        finally:
            self._set_skipping(False)
            self._record()

    def _set_skipping(self, skip: bool) -> None:
        if skip != self._skipping:
            self.video.stream.codec_context.skip_frame = "NONREF" if skip else "DEFAULT"
            self._skipping = skip

    def _answer(self, frame: Any, pts: int, exact: bool) -> None:
        arr = self._converted.get(pts)
        if arr is None:
            arr = self._converted[pts] = _to_rgb(self.video, frame, self.size)
        self.frames[self.targets[self._pending]] = arr
        self.exact = self.exact and exact
        self._pending += 1

    def _on_frame(self, frame: Any) -> bool:
        """Answer the targets ``frame`` settles; True once every target is answered."""
        pts = frame.pts if frame.pts is not None else frame.dts
        if pts is None:
            return False
        n = len(self.targets)
        while self._pending < n and self.target_pts[self._pending] < pts:  # a target's frame never came
            if self._prev is not None:
                self._answer(self._prev, self._prev_pts, exact=False)
            elif self.start == 0:  # the target precedes the first decodable frame
                self._answer(frame, pts, exact=False)
            else:
                raise _Overshoot()
        if self._pending < n and self.target_pts[self._pending] == pts:
            self._answer(frame, pts, exact=True)
        self._prev, self._prev_pts = frame, pts
        return self._pending == n

    def _on_end_of_stream(self) -> tuple[dict[int, np.ndarray], bool]:
        if self._prev is None:
            if self.start != 0:
                raise _Overshoot()
            uri = self.video.uri
            raise MediaDecodeError(f"no frame of {describe_uri(uri)} could be decoded", uri=uri)
        while self._pending < len(self.targets):  # the stream ended early: the last frame stays on screen
            self._answer(self._prev, self._prev_pts, exact=False)
        return self.frames, self.exact

    def _record(self) -> None:
        if stats.is_collecting():
            packet_bytes = 0
            if self.video.counts_packet_bytes:
                packet_bytes = int(self.index.packet_sizes[self.start : self.targets[-1] + 1].sum())
            stats.record(
                decoded_frames=self._decoded,
                converted_frames=len(self._converted),
                seeks=1,
                bytes_read=packet_bytes,
            )


def decode_span_pyav(
    video: OpenedVideo, index: VideoIndex, span: Span, size: tuple[int, int] | None = None
) -> dict[int, np.ndarray]:
    """Decode ``span`` on an open container, backing off to earlier keyframes when a seek overshoots."""
    start = span.start
    while True:
        skip_nonref = index.codec in _NONREF_SKIP_CODECS and index.nonref_skipping
        try:
            frames, exact = _SpanDecode(video, index, start, span.targets, size, skip_nonref).run()
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
        source: a URI or path of any kind hf_mediaref reads (local, ``file://``, ``http(s)://``,
            ``data:``, fsspec URLs), or a ``MediaRef``.
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
