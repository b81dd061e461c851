# Developer entry points for backproplab. Everything runs from the project venv (.venv).
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := test

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin

# Only the directories that exist: nn/, viz/ and bench/ arrive later, and ruff/mypy
# fail on a path that is missing.
PKGS      := $(wildcard autograd nn viz)
LINT_DIRS := $(wildcard autograd nn viz tests bench)

# Root commands (apt-get) run directly as root, else through non-interactive sudo if
# there is one; CAN_ROOT is empty when neither works.
SUDO     := $(shell [ "$$(id -u)" != 0 ] && command -v sudo >/dev/null 2>&1 && echo sudo -n)
CAN_ROOT := $(shell [ "$$(id -u)" = 0 ] || command -v sudo >/dev/null 2>&1 && echo yes)

.PHONY: venv dot setup demo lint typecheck test format bench clean

# ---------------------------------------------------------------- environment

venv: $(VENV)/.installed

# Stamp file: reinstall when pyproject.toml changes, and when a package's __init__.py
# appears or changes: the editable install only maps the top-level packages that existed
# when it ran, so a later nn/ or viz/ would not import from the venv (or the CLI) until
# reinstalled. A reinstall with everything already present takes a few seconds.
# Debian's own python3 ships venv/ensurepip separately, in python3-venv.
$(VENV)/.installed: pyproject.toml $(wildcard $(addsuffix /__init__.py,autograd nn viz))
	@if ! $(PYTHON) -c 'import venv, ensurepip' >/dev/null 2>&1; then \
	    if [ "$$(id -u)" = 0 ]; then \
	        apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y python3-venv; \
	    else \
	        echo "$(PYTHON) cannot create a venv: install it with 'apt-get install python3-venv'" >&2; \
	        exit 1; \
	    fi; \
	fi
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --upgrade pip
	$(BIN)/python -m pip install -e '.[dev]'
	touch $@

# Graphviz's `dot` renders the computation graphs. It is optional: without it the
# package falls back to emitting DOT source, so a missing `dot` never fails the build.
dot:
	@if command -v dot >/dev/null 2>&1; then \
	    :; \
	elif [ -n "$(CAN_ROOT)" ] && $(SUDO) apt-get update \
	        && $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y graphviz; then \
	    dot -V; \
	else \
	    echo "Graphviz 'dot' is missing: install it with 'apt-get install graphviz'"; \
	fi

setup: venv dot

# ---------------------------------------------------------------- use

# The CLI lives in viz/; until it exists, run the engine's own demo.
demo: setup
	@if [ -f viz/cli.py ]; then \
	    $(BIN)/backproplab demo; \
	else \
	    $(BIN)/python -m autograd.demo; \
	fi

# ---------------------------------------------------------------- checks

lint: venv
	$(BIN)/ruff check $(LINT_DIRS)
	$(BIN)/ruff format --check $(LINT_DIRS)

# Explicit paths override mypy's `files` setting, which lists all three packages.
typecheck: venv
	$(BIN)/mypy $(PKGS)

test: setup lint typecheck
	$(BIN)/python -m pytest

# Fix first, then format: lint fixes (e.g. import sorting) can leave code the formatter
# should tidy. The last check reports whatever could not be fixed automatically.
format: venv
	$(BIN)/ruff check --fix --exit-zero --quiet $(LINT_DIRS)
	$(BIN)/ruff format $(LINT_DIRS)
	$(BIN)/ruff check $(LINT_DIRS)

# ---------------------------------------------------------------- benchmarks

# micrograd and torch are big/slow to install, so they live in their own extra/stamp.
$(VENV)/.bench-installed: $(VENV)/.installed
	$(BIN)/python -m pip install -e '.[bench]'
	touch $@

bench: setup $(VENV)/.bench-installed
	$(BIN)/python -m bench

# ---------------------------------------------------------------- housekeeping

clean:
	rm -rf $(VENV) build dist *.egg-info .mypy_cache .ruff_cache .pytest_cache .hypothesis
	find . -path ./.git -prune -o -type d -name __pycache__ -prune -exec rm -rf {} +
