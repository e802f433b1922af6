# Two commands matter (README): `make run` and `make test`. Everything else is a helper.
PYTHON ?= $(shell command -v python3.11 2>/dev/null || command -v python3)
VENV   ?= .venv
BIN    := $(VENV)/bin
CHECKED_SOURCES := src tests bench scripts

.PHONY: run test test-quick lint typecheck check bench-ingest bench-features bench-engine bench-recommend bench-feedback bench-soak clean

$(BIN)/python:
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python 3.11+ is required")'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# One stamp per extra: `make run` installs only what the service needs.
$(VENV)/.installed-run: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e .
	@touch $@

$(VENV)/.installed-test: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[test,bench]'
	@touch $@ $(VENV)/.installed-run

## run: the service in the embedded mode (SQLite, in-process bus) on http://127.0.0.1:8000
run: $(VENV)/.installed-run
	$(BIN)/recommender serve

## test: lint, types and the whole test suite (needs local Postgres and Redis, see README)
test: $(VENV)/.installed-test lint typecheck
	$(BIN)/pytest

## test-quick: lint, types and every test but the slow ones (crash recovery, subprocess servers)
test-quick: $(VENV)/.installed-test lint typecheck
	$(BIN)/pytest -m "not slow"

## lint: ruff, formatting, and the package layering of docs/architecture.md (import-linter)
lint: $(VENV)/.installed-test
	$(BIN)/ruff check $(CHECKED_SOURCES)
	$(BIN)/ruff format --check $(CHECKED_SOURCES)
	$(BIN)/lint-imports

typecheck: $(VENV)/.installed-test
	$(BIN)/mypy

## bench-ingest: HTTP ingest throughput vs a bare FastAPI endpoint (writes docs/benchmarks.md)
bench-ingest: $(VENV)/.installed-test
	$(BIN)/python bench/ingest.py --write docs/benchmarks.md

## bench-features: feature consumer throughput and event->feature freshness
bench-features: $(VENV)/.installed-test
	$(BIN)/python bench/features.py --write docs/benchmarks.md

## bench-engine: one engine call per catalog size and context, with a stage split
bench-engine: $(VENV)/.installed-test
	$(BIN)/python bench/engine.py --write docs/benchmarks.md

## bench-recommend: GET /recommend (10k movies, 100k users) vs a bare endpoint (needs wrk)
bench-recommend: $(VENV)/.installed-test
	$(BIN)/python bench/recommend.py --duration 20 --write docs/benchmarks.md

## bench-soak: 30 min of paced mixed ingest, recommend and feedback (200 req/s); RSS, errors, drain (writes docs/benchmarks.md)
bench-soak: $(VENV)/.installed-test
	$(BIN)/python bench/soak.py --write docs/benchmarks.md

## bench-feedback: replayed synthetic days, training with and without impressions
bench-feedback: $(VENV)/.installed-test
	$(BIN)/python bench/feedback_replay.py --write docs/benchmarks.md

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache var
