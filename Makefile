# PeerOS — the two commands of the quick start are `make run` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
PYTEST_ARGS ?=
LINT_PATHS := src tests conftest.py $(wildcard bench)

.PHONY: run test check format bench clean system-deps screenshots

$(VENV)/.installed-run: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e .
	touch $@

$(VENV)/.installed-test: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[test]'
	touch $@ $(VENV)/.installed-run

## run: a local cluster (tracker + 3 peers) under ./.peeros; Ctrl-C stops it
run: $(VENV)/.installed-run
	$(BIN)/peeros up --peers 3 --data-dir .peeros

## system-deps: Debian packages the tests need (installed only when running as root)
system-deps:
	bash scripts/system-deps.sh

## test: every test (unit, integration, end-to-end, faults)
test: system-deps $(VENV)/.installed-test
	$(BIN)/python -m pytest $(PYTEST_ARGS)

## check: formatting, lint and types
check: $(VENV)/.installed-test
	$(BIN)/ruff format --check $(LINT_PATHS)
	$(BIN)/ruff check $(LINT_PATHS)
	$(BIN)/mypy

## screenshots: a small busy cluster, every dashboard page in chromium -> docs/screenshots/*.png
screenshots: system-deps $(VENV)/.installed-test
	$(BIN)/python scripts/screenshots.py --out docs/screenshots

format: $(VENV)/.installed-test
	$(BIN)/ruff format $(LINT_PATHS)
	$(BIN)/ruff check --fix $(LINT_PATHS)

clean:
	rm -rf $(VENV) .peeros .pytest_cache .mypy_cache .ruff_cache .hypothesis
