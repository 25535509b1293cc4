"""Decode options shared by the ``"mediaref"`` formatter and :func:`decode_transform`, and the call into the
video engine (one ``batch_decode`` per batch: the engine groups refs by video and decodes each video once)."""

from __future__ import annotations

import dataclasses
from typing import Any, Optional, Sequence

from ..core.media_ref import MediaRef

__all__ = ["DecodeOptions", "OUTPUTS", "decode_refs"]

OUTPUTS = ("numpy", "torch", "pil")


@dataclasses.dataclass(frozen=True)
class DecodeOptions:
    """How pixels are produced: ``decoder`` (``"pyav"``/``"torchcodec"``), ``strategy`` (see
    :class:`hf_mediaref.video.BatchDecodingStrategy`), ``size=(H, W)``, ``output`` (``"numpy"`` arrays,
    ``"torch"`` uint8 tensors or ``"pil"`` images), ``channels_first`` (numpy/torch only) and fsspec
    ``storage_options`` for remote URIs."""

    decoder: str = "pyav"
    strategy: Any = None
    size: Optional[tuple[int, int]] = None
    output: str = "numpy"
    channels_first: bool = False
    storage_options: Optional[dict] = None

    def __post_init__(self) -> None:
        if self.output not in OUTPUTS:
            raise ValueError(f"output must be one of {OUTPUTS}, got {self.output!r}")
        if self.decoder not in ("pyav", "torchcodec"):
            raise ValueError(f"decoder must be 'pyav' or 'torchcodec', got {self.decoder!r}")
        if self.output == "pil" and self.channels_first:
            raise ValueError("channels_first does not apply to output='pil'")
        if self.size is not None:
            size = tuple(self.size)
            if len(size) != 2 or not all(isinstance(s, int) and s > 0 for s in size):
                raise ValueError(f"size must be (height, width) with positive ints, got {self.size!r}")
            object.__setattr__(self, "size", size)


def decode_refs(refs: Sequence[MediaRef], options: DecodeOptions) -> list[Any]:
    """One engine call for the whole batch; returns one frame per ref, in order."""
    if not refs:
        return []
    from ..video import batch_decode

    frames = batch_decode(
        list(refs),
        strategy=options.strategy,
        decoder=options.decoder,
        size=options.size,
        output="torch" if options.output == "torch" else "numpy",
        channels_first=options.channels_first,
        storage_options=options.storage_options,
    )
    if options.output == "pil":
        from PIL import Image

        return [Image.fromarray(frame, "RGB") for frame in frames]
    return frames
