# The two commands a newcomer needs: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

PIP_VERSION := 26.3

.PHONY: demo test lint install lock bench clean

# The whole resolved tree, hashed, from requirements.lock (what CI passed with); then the
# package itself without touching the dependencies.
$(BIN)/.installed: requirements.lock pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet pip==$(PIP_VERSION)
	$(BIN)/pip install --quiet --require-hashes -r requirements.lock
	$(BIN)/pip install --quiet --no-deps -e .
	touch $@

install: $(BIN)/.installed

## lock: recompute requirements.lock from pyproject.toml's pins (keeps other versions where
##       they still fit; `make lock UPGRADE=1` takes the newest that fit)
lock: install
	$(BIN)/uv pip compile --quiet --python $(BIN)/python --generate-hashes --extra dev \
	    --custom-compile-command 'make lock' $(if $(UPGRADE),--upgrade) \
	    -o requirements.lock pyproject.toml

## demo: migrate var/demo.db, load demo data, start the local Stripe stand-in, a mail sink
##       and the service on http://127.0.0.1:5000
demo: install
	$(BIN)/python -m devtools.demo

# make test spreads the suite over one pytest worker per core (pytest-xdist); TEST_JOBS=0 runs
# it in one process.
TEST_JOBS ?= auto

## test: lint, the layer contracts (docs/architecture.md), then the whole suite (SQLite;
##       PostgreSQL too when WARRANTY_TEST_POSTGRES_URL is set)
test: install
	$(BIN)/ruff check .
	$(BIN)/lint-imports
	$(BIN)/pytest -n $(TEST_JOBS)

lint: install
	$(BIN)/ruff check .
	$(BIN)/lint-imports

## bench: every benchmark in bench/, printing figures
bench: install
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) var artifacts *.egg-info
