# Two commands set everything up on a fresh machine:
#   make demo   - create .venv, install, run the demo on generated media
#   make test   - create .venv, install, install FFmpeg shared libs for TorchCodec, run the tests
#   make lint   - ruff check, ruff format --check, mypy, lint-imports (the architecture contracts)
#   make docs   - build the docs site strictly; make package - sdist + wheel, checked and installed in a fresh venv
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo test test-floor test-pythons lint format bench system-deps venv clean examples package docs docs-serve

venv: $(STAMP)

$(STAMP): pyproject.toml requirements/constraints.txt
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -c requirements/constraints.txt -e '.[dev,torchcodec]'
	@touch $@

system-deps:
	@bash scripts/install_system_deps.sh

demo: venv
	$(BIN)/python examples/demo.py

test: venv system-deps
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# The floors we declare, each installed once into .floor/<name> (pip --no-deps --only-binary=:all: --target;
# reinstalled only when its stamp, the pins and the Python they were installed for, changes) and put first on
# PYTHONPATH, so they shadow .venv's newer versions; a check that they are the ones imported, then the tests that
# use them.
# - PyAV 15.0.0 (pyproject: av>=15, what LeRobot pins): the video engine's tests.
# - requirements/floor-hf.txt: the `hf` extra's floor (datasets 4.0.0, huggingface_hub 0.24.0, pyarrow 15.0.0,
#   fsspec 2023.10.0) with what a user of them has next to them (NumPy 1.x, pandas 2.x, ...): tests/hf and
#   tests/arrow, the tests that import datasets or pyarrow.
# - requirements/floor-core.txt: the core dependencies' floor (pydantic 2.5, NumPy 1.24, Pillow 10.0, requests
#   2.31): the tests that import neither datasets nor pyarrow.
# - Ray 2.41.0 (pyproject: ray[data]>=2.41): tests/ray.
FLOOR_AV     ?= 15.0.0
FLOOR_AV_DIR := .floor/av-$(FLOOR_AV)
FLOOR_HF_REQ := requirements/floor-hf.txt
FLOOR_HF_DIR := .floor/hf
FLOOR_CORE_REQ := requirements/floor-core.txt
FLOOR_CORE_DIR := .floor/core
FLOOR_RAY     ?= 2.41.0
FLOOR_RAY_DIR := .floor/ray-$(FLOOR_RAY)
# what Ray 2.41 needs that the newest Ray (in .venv) no longer does: its dashboard agent imports aiosignal, and
# the raylet dies with the agent
FLOOR_RAY_DEPS := aiosignal==1.4.0 frozenlist==1.8.0

# $(call floor_install,DIR,PIP ARGUMENTS,SHELL COMMAND PRINTING THE PINS)
define floor_install
	@stamp="$$($(BIN)/python -VV; $(3))"; \
	if [ "$$stamp" != "$$(cat $(1)/.stamp 2>/dev/null)" ]; then \
	  echo "installing $(1)"; rm -rf $(1) && \
	  $(BIN)/python -m pip install -q --no-deps --only-binary=:all: --target $(1) $(2) && \
	  printf '%s\n' "$$stamp" > $(1)/.stamp; \
	else echo "$(1) is up to date"; fi
endef

# $(call floor_check,REQUIREMENTS,DIR): every pin of REQUIREMENTS is what `import <name>` gives (its
# __version__, from under DIR).
floor_check = import importlib, os; \
  pins = [l.split('\#')[0].strip().split('==') for l in open('$(1)')]; \
  pins = {n.replace('-', '_').replace('pillow', 'PIL'): v for n, v in (p for p in pins if p != [''])}; \
  mods = {n: importlib.import_module(n) for n in pins}; \
  got = {n: m.__version__ for n, m in mods.items()}; \
  assert got == pins, f'imported {got}, pinned {pins}'; \
  outside = [m.__file__ for m in mods.values() if not m.__file__.startswith(os.path.abspath('$(2)'))]; \
  assert not outside, f'not from $(2): {outside}'; \
  print('floor:', ', '.join(f'{n} {v}' for n, v in got.items()))

test-floor: venv
	$(call floor_install,$(FLOOR_AV_DIR),av==$(FLOOR_AV),echo av==$(FLOOR_AV))
	PYTHONPATH=$(FLOOR_AV_DIR) $(BIN)/python -c "import av; assert av.__version__ == '$(FLOOR_AV)', av.__version__"
	PYTHONPATH=$(FLOOR_AV_DIR) $(BIN)/python -m pytest -q -p no:cacheprovider tests/video tests/test_decode.py
	$(call floor_install,$(FLOOR_HF_DIR),-r $(FLOOR_HF_REQ),cat $(FLOOR_HF_REQ))
	PYTHONPATH=$(FLOOR_HF_DIR) $(BIN)/python -c "$(call floor_check,$(FLOOR_HF_REQ),$(FLOOR_HF_DIR))"
	PYTHONPATH=$(FLOOR_HF_DIR) $(BIN)/python -m pytest -q -p no:cacheprovider tests/hf tests/arrow
	$(call floor_install,$(FLOOR_CORE_DIR),-r $(FLOOR_CORE_REQ),cat $(FLOOR_CORE_REQ))
	PYTHONPATH=$(FLOOR_CORE_DIR) $(BIN)/python -c "$(call floor_check,$(FLOOR_CORE_REQ),$(FLOOR_CORE_DIR))"
	PYTHONPATH=$(FLOOR_CORE_DIR) $(BIN)/python -m pytest -q -p no:cacheprovider tests/core tests/io \
	  tests/test_decode.py tests/test_errors.py tests/test_units.py --ignore=tests/io/test_access.py
	$(call floor_install,$(FLOOR_RAY_DIR),ray==$(FLOOR_RAY) $(FLOOR_RAY_DEPS),echo ray==$(FLOOR_RAY) $(FLOOR_RAY_DEPS))
	PYTHONPATH=$(FLOOR_RAY_DIR) $(BIN)/python -c "import ray; assert ray.__version__ == '$(FLOOR_RAY)', ray.__version__"
	PYTHONPATH=$(FLOOR_RAY_DIR) $(BIN)/python -m pytest -q -p no:cacheprovider tests/ray

# The two ends of requires-python (">=3.10"): 3.10, the floor, and the newest Python the image has (3.13), each
# in its own venv, .floor/py<version> (made anew only when its stamp, the Python, the checkout and pyproject.toml,
# changes), with the package installed editable with its `video` and `hf` extras and pytest: no torch, no Ray.
# There a representative part of the suite runs: the core and I/O, the decode façade, the video engine (but its
# slow soak), Arrow, the datasets feature and format; the tests that need torch or TorchCodec skip (hence
# HF_MEDIAREF_REQUIRE_TORCHCODEC=0: .ci/run requires TorchCodec of .venv's tests only). The Pythons are pyenv's
# (PYENV_VERSIONS/<version>.*/bin/python, the newest patch release), else python<version> on PATH.
PYENV_VERSIONS ?= /root/.pyenv/versions
TEST_PYTHONS   ?= 3.10 3.13
PYTHONS_TESTS  := tests/core tests/io tests/test_decode.py tests/test_errors.py tests/test_units.py tests/video \
  tests/arrow tests/hf/test_feature.py tests/hf/test_formatter.py

test-pythons:
	@for v in $(TEST_PYTHONS); do \
	  py=$$(ls -d $(PYENV_VERSIONS)/$$v.*/bin/python 2>/dev/null | sort -V | tail -n 1); \
	  py=$${py:-$$(command -v python$$v)}; \
	  if [ -z "$$py" ]; then echo "test-pythons: no Python $$v in $(PYENV_VERSIONS) or on PATH"; exit 1; fi; \
	  dir=.floor/py$$v; stamp="$$($$py -VV; pwd; sha256sum pyproject.toml)"; \
	  if [ "$$stamp" != "$$(cat $$dir/.stamp 2>/dev/null)" ]; then \
	    echo "installing $$dir ($$py)"; rm -rf $$dir && $$py -m venv $$dir && \
	    $$dir/bin/python -m pip install -q -e '.[video,hf]' 'pytest>=8' 'pytest-timeout>=2.2' && \
	    printf '%s\n' "$$stamp" > $$dir/.stamp || exit 1; \
	  else echo "$$dir is up to date"; fi; \
	  $$dir/bin/python -c "import sys; assert sys.version.startswith('$$v.'), sys.version" || exit 1; \
	  echo "Python $$v: $$($$dir/bin/python -VV)"; \
	  HF_MEDIAREF_REQUIRE_TORCHCODEC=0 $$dir/bin/python -m pytest -q -p no:cacheprovider -m "not slow" \
	    $(PYTHONS_TESTS) || exit 1; \
	done

lint: venv
	$(BIN)/ruff check hf_mediaref tests scripts examples
	$(BIN)/ruff format --check hf_mediaref tests scripts examples
	$(BIN)/mypy
	$(BIN)/lint-imports

format: venv
	$(BIN)/ruff check --fix hf_mediaref tests scripts examples
	$(BIN)/ruff format hf_mediaref tests scripts examples

examples: venv
	$(BIN)/python examples/run_all.py

# The release artefacts: sdist + wheel (python -m build), their metadata checked (twine check --strict), then the
# wheel installed with its `video` extra into a fresh venv, where a generated image and video are decoded.
package: venv
	rm -rf dist
	$(BIN)/python -m build --outdir dist .
	$(BIN)/twine check --strict dist/*
	$(BIN)/python scripts/check_wheel.py dist/*.whl

# The docs site (mkdocs.yml): a warning (a broken link, a missing docstring reference) fails the build.
docs: venv
	$(BIN)/mkdocs build --strict --site-dir site

docs-serve: venv
	$(BIN)/mkdocs serve

bench: venv
	$(BIN)/python -m pip install -q -c requirements/constraints.txt -e '.[bench]'
	$(BIN)/python scripts/benchmark.py $(BENCH_ARGS)

clean:
	rm -rf $(VENV) .floor .pytest_cache build dist site *.egg-info
