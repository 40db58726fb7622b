# Set-up is part of every target: a fresh clone needs only Python 3.11+, make and the package index.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint typecheck unit fuzz soak bench clean interop bench-official

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

demo: $(STAMP)
	$(BIN)/python examples/demo.py

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy

unit: $(STAMP)
	HYPOTHESIS_PROFILE=ci $(BIN)/coverage run -m pytest
	$(BIN)/coverage report --include='relay_proto/*' --fail-under=100

test: lint typecheck unit

fuzz: $(STAMP)
	HYPOTHESIS_PROFILE=fuzz $(BIN)/pytest tests -k "hypothesis or fuzz or stateful or garbage or framing" -x

# The long chaos soak (~1 minute per backend; `make test` runs a short one). Replay a run's
# choices with RELAY_SOAK_SEED=<the seed it printed>.
soak: $(STAMP)
	$(BIN)/pytest tests/test_chaos_soak.py -m soak -s

bench: $(STAMP)
	$(BIN)/python benchmarks/bench_core.py
	$(BIN)/python benchmarks/bench_dials.py
	$(BIN)/python benchmarks/bench_calls.py

clean:
	rm -rf $(VENV) .coverage .mypy_cache .ruff_cache

# Interop with the official SDK (signalwire-sdk) lives in its own venv: never a project dependency.
INTEROP_VENV := .venv-interop
INTEROP_BIN := $(INTEROP_VENV)/bin
INTEROP_STAMP := $(INTEROP_VENV)/.installed

$(INTEROP_STAMP): pyproject.toml
	@test -x $(INTEROP_BIN)/python || $(PYTHON) -m venv $(INTEROP_VENV)
	$(INTEROP_BIN)/python -m pip install --quiet --upgrade pip
	$(INTEROP_BIN)/python -m pip install --quiet -e '.[dev]' 'signalwire-sdk>=3,<4'
	@touch $(INTEROP_STAMP)

interop: $(INTEROP_STAMP)
	$(INTEROP_BIN)/python -c 'import signalwire.relay.client as c; c.RelayClient'
	$(INTEROP_BIN)/pytest tests/test_interop_official.py tests/test_interop_official_verbs.py -rs

bench-official: $(INTEROP_STAMP)
	$(INTEROP_BIN)/python benchmarks/bench_official.py
