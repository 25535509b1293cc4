"""Register the ``datasets`` integration when ``datasets`` is imported, without importing it ourselves.

``import hf_mediaref`` must stay light, yet datasets must know the ``MediaRef`` feature type before it
deserializes any features. If ``datasets`` is already imported we register now; otherwise a meta-path
finder waits for ``datasets`` to finish importing and registers right after. It leaves nothing behind: once
``datasets`` has run, its module's ``__loader__`` and ``__spec__.loader`` are its own loader again (so
``importlib.resources`` and ``inspect`` see the package as without hf_mediaref) and the finder leaves
``sys.meta_path``.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.util
import sys
import threading

_lock = threading.Lock()
_done = False


def _register() -> None:
    global _done
    with _lock:
        if _done:
            return
        _done = True
    try:
        # hf_mediaref.hf registers the integration as it is imported (its private _registration stays
        # inside it); mid-import (hf imports datasets first) it registers when it is done.
        importlib.import_module(f"{__package__}.hf")
    except ImportError:  # pragma: no cover - partial installs (datasets without pyarrow...)
        _done = False


class _Loader(importlib.abc.Loader):
    def __init__(self, wrapped: importlib.abc.Loader):
        self._wrapped = wrapped

    def create_module(self, spec):
        return self._wrapped.create_module(spec)

    def exec_module(self, module) -> None:
        try:
            self._wrapped.exec_module(module)
        finally:  # the module keeps datasets' own loader
            module.__loader__ = self._wrapped
            if getattr(module, "__spec__", None) is not None:
                module.__spec__.loader = self._wrapped
        _uninstall()  # one-shot: datasets is imported
        _register()


class _Finder(importlib.abc.MetaPathFinder):
    def find_spec(self, fullname, path=None, target=None):
        if fullname != "datasets":
            return None
        for finder in sys.meta_path:
            if finder is self or not hasattr(finder, "find_spec"):
                continue
            spec = finder.find_spec(fullname, path, target)
            if spec is not None:
                if spec.loader is not None:
                    spec.loader = _Loader(spec.loader)
                return spec
        return None


def _uninstall() -> None:
    sys.meta_path[:] = [f for f in sys.meta_path if not isinstance(f, _Finder)]


def install() -> None:
    """Register now if ``datasets`` is loaded, else arm a one-shot import hook."""
    if "datasets" in sys.modules and hasattr(sys.modules["datasets"], "Features"):
        _register()
        return
    if not any(isinstance(f, _Finder) for f in sys.meta_path):
        sys.meta_path.insert(0, _Finder())
