# Two commands on a fresh machine:
#   make figures   create .venv, install optdyn, render every figure into figures/
#   make test      create .venv, install optdyn with test extras, run the test suite
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin

.PHONY: figures test install install-test bench lint clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

install: $(BIN)/python
	$(BIN)/python -m pip install -q -e .

install-test: $(BIN)/python
	$(BIN)/python -m pip install -q -e ".[test]"

figures: install
	MPLBACKEND=Agg $(BIN)/python -m optdyn.experiments all

# The tests that run experiments at their --quick settings (marker quick_experiment) are
# compile-bound: they compile as `--quick` does, with XLA's fast-compile flags, which XLA
# reads once per process (hence a second pytest run); everything else at XLA's defaults.
test: install-test
	MPLBACKEND=Agg $(BIN)/python -m pytest -q -n 2 --dist worksteal --durations=10 \
		-m "not quick_experiment"
	MPLBACKEND=Agg $(BIN)/python -m pytest -q -n 2 --dist worksteal --durations=10 \
		-m quick_experiment --compile-fast

bench: install
	$(BIN)/python -m benchmarks

lint: install-test
	$(BIN)/ruff check . && $(BIN)/ruff format --check .

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache
