"""Package metadata: one version, the SPDX license, extras that never pull a CUDA torch, bounded datasets."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest

import hf_mediaref

tomllib = pytest.importorskip("tomllib")  # Python >= 3.11 (the metadata is the same on 3.10)

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
PROJECT = PYPROJECT["project"]


def _requirement_names(extra: str, seen: frozenset[str] = frozenset()) -> set[str]:
    """Every distribution an extra asks for, its self-references (hf-mediaref[a,b]) expanded."""
    names: set[str] = set()
    for requirement in PROJECT["optional-dependencies"][extra]:
        name = re.split(r"[\s\[<>=!;~]", requirement, maxsplit=1)[0].lower()
        if name == "hf-mediaref":
            for inner in re.search(r"\[(.*)\]", requirement).group(1).split(","):  # type: ignore[union-attr]
                if inner not in seen:
                    names |= _requirement_names(inner.strip(), seen | {extra})
        else:
            names.add(name)
    return names


def test_the_version_is_written_once():
    """pyproject reads the version from hf_mediaref/_version.py; the changelog's newest entry is it."""
    assert "version" not in PROJECT and "version" in PROJECT["dynamic"]
    dynamic = PYPROJECT["tool"]["setuptools"]["dynamic"]["version"]
    assert dynamic == {"attr": "hf_mediaref._version.__version__"}
    changelog = (ROOT / "CHANGELOG.md").read_text(encoding="utf-8")
    newest = re.search(r"^## (\d+\.\d+\.\d+)", changelog, re.M)
    assert newest and newest.group(1) == hf_mediaref.__version__


def test_license_is_an_spdx_expression_with_its_file():
    assert PROJECT["license"] == "Apache-2.0"
    assert PROJECT["license-files"] == ["LICENSE"]
    assert "Apache License" in (ROOT / "LICENSE").read_text(encoding="utf-8")
    assert any(r.startswith("setuptools>=77") for r in PYPROJECT["build-system"]["requires"])


@pytest.mark.parametrize("extra", ["all", "video", "hf", "ray"])
def test_extras_for_cpu_users_never_pull_torch(extra):
    """From PyPI's default index torch is a CUDA build: only the torch and torchcodec extras ask for it."""
    assert "torch" not in _requirement_names(extra)


def test_datasets_has_both_bounds():
    """The integration uses datasets internals: a new major release must be tested before it is allowed."""
    (datasets,) = [r for r in PROJECT["optional-dependencies"]["hf"] if r.startswith("datasets")]
    assert ">=4.0" in datasets and "<6" in datasets


def test_dev_installs_the_release_and_docs_tools():
    names = _requirement_names("dev")
    assert {"build", "twine", "mkdocs", "mkdocs-material", "mkdocstrings", "torch"} <= names


def test_the_missing_torch_hint_names_the_cpu_wheels(monkeypatch):
    """A missing torch is fixed by the CPU wheel on a CPU machine, not by `hf-mediaref[torch]` (PyPI's torch
    is a CUDA build on Linux); the same command as the getting-started page."""
    from hf_mediaref._optional import TORCH_CPU_INSTALL, require
    from hf_mediaref.errors import MissingDependencyError

    monkeypatch.setitem(sys.modules, "torch", None)
    with pytest.raises(MissingDependencyError, match=re.escape(TORCH_CPU_INSTALL)):
        require("torch")
    assert TORCH_CPU_INSTALL in (ROOT / "docs" / "getting-started.md").read_text(encoding="utf-8")


#: Lower bounds no floor run tests, and why (tests/test_packaging keeps this list honest).
_UNTESTED_FLOORS = {
    "tqdm": "datasets 4.0 (the hf floor) asks for tqdm >= 4.66.3; only tqdm.auto.tqdm(...) is used",
    "torch": "PyPI's torch 2.1 is a CUDA build; tested: the pinned CPU torch (requirements/constraints.txt)",
    "torchcodec": "pairs with a torch build (docs/guides/torchcodec.md); tested: the pinned 0.13",
}


def test_the_declared_floors_are_the_tested_ones():
    """Each lower bound of the core dependencies and the video, hf and ray extras is what `make test-floor`
    installs (requirements/floor-*.txt, FLOOR_AV, FLOOR_RAY): raising or lowering a floor without testing it
    fails here. The bounds no floor run tests are listed, with why."""
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    pins = {
        name: re.search(rf"^FLOOR_{name.upper()}\s*\?=\s*(\S+)", makefile, re.M).group(1)  # type: ignore[union-attr]
        for name in ("av", "ray")
    }
    for floor_file in ("floor-hf.txt", "floor-core.txt"):  # the hf floor's NumPy is a companion, not a floor
        for line in (ROOT / "requirements" / floor_file).read_text(encoding="utf-8").splitlines():
            if "==" in line and not line.startswith("#"):
                name, version = line.split("#")[0].strip().split("==")
                pins[name.lower().replace("_", "-")] = version
    declared = {}
    for requirement in [
        *PROJECT["dependencies"],
        *(
            r
            for e in ("video", "hf", "ray", "torch", "torchcodec")
            for r in PROJECT["optional-dependencies"][e]
        ),
    ]:
        match = re.match(r"([\w\-]+)(?:\[[\w,]+\])?\s*>=\s*([\w.]+)", requirement)
        if match:
            declared[match.group(1).lower().replace("_", "-")] = match.group(2)
    untested = {}
    for name, floor in declared.items():
        if name not in pins:
            untested[name] = floor
            continue
        release = [int(p) for p in floor.split(".")]
        assert [int(p) for p in pins[name].split(".")][: len(release)] == release, (name, floor, pins[name])
    assert set(untested) == set(_UNTESTED_FLOORS), untested
