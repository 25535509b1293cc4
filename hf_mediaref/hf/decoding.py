"""Decode options shared by the ``"mediaref"`` formatter and :func:`decode_transform`, and the call into the
video engine (one ``batch_decode`` per batch: the engine groups refs by video and decodes each video once)."""

from __future__ import annotations

from typing import Any, Sequence

from ..core import MediaRef
from ..decode import OUTPUTS, DecodeOptions

__all__ = ["DecodeOptions", "OUTPUTS", "decode_refs"]

def decode_refs(refs: Sequence[MediaRef], options: DecodeOptions) -> list[Any]:
    """One engine call for the whole batch; returns one frame per ref, in order."""
    if not refs:
        return []
    from .. import decode

    return decode.batch_decode(list(refs), options=options)
