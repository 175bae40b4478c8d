# Flint: one command to set up and demo, one to set up and test.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: setup demo test test-fast bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(STAMP)

setup: $(STAMP)

demo: setup
	$(BIN)/flint demo

# The whole suite; CI (.ci/run) runs exactly this.
test: setup
	$(BIN)/python -m pytest -q

bench: setup
	$(BIN)/python -m bench.run

clean:
	rm -rf $(VENV) var .pytest_cache
