"""``PositionedFile``: the readable, seekable raw file that keeps its own position, which the remote
range readers (:mod:`._readahead`) and the video engine's recording view of a file share. A subclass reads
at ``_pos`` and says where its end is."""

from __future__ import annotations

import io


class PositionedFile(io.RawIOBase):
    """A readable, seekable raw file whose position is its own ``_pos`` (never below 0). Subclasses read from
    there, say where the file ends (:meth:`_end`) and may follow moves (:meth:`_moved`)."""

    _pos: int = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        if whence == io.SEEK_SET:
            base = 0
        elif whence == io.SEEK_CUR:
            base = self._pos
        elif whence == io.SEEK_END:
            base = self._end()
        else:
            raise ValueError(f"invalid whence ({whence!r}, should be 0, 1 or 2)")
        self._pos = max(0, base + offset)
        self._moved()
        return self._pos

    def _end(self) -> int:
        """The size of the file (``SEEK_END``'s base)."""
        raise io.UnsupportedOperation("seek from the end")

    def _moved(self) -> None:
        """Called after each seek, at the new ``_pos``."""
