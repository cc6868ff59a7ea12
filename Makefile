# Two commands on a fresh machine: `make demo` and `make test`.
# Each creates .venv, installs uv into it and syncs the locked dependencies.
PYTHON ?= python3
VENV   := .venv
UV     := $(VENV)/bin/uv
RUN    := $(UV) run --frozen --no-sync
STAMP  := $(VENV)/.synced-stamp

.PHONY: demo test lint typecheck unit bench clean

$(STAMP): pyproject.toml uv.lock
	@test -x $(UV) || ($(PYTHON) -m venv $(VENV) && $(VENV)/bin/python -m pip install -q --disable-pip-version-check uv==0.13.9)
	@UV_PROJECT_ENVIRONMENT=$(VENV) $(UV) sync --frozen --all-extras --quiet
	@touch $@

demo: $(STAMP)
	$(RUN) counterpoint run examples/demo/feature_development.yaml --input repo=.

lint: $(STAMP)
	$(RUN) ruff check src tests bench examples
	$(RUN) ruff format --check src tests bench examples

typecheck: $(STAMP)
	$(RUN) mypy

unit: $(STAMP)
	$(RUN) pytest

test: lint typecheck unit

bench: $(STAMP)
	$(RUN) python bench/run.py

clean:
	rm -rf $(VENV) .mypy_cache .pytest_cache .ruff_cache
