# Flint: one command to set up and demo, one to set up and test.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

# Browser tests: Debian's Chromium (Playwright's own browser download does not work here), and
# axe-core from npm in e2e/node_modules.
CHROMIUM  := /usr/bin/chromium
SUDO      := $(shell [ "$$(id -u)" -eq 0 ] || echo sudo)
NPM_STAMP := e2e/node_modules/.installed
# pytest-playwright: keep a trace and a screenshot of every failed browser test under test-results/.
E2E_OPTS  := --output test-results/playwright --tracing retain-on-failure --screenshot only-on-failure
# make test runs the suite on two pytest-xdist workers, a whole test file per worker at a time (its module
# fixtures, a live server, stay on one worker). The queue keeps the collection order
# (--no-loadscope-reorder): the browser tests come last (e2e/conftest.py), because a worker that has driven
# Playwright's sync API cannot run an asyncio test after it. WORKERS=1 runs it on one.
WORKERS   ?= 2
PARALLEL  := -n $(WORKERS) --dist loadfile --no-loadscope-reorder
# Extra pytest arguments, e.g. make e2e ARGS="--headed --slowmo 300 -k shop"
ARGS      ?=

.PHONY: setup demo test test-fast e2e e2e-deps chromium widget bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(STAMP)

setup: $(STAMP)

# Debian's chromium package, installed only when /usr/bin/chromium is missing (a no-op otherwise).
chromium:
	@test -x $(CHROMIUM) || { \
	  echo "Installing Debian's chromium for the browser tests"; \
	  $(SUDO) apt-get update && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y chromium; \
	}
	@test -x $(CHROMIUM) || { echo "$(CHROMIUM) is still missing" >&2; exit 1; }

# axe-core for e2e/helpers.py: assert_accessible, from e2e/package-lock.json.
$(NPM_STAMP): e2e/package.json e2e/package-lock.json
	npm ci --prefix e2e --no-audit --no-fund
	touch $(NPM_STAMP)

e2e-deps: $(NPM_STAMP)

# The widget: esbuild (widget/package-lock.json) minifies src/ into dist/, which Flint serves
# under /widget/v1/; the build prints each file's gzipped size.
WIDGET_NPM  := widget/node_modules/.installed
WIDGET_DIST := widget/dist/flint.js widget/dist/frame.js

$(WIDGET_NPM): widget/package.json widget/package-lock.json
	npm ci --prefix widget --no-audit --no-fund
	touch $(WIDGET_NPM)

$(WIDGET_DIST) &: $(WIDGET_NPM) widget/build.mjs $(wildcard widget/src/*.js)
	cd widget && npm run --silent build

widget: $(WIDGET_DIST)

demo: setup widget
	$(BIN)/flint demo

# The whole suite, unit to browser tests; CI (.ci/run) runs exactly this. .ci/postgres starts the
# local PostgreSQL if it is down: storage, service and race tests run on SQLite and PostgreSQL.
test: setup widget chromium e2e-deps
	$(BIN)/lint-imports --no-cache
	url=$$(.ci/postgres) && FLINT_TEST_POSTGRES_URL=$$url $(BIN)/python -m pytest -q $(PARALLEL) $(E2E_OPTS) $(ARGS)

# The browser tests alone, headless: e2e/ and the demo shop's own suite; see README.md, "Browser tests (QA)".
e2e: setup widget chromium e2e-deps
	$(BIN)/python -m pytest e2e examples/shop/tests -q $(E2E_OPTS) $(ARGS)

bench: setup widget chromium e2e-deps
	url=$$(.ci/postgres) && FLINT_TEST_POSTGRES_URL=$$url $(BIN)/python -m bench.run

clean:
	rm -rf $(VENV) var .pytest_cache e2e/node_modules widget/node_modules widget/dist test-results
