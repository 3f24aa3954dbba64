# turnout developer entry points. Everything runs from ./.venv, which `install` creates.
#
#   make run    install, then start the Star Wars demo (turnout demo)
#   make test   install, lint, typecheck, then the test suite
#   make fuzz   install atheris, run every fuzz/ target FUZZ_SECONDS (default 60) each
#
# `install` is idempotent: it only reruns pip when pyproject.toml, setup.py or a data-plane
# source is newer than the stamp file it leaves behind, so every other target can depend
# on it cheaply. The data plane is compiled with mypyc (setup.py) into modules beside the
# source; a change to one rebuilds them (~1 min). TURNOUT_PURE_PYTHON=1 skips compiling.

# The interpreter .venv is created with; by default tools/pick-python's choice (the
# distribution's optimised python3 first). `make install PYTHON=python3.12` overrides it
# when .venv does not exist yet (`make distclean` removes it).
PYTHON ?=
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
# bench/ may not exist yet on a fresh checkout; ruff fails on missing paths.
LINT_PATHS := $(wildcard src tests bench fuzz tools setup.py)
# What setup.py compiles (and more): an edit must rebuild, or the old code would run.
DATAPLANE_SRC := $(wildcard src/turnout/dataplane/*.py)

.PHONY: install run test lint typecheck bench bench-scale bench-grpc fuzz format clean distclean

install: $(STAMP)

$(STAMP): pyproject.toml setup.py $(DATAPLANE_SRC)
	@if [ ! -x $(BIN)/python ]; then \
	    rm -rf $(VENV); \
	    py='$(PYTHON)'; [ -n "$$py" ] || py=$$(tools/pick-python); \
	    echo "creating $(VENV) with $$py ($$($$py --version 2>&1))"; \
	    if ! $$py -m venv $(VENV); then \
	        rm -rf $(VENV); \
	        if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	            echo "$$py -m venv failed; installing python3-venv (Debian splits it out)"; \
	            apt-get update -q && apt-get install -y -q python3-venv && $$py -m venv $(VENV); \
	        else \
	            echo "error: '$$py -m venv' failed; on Debian/Ubuntu run: sudo apt-get install python3-venv" >&2; \
	            exit 1; \
	        fi; \
	    fi; \
	fi
	$(BIN)/python -m pip install -q --upgrade pip 'setuptools>=77' wheel 'mypy>=1.10'
	@# Dependencies first, then the compiled build: mypyc needs their types. No build
	@# isolation: it compiles with the venv's mypy. Where a C compiler and Python.h exist,
	@# a failed compile is an error (TURNOUT_PURE_PYTHON=1 installs without compiling);
	@# without them, the data plane stays pure Python with a warning.
	TURNOUT_PURE_PYTHON=1 $(BIN)/python -m pip install -q --no-build-isolation -e '.[dev]'
	@if command -v "$${CC:-cc}" >/dev/null && $(BIN)/python -c 'import os, sysconfig, sys; \
	        sys.exit(not os.path.exists(os.path.join(sysconfig.get_paths()["include"], "Python.h")))'; then \
	    echo "TURNOUT_REQUIRE_COMPILED=1 $(BIN)/python -m pip install -q --no-build-isolation --no-deps -e ."; \
	    TURNOUT_REQUIRE_COMPILED=1 $(BIN)/python -m pip install -q --no-build-isolation --no-deps -e .; \
	else \
	    echo "warning: no C compiler or Python headers: the data plane stays pure Python (slower)"; \
	fi
	@touch $(STAMP)

run: install
	$(BIN)/turnout demo

# Sequential on purpose (install, lint, typecheck, tests), also under `make -j`.
test: install
	@$(MAKE) --no-print-directory lint
	@$(MAKE) --no-print-directory typecheck
	$(BIN)/pytest -q
	@# The data plane once more from its source (what runs where nothing was compiled).
	TURNOUT_PURE_PYTHON=1 $(BIN)/pytest -q -p no:cacheprovider tests/dataplane

lint: install
	$(BIN)/ruff check $(LINT_PATHS)
	$(BIN)/ruff format --check $(LINT_PATHS)

typecheck: install
	$(BIN)/mypy

format: install
	$(BIN)/ruff check --fix $(LINT_PATHS)
	$(BIN)/ruff format $(LINT_PATHS)

# Benchmarks: never part of `test`. BENCH_ARGS / SCALE_ARGS pass options through, e.g.
#   make bench BENCH_ARGS="--runs 3 --duration 10"    make bench-scale SCALE_ARGS=--profile
# As root, missing wrk/nginx/haproxy are installed with apt-get; otherwise run.py prints
# a skip line for each system it cannot start (or SKIP and exit 0 without wrk).
BENCH_TOOLS := wrk nginx haproxy

bench: install
	@missing=""; for tool in $(BENCH_TOOLS); do \
	    command -v $$tool >/dev/null || [ -x /usr/sbin/$$tool ] || missing="$$missing $$tool"; \
	done; \
	if [ -n "$$missing" ]; then \
	    if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	        apt-get install -y -q $$missing || { apt-get update -q && apt-get install -y -q $$missing; } || true; \
	    else \
	        echo "bench: not installed:$$missing; not root, so not installing (sudo apt-get install$$missing)"; \
	    fi; \
	fi; \
	$(BIN)/python bench/run.py --all-workers --results bench/RESULTS.md $(BENCH_ARGS)

bench-scale: install
	$(BIN)/python bench/scale.py --results bench/RESULTS.md $(SCALE_ARGS)

# gRPC unary calls/s through turnout vs the gRPC backend directly (h2load rows when installed).
bench-grpc: install
	@command -v h2load >/dev/null || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null && \
	    apt-get install -y -q nghttp2-client; } || echo "bench-grpc: h2load not installed; its rows are skipped"
	$(BIN)/python bench/grpc_bench.py --results bench/RESULTS.md $(GRPC_ARGS)

# Fuzzing: never part of `test`. Installs the `fuzz` extra (atheris: pip takes a binary
# wheel where one exists -- there is one for CPython 3.11 on x86-64 Linux -- and otherwise
# builds it, which needs clang with libFuzzer; if that fails this target stops saying so,
# and make test is unaffected).
# Fails if any target crashes; crashing inputs are kept in fuzz/out/<target>/.
FUZZ_SECONDS ?= 60

fuzz: install
	@$(BIN)/python -c "import atheris" 2>/dev/null || $(BIN)/python -m pip install -q -e '.[fuzz]' || { \
	    echo "fuzz: could not install atheris for $$($(BIN)/python -V); see https://pypi.org/project/atheris/" >&2; exit 1; }
	$(BIN)/python fuzz/run.py --seconds $(FUZZ_SECONDS) $(FUZZ_ARGS)

clean:
	rm -rf build dist .mypy_cache .ruff_cache .pytest_cache .hypothesis bench/out fuzz/out
	find . -path ./$(VENV) -prune -o -name __pycache__ -type d -prune -exec rm -rf {} +
	find src -maxdepth 1 -name '*.egg-info' -exec rm -rf {} +
	rm -f src/turnout_native__mypyc*.so src/turnout/dataplane/*.so $(STAMP)

# clean, and also remove the virtualenv (the next `make install` recreates it).
distclean: clean
	rm -rf $(VENV)
