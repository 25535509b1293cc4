"""``embed``: make a dataset self-contained by turning its media refs into ``data:`` URIs."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any

import numpy as np

from .. import decode
from ..arrow import map_refs, resolve_ref
from ..core import DataURI, MediaRef
from ..decode import DecodeOptions
from ..io import MediaAccess
from ._feature import has_media, media_features

__all__ = ["embed"]

_FORMATS = ("png", "jpeg", "jpg", "webp")


def _as_image(frame: Any, options: DecodeOptions) -> Any:
    """A frame of any ``output`` as something ``DataURI.from_image`` encodes: an (H, W, 3) array or a PIL
    image."""
    if hasattr(frame, "cpu"):  # a torch tensor
        frame = frame.cpu().numpy()
    if options.channels_first:
        frame = np.ascontiguousarray(frame.transpose(1, 2, 0))
    return frame


class _EmbedBatch:
    """Picklable ``map`` function: decode a batch's refs with one engine call and re-encode them as images."""

    def __init__(
        self,
        roots: dict[str, Any],
        format: str,
        quality: int | None,
        options: DecodeOptions,
    ):
        self.roots, self.format, self.quality, self.options = roots, format, quality, options

    def _encode(self, refs: list[MediaRef], root: Any) -> list[dict]:
        todo = [i for i, ref in enumerate(refs) if not ref.is_embedded]
        resolved = [resolve_ref(refs[i], root) for i in todo]
        access = root if isinstance(root, MediaAccess) else None
        frames = decode.batch_decode(resolved, options=self.options, access=access) if resolved else []
        out = [{"uri": ref.uri, "pts_ns": ref.pts_ns} for ref in refs]
        for i, frame in zip(todo, frames, strict=True):
            image = _as_image(frame, self.options)
            out[i] = {
                "uri": DataURI.from_image(image, format=self.format, quality=self.quality).uri,
                "pts_ns": None,
            }
        return out

    def __call__(self, batch: dict) -> dict:
        return {
            column: map_refs(batch[column], functools.partial(self._encode, root=root))
            for column, root in self.roots.items()
        }


def _columns(features: Any, columns: Sequence[str] | None) -> list[str]:
    if columns is None:
        return [name for name, feature in features.items() if has_media(feature)]
    bad = [c for c in columns if not has_media(features.get(c))]
    if bad:
        raise ValueError(f"columns {bad} hold no MediaRef values")
    return list(columns)


def embed(
    dataset: Any,
    columns: Sequence[str] | None = None,
    format: str = "png",
    quality: int | None = None,
    *,
    batch_size: int = 64,
    num_proc: int | None = None,
    options: DecodeOptions | None = None,
    **decode_options: Any,
) -> Any:
    """A copy of ``dataset`` whose media refs are replaced by image ``data:`` URIs, so that it no longer
    depends on external files.

    Refs (local, remote or relative to the dataset's media root; images and video frames) are decoded
    ``batch_size`` rows at a time, one engine call per batch, and encoded as ``format``. Already embedded refs
    are kept as they are. Every MediaRef column counts, ``decode=False`` ones included. Shows datasets'
    progress bar.

    Args:
        dataset: a ``Dataset`` or ``DatasetDict``.
        columns: the columns to embed (default: every column holding a ``MediaRefFeature``).
        format: ``"png"`` (lossless), ``"jpeg"`` or ``"webp"``.
        quality: 1-100 for JPEG and WebP (default 90).
        batch_size: rows per engine call.
        num_proc: processes for ``datasets.Dataset.map``.
        options: a :class:`hf_mediaref.DecodeOptions` used to decode (``size`` resizes what is embedded).
        **decode_options: fields of :class:`hf_mediaref.DecodeOptions` by name (``decoder``, ``strategy``,
            ``size``, ``output``, ``channels_first``, ``storage_options``, ``max_workers``, ``device``,
            ``timeout``); given ones override ``options``.

    Returns:
        A new ``Dataset`` (or ``DatasetDict``) with the same features.

    Raises:
        ValueError: an unknown ``format``, a bad ``quality`` or options, or ``columns`` that hold no MediaRef.
        UnresolvedPathError: a relative ref and no media root.
        UntrustedRefError: a ref reads outside the dataset's media root and is not allowed.

    Example:
        ```python
        >>> import hf_mediaref
        >>> small = hf_mediaref.embed(ds, format="webp", quality=90, size=(224, 224))
        >>> small[0]["frame"].is_embedded
        True
        ```
    """
    opts = DecodeOptions.resolve(options, **decode_options)
    if format.lower() not in _FORMATS:
        raise ValueError(f"format must be 'png', 'jpeg' or 'webp', got {format!r}")
    DataURI.from_image(np.zeros((1, 1, 3), np.uint8), format=format, quality=quality)  # check quality now
    if isinstance(dataset, dict):
        return type(dataset)(
            {
                name: embed(
                    split, columns, format, quality, batch_size=batch_size, num_proc=num_proc, options=opts
                )
                for name, split in dataset.items()
            }
        )
    features = dataset.features
    roots = {name: media_features(features[name])[0]._media_access for name in _columns(features, columns)}
    return dataset.with_format(None).map(
        _EmbedBatch(roots, format, quality, opts),
        batched=True,
        batch_size=batch_size,
        features=features,
        num_proc=num_proc,
        desc=f"Embedding media as {format}",
    )
