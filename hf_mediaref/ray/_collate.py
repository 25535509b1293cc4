"""``torch_collate``: decoded Ray Data batches as torch batches through ``iter_torch_batches``, whatever other
columns the dataset has.

A dataset read with :func:`~hf_mediaref.ray.read_mediaref` keeps every column of its Parquet files: those
``hf-mediaref build`` writes include strings (``video_id``, ``codec``), which Ray's default collate cannot
make tensors of (``TypeError: can't convert np.ndarray of type numpy.str_``). The decoder keeps them (a map
does not drop data; they name where each frame came from), and ``iter_torch_batches`` takes this collate
function, Ray's own hook for the conversion (``collate_fn=``): numbers, bools and frames become tensors
(frames of one shape stacked: ``(N, H, W, 3)`` uint8), frames of different shapes a list of tensors, and
every other column (strings, dicts) a Python list, as torch's ``default_collate`` gives strings. Selecting the
tensor columns first (``ds.select_columns([...])``) works too, with Ray's default collate.
"""

from __future__ import annotations

import functools
import warnings
from typing import Any

import numpy as np

from .._optional import require

__all__ = ["torch_collate"]


def _tensor(torch: Any, array: np.ndarray, device: Any) -> Any:
    """``torch.as_tensor`` sharing the array's memory, as Ray's own collate does: arrays from Ray's object
    store are read-only, and torch's warning that they are not writable is left out (nothing writes to a
    batch's tensors; a copy would cost a frame's bytes again)."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "The given NumPy array is not writable", UserWarning)
        return torch.as_tensor(array, device=device)


def _column(values: Any, device: Any) -> Any:
    torch = require("torch", purpose="torch batches")

    if isinstance(values, np.ndarray) and values.dtype != object:
        if values.dtype.kind in "biuf":
            return _tensor(torch, values, device)
        return values.tolist()  # strings, bytes, datetimes
    items = list(values)
    if items and all(isinstance(v, np.ndarray) and v.dtype.kind in "biuf" for v in items):
        tensors = [_tensor(torch, v, device) for v in items]
        if len({t.shape for t in tensors}) == 1:
            return torch.stack(tensors)
        return tensors  # frames of different sizes (a null ref's empty frame among them)
    return items


@functools.cache
def _collate_class() -> type:
    """The collate class, a ``ray.data.collate_fn.NumpyBatchCollateFn`` where Ray has that base (2.47+;
    earlier Rays take any callable)."""
    base: Any = object
    try:
        from ray.data.collate_fn import NumpyBatchCollateFn

        base = NumpyBatchCollateFn
    except ImportError:  # pragma: no cover - Ray < 2.47
        pass

    class TorchCollate(base):
        """Numpy batch columns to torch tensors (numbers, bools, frames) or lists (everything else)."""

        def __init__(self, device: Any = None):
            self.device = device

        def __call__(self, batch: dict[str, np.ndarray]) -> Any:
            return {name: _column(values, self.device) for name, values in batch.items()}

        def __reduce__(self) -> tuple[Any, ...]:
            return (torch_collate, (self.device,))

        def __repr__(self) -> str:
            return f"torch_collate(device={self.device!r})"

    return TorchCollate


def torch_collate(device: Any = None) -> Any:
    """A ``collate_fn`` for ``ray.data.Dataset.iter_torch_batches`` that takes every column a decoded batch
    has: numbers, bools and frames become torch tensors (frames of one shape stacked ``(N, H, W, 3)``),
    frames of different shapes a list of tensors, and strings (``video_id``, ``codec``...) and other values
    Python lists.

    Args:
        device: where the tensors go (``"cuda"``), or ``None`` for the CPU (Ray moves batches made by a
            collate function only when they hold nothing but tensors, so pass it here).

    Returns:
        A callable collate object (a ``ray.data.collate_fn.NumpyBatchCollateFn`` on Ray 2.47+; picklable).

    Raises:
        MissingDependencyError: torch is not installed (when a batch is collated).

    Example:
        ```python
        >>> from hf_mediaref.ray import MediaDecoder, read_mediaref, torch_collate
        >>> frames = read_mediaref("frames/").map_batches(MediaDecoder(size=(224, 224)), batch_size=64)
        >>> for batch in frames.iter_torch_batches(batch_size=64, collate_fn=torch_collate()):
        ...     batch["frame"].shape, batch["video_id"][:1]
        (torch.Size([64, 224, 224, 3]), ['videos/ep0.mp4'])
        ```
    """
    return _collate_class()(device)
