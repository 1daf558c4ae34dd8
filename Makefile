# The two commands a user needs: `make demo` runs the example DAG end to end against the GO
# emulator; `make test` runs the checks and the test suite. Both set up .venv/ themselves.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
AIRFLOW_VERSION ?= 3.3.2
INSTALLED := $(VENV)/.installed-$(AIRFLOW_VERSION)
BENCH_VENV := .venv-bench
BENCH_BIN := $(BENCH_VENV)/bin
BENCH_INSTALLED := $(BENCH_VENV)/.installed-$(AIRFLOW_VERSION)

.PHONY: demo test test-matrix lint venv emulator deployment-local deployment-celery screenshots bench clean

demo: $(INSTALLED)
	$(BIN)/python scripts/demo.py

# The checks, the whole suite on Airflow $(AIRFLOW_VERSION), then the unit and dag.test() integration tests on
# the oldest and the newest supported Airflow and Python (see test-matrix). PYTEST_ARGS narrows the main
# run, for example PYTEST_ARGS="-m 'not deployment'" skips the real deployments.
test: $(INSTALLED) lint
	$(BIN)/pytest $(PYTEST_ARGS)
	$(BIN)/python scripts/test_matrix.py --cells oldest,newest

# The unit and dag.test() integration tests on every supported Airflow and Python, one virtualenv per cell
# in .venv-matrix/, ending with a table of the cells (four to twelve minutes a cell). MATRIX_ARGS narrows it,
# for example MATRIX_ARGS="--airflow 2.11 --python 3.12".
test-matrix: $(INSTALLED)
	$(BIN)/python scripts/test_matrix.py $(MATRIX_ARGS)

lint: $(INSTALLED)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

# Serve the GO emulator on 127.0.0.1:$(EMULATOR_PORT) for trying one's own DAGs by hand.
EMULATOR_PORT ?= 8099
emulator: $(INSTALLED)
	$(BIN)/proteus-emulator --port $(EMULATOR_PORT) --access-log

# A real Airflow deployment on this machine (PostgreSQL, and Redis for Celery, installed with apt-get
# when missing), running the deployment checks and printing what they saw.
deployment-local: $(INSTALLED)
	$(BIN)/python -m deployment local

deployment-celery: $(INSTALLED)
	$(BIN)/python -m deployment celery

# The proteus connection form and a finished demo run in Airflow's UI, saved to docs/screenshots/ (runs the
# demo first; installs Playwright, and Debian's chromium with apt-get when it is missing).
screenshots: demo
	$(BIN)/uv pip install --quiet --python $(BIN)/python -e ".[screenshots]" || $(BIN)/python -m pip install --quiet -e ".[screenshots]"
	$(BIN)/python scripts/screenshots.py

# The benchmarks against Airflow's HTTP and dbt Cloud providers (about eight minutes on two cores): prints
# each figure as it is taken and writes docs/benchmarks.md and docs/benchmarks-triggerer.png. The peer
# providers live in a virtualenv of their own, .venv-bench/, which .venv's uv fills in seconds.
bench: $(BENCH_INSTALLED)
	$(BENCH_BIN)/python -m benchmarks

$(BENCH_INSTALLED): $(INSTALLED) setup.cfg pyproject.toml
	test -x $(BENCH_BIN)/python || $(PYTHON) -m venv $(BENCH_VENV)
	if test -x $(BIN)/uv; then \
		$(BIN)/uv pip install --python $(BENCH_BIN)/python "apache-airflow==$(AIRFLOW_VERSION)" -e ".[test,bench]"; \
	else \
		$(BENCH_BIN)/python -m pip install --quiet --upgrade pip && \
		$(BENCH_BIN)/python -m pip install "apache-airflow==$(AIRFLOW_VERSION)" -e ".[test,bench]"; \
	fi
	touch $@

venv: $(INSTALLED)

# uv installs Airflow in seconds; plain pip is the fallback where uv cannot be installed.
$(INSTALLED): setup.cfg pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	if $(BIN)/python -m pip install --quiet uv; then \
		$(BIN)/uv pip install --python $(BIN)/python "apache-airflow==$(AIRFLOW_VERSION)" -e ".[test]"; \
	else \
		$(BIN)/python -m pip install --quiet --upgrade pip && \
		$(BIN)/python -m pip install "apache-airflow==$(AIRFLOW_VERSION)" -e ".[test]"; \
	fi
	touch $@

clean:
	rm -rf $(VENV) $(BENCH_VENV) .venv-matrix .airflow build dist *.egg-info .pytest_cache .mypy_cache .ruff_cache
