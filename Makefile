# turnout developer entry points. Everything runs from ./.venv, which `install` creates.
#
#   make run    install, then start the Star Wars demo (turnout demo)
#   make test   install, lint, typecheck, then the test suite
#
# `install` is idempotent: it only reruns pip when pyproject.toml is newer than the
# stamp file it leaves behind, so every other target can depend on it cheaply.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
# bench/ may not exist yet on a fresh checkout; ruff fails on missing paths.
LINT_PATHS := $(wildcard src tests bench)

.PHONY: install run test lint typecheck bench format clean distclean

install: $(STAMP)

$(STAMP): pyproject.toml
	@if [ ! -x $(BIN)/python ]; then \
	    rm -rf $(VENV); \
	    if ! $(PYTHON) -m venv $(VENV); then \
	        rm -rf $(VENV); \
	        if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	            echo "python3 -m venv failed; installing python3-venv (Debian splits it out)"; \
	            apt-get update -q && apt-get install -y -q python3-venv && $(PYTHON) -m venv $(VENV); \
	        else \
	            echo "error: '$(PYTHON) -m venv' failed; on Debian/Ubuntu run: sudo apt-get install python3-venv" >&2; \
	            exit 1; \
	        fi; \
	    fi; \
	fi
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev]'
	@touch $(STAMP)

run: install
	$(BIN)/turnout demo

# Sequential on purpose (install, lint, typecheck, tests), also under `make -j`.
test: install
	@$(MAKE) --no-print-directory lint
	@$(MAKE) --no-print-directory typecheck
	$(BIN)/pytest -q

lint: install
	$(BIN)/ruff check $(LINT_PATHS)
	$(BIN)/ruff format --check $(LINT_PATHS)

typecheck: install
	$(BIN)/mypy

format: install
	$(BIN)/ruff check --fix $(LINT_PATHS)
	$(BIN)/ruff format $(LINT_PATHS)

bench: install
	@if ! command -v wrk >/dev/null; then \
	    if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	        apt-get install -y -q wrk || { apt-get update -q && apt-get install -y -q wrk; }; \
	    else \
	        echo "bench: skipped: wrk is not installed and we are not root to install it"; \
	        echo "bench: install it with 'sudo apt-get install wrk' and rerun 'make bench'"; \
	        exit 0; \
	    fi; \
	fi; \
	$(BIN)/python bench/throughput.py

clean:
	rm -rf build dist .mypy_cache .ruff_cache .pytest_cache .hypothesis bench/out
	find . -path ./$(VENV) -prune -o -name __pycache__ -type d -prune -exec rm -rf {} +
	find src -maxdepth 1 -name '*.egg-info' -exec rm -rf {} +

# clean, and also remove the virtualenv (the next `make install` recreates it).
distclean: clean
	rm -rf $(VENV)
