# The two quick-start commands: `make run` and `make test` (README). .ci/run calls `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: setup run test lint bench

$(BIN)/dlp: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(BIN)/dlp

setup: $(BIN)/dlp

run: setup
	$(BIN)/dlp serve

test: setup
	bash scripts/test-deps
	bash scripts/check-deploy
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(BIN)/pytest -q -p no:cacheprovider

bench: setup
	$(BIN)/python bench/detect.py
