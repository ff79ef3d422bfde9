# The two commands a newcomer needs: `make demo` and `make test`. Both install what is missing
# (the virtualenv, npm packages, Debian's Chromium) and are quick the second time.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PY_STAMP := $(VENV)/.installed
NODE_STAMP := node_modules/.installed

.PHONY: demo test test-python test-sdk lint bench install chromium clean

demo: $(PY_STAMP)
	$(BIN)/bond demo

# One pytest worker per core, each taking whole test files (a module's servers start once).
test: $(PY_STAMP) $(NODE_STAMP) chromium lint
	npm test
	$(BIN)/python -m pytest -n auto --dist loadfile

bench: $(PY_STAMP)
	$(BIN)/bond bench ingest
	$(BIN)/bond bench concurrency
	$(BIN)/bond bench stitch

lint: $(PY_STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

install: $(PY_STAMP) $(NODE_STAMP)

$(PY_STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $@

$(NODE_STAMP): package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

# Playwright drives Debian's Chromium: its own browser download needs the internet.
chromium:
	@command -v chromium >/dev/null 2>&1 || { \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; }

clean:
	rm -rf $(VENV) node_modules .pytest_cache .mypy_cache .ruff_cache
