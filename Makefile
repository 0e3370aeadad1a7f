# The two commands a newcomer needs: `make run` and `make test`.
PY      ?= python3
VENV    := .venv
BIN     := $(VENV)/bin
STAMP   := $(VENV)/.installed
# Debian packages the test suite drives for real (sandbox backends; Go for
# examples/go-tests, go-cmp's sources to run it on a real module; make, gcc for
# examples/ports; chromium for the dashboard test).
SYSPKGS := bubblewrap runc util-linux golang-go golang-github-google-go-cmp-dev make gcc chromium

.PHONY: run test lint typecheck unit bench sysdeps clean

$(STAMP): pyproject.toml setup.py src/stockade/sandbox/_clonespawn.c
	$(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

## run: set up, run a shipped example job and a small pipeline on the embedded default
run: $(STAMP)
	cd examples && ../$(BIN)/stockade exec hello --input '{"name": "newcomer"}' --result -
	cd examples/pipelines && ../../$(BIN)/stockade run ci

## sysdeps: install the system packages the tests need (root only, only when missing)
sysdeps:
	@missing=""; for p in $(SYSPKGS); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; \
	  else echo "missing system packages:$$missing (install them, or run as root)"; fi; \
	fi

lint: $(STAMP)
	$(BIN)/ruff check src tests $(wildcard benchmarks)
	$(BIN)/ruff format --check src tests $(wildcard benchmarks)

typecheck: $(STAMP)
	$(BIN)/mypy

unit: $(STAMP)
	$(BIN)/pytest -q

## test: everything CI checks (system packages first: gcc builds the optional spawn extension)
test: sysdeps $(STAMP) lint typecheck unit

## bench: speed and memory figures, each against a baseline measured in the same run
bench: $(STAMP)
	$(BIN)/python -m benchmarks

clean:
	rm -rf $(VENV) .stockade .mypy_cache .ruff_cache .pytest_cache
