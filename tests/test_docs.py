"""Every ```python block of README.md and docs/**/*.md runs, on generated media, as the page shows it.

A page's blocks run in order in one namespace (a later block uses what an earlier one made), in a workspace
that holds what the docs name:

- ``recordings/ep0.mp4`` (3 s, 20 fps, a keyframe every 20 frames, B-frames), ``recordings/ep1.mp4`` (2 s),
  ``recordings/goal.png``: barcode media (frame i shows i, ``hf_mediaref.testing.read_index``);
- ``pusht/``: a LeRobot v3.0 dataset (2 episodes, 10 fps, camera ``observation.image``);
- ``frames/``: the dataset ``hf-mediaref build recordings/ -o frames/`` writes;
- the Hub repo ``org/robot-frames`` (that dataset pushed), on an offline fake Hub
  (``hf_mediaref.testing.fake_hub``) that is active while the blocks run.

A block that cannot run here (a Hub token, a cluster, ``torchrun``) is preceded by the line
``<!-- no-test -->`` with the reason after it, e.g. ``<!-- no-test: needs torchrun -->``; the opt-outs are few
and listed by ``test_opt_outs_are_few``.

A block that shows an error (``try: ... except SomeError:``) must fail when the error does not come: its
``try`` ends with ``else: raise AssertionError(...)`` (``test_blocks_that_show_an_error_fail_without_it``).
Where the ``except`` is a way out, not what the block shows, the line before it says
``<!-- error-optional: why -->``.
"""

from __future__ import annotations

import ast
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PAGES = sorted([ROOT / "README.md", *(ROOT / "docs").rglob("*.md")])
_BLOCK = re.compile(r"(?P<before>[^\n]*)\n```python[^\n]*\n(?P<code>.*?)\n```", re.S)
_NO_TEST = re.compile(r"<!--\s*no-test\b")
_ERROR_OPTIONAL = re.compile(r"<!--\s*error-optional\b")
MAX_OPT_OUTS = 8


def python_blocks(page: Path) -> list[tuple[int, str, bool]]:
    """``(line, code, runs)`` for every fenced python block; ``runs`` is False after a no-test marker."""
    text = page.read_text(encoding="utf-8")
    blocks = []
    for match in _BLOCK.finditer("\n" + text):
        line = text[: match.start("code") - 1].count("\n") + 1
        blocks.append((line, match.group("code"), not _NO_TEST.search(match.group("before"))))
    return blocks


@pytest.fixture(scope="session")
def docs_workspace(tmp_path_factory):
    """The media, the built dataset and the fake Hub repo the docs' snippets use (made once)."""
    pytest.importorskip("datasets")
    from hf_mediaref.cli import main as cli
    from hf_mediaref.testing import write_image, write_video
    from hf_mediaref.testing.fake_hub import FakeHub
    from hf_mediaref.testing.lerobot import write_lerobot_dataset

    base = tmp_path_factory.mktemp("docs")
    rec = base / "recordings"
    rec.mkdir()
    write_video(rec / "ep0.mp4", 60, fps=20, gop=20, bframes=2, size=(96, 128))
    write_video(rec / "ep1.mp4", 40, fps=20, gop=20, size=(96, 128), first_index=100)
    write_image(rec / "goal.png", 7, size=(96, 128))
    write_lerobot_dataset(base / "pusht", (12, 20), fps=10, cameras=("observation.image",))
    cwd = os.getcwd()
    os.chdir(base)
    try:
        assert cli(["build", "recordings/", "-o", "frames/"]) == 0
        with FakeHub(base / ".hub"):
            assert cli(["push", "frames/", "org/robot-frames"]) == 0
    finally:
        os.chdir(cwd)
    return base


def unchecked_errors(code: str, before: str = "") -> list[int]:
    """Lines of the ``try`` statements of ``code`` that catch a named error but go on quietly when it does not
    come (no ``else:`` ending in ``raise``); none where ``before`` (the line before the block) marks the
    error optional."""
    if _ERROR_OPTIONAL.search(before):
        return []
    unchecked = []
    for node in ast.walk(ast.parse(code)):
        if not isinstance(node, ast.Try) or not any(h.type is not None for h in node.handlers):
            continue
        if not (node.orelse and isinstance(node.orelse[-1], ast.Raise)):
            unchecked.append(node.lineno)
    return unchecked


def _pages_with_code() -> list[Path]:
    return [page for page in PAGES if any(runs for _, _, runs in python_blocks(page))]


@pytest.mark.parametrize("page", _pages_with_code(), ids=lambda p: p.relative_to(ROOT).as_posix())
def test_python_blocks_run(page, docs_workspace, tmp_path, monkeypatch):
    import datasets

    from hf_mediaref.testing.fake_hub import FakeHub

    work = tmp_path / "work"
    shutil.copytree(docs_workspace, work, symlinks=True)
    monkeypatch.chdir(work)
    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", tmp_path / "hf-cache")
    namespace: dict = {"__name__": "__docs__"}
    with FakeHub(work / ".hub"):
        for line, code, runs in python_blocks(page):
            if not runs:
                continue
            try:
                exec(compile(code, f"{page.relative_to(ROOT)}:{line}", "exec"), namespace)
            except Exception as exc:
                raise AssertionError(
                    f"{page.relative_to(ROOT)}, the block at line {line} failed: {exc!r}"
                ) from exc


def test_opt_outs_are_few():
    """Blocks that do not run are marked, visible in the page source, and stay few."""
    skipped = [
        f"{page.relative_to(ROOT)}:{line}"
        for page in PAGES
        for line, _, runs in python_blocks(page)
        if not runs
    ]
    assert len(skipped) <= MAX_OPT_OUTS, skipped


def test_the_block_finder_sees_markers(tmp_path):
    page = tmp_path / "probe.md"
    page.write_text("x\n\n```python\na = 1\n```\n<!-- no-test: probe -->\n```python\nb = 2\n```\n")
    assert [(code, runs) for _, code, runs in python_blocks(page)] == [("a = 1", True), ("b = 2", False)]


def test_blocks_that_show_an_error_fail_without_it():
    """A block that shows an error cannot pass when the error stops coming (every block, run or not)."""
    quiet = []
    for page in PAGES:
        text = page.read_text(encoding="utf-8")
        for match in _BLOCK.finditer("\n" + text):
            line = text[: match.start("code") - 1].count("\n") + 1
            quiet += [
                f"{page.relative_to(ROOT)}:{line + n}"
                for n in unchecked_errors(*match.group("code", "before"))
            ]
    assert not quiet, f"these try blocks go on quietly when their error does not come: {quiet}"


def test_the_error_check_sees_a_quiet_try():
    shown = "try:\n    f()\nexcept KeyError as error:\n    print(error)\n"
    assert unchecked_errors(shown) == [1]
    assert unchecked_errors(shown + "else:\n    raise AssertionError('no KeyError')\n") == []
    assert unchecked_errors(shown, "<!-- error-optional: a way out -->") == []
    assert unchecked_errors("try:\n    f()\nfinally:\n    g()\n") == []  # no error shown


#: The modules each extra brings (pyproject.toml), for the README's install line.
_EXTRA_MODULES = {
    "video": {"av"},
    "hf": {"datasets", "huggingface_hub", "pyarrow"},
    "torch": {"torch"},
    "torchcodec": {"torchcodec", "torch"},
    "ray": {"ray"},
}


def test_the_readme_first_block_runs_with_its_install_line(tmp_path):
    """A newcomer's first batch: the README's first python block runs in a process where only what the
    README's install line (``pip install -e '.[...]'``) installs can be imported (the extras it leaves out
    are blocked, as in a fresh venv: torch is not there unless asked for)."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    line = re.search(r"^pip install -e '\.\[([\w,]+)\]'", readme, re.M)
    assert line, "the README has no `pip install -e '.[...]'` line"
    extras = set(line.group(1).split(","))
    if "all" in extras:
        extras |= {"video", "hf"}
    given = set().union(*(_EXTRA_MODULES.get(extra, set()) for extra in extras))
    blocked = sorted(set().union(*_EXTRA_MODULES.values()) - given)
    _, code, runs = python_blocks(ROOT / "README.md")[0]
    assert runs
    guard = f"import sys\nfor name in {blocked!r}:\n    sys.modules[name] = None  # not installed\n"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    result = subprocess.run(
        [sys.executable, "-c", guard + code],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, f"without {blocked}: {result.stderr[-2000:]}"


def test_nothing_points_at_a_readme_section():
    """The README is a front door; its old reference sections live in the docs pages. Docs and docstrings
    link the page (a README section named there no longer exists)."""
    files = [*(ROOT / "docs").rglob("*.md"), *(ROOT / "hf_mediaref").rglob("*.py")]
    stale = [
        f"{path.relative_to(ROOT)}:{n}"
        for path in files
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if re.search(r"README's|in the README\b", line)
    ]
    assert not stale, stale


def test_the_home_page_layout_table_has_every_package():
    """docs/index.md's "Where things are" names every subpackage of hf_mediaref (it once left out ray/)."""
    table = (ROOT / "docs" / "index.md").read_text(encoding="utf-8").split("## Where things are", 1)[1]
    packages = sorted(p.parent.name for p in (ROOT / "hf_mediaref").glob("*/__init__.py"))
    assert [p for p in packages if f"`hf_mediaref/{p}/`" not in table] == []
