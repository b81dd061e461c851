# Developer entry points for backproplab. Everything runs from the project venv (.venv).
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := test

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin

# The three folders install as backproplab.autograd, .nn and .viz (pyproject's package-dir).
PKGS      := autograd nn viz
LINT_DIRS := backproplab $(PKGS) tests bench notebooks

# Root commands (apt-get) run directly as root, else through non-interactive sudo if
# there is one; CAN_ROOT is empty when neither works.
SUDO     := $(shell [ "$$(id -u)" != 0 ] && command -v sudo >/dev/null 2>&1 && echo sudo -n)
CAN_ROOT := $(shell [ "$$(id -u)" = 0 ] || command -v sudo >/dev/null 2>&1 && echo yes)

.PHONY: venv demo-venv dot chromium setup demo lint typecheck test format bench clean

# ---------------------------------------------------------------- environment

# Two stamps over one venv: the tour needs only the library with its plot and progress extras
# (seconds to install); the checks need the developer tools too (torch, Playwright, ruff, mypy,
# the notebook runner). Each reinstalls when pyproject.toml (the extras) or this file (which
# extras each stamp asks for) changes. The developer set holds the tour's, so installing it
# satisfies the tour's stamp as well; `make demo` then `make test` adds the rest to the same venv.
DEMO_EXTRAS := plot,progress
DEV_EXTRAS  := dev,plot,progress,notebook

venv: $(VENV)/.installed
demo-venv: $(VENV)/.demo-installed

$(VENV)/.installed: pyproject.toml Makefile | $(BIN)/python
	$(BIN)/python -m pip install -e '.[$(DEV_EXTRAS)]'
	touch $@ $(VENV)/.demo-installed

$(VENV)/.demo-installed: pyproject.toml Makefile | $(BIN)/python
	$(BIN)/python -m pip install -e '.[$(DEMO_EXTRAS)]'
	touch $@

# The bare venv. Debian's own python3 ships venv/ensurepip separately, in python3-venv.
$(BIN)/python:
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

# Debian's chromium runs the player's browser tests (through Playwright, which never downloads
# a browser of its own here). Unlike dot it is required: without it those tests fail and say why.
chromium:
	@if command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1; then \
	    :; \
	elif [ -n "$(CAN_ROOT)" ] && $(SUDO) apt-get update \
	        && $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y chromium; then \
	    chromium --version; \
	else \
	    echo "Debian's chromium is missing: install it with 'apt-get install chromium'" \
	        "(the player's browser tests need it)"; \
	fi

# What `make test` needs; `make demo` needs only demo-venv and dot.
setup: venv dot chromium

# ---------------------------------------------------------------- use

demo: demo-venv dot
	$(BIN)/backproplab demo

# ---------------------------------------------------------------- checks

lint: venv
	$(BIN)/ruff check $(LINT_DIRS)
	$(BIN)/ruff format --check $(LINT_DIRS)

# mypy cannot follow the package-dir mapping, so it reads the package through a view of links
# laid out as the package installs: backproplab/{__init__.py, autograd, nn, viz}.
TYPECHECK_VIEW := $(VENV)/typecheck
typecheck: venv
	rm -rf $(TYPECHECK_VIEW) && mkdir -p $(TYPECHECK_VIEW)/backproplab
	ln -s $(CURDIR)/backproplab/__init__.py $(CURDIR)/backproplab/py.typed $(TYPECHECK_VIEW)/backproplab/
	for p in $(PKGS); do ln -s $(CURDIR)/$$p $(TYPECHECK_VIEW)/backproplab/$$p; done
	MYPYPATH=$(TYPECHECK_VIEW) $(BIN)/mypy --config-file pyproject.toml -p backproplab

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
