# Every target sets up its own virtual environment from pyproject.toml, so a fresh clone works.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint types unit bench browser-deps pg-deps clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	@echo "installing batchwan and its tools into $(VENV) (log: $(VENV)/install.log)"
	@{ $(BIN)/pip install --upgrade pip && $(BIN)/pip install -e '.[dev]'; } > $(VENV)/install.log 2>&1 \
	  || { tail -n 40 $(VENV)/install.log; exit 1; }
	@touch $(STAMP)

demo: $(STAMP)
	$(BIN)/python -m batchwan run jobs/demo.yaml --simulate --out runs/demo
	$(BIN)/python -m batchwan status runs/demo --rows

lint: $(STAMP)
	$(BIN)/ruff check batchwan tests bench
	$(BIN)/ruff format --check batchwan tests bench

types: $(STAMP)
	$(BIN)/mypy

unit: $(STAMP)
	$(BIN)/pytest

# The report test renders in a real headless browser; install it when the machine can.
browser-deps:
	@command -v chromium >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) \
	      || echo "chromium could not be installed; the browser test will be skipped"; \
	  else echo "no chromium and no apt-get as root; the browser test will be skipped"; fi; }

# The shared-store tests start a throwaway PostgreSQL server (initdb, pg_ctl); CI must have it.
pg-deps:
	@ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || command -v initdb >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null) \
	      || echo "postgresql could not be installed; the PostgreSQL tests will fail in CI"; \
	  else echo "no PostgreSQL and no apt-get as root; the PostgreSQL tests will be skipped"; fi; }

test: lint types browser-deps pg-deps unit

bench: $(STAMP)
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) runs .mypy_cache .ruff_cache .pytest_cache
