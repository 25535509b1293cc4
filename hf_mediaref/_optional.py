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

#: How a CPU machine gets torch without CUDA libraries (docs/getting-started.md says the same).
TORCH_CPU_INSTALL = "pip install torch --index-url https://download.pytorch.org/whl/cpu"


def require(module: str, *, purpose: str = "") -> ModuleType:
    """Import ``module`` or raise :class:`MissingDependencyError` naming the extra that provides it."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        top = module.split(".")[0]
        extra = _HINTS.get(top)
        hint = f"pip install 'hf-mediaref[{extra}]'" if extra else f"pip install {top}"
        if top == "torch":  # PyPI's default torch on Linux is a CUDA build (GBs of NVIDIA libraries)
            hint = f"pip install torch (CPU only: {TORCH_CPU_INSTALL})"
        what = f" for {purpose}" if purpose else ""
        raise MissingDependencyError(
            f"{top} is required{what} but could not be imported ({exc}); fix: {hint}"
        ) from exc
