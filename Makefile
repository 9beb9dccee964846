# graphc: `make demo` sets up and runs the main job; `make test` sets up and runs the tests.
PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: setup demo test bench golden clean

setup: $(VENV)/.done
$(VENV)/.done: pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[test]'
	sh scripts/install-graphviz.sh
	touch $@

demo: setup
	$(BIN)/graphc check examples/two_layer.gc
	$(BIN)/graphc eval examples/two_layer.gc --inputs examples/two_layer.npz
	$(BIN)/graphc grad examples/two_layer.gc --inputs examples/two_layer.npz

test: setup
	$(BIN)/python -m pytest

bench: setup
	$(BIN)/python bench/check_time.py

clean:
	rm -rf $(VENV) build dist
