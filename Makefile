# The two commands of the README:
#   make demo   set up, then run the main job on the embedded stack (no Docker)
#   make test   set up, then lint, type-check, run every test and the built-in
#               scenario suite (make suite: fails when a scenario fails; prints
#               the fault-by-signal matrix and the suite's wall time)
VENV ?= .venv
PYTHON ?= python3
SUDO := $(shell [ "$$(id -u)" -eq 0 ] || echo sudo)
APT_PACKAGES := prometheus prometheus-alertmanager
TEST_APT_PACKAGES := chromium
SUITE_REPORTS ?= reports
SUITE_LANES ?= 3
# Scenarios that read host-wide counters (the embedded instance's OOM kills are
# the host's): in `make test` they run after pytest, on their own.
SUITE_ALONE ?= scenarios/memory-pressure.yaml
# The built-in scenarios seen passing against the seed's NestJS service (--app nestjs):
# in `make test` they run after the suite, in its background job, beside pytest.
# memory-pressure passes on it too but is left out: it reads the host's OOM-kill counter,
# which that job's neighbours move (it runs alone, above, on the Python API's stack).
NESTJS_SUITE ?= $(addprefix scenarios/,$(addsuffix .yaml,db-latency db-blackhole db-outage \
	gateway-timeout-paypal gateway-network-latency amex-outage decline-spike \
	payment-api-crash deployment-under-load broken-pay-button card-testing gateway-crash \
	prometheus-crash prometheus-kill telemetry-pipeline-down))
# Tests pytest runs in that background job after the suites, in this order, not in the
# foreground pytest (the critical path of `make test`): three scenarios on the Docker
# target (~10 min; memory-pressure among them, so before the OOM tests, whose kills the
# host's InstanceOOMKill counts for 2 min), then the OOM tests (~8 min of live runs).
BACKGROUND_TESTS ?= tests/docker/test_cli_docker_target.py tests/oom
# The seed's React checkout page (Faro web SDK), bundled by esbuild into dist/.
WEBAPP := paychaos/stack/webapp
WEBAPP_APT_PACKAGES := nodejs npm

# The payment API `make demo` runs: python (paychaos' own) or nestjs (the seed's NestJS
# service in stack/nestjs, built with npm: `make demo APP=nestjs`).
APP ?= python
NESTJS_DIR := stack/nestjs
NESTJS_BUILT := $(NESTJS_DIR)/dist/.built

.PHONY: setup system-deps test-deps webapp node nestjs demo test lint suite bench clean

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

# What only the tests need: a real headless browser for the Locust web UI tests, and the
# NestJS service (its tests run against a stack with --app nestjs).
test-deps: webapp nestjs
	@if command -v chromium >/dev/null; then \
	   echo "test packages present: $(TEST_APT_PACKAGES)"; \
	else \
	   echo "installing test packages: $(TEST_APT_PACKAGES)"; \
	   $(SUDO) apt-get update -qq && \
	   DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq $(TEST_APT_PACKAGES) >/dev/null; \
	fi

# Node and npm for the checkout page and the NestJS service (Debian's packages when missing).
node:
	@if command -v node >/dev/null && command -v npm >/dev/null; then \
	   echo "node present: $$(node --version), npm $$(npm --version)"; \
	else \
	   echo "installing packages: $(WEBAPP_APT_PACKAGES)"; \
	   $(SUDO) apt-get update -qq && \
	   DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq $(WEBAPP_APT_PACKAGES) >/dev/null; \
	fi

# npm ci when the lock file changed; the bundle when a source did.
$(WEBAPP)/node_modules/.package-lock.json: $(WEBAPP)/package-lock.json | node
	cd $(WEBAPP) && npm ci --no-audit --no-fund --loglevel=error

$(WEBAPP)/dist/app.js: $(WEBAPP)/node_modules/.package-lock.json $(WEBAPP)/build.mjs \
		$(WEBAPP)/public/index.html $(wildcard $(WEBAPP)/src/*)
	cd $(WEBAPP) && npm run --silent build

webapp: $(WEBAPP)/dist/app.js

# The NestJS service: the Node packages from package-lock.json (npm ci), built with tsc.
# Needs Node.js 20+ and npm; rebuilt when the lock file or a source changes.
nestjs: $(NESTJS_BUILT)

$(NESTJS_BUILT): $(NESTJS_DIR)/package.json $(NESTJS_DIR)/package-lock.json $(NESTJS_DIR)/tsconfig.json \
		$(wildcard $(NESTJS_DIR)/src/*.ts) | node
	@command -v node >/dev/null && command -v npm >/dev/null || \
	   { echo "the NestJS service needs Node.js 20+ and npm on PATH (nodejs.org, or your distribution's nodejs and npm)" >&2; exit 1; }
	@node -e 'process.exit(+process.versions.node.split(".")[0] >= 20 ? 0 : 1)' || \
	   { echo "the NestJS service needs Node.js 20 or newer; found $$(node --version)" >&2; exit 1; }
	cd $(NESTJS_DIR) && npm ci --no-audit --no-fund --loglevel=error && npm run --silent build
	touch $@

setup: system-deps $(VENV)/.installed $(if $(filter nestjs,$(APP)),nestjs)

demo: setup
	$(VENV)/bin/paychaos demo$(if $(filter nestjs,$(APP)), --app nestjs)
	$(VENV)/bin/paychaos run scenarios/db-latency.yaml --reports-dir reports

lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports --no-cache

# pytest and the suite side by side (the suite's detection times are measured with
# pytest's stacks on the same machine), then the SUITE_ALONE scenarios on their own.
test: lint test-deps
	NESTJS_SUITE="$(NESTJS_SUITE)" BACKGROUND_TESTS="$(BACKGROUND_TESTS)" bash scripts/test-and-suite.sh $(VENV) $(SUITE_REPORTS) $(SUITE_LANES) $(SUITE_ALONE)

# Every scenarios/*.yaml, split over SUITE_LANES fresh embedded stacks side by side.
suite: setup
	$(VENV)/bin/paychaos run scenarios/ --fresh --lanes $(SUITE_LANES) --no-progress --reports-dir $(SUITE_REPORTS)

bench: setup
	for b in bench/bench_*.py; do echo "== $$b"; $(VENV)/bin/python $$b || exit 1; done

clean:
	rm -rf .paychaos .pytest_cache .mypy_cache .ruff_cache $(WEBAPP)/dist $(NESTJS_DIR)/dist
