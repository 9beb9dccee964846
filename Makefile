# graphc: `make demo` sets up and runs the main job; `make test` sets up and runs the tests.
PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: setup demo serve test test-all lint bench golden clean

setup: $(VENV)/.done
$(VENV)/.done: pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[test]'
	sh scripts/install-system-deps.sh
	touch $@

demo: setup
	@$(BIN)/python -c "import matplotlib" 2>/dev/null || $(BIN)/pip install -q -e '.[plot]' \
		|| echo "could not install matplotlib: the demo will skip the loss plot"
	$(BIN)/graphc demo --out out

serve: setup  # the playground: open http://127.0.0.1:8765
	@$(BIN)/python -c "import starlette, uvicorn" 2>/dev/null || $(BIN)/pip install -q -e '.[serve]'
	$(BIN)/graphc serve

test: setup
	$(BIN)/python -m pytest

test-all: setup lint  # lint, then the slow tests too (what CI runs)
	$(BIN)/python -m pytest -m ''

lint: setup  # ruff over the package, the tests and the benchmarks: the rules in pyproject.toml, and its format
	$(BIN)/ruff check graphc tests bench
	$(BIN)/ruff format --check graphc tests bench

bench: setup
	$(BIN)/python bench/compile_time.py
	$(BIN)/python bench/mlp_step.py
	$(BIN)/python bench/train_overhead.py

golden: setup  # regenerate the golden files the tests compare against (never edit them by hand)
	$(BIN)/python tests/regen_emit_golden.py
	$(BIN)/python tests/regen_render_golden.py

clean:
	rm -rf $(VENV) build dist
