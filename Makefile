# Every target sets up its own virtual environment from pyproject.toml, so a fresh clone works.
# pyproject.toml says which versions would do; requirements.lock pins the ones we test with, so
# two installs a month apart get the same libraries. `make lock` refreshes the pins.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
LOCK := requirements.lock
LOCK_VENV := .venv-lock

.PHONY: demo test lint types unit bench browser-deps pg-deps lock clean

$(STAMP): pyproject.toml $(LOCK)
	$(PYTHON) -m venv $(VENV)
	@echo "installing batchwan and its tools into $(VENV) (log: $(VENV)/install.log)"
	@{ $(BIN)/pip install --upgrade pip && $(BIN)/pip install -c $(LOCK) -e '.[dev]'; } \
	  > $(VENV)/install.log 2>&1 || { tail -n 40 $(VENV)/install.log; exit 1; }
	@touch $(STAMP)

# The newest versions that pyproject.toml allows, resolved in a fresh environment and pinned.
lock:
	rm -rf $(LOCK_VENV)
	$(PYTHON) -m venv $(LOCK_VENV)
	$(LOCK_VENV)/bin/pip install --quiet --upgrade pip
	$(LOCK_VENV)/bin/pip install --quiet -e '.[dev]'
	@{ echo "# Pinned versions of every dependency, for reproducible installs (make installs with"; \
	   echo "# pip install -c $(LOCK)). Version ranges live in pyproject.toml; refresh: make lock."; \
	   $(LOCK_VENV)/bin/pip freeze --exclude-editable; } > $(LOCK).new
	mv $(LOCK).new $(LOCK)
	rm -rf $(LOCK_VENV)

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
	rm -rf $(VENV) $(LOCK_VENV) runs .mypy_cache .ruff_cache .pytest_cache
