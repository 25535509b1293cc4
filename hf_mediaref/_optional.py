"""Lazy imports of optional dependencies with install hints."""

from __future__ import annotations

import importlib
from types import ModuleType

from .errors import MissingDependencyError

_HINTS = {
    "av": "video",
    "datasets": "hf",
    "huggingface_hub": "hf",
    "pyarrow": "hf",
    "ray": "ray",
    "tqdm": "hf",
    "torch": "torch",
    "torchcodec": "torchcodec",
}


def require(module: str, *, purpose: str = "") -> ModuleType:
    """Import ``module`` or raise :class:`MissingDependencyError` naming the extra that provides it."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        top = module.split(".")[0]
        extra = _HINTS.get(top)
        hint = f"pip install 'hf-mediaref[{extra}]'" if extra else f"pip install {top}"
        what = f" for {purpose}" if purpose else ""
        raise MissingDependencyError(
            f"{top} is required{what} but could not be imported ({exc}); fix: {hint}"
        ) from exc
