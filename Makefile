# Every target creates .venv and installs what it needs: a fresh clone needs only python3 (>= 3.10).
VENV ?= .venv
PYTHON ?= python3
BIN := $(VENV)/bin
STUDY ?= studies/quickstart.yaml

.PHONY: install quickstart train test lint bench clean

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e ".[dev]"
	touch $@

install: $(BIN)/.installed

quickstart: install  ## the main job on the embedded defaults
	$(BIN)/vae-search run $(STUDY) --workers 2

test: install  ## the whole test suite
	$(BIN)/pytest -q

lint: install
	$(BIN)/ruff check vae_search tests benchmarks

bench: install
	$(BIN)/python benchmarks/bench_engine.py

clean:
	rm -rf runs .pytest_cache
