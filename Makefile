# The two commands of the README:
#   make demo   set up, then run the main job on the embedded stack (no Docker)
#   make test   set up, then lint, type-check, run every test and the built-in
#               scenario suite (make suite: fails when a scenario fails; prints
#               the fault-by-signal matrix and the suite's wall time)
VENV ?= .venv
PYTHON ?= python3
SUDO := $(shell [ "$$(id -u)" -eq 0 ] || echo sudo)
APT_PACKAGES := prometheus prometheus-alertmanager
SUITE_REPORTS ?= reports

.PHONY: setup system-deps demo test lint suite bench clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --upgrade pip
	$(VENV)/bin/pip install --quiet -e ".[dev]"
	touch $@

system-deps:
	@if command -v prometheus >/dev/null && command -v promtool >/dev/null && \
	   { command -v prometheus-alertmanager || command -v alertmanager; } >/dev/null; then \
	   echo "system packages present: $(APT_PACKAGES)"; \
	else \
	   echo "installing system packages: $(APT_PACKAGES)"; \
	   $(SUDO) apt-get update -qq && \
	   DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq $(APT_PACKAGES) >/dev/null; \
	fi

setup: system-deps $(VENV)/.installed

demo: setup
	$(VENV)/bin/paychaos demo
	$(VENV)/bin/paychaos run scenarios/db-latency.yaml --reports-dir reports

lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports --no-cache

test: lint
	$(VENV)/bin/pytest
	$(MAKE) --no-print-directory suite

# Every scenarios/*.yaml on one fresh embedded stack (~18 minutes on 2 cores).
suite: setup
	$(VENV)/bin/paychaos run scenarios/ --fresh --no-progress --reports-dir $(SUITE_REPORTS)

bench: setup
	for b in bench/bench_*.py; do echo "== $$b"; $(VENV)/bin/python $$b || exit 1; done

clean:
	rm -rf .paychaos .pytest_cache .mypy_cache .ruff_cache
