# The two documented entry points: `make run` and `make test`. Everything else is theirs.
PYTHON ?= python3
PORT ?= 8000
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

# The second row of the test matrix: Python 3.12, on which pip resolves Django 6.x and
# its matching django-stubs (Python 3.11 gets Django 5.2).
MATRIX_PYTHON ?= env PYENV_VERSION=3.12.1 python3
MATRIX_VENV ?= .venv-py3.12

.PHONY: run test test-matrix lint typecheck docs pytest browser-tests bench chaos soak clean

# pip >= 25.1 installs PEP 735 dependency groups (`--group`): upgrade it first.
$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade 'pip>=25.1'
	$(BIN)/python -m pip install --quiet -e . --group dev
	touch $(STAMP)

## Serve the chat on http://127.0.0.1:$(PORT) (embedded PostgreSQL unless DATABASE_URL is set).
run: $(STAMP)
	cd demo && DJANGO_DEBUG=$${DJANGO_DEBUG-1} ../$(BIN)/python manage.py migrate --noinput
	@echo "Chat: http://127.0.0.1:$(PORT)/  (Ctrl-C stops the server; the database keeps its data)"
	cd demo && DJANGO_DEBUG=$${DJANGO_DEBUG-1} exec ../$(BIN)/uvicorn chatsite.asgi:application \
		--host 127.0.0.1 --port $(PORT) --timeout-graceful-shutdown 5

## Lint, type-check, build the docs and run the whole suite (browser tests in their own run).
test: $(STAMP) lint typecheck docs pytest browser-tests

## The same in a second virtualenv: Python 3.12 with Django 6.x.
test-matrix:
	$(MAKE) test VENV=$(MATRIX_VENV) PYTHON="$(MATRIX_PYTHON)"

lint: $(STAMP)
	$(BIN)/ruff check src demo tests bench loadtests docs

typecheck: $(STAMP)
	# The type checker imports settings: give it a database URL it never connects to.
	DJANGO_DEBUG=1 DATABASE_URL=postgresql://typecheck@localhost/typecheck \
		$(BIN)/mypy --cache-dir $(VENV)/.mypy_cache src/pgsse demo tests bench loadtests docs/_ext

## The documentation site in docs/_build/html (Sphinx, Furo, MyST: docs/conf.py). Warnings
## are errors: a link to a missing page or anchor, or a code reference that names nothing
## (docs/_ext/code_references.py), fails the build. -E: every page is read every time.
docs: $(STAMP)
	$(BIN)/sphinx-build -b html -n -W --keep-going -E -q docs docs/_build/html
	@echo "Docs: docs/_build/html/index.html"

# tests/e2e/test_nginx.py runs Debian's nginx in front of two workers. RUNLEVEL=1 keeps the
# package from starting its own server on port 80: the tests start theirs on 127.0.0.1.
NGINX_INSTALLED := command -v nginx >/dev/null || test -x /usr/sbin/nginx || \
	{ apt-get update && RUNLEVEL=1 DEBIAN_FRONTEND=noninteractive apt-get install -y nginx; }

pytest: $(STAMP)
	$(NGINX_INSTALLED)
	$(BIN)/python -m pytest -m "not browser"

# Playwright drives Debian's Chromium (its own browser download is not possible here).
browser-tests: $(STAMP)
	command -v chromium >/dev/null || { apt-get update && apt-get install -y chromium; }
	$(BIN)/python -m pytest -m browser -o asyncio_default_fixture_loop_scope=session -o asyncio_default_test_loop_scope=session


## Benchmarks against baselines measured in the same run (not part of `make test`).
BENCH_STAMP := $(VENV)/.bench-installed

# The peers and matplotlib: pyproject.toml's `bench` dependency group, never the package's.
$(BENCH_STAMP): $(STAMP) pyproject.toml
	$(BIN)/python -m pip install --quiet --group bench
	touch $(BENCH_STAMP)

bench: $(BENCH_STAMP)
	$(BIN)/python -m bench $(BENCH_ARGS)

## Faults on a schedule under load, then the invariant checker (about 5 minutes, loopback only).
## CHAOS_ARGS="--duration 60 --streams 300" for a short run; "--report docs" rewrites the report.
chaos: $(STAMP)
	$(BIN)/python -m loadtests chaos $(CHAOS_ARGS)

## Steady load with connect/disconnect churn; memory, threads and connections must stay flat
## (30 minutes by default; SOAK_ARGS="--duration 300 --cycles 2000", "--report docs").
soak: $(STAMP)
	$(BIN)/python -m loadtests soak $(SOAK_ARGS)

clean:
	rm -rf $(VENV) $(MATRIX_VENV) .pytest_cache .mypy_cache .ruff_cache docs/_build
