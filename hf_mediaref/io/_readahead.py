"""The seekable raw file that remote reads share: byte ranges fetched on demand with an adaptive read-ahead,
served first from ranges fetched ahead for the batch (:mod:`._ranges`), and sized by what the decoder says
it will read. Its subclasses only say how one range is fetched and checked: over HTTP Range requests
(:class:`~._http._RangeReader`: ``http(s)``, ``hf://``, ``s3://``) or through an fsspec filesystem at a
pinned object version (:class:`~._pinned._PinnedReader`: ``gs://``).

How much one fetch asks for (:meth:`AdaptiveRangeFile._fetch_size`): after a seek ``min_readahead`` bytes,
then twice the previous fetch while reads continue where it ended, up to ``readahead``; a caller that knows
which bytes it will read says so with :meth:`~AdaptiveRangeFile.announce` (one request for a keyframe block
up to its last target packet, and little past it) or, as a length after the next seek,
:meth:`~AdaptiveRangeFile.expect`. A reader that takes short reads (:attr:`~AdaptiveRangeFile.short_reads`:
FFmpeg through ``read1``) reads the file's head and the bytes just past an announced range ``small_read``
at a time. A read may return fewer bytes than asked (the end of what was fetched): FFmpeg's I/O takes what
it gets and asks again, so a decoder reading through ``read1`` never pulls more than was fetched. The video
code announces reads only to files that take them (``announce``), and drains its decoder at the last
target's packet only there.
"""

from __future__ import annotations

import contextlib
import io
from typing import Any

from ._positioned import PositionedFile

__all__ = ["MAX_EXPECTED", "AdaptiveRangeFile"]

#: The most one announced or expected read fetches in one request.
MAX_EXPECTED = 32 << 20
#: What FFmpeg's I/O (and a BufferedReader) asks for to fill its buffer, whatever it needs: a read of at most
#: this much says nothing about how much is needed, a larger one asks for exactly what it needs.
_BUFFER_FILL = 32 << 10


class AdaptiveRangeFile(PositionedFile):
    """A raw, seekable file read by byte ranges (see the module docstring). Subclasses call
    :meth:`_init_readahead`, set ``_size`` and implement :meth:`_fetch` and :meth:`take_ahead`."""

    _size: int | None
    #: A whole download (a server without range requests): reads are served from it.
    _fallback: io.BytesIO | None = None

    def _init_readahead(self, readahead: int, min_readahead: int, small_read: int) -> None:
        self.bytes_read = 0
        self.requests = 0
        self._pos = 0
        self._max = max(1, readahead)
        self._min = max(1, min(self._max, min_readahead))
        self._window = self._min
        self._expected = 0
        self._announced: tuple[int, int] | None = None  # [start, end) of the bytes the decoder will read
        self._past_announced = -1  # where the last announced fetch ended: a read there reads little
        self._small = max(1, min(self._min, small_read))
        #: Set by a reader that takes short reads (FFmpeg through ``read1``): the head and the read past an
        #: announced range are then ``small_read`` bytes. Others (a ``read`` that fills its answer) keep
        #: ``min_readahead``: a small read would only split their read into more requests.
        self.short_reads = False
        # the last announced range fetched, kept (until another replaces it) for a demuxer that reads on and
        # seeks back into it: Matroska seeking into its last indexed cluster parses on to the end first
        self._block = b""
        self._block_start = 0
        self._buf = b""
        self._buf_start = 0
        #: Ranges fetched ahead (:mod:`._ranges`) this file took, each counted once toward its planned reads.
        self.taken_ahead: set[int] = set()

    # ------------------------------------------------------------------ what a subclass says
    def _fetch(self, start: int, length: int, deadline: Any) -> None:
        """Fetch ``[start, start + length)`` (or fewer bytes at the end of the file) into ``_buf`` /
        ``_buf_start``, within ``deadline``, counting ``requests`` and ``bytes_read``."""
        raise NotImplementedError

    def take_ahead(self, pos: int, deadline: Any = None) -> bool:
        """Serve the read at ``pos`` from bytes fetched ahead (:mod:`._ranges`) of the version opened
        (through :meth:`_took`); False when none hold ``pos``."""
        raise NotImplementedError

    def _new_deadline(self) -> Any:
        """The deadline of one read: its wait for bytes fetched ahead and its own fetch after it."""
        raise NotImplementedError

    def _rule(self) -> contextlib.AbstractContextManager[None]:
        """The public-address rule a read runs under (:mod:`._network`): the running call's by default."""
        return contextlib.nullcontext()

    # ------------------------------------------------------------------ shared
    def _took(self, data: bytes, start: int) -> None:
        """Bytes fetched ahead from ``start`` serve the reads now; an announced range they hold is done."""
        self._buf, self._buf_start = data, start
        announced = self._announced
        if announced is not None and start <= announced[0] and announced[1] <= start + len(data):
            self._announced, self._past_announced = None, announced[1]
            self._block, self._block_start = data, start

    def _end(self) -> int:
        return self._size or 0

    def _moved(self) -> None:
        if self._fallback is not None:
            self._fallback.seek(self._pos)

    def expect(self, nbytes: int) -> None:
        """Hint that reading (after the seek that follows) goes on for about ``nbytes`` (a keyframe block to
        decode): the next fetch takes them in one request (up to 32 MiB) instead of growing from
        ``min_readahead``; a read just past them starts from ``min_readahead`` again."""
        self._expected = min(max(0, int(nbytes)), MAX_EXPECTED)

    def announce(self, start: int, end: int) -> None:
        """Say that the next reads are of bytes ``[start, end)`` (a keyframe block up to its last target
        packet, known from the index). The first read that misses the buffer at a position in that range
        fetches from there to ``end`` in one request (up to 32 MiB at a time), whatever size it asked for,
        and reads are served from it; a read that goes on past ``end`` fetches ``small_read`` bytes (with
        :attr:`short_reads`) and grows (doubling) from there. Reads elsewhere (a demuxer reading its cues
        first) keep the usual read-ahead and leave the announcement for later; the next announcement
        replaces it. Only how much is fetched changes: every byte served is the file's byte at that
        position, of the version opened."""
        start, end = max(0, int(start)), int(end)
        if self._size is not None:
            end = min(end, self._size)
        self._announced = (start, end) if end > start else None

    def _fetch_size(self, asked: int) -> int:
        """How many bytes to fetch from ``self._pos`` for a read of ``asked`` bytes that missed the buffer."""
        pos = self._pos
        announced = self._announced
        if announced is not None and announced[0] <= pos < announced[1]:  # one request for what is left
            fetch = min(announced[1] - pos, MAX_EXPECTED)
            if pos + fetch >= announced[1]:
                self._announced, self._past_announced = None, announced[1]
            self._window = self._min
            return fetch
        if pos == self._past_announced and self.short_reads:  # the decoder reads on past its range: a little
            self._past_announced, self._window = -1, self._small
            return self._small
        if self._expected:  # the caller said how much it will read from here: one request
            fetch, self._window, self._expected = max(asked, self._min, self._expected), self._min, 0
            return fetch
        if pos == 0 and not self._buf and not self.requests and self.short_reads:  # the head: needs little
            self._window = self._small
            return self._small
        if bool(self._buf) and pos == self._buf_start + len(self._buf):  # continues the last fetch: grow
            self._window = min(2 * self._window, self._max)
            if self._window < self._min and asked <= _BUFFER_FILL:  # after a small read: double from it
                return self._window
            return max(asked, self._window)
        self._window = self._min  # after a seek: the smallest read-ahead
        return max(asked, self._min)

    def readinto(self, buffer: Any) -> int:
        size = self._size or 0
        if self._fallback is None and self._pos < size:
            offset = self._pos - self._buf_start
            if not 0 <= offset < len(self._buf):
                if 0 <= self._pos - self._block_start < len(self._block):  # back in the announced block
                    self._buf, self._buf_start = self._block, self._block_start
                else:
                    deadline = self._new_deadline()  # one for the wait for bytes fetched ahead and the read
                    with self._rule():
                        if not self.take_ahead(self._pos, deadline):
                            announced = self._announced
                            length = min(self._fetch_size(len(buffer)), size - self._pos)
                            self._fetch(self._pos, length, deadline)
                            if announced is not None and self._announced is not announced:  # it was fetched
                                self._block, self._block_start = self._buf, self._buf_start
        if self._fallback is not None:
            n = self._fallback.readinto(buffer)
            self._pos = self._fallback.tell()
            return n
        n = max(0, min(len(buffer), len(self._buf) - (self._pos - self._buf_start)))
        if n:
            offset = self._pos - self._buf_start
            buffer[:n] = memoryview(self._buf)[offset : offset + n]
            self._pos += n
        return n
