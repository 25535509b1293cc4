"""``embed``: make a dataset self-contained by turning its media refs into ``data:`` URIs."""

from __future__ import annotations

from typing import Any, Optional, Sequence

from ..core import DataURI
from ..core import MediaRef
from .decoding import DecodeOptions, decode_refs
from .formatter import has_media
from .roots import require_resolved
from .transform import map_refs

__all__ = ["embed"]


class _EmbedBatch:
    """Picklable ``map`` function: decode a batch's refs with one engine call and re-encode them as images."""

    def __init__(self, columns: list[str], format: str, quality: Optional[int], options: DecodeOptions):
        self.columns, self.format, self.quality, self.options = columns, format, quality, options

    def _encode(self, refs: list[MediaRef]) -> list[dict]:
        todo = [i for i, ref in enumerate(refs) if not ref.is_embedded]
        frames = decode_refs([require_resolved(refs[i]) for i in todo], self.options)
        out = [{"uri": ref.uri, "pts_ns": ref.pts_ns} for ref in refs]
        for i, frame in zip(todo, frames):
            out[i] = {
                "uri": DataURI.from_image(frame, format=self.format, quality=self.quality).uri,
                "pts_ns": None,
            }
        return out

    def __call__(self, batch: dict) -> dict:
        return {column: map_refs(batch[column], self._encode) for column in self.columns}


def embed(
    dataset: Any,
    columns: Optional[Sequence[str]] = None,
    format: str = "png",
    quality: Optional[int] = None,
    *,
    batch_size: int = 64,
    decoder: str = "pyav",
    storage_options: Optional[dict] = None,
    num_proc: Optional[int] = None,
) -> Any:
    """Return a copy of ``dataset`` whose media refs (local, remote, relative to its root; images and video
    frames) are replaced by image ``data:`` URIs, so the dataset no longer depends on external files.

    Frames are decoded ``batch_size`` rows at a time through the video engine and encoded as ``format``
    (``"png"``: lossless; ``"jpeg"``/``"webp"`` with ``quality``). Already embedded refs are kept as they are.
    Shows datasets' progress bar. Works on ``Dataset`` and ``DatasetDict``.
    """
    if format.lower() not in ("png", "jpeg", "jpg", "webp"):
        raise ValueError(f"format must be 'png', 'jpeg' or 'webp', got {format!r}")
    DataURI.from_image(_probe_pixel(), format=format, quality=quality)  # validate format/quality up front
    if isinstance(dataset, dict):
        return type(dataset)(
            {
                name: embed(
                    split,
                    columns,
                    format,
                    quality,
                    batch_size=batch_size,
                    decoder=decoder,
                    storage_options=storage_options,
                    num_proc=num_proc,
                )
                for name, split in dataset.items()
            }
        )
    features = dataset.features
    columns = list(columns) if columns is not None else [c for c, f in features.items() if has_media(f)]
    bad = [c for c in columns if not has_media(features.get(c))]
    if bad:
        raise ValueError(f"columns {bad} hold no decodable MediaRef values")
    fn = _EmbedBatch(
        columns, format, quality, DecodeOptions(decoder=decoder, storage_options=storage_options)
    )
    return dataset.with_format(None).map(
        fn,
        batched=True,
        batch_size=batch_size,
        features=features,
        num_proc=num_proc,
        desc=f"Embedding media as {format}",
    )


def _probe_pixel():
    import numpy as np

    return np.zeros((1, 1, 3), np.uint8)
