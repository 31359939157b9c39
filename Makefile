# ПК «ВОСХОД» — портал подключения кооперативов.
# The README's two commands:  make run   |   make test
SHELL := /bin/bash
.DEFAULT_GOAL := run

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
HOST   ?= 127.0.0.1
PORT   ?= 8000
PYTEST_ARGS ?=
# Test processes (pytest-xdist): each has its own PostgreSQL, live server and browser; browser tests run last in each.
PYTEST_WORKERS ?= auto
BENCH_ARGS ?=

export DEBIAN_FRONTEND := noninteractive
export PIP_DISABLE_PIP_VERSION_CHECK := 1

.PHONY: run test setup-run setup-test docs bench clean help

help:
	@echo "make run    — set up and serve on http://$(HOST):$(PORT) (HOST=, PORT= to change)"
	@echo "make test   — set up (system packages, test deps) and run all tests (PYTEST_ARGS=...)"
	@echo "make docs   — build the documentation site (mkdocs build --strict)"
	@echo "make bench  — run the benchmarks in bench/ (BENCH_ARGS=\"--quick\" for bench/http.py)"
	@echo "make clean  — remove the venv, build output and caches (keeps var/)"

run: setup-run
	$(BIN)/portal serve --host $(HOST) --port $(PORT)

test: setup-test
	$(BIN)/python -m pytest -n $(PYTEST_WORKERS) $(PYTEST_ARGS)

# Order matters: system packages first (python3-venv may be among them), then the venv.
setup-run: $(VENV)/.stamp-apt-run $(VENV)/.stamp-run
setup-test: $(VENV)/.stamp-apt-test $(VENV)/.stamp-test

$(VENV)/.stamp-apt-run: scripts/ensure-system-packages.sh
	bash scripts/ensure-system-packages.sh run
	@mkdir -p $(VENV) && touch $@

$(VENV)/.stamp-apt-test: scripts/ensure-system-packages.sh
	bash scripts/ensure-system-packages.sh test
	@mkdir -p $(VENV) && touch $@ $(VENV)/.stamp-apt-run

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.stamp-run: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -e .
	@touch $@

# The test extras include everything `run` needs, so they satisfy its stamp too.
$(VENV)/.stamp-test: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -e '.[test]'
	@touch $@ $(VENV)/.stamp-run

docs: setup-run
	$(BIN)/python -m portal.docs_site site

# -P: a script's own directory does not go first on sys.path (bench/http.py would shadow the standard http).
bench: setup-test
	bash scripts/ensure-system-packages.sh bench
	$(BIN)/python -P bench/http.py $(BENCH_ARGS)
	@set -e; for f in bench/*.py; do \
	  case "$$f" in bench/http.py|bench/bare_app.py|bench/__init__.py) continue ;; esac; \
	  echo "== $$f"; $(BIN)/python -P "$$f"; \
	done

clean:
	rm -rf $(VENV) site build dist .pytest_cache tests/.cache *.egg-info
	find . -path ./.git -prune -o -type d -name __pycache__ -prune -exec rm -rf {} +
