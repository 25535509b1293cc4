"""``image_grid``: decoded frames (arrays, tensors, PIL images, a stacked batch) as one PIL image with
labels, to look at a batch in a notebook (Jupyter shows a returned ``PIL.Image``) or write a contact sheet."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

__all__ = ["image_grid"]

_LABEL_HEIGHT = 14
_GAP = 2


def _as_hwc(frame: Any) -> np.ndarray:
    """An ``(H, W, 3)`` uint8 array from an array, a tensor (either dimension order) or a PIL image."""
    if hasattr(frame, "convert") and hasattr(frame, "size"):  # PIL
        return np.asarray(frame.convert("RGB"))
    if hasattr(frame, "detach"):  # torch
        frame = frame.detach().cpu().numpy()
    arr = np.asarray(frame)
    if arr.ndim == 3 and arr.shape[0] in (1, 3) and arr.shape[-1] not in (1, 3):
        arr = np.moveaxis(arr, 0, -1)
    if arr.ndim == 2:
        arr = arr[..., None]
    if arr.ndim != 3 or arr.shape[-1] not in (1, 3):
        raise ValueError(f"expected an (H, W, 3) or (3, H, W) frame, got shape {arr.shape}")
    if arr.shape[-1] == 1:
        arr = np.repeat(arr, 3, axis=-1)
    if arr.dtype != np.uint8:
        scale = 255.0 if arr.dtype.kind == "f" and float(np.nanmax(arr, initial=0)) <= 1.0 else 1.0
        arr = np.clip(np.nan_to_num(arr.astype(np.float32) * scale), 0, 255).astype(np.uint8)
    return arr


def _frames(frames: Any) -> list[np.ndarray]:
    if hasattr(frames, "detach") or isinstance(frames, np.ndarray):
        arr = frames.detach().cpu().numpy() if hasattr(frames, "detach") else frames
        if arr.ndim == 4:
            return [_as_hwc(f) for f in arr]
        return [_as_hwc(arr)]
    return [_as_hwc(f) for f in frames]


def image_grid(
    frames: Any,
    labels: Sequence[str] | None = None,
    *,
    cols: int | None = None,
    size: tuple[int, int] | None = None,
) -> Any:
    """Frames laid out in a grid, each with its label below it: one ``PIL.Image.Image``.

    Args:
        frames: a sequence of frames (``(H, W, 3)`` / ``(3, H, W)`` arrays or tensors, PIL images; ``None``
            leaves its cell empty), or a stacked ``(N, H, W, 3)`` / ``(N, 3, H, W)`` batch.
        labels: one text per frame (or ``None``: no labels).
        cols: frames per row (default: about the square root of the count).
        size: ``(height, width)`` of each cell (default: the first frame's size); frames are resized to fit.

    Returns:
        An RGB ``PIL.Image.Image`` (a notebook displays it).

    Raises:
        ValueError: no frames, a frame that is not an image, or as many labels as frames missing.

    Example:
        ```python
        >>> import hf_mediaref
        >>> batch = ds.with_format("mediaref")[:8]
        >>> hf_mediaref.image_grid(batch["frame"], [f"{t:.2f} s" for t in batch["timestamp"]])
        ```
    """
    from PIL import Image, ImageDraw

    present = frames if not isinstance(frames, Sequence) else [f for f in frames if f is not None]
    arrays = _frames(present)
    cells: list[np.ndarray | None]
    if isinstance(frames, Sequence):
        it = iter(arrays)
        cells = [None if f is None else next(it) for f in frames]
    else:
        cells = list(arrays)
    if not cells:
        raise ValueError("image_grid needs at least one frame")
    if labels is not None and len(labels) != len(cells):
        raise ValueError(f"{len(labels)} labels for {len(cells)} frames")
    first = next((c for c in cells if c is not None), None)
    height, width = size or ((first.shape[0], first.shape[1]) if first is not None else (64, 64))
    cols = max(1, cols or int(np.ceil(np.sqrt(len(cells)))))
    rows = -(-len(cells) // cols)
    label_h = _LABEL_HEIGHT if labels is not None else 0
    sheet = Image.new("RGB", (cols * (width + _GAP) + _GAP, rows * (height + label_h + _GAP) + _GAP), "white")
    draw = ImageDraw.Draw(sheet)
    for i, cell in enumerate(cells):
        x = _GAP + (i % cols) * (width + _GAP)
        y = _GAP + (i // cols) * (height + label_h + _GAP)
        if cell is not None:
            img = Image.fromarray(cell)
            if img.size != (width, height):
                img = img.resize((width, height), Image.Resampling.BILINEAR)
            sheet.paste(img, (x, y))
        else:
            draw.rectangle((x, y, x + width - 1, y + height - 1), outline="gray")
        if labels is not None:
            draw.text((x + 1, y + height + 1), str(labels[i])[: max(4, width // 6)], fill="black")
    return sheet
