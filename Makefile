# Two commands set everything up on a fresh machine:
#   make demo   - create .venv, install, run the demo on generated media
#   make test   - create .venv, install, install FFmpeg shared libs for TorchCodec, run the tests
#   make lint   - ruff check, ruff format --check, mypy, lint-imports (the architecture contracts)
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo test test-floor lint format bench system-deps venv clean examples

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

# The oldest PyAV we support (pyproject: av>=15, what LeRobot pins), next to the newest in .venv: the video
# engine's tests run again with it first on the path.
FLOOR_AV ?= 15.0.0
test-floor: venv
	$(BIN)/python -m pip install -q --no-deps --only-binary=:all: --target .floor/av-$(FLOOR_AV) av==$(FLOOR_AV)
	PYTHONPATH=.floor/av-$(FLOOR_AV) $(BIN)/python -c "import av; assert av.__version__ == '$(FLOOR_AV)', av.__version__"
	PYTHONPATH=.floor/av-$(FLOOR_AV) $(BIN)/python -m pytest -q -p no:cacheprovider tests/video tests/test_decode.py

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

bench: venv
	$(BIN)/python -m pip install -q -c requirements/constraints.txt -e '.[bench]'
	$(BIN)/python scripts/benchmark.py $(BENCH_ARGS)

clean:
	rm -rf $(VENV) .floor .pytest_cache build *.egg-info
