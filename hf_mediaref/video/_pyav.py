"""PyAV backend: execute decode spans on leased containers.

A span seeks to its keyframe and decodes forward. For H.264, HEVC and MPEG-2/4 video, packets of frames nobody
asked for are decoded with ``skip_frame="NONREF"``: the codec skips them when no other frame references them
(typically half the B-frames), which cannot change any other frame. Should a target's own frame go missing
while skipping, the span is decoded again without skipping, and the video stops skipping. Decoded frames are
matched to targets by pts; only targets are converted to RGB (``rgb24`` through the container's reusable
reformatter, resized in the same swscale call when ``size`` is given; never ``rgba``, which has crashed
swscale).

Decoding on instead of seeking again: a decode that ends normally leaves a resume point on its container (the
last frame out, the read-ahead packets skipped). A later span of the same video whose targets all come after
that frame, and starts in that keyframe block (or within a merge gap of it), continues the decode there
without a seek, so a block whose targets are split over consecutive calls is decoded once. Packets read ahead
past a span's last target are decoded (never skipped), so the next targets can still come out. Decodes
drain their decoder at the last target's packet only where reads are announced (HTTP sources): a drained
decoder cannot decode on, so a drained decode leaves no resume point. No resume
point is left after a careful decode, damage, the stream's end or a frame without pts, and any error closes
the container; every other lease clears the point. Frames are still matched by pts, and a target that does
not come out of a resumed decode sends the span back to a seek to its keyframe.

Never a wrong frame: a target gets the decoded frame whose pts is its own pts, or the span raises. The first
frame after a seek must not come later than the keyframe the seek aimed at; if it does (demuxers can flag
every packet as a keyframe; MPEG-TS seeks by byte estimates), that keyframe is dropped from the index and the
span backs off to the previous one, down to a decode from the very first packet on a fresh container. A target
whose frame never comes out of the decoder raises :class:`~hf_mediaref.errors.MediaDecodeError`.
"""

from __future__ import annotations

import contextlib
import contextvars
import dataclasses
import functools
import logging
from collections.abc import Callable, Iterator, Mapping, Sequence
from types import MappingProxyType
from typing import Any, cast

import numpy as np

from .._fields import NS_PER_SECOND
from ..errors import MediaDecodeError, describe_uri
from ..io import UriKind, check_pixel_limit, classify_uri
from . import _stats as stats
from ._base import BaseVideoDecoder, quarter_turns
from ._container import HeldVideo, OpenedVideo, import_av, keep_resume_point, lease_video
from ._index import VideoIndex
from ._indexes import check_version
from ._planning import DEFAULT_MERGE_GAP, Span
from ._truth import IndexMismatch

logger = logging.getLogger(__name__)

__all__ = ["PyAVVideoDecoder"]


#: Codecs whose decoders skip exactly the packet's own picture under ``skip_frame="NONREF"`` (one picture
#: per packet, no hidden frames): skipping unwanted non-reference pictures cannot change any other frame.
_NONREF_SKIP_CODECS = frozenset({"h264", "hevc", "mpeg4", "mpeg2video", "mpeg1video"})


def _reorders(video: OpenedVideo) -> bool:
    """Whether the stream has B-frames (the decoder delays output to reorder them).

    Non-reference frames are skipped only in such streams, where they are most frames between references and
    skipping them pays. In a stream without reordering they are rare, and a packet whose damaged header
    reads "non-reference" would be skipped unseen, its damage unreported, and the frames after it decoded
    against a stale reference: a silent wrong frame. Without reordering, every packet is decoded.
    """
    return bool(video.stream.codec_context.has_b_frames)


class _Overshoot(Exception):
    """The first frame after a seek came out later than the keyframe the seek aimed at."""


class _Damaged(Exception):
    """The decoder reported damage (an error, a corrupt frame) in a fast decode: decode the span carefully."""


class _DrainedShort(Exception):
    """A decode drained once every target's packet was in the decoder, and a target's frame did not come out
    of it (or came out interlaced: a field may lie in a later packet): decode the span again without
    draining."""


class _MissingFrame(Exception):
    """A target's own frame never came out of the decoder, or came out flagged ``corrupt``."""

    def __init__(self, position: int, *, corrupt: bool = False):
        super().__init__(position)
        self.position, self.corrupt = position, corrupt


#: Extra arguments of ``VideoReformatter.reformat``: one swscale thread (workers already use every core, and
#: auto-threading small frames only adds overhead). PyAV < 17 has no ``threads`` argument; found on first use.
_REFORMAT_EXTRA: dict[str, Any] | None = None


#: Pixel formats whose unscaled conversion to planar ``gbrp`` gives exactly the values of ``rgb24`` (checked
#: by the tests); resized frames and other formats (10-bit, 4:4:4) differ by a few levels, and stay (H, W, 3).
_PLANAR_EXACT = frozenset({"yuv420p"})
#: ... for widths that are a multiple of this: past the last multiple of 16 columns, swscale's ``gbrp`` and
#: ``rgb24`` outputs disagree entirely (PyAV 18's FFmpeg: columns 128-129 of a 130-wide frame).
_PLANAR_WIDTH = 16


class ChannelsFirst(np.ndarray):
    """A (3, H, W) RGB frame, converted straight to planes (see :func:`decoding_channels_first`)."""


#: Whether the decodes started in this context convert frames straight to (3, H, W) (:class:`ChannelsFirst`).
_CHANNELS_FIRST: contextvars.ContextVar[bool] = contextvars.ContextVar(
    "hf_mediaref_channels_first", default=False
)


@contextlib.contextmanager
def decoding_channels_first() -> Iterator[None]:
    """Within the block (this thread and the decode tasks it runs), PyAV converts each frame it does not
    resize straight to a (3, H, W) :class:`ChannelsFirst` array (swscale writes planar RGB, the same values as
    ``rgb24``, and the planes are copied once in R, G, B order): no (H, W, 3) frame to transpose afterwards.
    Resized frames, pixel formats other than 8-bit 4:2:0 and widths that are not a multiple of 16 stay (H, W,
    3): there swscale's planar output differs."""
    token = _CHANNELS_FIRST.set(True)
    try:
        yield
    finally:
        _CHANNELS_FIRST.reset(token)


#: Where the decodes started in this context write the frames they convert (:func:`writing_frames_into`).
_WRITE_INTO: contextvars.ContextVar[Mapping[int, tuple[VideoIndex, Mapping[int, Destination]]] | None] = (
    contextvars.ContextVar("hf_mediaref_write_into", default=None)
)

#: A frame's destination: given the shape of the converted frame, the array to write it into (a C-contiguous
#: uint8 array of that shape), or None to let the decode allocate its own.
Destination = Callable[[tuple[int, ...]], "np.ndarray | None"]


@contextlib.contextmanager
def writing_frames_into(
    destinations: Mapping[int, tuple[VideoIndex, Mapping[int, Destination]]],
) -> Iterator[None]:
    """Within the block (this thread and the decode tasks it runs), a PyAV span decode planned on index
    ``destinations[id(index)][0]`` converts the frame at position ``p`` straight into
    ``destinations[id(index)][1][p](shape)`` (``(3, H, W)`` under :func:`decoding_channels_first`, else ``(H,
    W, 3)``) when that gives an array: the caller's output, written once. Keyed by the index object itself, so
    a decode on another index (a rescan, another video) writes nothing there."""
    token = _WRITE_INTO.set(destinations)
    try:
        yield
    finally:
        _WRITE_INTO.reset(token)


def _placed(arr: np.ndarray, into: Destination | None) -> np.ndarray:
    """``arr`` copied into the destination ``into`` gives for its shape; else ``arr``, C-contiguous."""
    dest = into(arr.shape) if into is not None else None
    if dest is None:
        return np.ascontiguousarray(arr)
    dest[...] = arr
    return dest


def _reformat(video: OpenedVideo, frame: Any, fmt: str, width: int | None, height: int | None) -> Any:
    global _REFORMAT_EXTRA
    if _REFORMAT_EXTRA is None:
        try:
            out = video.reformatter.reformat(frame, format=fmt, width=width, height=height, threads=1)
            _REFORMAT_EXTRA = {"threads": 1}
            return out
        except TypeError:  # PyAV < 17
            _REFORMAT_EXTRA = {}
    return video.reformatter.reformat(frame, format=fmt, width=width, height=height, **_REFORMAT_EXTRA)


def _planar_rgb(
    video: OpenedVideo, frame: Any, width: int | None, height: int | None, into: Destination | None = None
) -> np.ndarray:
    """(3, H, W) RGB of ``frame``: swscale's planar ``gbrp`` (the same conversion as ``rgb24``), its G, B, R
    planes copied into R, G, B (of the array ``into`` gives, if any)."""
    planes = _reformat(video, frame, "gbrp", width, height)
    h, w = planes.height, planes.width
    out = into((3, h, w)) if into is not None else None
    if out is None:
        out = np.empty((3, h, w), dtype=np.uint8)
    for channel, plane in zip((1, 2, 0), planes.planes):  # gbrp: G, B, R
        out[channel] = np.frombuffer(plane, np.uint8).reshape(h, plane.line_size)[:, :w]
    return out


def _to_rgb(
    video: OpenedVideo,
    frame: Any,
    size: tuple[int, int] | None,
    orientation: str,
    into: Destination | None = None,
) -> np.ndarray:
    """The RGB frame: (3, H, W) :class:`ChannelsFirst` under :func:`decoding_channels_first` where swscale's
    planes are exact, else (H, W, 3); written into the array ``into`` gives for its shape (a (3, H, W) one
    under :func:`decoding_channels_first`), if any."""
    check_pixel_limit(frame.width, frame.height, video.uri, "video")  # a stream may change size midway
    turns = quarter_turns(getattr(frame, "rotation", 0)) if orientation == "display" else 0
    if size is not None and turns % 2:
        size = (size[1], size[0])  # the displayed (H, W) is the stored (W, H)
    height, width = size if size is not None else (None, None)
    if (
        _CHANNELS_FIRST.get()
        and size is None
        and frame.format.name in _PLANAR_EXACT
        and frame.width % _PLANAR_WIDTH == 0
    ):
        if not turns:
            return _planar_rgb(video, frame, width, height, into).view(ChannelsFirst)
        # the display matrix's counter-clockwise rotation, as TorchCodec applies it
        chw = np.rot90(_planar_rgb(video, frame, width, height), turns, axes=(1, 2))
        return _placed(chw, into).view(ChannelsFirst)
    rgb = _reformat(video, frame, "rgb24", width, height).to_ndarray()
    if turns:
        rgb = np.rot90(rgb, turns)
    if into is not None and _CHANNELS_FIRST.get():  # the caller's (3, H, W) output: transposed as written
        dest = into((3, rgb.shape[0], rgb.shape[1]))
        if dest is not None:
            dest[...] = rgb.transpose(2, 0, 1)
            return dest.view(ChannelsFirst)
        return np.ascontiguousarray(rgb)
    return _placed(rgb, into)


#: Frames past the last target whose packets a decode may still read (B-frame reordering, frame threads).
_READ_MARGIN_FRAMES = 8


#: FFmpeg's I/O buffer: the demuxer reads this much at a time, so a block's last read goes past its end.
_IO_BUFFER = 32 << 10


def _block_bytes(index: VideoIndex, start: int, last: int) -> int:
    """About how many bytes decoding from keyframe ``start`` to frame ``last`` reads: the file range of their
    packets (and a few more frames') when the index knows offsets, else the sum of their sizes."""
    stop = last + 1 + _READ_MARGIN_FRAMES
    offsets = index.packet_offsets
    if offsets is None or offsets[start:stop].min(initial=0) < 0:
        return int(index.packet_sizes[start:stop].sum())
    ends = offsets[start:stop] + index.packet_sizes[start:stop]
    return int(ends.max() - offsets[start:stop].min()) + _IO_BUFFER


#: Bytes before a keyframe's packet that a seek to it may read first (a Matroska cluster's header).
_ANNOUNCE_LEAD = 64 << 10
#: Bytes before a keyframe's packet fetched ahead with its span: a Matroska cluster's and block's headers,
#: where a seek to the keyframe starts reading (the announced read starts :data:`_ANNOUNCE_LEAD` earlier, but
#: fetches only from where the reads miss).
_FETCH_LEAD = 64
#: Bytes after a packet's data that its demuxer reads with it (a Matroska block's header, a BlockGroup's
#: trailing elements; an MP4 sample has none).
_PACKET_TAIL = 64


def _read_range(index: VideoIndex, start: int, targets: Sequence[int]) -> tuple[int, int] | None:
    """The bytes a span that drains its decoder once every target's packet is in reads: from its keyframe's
    packet (less what a seek may read before it) to the end of the last target packet in the file (decode
    order is file order within a stream, so every packet the targets need lies before it). None when the
    index does not know the offsets."""
    offsets = index.packet_offsets
    if offsets is None:
        return None
    stop = max(targets) + 1
    span = offsets[start:stop]
    if span.size == 0 or int(span.min()) < 0:
        return None
    wanted = np.asarray(targets, dtype=np.int64)
    end = int((offsets[wanted] + index.packet_sizes[wanted]).max()) + _PACKET_TAIL
    return max(0, int(offsets[start]) - _ANNOUNCE_LEAD), end


def _head_range(index: VideoIndex) -> tuple[int, int] | None:
    """What opening the container reads (its header, and the first packet, decoded to learn the pixel
    format): from the file's start to the end of the first packet in the file. None without offsets."""
    offsets = index.packet_offsets
    if offsets is None or offsets.size == 0 or int(offsets.min()) < 0:
        return None
    first = int(np.argmin(offsets))
    return 0, int(offsets[first] + index.packet_sizes[first]) + _PACKET_TAIL


def _seek(video: OpenedVideo, index: VideoIndex, start: int, targets: Sequence[int], drain: bool) -> None:
    """Seek to keyframe ``start``, telling the source which bytes decoding the ``targets`` will read: up to
    the last target's packet when the decode drains there (``drain``), else about the block's length."""
    if video.takes_read_hints:
        where = _read_range(index, start, targets) if drain else None
        if where is None or not video.announce_read(*where):
            video.expect_read(_block_bytes(index, start, max(targets)))
    pts = int(index.pts[start])
    try:
        video.container.seek(pts, stream=video.stream, backward=True, any_frame=False)
    except Exception:
        if start != 0:
            raise
        video.container.seek(0, backward=True, any_frame=False)  # start of file, in AV_TIME_BASE units


@dataclasses.dataclass(frozen=True)
class _ResumePoint:
    """Where a decode left a container's codec: decoded from a keyframe without a seek since, every frame up
    to pts ``last_pts`` (position ``last_position``) already out, the packets read ahead of it whose frames
    were skipped (``skipped``: their pts) never to come out, and the frames already out of the codec after
    ``last_pts`` (``pending``, in output order). Nothing reported damage and the stream did not end. A later
    span whose targets all come after ``last_pts`` and none was skipped gets its frames by decoding on (the
    pending frames first): the same frames, decoded from the same references, as after a seek to their
    keyframe."""

    index: VideoIndex
    last_pts: int
    last_position: int
    skipped: frozenset[int]
    pending: tuple[Any, ...] = ()

    def serves(self, index: VideoIndex, span: Span, merge_gap: int = DEFAULT_MERGE_GAP) -> bool:
        """Whether decoding on from here answers ``span`` (of ``index``) at no more cost than its seek (which
        skips ``merge_gap`` unwanted frames at most: see :mod:`._planning`)."""
        if index is not self.index or int(index.pts[span.targets[0]]) <= self.last_pts:
            return False
        if span.start - self.last_position - 1 > merge_gap:  # a seek skips the frames between
            return False
        return not self.skipped or not any(int(index.pts[t]) in self.skipped for t in span.targets)


#: The packets a decode skipped past its resume point, where it skipped none.
_NOTHING_SKIPPED: frozenset[int] = frozenset()


class _SpanDecode:
    """One seek to keyframe ``start`` and a forward decode that answers the sorted ``targets`` (positions).

    ``frames`` maps each target to its RGB frame: the decoded frame whose pts is the target's pts, nothing
    else. Raises :class:`_Overshoot` when the seek landed after the keyframe and :class:`_MissingFrame` when a
    target's frame never comes out."""

    # the state every decode starts from (set on the instance once it changes)
    _gop, _seq = -1, 0  # careful: the GOP and decode sequence number of the last packet in
    #: careful: pts -> (GOP number, decode sequence number); GOP number -> sequence number of its first
    #: damage; GOP number -> pts of its keyframe. Read-only here: a careful decode makes its own.
    _place: dict[int, tuple[int, int]] = cast(dict, MappingProxyType({}))
    _first_damage: dict[int, int] = cast(dict, MappingProxyType({}))
    _gop_start: dict[int, int] = cast(dict, MappingProxyType({}))
    _last_gop: int | None = None  # careful: the GOP of the last target, decoded to its end
    # a keyframe packet flagged discard went into the decoder: an MP4 edit list starting after that
    # keyframe (FFmpeg demuxes the samples from it, and the decoder drops their frames), so the frames
    # that come out after it are decoded from that keyframe although none of them is a key frame
    _discarded_key_in = False
    _pending = 0  # targets[:_pending] are answered
    _skipping = False
    _decoded = 0
    _draining = False
    _answered = False  # every target is answered (the decode may go on for the next frame)
    _successor_seen = False
    #: position -> where its converted frame goes (:func:`writing_frames_into`), for decodes on that index
    _into: Mapping[int, Destination] | None = None

    def __init__(
        self,
        video: OpenedVideo,
        index: VideoIndex,
        start: int,
        targets: Sequence[int],
        size: tuple[int, int] | None,
        skip_nonref: bool,
        seek: bool = True,
        careful: bool = False,
        orientation: str = "display",
        resume: _ResumePoint | None = None,
        drain: bool = False,
    ):
        self.video, self.index, self.start, self.targets, self.size = video, index, start, targets, size
        self.orientation = orientation
        self.resume = resume  # decode on from where the container's last decode left its codec (no seek)
        self.seek = seek and resume is None  # False: a fresh container decoded from its first packet
        # careful: one codec thread, so every damage report comes at its own packet; damage then spoils the
        # frames decoded after it (in decode order) until the next keyframe
        self.careful = careful
        if careful:
            self._place, self._first_damage, self._gop_start = {}, {}, {}
        # the pts of the frames this decode goes through, from its keyframe (or where it resumes) to the frame
        # after the last target: one small list, read for the targets, the checks and the resume point
        after = targets[-1] + 1
        count = index.num_frames
        low = min(start, targets[0], resume.last_position if resume is not None else start)
        high = min(after + 1, count)
        listed = index.pts[low:high].tolist()
        self.target_pts = [listed[t - low] for t in targets]
        self._start_pts = listed[start - low]  # the keyframe's: a seek must not land after it
        self.wanted = set(self.target_pts) if skip_nonref else None  # a target's own packet is never skipped
        self.frames: dict[int, np.ndarray] = {}
        into = _WRITE_INTO.get()
        if into is not None:
            planned = into.get(id(index))
            if planned is not None and planned[0] is index:
                self._into = planned[1]
        self._first = resume is None
        self._from_key = resume is not None  # a key frame came out: what follows is decoded from a keyframe
        # for the resume point this decode leaves: the last frame out, packets skipped, anything amiss
        self._out_pts = resume.last_pts if resume is not None else None
        self._skipped: set[int] = set(resume.skipped) if resume is not None else set()
        self._resumable = not careful
        self._converted: dict[int, np.ndarray] = {}  # by pts: a frame answering several targets converts once
        # drain: once the packets of every target are in the decoder (and with them every packet before them
        # in decode order, all that their frames depend on), drain it rather than demux packets that only
        # push the frames out (B-frame reordering, frame threads): no byte past the last target's packet is
        # read. Not when careful (damage reported later in the GOP counts).
        self._unsent = set(self.target_pts) if drain and not careful else None
        # a hinted index (not a demux scan) is checked against the packets and frames this decode produces,
        # up to the frame after the last target, which ends the last target's time on screen: the decode goes
        # on until that frame is out (it stays pending in the resume point). A progressive snapshot's blocks
        # not demuxed yet hold placeholders: there only the targets are checked (._truth).
        self.checking = not index.scanned and index.progressive is None
        self._check_until = listed[after - low] if after < count else None
        # the positions of those frames by pts: the packet and frame checks, and the resume point this decode
        # leaves, look there first (a dict lookup, not a search of the whole index per packet); the first
        # position of a pts wins, as in position_of
        self._listed: dict[int, int] = dict(zip(reversed(listed), range(high - 1, low - 1, -1)))
        # (not for the MP4 sample tables, which the demuxer itself reads: the container's own frame list)
        self._need_successor = self.checking and not careful and not index.moov_tables
        self._unseen: list[Any] = []  # frames out after the last target: the resume point's pending frames
        #: the frames whose packets the decode reads (announced to HTTP sources)
        self.read_targets = tuple(targets)
        if self._need_successor and self._check_until is not None:
            self.read_targets += (after,)
            if self._unsent is not None:
                self._unsent.add(self._check_until)  # drain once the next frame's packet is in too

    def run(self) -> dict[int, np.ndarray]:
        """Decode until every target is answered."""
        if self.seek:
            _seek(self.video, self.index, self.start, self.read_targets, self._unsent is not None)
        elif self.resume is not None and self.video.takes_read_hints:
            last = max(self.read_targets)
            self.video.expect_read(_block_bytes(self.index, self.resume.last_position + 1, last))
        ffmpeg_error = import_av().error.FFmpegError
        try:
            if self.resume is not None and self.resume.pending and self._take(list(self.resume.pending)):
                return self._result()
            careful, checking, listed, wanted = self.careful, self.checking, self._listed, self.wanted
            for packet in self.video.container.demux(self.video.stream):
                pts = packet.pts
                if self._first and packet.is_keyframe and packet.is_discard:
                    self._discarded_key_in = True
                if careful:  # its places: only a careful decode reads them
                    self._note_packet(packet)
                if checking and packet.size and not packet.is_discard:
                    listed_pts = pts if pts is not None else packet.dts
                    if listed_pts not in listed:  # (the frames this decode goes through are listed)
                        self._check_listed(listed_pts, "a packet")
                # a packet read ahead past the last target is decoded: the next span may want its frame
                skip = (
                    wanted is not None
                    and not self._answered
                    and pts not in wanted
                    and (pts is None or int(pts) < self.target_pts[-1])  # before the last target
                )
                if skip != self._skipping:
                    self._set_skipping(skip)
                if pts is None or not packet.size:  # no place in the timeline, or the final flush
                    self._resumable = False
                elif skip:
                    self._skipped.add(int(pts))
                try:
                    frames = packet.decode()
                except ffmpeg_error as exc:  # damaged data: the packet's own frame never comes out
                    logger.debug("%s: packet at pts %s does not decode: %s", self.video.uri, packet.pts, exc)
                    self._note_damage(self._gop, self._seq)
                    frames = []
                if self._take(frames):
                    return self._result()
                if self._unsent is not None and pts is not None:
                    self._unsent.discard(int(pts))
                    if not self._unsent:
                        return self._drain(ffmpeg_error)
            if self.careful and self._pending == len(self.targets):
                return self._careful_result()
            if self._answered:  # the stream ended before a frame after the last target came out
                self._no_successor()
                return self._result()
            if self.seek and self._first:
                raise _Overshoot()  # nothing decoded after the seek
            raise _MissingFrame(self.targets[self._pending])
        finally:
            if self._skipping:
                self._set_skipping(False)
            if stats.is_collecting():
                self._record()

    def _take(self, frames: Sequence[Any]) -> bool:
        """Pass ``frames`` (out of the codec, in output order) to the targets, then to :meth:`_note_unseen`;
        True once the span is done: every target answered, and (a hinted index) the frame after the last
        one out."""
        for i, frame in enumerate(frames):
            if self._answered:
                self._note_unseen(frames[i:])
                return self._successor_seen
            self._decoded += 1
            if self._on_frame(frame):
                self._answered = True
                self._note_unseen(frames[i + 1 :])
                return self.careful or self._successor_seen or not self._need_successor
        return False

    def _result(self) -> dict[int, np.ndarray]:
        return self.frames if not self.careful else self._careful_result()

    def _note_unseen(self, frames: Sequence[Any]) -> None:
        """Frames that came out after the last target: kept for the next decode of this container (the
        resume point's pending frames), unchecked for damage. With a hinted index, the first of them must be
        the frame the index lists after the last target (it ends the last target's time on screen)."""
        for frame in frames:
            pts = frame.pts if frame.pts is not None else frame.dts
            if pts is None or frame.is_corrupt or int(pts) <= self.target_pts[-1]:
                self._resumable = False
                continue
            if self._need_successor and not self._successor_seen and int(pts) != self._check_until:
                if self._check_until is None or int(pts) < self._check_until:
                    raise IndexMismatch(
                        self.index,
                        f"the decoder produced a frame at pts {int(pts)} that the index does not list",
                    )
                self._no_successor()
            self._successor_seen = True
            self._unseen.append(frame)

    def _no_successor(self) -> None:
        """The frame the hinted index lists after the last target did not come out where it belongs.

        Raises:
            IndexMismatch: the index lists one.
        """
        if self._need_successor and not self._successor_seen and self._check_until is not None:
            raise IndexMismatch(
                self.index,
                f"the index lists a frame at pts {self._check_until} that the decoder never produced",
            )

    def resume_point(self) -> _ResumePoint | None:
        """Where this finished decode left the codec, for the container's next decode; None when decoding on
        from here is not known to be right (careful decodes, damage, the stream's end, no frame out)."""
        if not self._resumable or self._draining or self._out_pts is None or not self._from_key:
            return None  # a drained decoder is flushed by its next use
        out = self._out_pts
        position = self._position_of(out)
        if position < 0:
            return None  # a frame the index does not know
        skipped = frozenset(p for p in self._skipped if p > out) if self._skipped else _NOTHING_SKIPPED
        return _ResumePoint(self.index, out, position, skipped, tuple(self._unseen))

    def _drain(self, ffmpeg_error: type[Exception]) -> dict[int, np.ndarray]:
        """Drain the decoder (every target's packet is in it): its frames answer the targets, or
        :class:`_DrainedShort`. The container's next use seeks, which flushes the drained decoder."""
        self._set_skipping(False)
        self._draining = True
        try:
            frames = self.video.stream.codec_context.decode(None)
        except ffmpeg_error as exc:
            logger.debug("%s: draining the decoder failed: %s", self.video.uri, exc)
            self._note_damage(self._gop, self._seq)
            frames = []
        if self._take(frames):
            return self.frames
        if self._answered:  # the packet of the frame listed after the last target was in: it did not come out
            self._no_successor()
            return self.frames
        raise _DrainedShort()

    def _check_listed(self, pts: Any, what: str) -> None:
        """Raise :class:`IndexMismatch` where the hinted index lists no frame at ``pts`` (a demuxed packet's
        or a decoded frame's), up to the frame after the last target."""
        if pts is None or (self._check_until is not None and int(pts) > self._check_until):
            return
        if self._position_of(int(pts)) < 0:
            raise IndexMismatch(
                self.index, f"the decode produced {what} at pts {int(pts)} that the index does not list"
            )

    def _position_of(self, pts: int) -> int:
        """The position of the frame at ``pts`` in the index (-1: none)."""
        found = self._listed.get(pts)
        return found if found is not None else self.index.position_of(pts)

    def _note_packet(self, packet: Any) -> None:
        """Place ``packet`` in decode order: its GOP and sequence number."""
        if packet.is_keyframe:
            self._gop += 1
            if packet.pts is not None:
                self._gop_start[self._gop] = int(packet.pts)
        self._seq += 1
        if packet.pts is not None:
            self._place[int(packet.pts)] = (self._gop, self._seq)

    def _note_damage(self, gop: int, seq: int) -> None:
        """The decoder reported damage at decode position ``seq`` of ``gop``."""
        if not self.careful:
            raise _Damaged()
        self._first_damage[gop] = min(seq, self._first_damage.get(gop, seq))

    def _careful_result(self) -> dict[int, np.ndarray]:
        """The targets' frames, or :class:`_MissingFrame` (``corrupt``) for the first one decoded after
        damage."""
        for target, pts in zip(self.targets, self.target_pts):
            gop, seq = self._place.get(pts, (-1, 0))
            if self._first_damage.get(gop, seq + 1) <= seq:
                raise _MissingFrame(target, corrupt=True)
        return self.frames

    def _set_skipping(self, skip: bool) -> None:
        if skip != self._skipping:
            self.video.stream.codec_context.skip_frame = "NONREF" if skip else "DEFAULT"
            self._skipping = skip

    def _answer(self, frame: Any, pts: int) -> None:
        arr = self._converted.get(pts)
        target = self.targets[self._pending]
        if arr is None:
            into = self._into.get(target) if self._into is not None else None
            arr = self._converted[pts] = _to_rgb(self.video, frame, self.size, self.orientation, into)
        self.frames[target] = arr
        self._pending += 1

    def _on_frame(self, frame: Any) -> bool:
        """Answer the targets ``frame`` settles; True once every target is answered."""
        pts = frame.pts
        if pts is None:
            pts = frame.dts
            if pts is None:
                self._resumable = False
                return False
        pts = int(pts)
        if self._out_pts is None or pts > self._out_pts:
            self._out_pts = pts
        if self.checking and pts not in self._listed:  # (the frames this decode goes through are listed)
            self._check_listed(pts, "a frame")
        if self._first:
            self._first = False
            if self.seek and pts > self._start_pts:  # landed after the keyframe it aimed at
                raise _Overshoot()
        if not self._from_key:
            if not frame.key_frame and not self._discarded_key_in:  # decoded without its references (older
                # FFmpeg outputs such frames)
                if self.seek:
                    raise _Overshoot()  # the seek did not start at a real keyframe
                return False  # the stream starts mid-GOP: frames before its first keyframe are never returned
            self._from_key = True
        n, pending = len(self.targets), self._pending
        wanted = self.target_pts[pending] if pending < n else None
        if wanted is not None and wanted < pts:  # that frame never came out
            raise _MissingFrame(self.targets[pending])
        if self.careful and self._last_gop is not None:  # every target is answered: is its GOP over?
            following = self._gop_start.get(self._last_gop + 1)
            if following is not None and pts >= following:
                return True
        if frame.is_corrupt:  # FFmpeg says so: concealed or partial pixels
            self._note_damage(*self._place.get(pts, (self._gop, self._seq)))
        if wanted == pts:
            if self._draining and getattr(frame, "interlaced_frame", False):
                raise _DrainedShort()  # field pictures: the frame's other field may be in a later packet
            self._answer(frame, pts)
        if self._pending == n and self.careful:
            if self._last_gop is None:  # decode on to the end of the last target's GOP: damage reported
                self._last_gop = self._place.get(pts, (self._gop, 0))[0]  # there still spoils the targets
            return False
        return self._pending == n

    def _record(self) -> None:
        """Count this decode in the active :func:`~._stats.collect_stats` blocks (call when one listens)."""
        packet_bytes = 0
        first = self.start if self.resume is None else self.resume.last_position + 1
        if self.video.counts_packet_bytes:
            packet_bytes = int(self.index.packet_sizes[first : self.targets[-1] + 1].sum())
        stats.record(
            decoded_frames=self._decoded,
            converted_frames=len(self._converted),
            seeks=int(self.resume is None),
            bytes_read=packet_bytes,
        )


class PyAVVideoDecoder(BaseVideoDecoder):
    """Decode frames of one video with PyAV (FFmpeg bundled in the ``av`` wheel); frames are numpy uint8
    arrays.

    Args:
        source: a URI or path of any kind hf_mediaref reads (local, ``file://``, ``http(s)://``,
            ``data:``, fsspec URLs), or a ``MediaRef``.
        storage_options: fsspec options for remote URIs.
        dimension_order: ``"NCHW"`` (default) or ``"NHWC"``.
        orientation: ``"display"`` (default: a rotation display matrix is applied) or ``"stored"``.

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

    def _decode_span(
        self,
        span: Span,
        *,
        size: tuple[int, int] | None = None,
        threads: int = 1,
        index: VideoIndex | None = None,
        last: bool = False,
        held: HeldVideo | None = None,
    ) -> dict[int, Any]:
        """Decode ``span``; every returned frame is the target's own frame, decoded from a keyframe before it.

        A seek that lands after its keyframe drops that keyframe and backs off to the previous one; when even
        the seek to the start lands late (seen in MPEG-TS), the span is decoded on a fresh container from the
        first packet, without seeking. A target whose frame never comes out (damaged or missing data) raises
        :class:`~hf_mediaref.errors.MediaDecodeError`, after one retry without skipping non-reference frames.
        """
        index = self._index if index is None else index
        start, from_top, careful, every_packet = span.start, False, False, False
        drain = index.decoder_draining
        may_resume = True

        def serves(point: Any) -> bool:
            return isinstance(point, _ResumePoint) and point.serves(index, span, self._merge_gap)

        while True:
            skip_nonref = index.codec in _NONREF_SKIP_CODECS and index.nonref_skipping and not every_packet
            resumed = False
            try:
                prefer = serves if may_resume and not careful and not from_top else None
                with self._container(
                    1 if careful else threads, fresh=from_top, prefer=prefer, held=held
                ) as leased:
                    video, point = leased
                    check_version(index, video.version, self.uri)
                    skip_nonref = skip_nonref and _reorders(video)
                    resumed = prefer is not None and point is not None and prefer(point)
                    decode = _SpanDecode(
                        video,
                        index,
                        start,
                        span.targets,
                        size,
                        skip_nonref,
                        seek=not from_top,
                        careful=careful,
                        orientation=self.orientation,
                        resume=point if resumed else None,
                        drain=drain and video.takes_read_hints,
                    )
                    frames = decode.run()
                    if not from_top:
                        video.resume_point = decode.resume_point()
                        if last and video.resume_point is not None:
                            keep_resume_point(self._key, video)
                if every_packet:  # the frame lost while skipping came out when nothing was skipped
                    logger.info("%s: skipping non-reference frames loses frames; no longer skipping", self)
                    index.nonref_skipping = False
                return frames
            except _DrainedShort:
                logger.info(
                    "%s: draining the decoder at the last target misses frames (or fields); not draining",
                    self,
                )
                index.decoder_draining = drain = False
            except _Damaged:  # judged again on one codec thread: each damage report comes at its own packet
                logger.info("%s: the decoder reported damage; decoding the span again carefully", self)
                careful = True
            except _Overshoot:  # the lease closed that container: its state is unknown
                if start == 0:
                    logger.info("%s: a seek to the start landed late; decoding from the first packet", self)
                    from_top = True
                else:
                    earlier = index.previous_keyframe(start)
                    logger.debug(
                        "%s: seek to frame %d overshot; retrying from frame %d", self, start, earlier
                    )
                    index.distrust(start)
                    start = earlier
            except _MissingFrame as missing:
                if resumed:  # decoding on did not give the frame: judge it after a seek, as always
                    logger.debug(
                        "%s: decoding on from the last decode lost frame %d; seeking", self, missing.position
                    )
                    may_resume = False
                    continue
                if skip_nonref and not missing.corrupt:  # lost to skipping, or to damage? decode every packet
                    every_packet = True
                    continue
                if not index.scanned and not missing.corrupt:  # a hinted index may list a frame that is not
                    raise IndexMismatch(
                        index,
                        f"the frame it lists at pts {int(index.pts[missing.position])} did not come out of "
                        "the decoder",
                    ) from None
                raise self._missing_frame_error(index, missing.position, start, missing.corrupt) from None

    def _planned_reads(self, spans: Sequence[Span], index: VideoIndex) -> list[tuple[int, int]]:
        """Each span's read as :func:`_read_range` gives it (from just before its keyframe's packet to the end
        of its last target's, the frame after it included where a hinted index's check decodes it), also
        where frames between them are not known yet (a Matroska snapshot's placeholders): decode order is
        file order within a stream, so every packet the targets need lies in that range."""
        offsets, sizes = index.packet_offsets, index.packet_sizes
        if offsets is None:
            return []
        out = []
        checks = not index.scanned and index.progressive is None and not index.moov_tables  # as _SpanDecode
        for span in spans:
            after = span.targets[-1] + 1
            targets = (*span.targets, after) if checks and after < index.num_frames else span.targets
            wanted = np.asarray(targets, dtype=np.int64)
            key = int(offsets[span.start])
            if key < 0 or int(offsets[wanted].min()) < 0:
                continue
            out.append(
                (max(0, key - _FETCH_LEAD), int((offsets[wanted] + sizes[wanted]).max()) + _PACKET_TAIL)
            )
        return out

    @functools.cached_property
    def _head(self) -> tuple[int, int] | None:
        """The byte range opening a container of this video reads (announced to an HTTP source); None for a
        local file, which takes no read hints (not worked out for every video of every batch)."""
        if classify_uri(self.uri) in (UriKind.LOCAL, UriKind.FILE):
            return None
        return _head_range(self._snapshot)  # a progressive snapshot: not completed here

    def _container(
        self,
        threads: int,
        *,
        fresh: bool,
        prefer: Callable[[Any], bool] | None = None,
        held: HeldVideo | None = None,
    ) -> contextlib.AbstractContextManager[tuple[OpenedVideo, Any]]:
        """A leased container from the cache and the resume point it came with (one that ``prefer`` accepts
        if there is one), or a ``fresh`` one (never seeked, closed after use; no resume point). ``held``: the
        container a chain of spans keeps (see :meth:`_holding`)."""
        if fresh:
            return self._fresh_container(threads)
        if held is not None:
            return held.use(threads, prefer)
        return lease_video(  # no context manager of its own around the lease: one per span
            self.uri,
            storage_options=self.storage_options,
            threads=threads,
            key=self._key,
            prefer=prefer,
            head=self._head,
        )

    @contextlib.contextmanager
    def _holding(self) -> Iterator[HeldVideo]:
        """One container leased for a chain of spans (:class:`~._container.HeldVideo`), then given back."""
        held = HeldVideo(self.uri, self.storage_options, self._key, self._head)
        try:
            yield held
        finally:
            held.release()

    @contextlib.contextmanager
    def _fresh_container(self, threads: int) -> Iterator[tuple[OpenedVideo, Any]]:
        with contextlib.closing(
            OpenedVideo(self.uri, storage_options=self.storage_options, threads=threads, head=self._head)
        ) as video:
            yield video, None

    def _missing_frame_error(
        self, index: VideoIndex, position: int, start: int, corrupt: bool
    ) -> MediaDecodeError:
        t_ns = int(index.frame_ns[position])
        what = (
            "came out flagged corrupt by FFmpeg (damaged data, concealed pixels)"
            if corrupt
            else "did not come out of the decoder (damaged or missing data)"
        )
        return MediaDecodeError(
            f"frame {position} of video {describe_uri(self.uri)} (pts {t_ns / NS_PER_SECOND:.6f} s, "
            f"{t_ns} ns) cannot be returned: decoded from the keyframe at frame {start}, it {what}",
            uri=self.uri,
        )

    def _stack(self, frames: Sequence[Any]) -> np.ndarray:
        if not frames:
            return np.empty((0, self._snapshot.height, self._snapshot.width, 3), dtype=np.uint8)
        return np.stack(frames)
