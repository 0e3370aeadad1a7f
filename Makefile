# The two commands a newcomer needs: `make run` and `make test`.
PY      ?= python3
VENV    := .venv
BIN     := $(VENV)/bin
# One venv serves every target; each stamp says which extra is installed in
# it, so `make test` after `make run` adds the test tools (and only them).
RUN_STAMP   := $(VENV)/.installed-run
TEST_STAMP  := $(VENV)/.installed-test
BENCH_STAMP := $(VENV)/.installed-bench
SOURCES := pyproject.toml setup.py src/stockade/sandbox/_clonespawn.c src/stockade/runner/_maskscan.c src/stockade/sandbox/_spoolshim.c
# Debian packages the test suite drives for real (sandbox backends; Go for
# examples/go-tests, go-cmp's sources to run it on a real module; make, gcc for
# examples/ports; chromium for the dashboard test; systemd for `systemd-analyze
# verify` of the units in deploy/; tmux for the TUI's end-to-end test; gotestsum,
# which `python -m benchmarks gotests` compares the Go example's pipeline with).
SYSPKGS := bubblewrap runc util-linux golang-go golang-github-google-go-cmp-dev make gcc chromium \
           systemd tmux gotestsum golang-github-stretchr-testify-dev golang-github-davecgh-go-spew-dev \
           golang-github-pmezard-go-difflib-dev golang-github-stretchr-objx-dev golang-gopkg-yaml.v3-dev

.PHONY: run test lint typecheck unit bench sysdeps clean

$(BIN)/python:
	$(PY) -m venv $(VENV)

# run: the package and its runtime dependencies only (no test or bench tools).
$(RUN_STAMP): $(SOURCES) | $(BIN)/python
	$(BIN)/pip install --quiet --disable-pip-version-check -e .
	touch $@

$(TEST_STAMP): $(SOURCES) | $(BIN)/python
	$(BIN)/pip install --quiet --disable-pip-version-check -e '.[test]'
	touch $@ $(RUN_STAMP)

$(BENCH_STAMP): $(SOURCES) | $(BIN)/python
	$(BIN)/pip install --quiet --disable-pip-version-check -e '.[bench]'
	touch $@ $(RUN_STAMP)

## run: set up, run a shipped example job and a small pipeline on the embedded default
run: $(RUN_STAMP)
	cd examples && ../$(BIN)/stockade exec hello --input '{"name": "newcomer"}' --result -
	cd examples/pipelines && ../../$(BIN)/stockade run ci

## sysdeps: install the system packages the tests need (root only, only when missing)
sysdeps:
	@missing=""; for p in $(SYSPKGS); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; \
	  else echo "missing system packages:$$missing (install them, or run as root)"; fi; \
	fi

lint: $(TEST_STAMP)
	$(BIN)/ruff check src tests $(wildcard benchmarks)
	$(BIN)/ruff format --check src tests $(wildcard benchmarks)

typecheck: $(TEST_STAMP)
	$(BIN)/mypy

# Two pytest processes (pytest-xdist): the suite mostly waits on real
# processes, databases and timers, so two halve its time on two CPUs. Each
# test has its own data directory, PostgreSQL schema and slot cgroups (named
# after its process), so the two never share state.
unit: $(TEST_STAMP)
	$(BIN)/pytest -q -n 2

## test: everything CI checks (system packages first: gcc builds the optional spawn extension)
test: sysdeps $(TEST_STAMP) lint typecheck unit

## bench: speed and memory figures, each against a baseline measured in the same run
bench: $(BENCH_STAMP)
	$(BIN)/python -m benchmarks

clean:
	rm -rf $(VENV) .stockade .mypy_cache .ruff_cache .pytest_cache
