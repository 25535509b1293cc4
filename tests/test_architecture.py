"""The architecture is checked, not only described: import contracts, docs/design.md, the public surface."""

from __future__ import annotations

import enum
import importlib
import inspect
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "hf_mediaref"
DESIGN = (ROOT / "docs" / "design.md").read_text(encoding="utf-8")
PUBLIC_MODULES = [
    "hf_mediaref",
    "hf_mediaref.decode",
    "hf_mediaref.video",
    "hf_mediaref.arrow",
    "hf_mediaref.hf",
    "hf_mediaref.ray",
]


def _contract_layers() -> list[list[str]]:
    """The layers of the import-linter contract in pyproject.toml (tomllib is not in Python 3.10)."""
    text = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    block = re.search(r'type = "layers".*?\nlayers = \[(.*?)\n\]', text, re.S)
    assert block, "no layers contract in pyproject.toml"
    layers = re.findall(r'^\s*"([^"]+)",', block.group(1), re.M)
    return [[name.strip() for name in re.split(r"[|:]", layer)] for layer in layers]


def test_import_contracts_hold():
    """Layers import only downward, no sibling modules import each other in a circle (lint-imports)."""
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys; from importlinter.cli import lint_imports; sys.exit(lint_imports())",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    assert "0 broken" in result.stdout


def test_no_import_is_let_through_a_contract():
    """No package reaches into another's private modules: the contracts ignore no import (an ignored one
    would pass lint-imports while the import stays)."""
    text = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    assert "ignore_imports" not in text.split("[tool.importlinter]", 1)[1]


def test_design_doc_layer_table_is_the_contract():
    table = DESIGN.split("## Layers (top to bottom)", 1)[1].split("\n\n", 2)[1]
    rows = [line.split("|")[2] for line in table.splitlines()[2:] if line.startswith("|")]
    documented = [[name.strip(" `") for name in row.split(",")] for row in rows]
    assert documented == _contract_layers()


def test_every_private_module_is_described_in_the_design_doc():
    missing = [
        f"{path.parent.name}/{path.name}"
        for path in PACKAGE.glob("*/_*.py")
        if path.name != "__init__.py" and f"`{path.stem}`" not in DESIGN and path.parent.name != "testing"
    ]
    assert not missing, f"docs/design.md does not describe {missing}"


@pytest.mark.parametrize("module_name", PUBLIC_MODULES)
def test_public_names_are_documented_hf_style(module_name):
    """Every public name has a docstring; public functions and classes that take arguments document them."""
    module = importlib.import_module(module_name)
    undocumented = []
    for name in module.__all__:
        obj = getattr(module, name)
        if inspect.ismodule(obj) or not (inspect.isclass(obj) or inspect.isfunction(obj)):
            continue
        doc = inspect.getdoc(obj) or ""
        if not doc:
            undocumented.append(f"{name}: no docstring")
            continue
        target = obj.__init__ if inspect.isclass(obj) else obj
        try:
            params = [p for p in inspect.signature(target).parameters if p not in ("self", "cls")]
        except (TypeError, ValueError):
            params = []
        plain = inspect.isclass(obj) and issubclass(obj, (BaseException, enum.Enum))
        takes_args = bool(params) and not plain
        if takes_args and "Args:" not in doc and "Attributes:" not in doc:
            undocumented.append(f"{name}: no Args section")
    assert not undocumented, undocumented


def test_one_import_path_per_public_name():
    """A public object is exported by one public package (video_decoder is a documented alias of video)."""
    owners: dict[int, list[str]] = {}
    for module_name in PUBLIC_MODULES:
        module = importlib.import_module(module_name)
        for name in module.__all__:
            obj = getattr(module, name)
            if inspect.isclass(obj) or inspect.isfunction(obj):
                owners.setdefault(id(obj), []).append(f"{module_name}.{name}")
    # the package root re-exports the main entry points of its subpackages on purpose
    shared = [paths for paths in owners.values() if len([p for p in paths if p.count(".") > 1]) > 1]
    assert not shared, shared


@pytest.mark.parametrize("module_name", [*PUBLIC_MODULES, "hf_mediaref.errors", "hf_mediaref.io"])
def test_every_public_name_is_in_the_api_reference(module_name):
    api = (ROOT / "docs" / "api.md").read_text(encoding="utf-8")
    module = importlib.import_module(module_name)
    missing = [name for name in module.__all__ if not re.search(rf"`{re.escape(name)}\b", api)]
    assert not missing, f"docs/api.md does not list {module_name}: {missing}"


# The docs site's API reference (docs/reference/*.md, rendered by mkdocstrings) documents each public name
# of each public package at its home; the package root's re-exports of hf_mediaref.hf are documented there.
REFERENCE_PAGES = {
    "hf_mediaref": "hf_mediaref.md",
    "hf_mediaref.hf": "hf.md",
    "hf_mediaref.video": "video.md",
    "hf_mediaref.arrow": "arrow.md",
    "hf_mediaref.ray": "ray.md",
    "hf_mediaref.cli": "cli.md",
    "hf_mediaref.errors": "errors.md",
    "hf_mediaref.testing": "testing.md",
}


@pytest.mark.parametrize("module_name", sorted(REFERENCE_PAGES))
def test_the_api_reference_pins_the_public_surface(module_name):
    """A page's `::: module.name` directives are exactly the package's __all__ (the root: its own names)."""
    page = (ROOT / "docs" / "reference" / REFERENCE_PAGES[module_name]).read_text(encoding="utf-8")
    documented = set(re.findall(rf"^::: {re.escape(module_name)}\.(\w+)$", page, re.M))
    module = importlib.import_module(module_name)
    expected = {n for n in module.__all__ if not inspect.ismodule(getattr(module, n))} - {"__version__"}
    if module_name == "hf_mediaref":
        hf = importlib.import_module("hf_mediaref.hf")
        expected -= set(hf.__all__)  # documented at their home, listed on the page
        assert all(f"`{name}`" in page for name in set(module.__all__) & set(hf.__all__))
    assert documented == expected


def test_the_root_has_one_list_of_names():
    """hf_mediaref.__all__ is the one list: every name in it resolves, and the type-checking imports agree."""
    import hf_mediaref

    source = (PACKAGE / "__init__.py").read_text(encoding="utf-8")
    typed = set(re.findall(r"^\s{8}(\w+),$", source.split("if TYPE_CHECKING:", 1)[1].split(")", 1)[0], re.M))
    assert typed and typed <= set(hf_mediaref.__all__)
    hf = importlib.import_module("hf_mediaref.hf")
    assert typed == set(hf_mediaref.__all__) & set(hf.__all__)  # the lazy names: the hf re-exports
    for name in hf_mediaref.__all__:
        assert getattr(hf_mediaref, name) is not None


def test_io_exports_what_a_user_types_and_keeps_its_internal_api():
    """hf_mediaref.io's __all__ is the public line of its docs/api.md section; every name of the internal line
    still imports from the package (the layers above use them), and none of them is in __all__."""
    import hf_mediaref.io as io

    api = (ROOT / "docs" / "api.md").read_text(encoding="utf-8")
    section = api.split("## `hf_mediaref.io`", 1)[1].split("\n## ", 1)[0]
    public, internal = section.split("Internal", 1)
    assert set(re.findall(r"`(\w+)`", public)) == set(io.__all__) == {"MediaAccess", "parse_allow_uris"}
    names = re.findall(r"`(\w+)`", internal)
    assert len(names) > 20 and not set(names) & set(io.__all__)
    assert [n for n in names if getattr(io, n, None) is None] == []


#: Public classes without a __repr__ of their own yet (each with who owns it).
_NO_REPR_YET: set[str] = set()


def test_public_classes_print_what_they_are():
    """Every public class (the __all__ of each public package and of hf_mediaref.testing) says what it is
    when printed, not ``<object at 0x...>``."""
    modules = [
        *PUBLIC_MODULES,
        "hf_mediaref.io",
        "hf_mediaref.testing",
        "hf_mediaref.testing.fake_hub",
        "hf_mediaref.testing.http_server",
        "hf_mediaref.testing.faulty_http",
        "hf_mediaref.testing.lerobot",
    ]
    bare = set()
    for module_name in modules:
        module = importlib.import_module(module_name)
        for name in module.__all__:
            obj = getattr(module, name)
            if not inspect.isclass(obj) or issubclass(obj, (BaseException, enum.Enum)):
                continue
            if obj.__repr__ is object.__repr__:
                bare.add(name)
    assert bare == _NO_REPR_YET, bare - _NO_REPR_YET
