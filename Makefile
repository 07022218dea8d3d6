# The two commands a newcomer needs: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: demo test lint install bench clean

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@

install: $(BIN)/.installed

## demo: migrate var/demo.db, load demo data, start the local Stripe stand-in, a mail sink
##       and the service on http://127.0.0.1:5000
demo: install
	$(BIN)/python -m devtools.demo

## test: lint, the layer contracts (docs/architecture.md), then the whole suite (SQLite;
##       PostgreSQL too when WARRANTY_TEST_POSTGRES_URL is set)
test: install
	$(BIN)/ruff check .
	$(BIN)/lint-imports
	$(BIN)/pytest

lint: install
	$(BIN)/ruff check .
	$(BIN)/lint-imports

## bench: every benchmark in bench/, printing figures
bench: install
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) var artifacts *.egg-info
