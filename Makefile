# Conflict Monitor: `make run` serves the app, `make test` runs the whole test suite.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PORT ?= 8000
# The test suite runs on real PostgreSQL and Redis (local servers by default).
TEST_DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/conflict_monitor
TEST_REDIS_URL ?= redis://127.0.0.1:6379/0
# Run on SQLite as well as PostgreSQL: whatever writes the rows, the status, rules, trends and anomaly series
# equal the raw data.
SQLITE_TRUTH_TESTS := monitoring/tests/test_truth.py monitoring/tests/test_triggers.py monitoring/tests/test_status_sums.py \
	monitoring/tests/test_windows_stages.py
# Browser tests drive Debian's Chromium (Playwright cannot download its own browser here).
CHROMIUM ?= /usr/bin/chromium

.PHONY: run dev test lint demo clean chaos stack bench status-bench live-feed-bench anomaly-eval ingest-bench db-per-tick-bench connection-memory-bench foreign-writes-bench anomaly-tick-bench forecast-eval

# Installs the lock (every package pinned with its hashes; pip checks them): nothing floats. Then the Python client
# (clients/python) from its source, editable, for its tests and cm-report: --no-deps because its one dependency
# (httpx) is in the lock, --no-build-isolation so it builds with the locked setuptools instead of fetching one.
$(VENV)/.installed: requirements.txt requirements-dev.txt clients/python/pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --require-hashes -r requirements-dev.txt
	$(PY) -m pip install --quiet --no-deps --no-build-isolation --editable ./clients/python
	touch $@

## lock: recompile requirements.txt and requirements-dev.txt (pinned, with hashes) from the .in inputs
# pip-tools: pip's own resolver and hash checking, no second installer. tests/test_lock.py fails when an input
# and the lock disagree.
LOCK_FLAGS := --quiet --generate-hashes --allow-unsafe --strip-extras --no-emit-index-url --no-emit-find-links
.PHONY: lock
lock: $(VENV)/.installed
	$(VENV)/bin/pip-compile $(LOCK_FLAGS) $(if $(UPGRADE),--upgrade) --output-file requirements.txt requirements.in
	$(VENV)/bin/pip-compile $(LOCK_FLAGS) $(if $(UPGRADE),--upgrade) --output-file requirements-dev.txt requirements-dev.in

## run: install, migrate and serve on http://127.0.0.1:$(PORT) through the production launcher (SQLite + in-process channel layer unless DATABASE_URL/REDIS_URL are set)
run: $(VENV)/.installed
	DEBUG=$${DEBUG:-1} $(PY) manage.py migrate --noinput
	DEBUG=$${DEBUG:-1} $(PY) -m conflict_monitor.serve -b 127.0.0.1 -p $(PORT) conflict_monitor.asgi:application

## dev: like run, with Django's auto-reloading development server (daphne's runserver) instead of the launcher
dev: $(VENV)/.installed
	DEBUG=$${DEBUG:-1} $(PY) manage.py migrate --noinput
	DEBUG=$${DEBUG:-1} $(PY) manage.py runserver 127.0.0.1:$(PORT)

## demo: fill the database with 48 h of simulated pipeline traffic (SCENARIO=normal|failing-scraper|geocoding-outage|volume-drop); the incident ends RECOVER_HOURS (2; 0: still going) before now, so its alerts, the anomaly one included, fire and then resolve
demo: $(VENV)/.installed
	DEBUG=$${DEBUG:-1} $(PY) manage.py migrate --noinput
	DEBUG=$${DEBUG:-1} $(PY) manage.py simulate_pipeline --scenario $${SCENARIO:-geocoding-outage} \
		$$( [ "$${SCENARIO:-geocoding-outage}" = normal ] || echo --recover-hours $${RECOVER_HOURS:-2} )

## test: the whole suite against real PostgreSQL and Redis
test: $(VENV)/.installed
	@pg_isready -q -h 127.0.0.1 -p 5432 || { echo "PostgreSQL is not answering on 127.0.0.1:5432 (start it; see README)"; exit 1; }
	@$(PY) -c "import redis,os,sys; redis.Redis.from_url('$(TEST_REDIS_URL)').ping()" \
		|| { echo "Redis is not answering at $(TEST_REDIS_URL) (start it; see README)"; exit 1; }
	$(PY) -m ruff check .
	DATABASE_URL=$(TEST_DATABASE_URL) REDIS_URL=$(TEST_REDIS_URL) $(PY) -m pytest $(PYTEST_ARGS)
	# The numbers must be true on the embedded default too: the truth tests again on SQLite (no DATABASE_URL;
	# the tests that claim PostgreSQL behaviour ran above).
	env -u DATABASE_URL REDIS_URL=$(TEST_REDIS_URL) $(PY) -m pytest -m "not postgres" $(SQLITE_TRUTH_TESTS) $(PYTEST_ARGS)
	@test -x $(CHROMIUM) || { echo "$(CHROMIUM) is missing: apt-get install chromium (.ci/run does)"; exit 1; }
	# Browser tests in their own run: Playwright's event loop and pytest-asyncio's must not meet.
	DATABASE_URL=$(TEST_DATABASE_URL) REDIS_URL=$(TEST_REDIS_URL) $(PY) -m pytest browser_tests $(PYTEST_ARGS)

## chaos: the fault scenarios with real processes (Redis restart, PostgreSQL cut, broadcaster kill, lossy ingest, hostile frames and HTTP input, connection flood, slow clients) and a 1-hour churn soak, printing their figures (about 65 minutes; SOAK_SECONDS=120 for a short one); make test runs them all, the soak for 2 minutes
SOAK_SECONDS ?= 3600
chaos: $(VENV)/.installed
	CHAOS_SOAK_SECONDS=$(SOAK_SECONDS) DATABASE_URL=$(TEST_DATABASE_URL) REDIS_URL=$(TEST_REDIS_URL) $(PY) -m pytest -s tests/reliability tests/integration conflict_monitor/tests/overrides/test_autobahn.py $(PYTEST_ARGS)

lint: $(VENV)/.installed
	$(PY) -m ruff check .

## stack: the whole stack of compose.yaml without containers: migrate, 2 servers behind haproxy on http://127.0.0.1:$(PORT), 2 broadcasters, the daily retention loop, on local PostgreSQL and Redis (DATABASE_URL / REDIS_URL to change); Ctrl-C stops all
stack: $(VENV)/.installed
	$(PY) deploy/stack.py --port $(PORT)

BENCH_DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/conflict_monitor_bench
BENCH_REDIS_URL ?= redis://127.0.0.1:6379/0

## bench: every benchmark (about 10 minutes); figures and tables in bench/results/
bench: status-bench live-feed-bench anomaly-eval ingest-bench foreign-writes-bench db-per-tick-bench connection-memory-bench anomaly-tick-bench forecast-eval

## status-bench: status endpoint latency on 1 M and on 10 M metric rows (PostgreSQL; the 10 M fill in its own database <name>_10m, so each size reuses its fill)
status-bench: $(VENV)/.installed
	DATABASE_URL=$(BENCH_DATABASE_URL) $(PY) -m bench.status_latency
	DATABASE_URL=$(BENCH_DATABASE_URL)_10m $(PY) -m bench.status_latency --rows 10000000

## live-feed-bench: snapshot, ingest -> receipt at 1,000 clients, fan-out at 100-10,000 clients (connects/s, RSS, latency, sustained broadcasts/s) on git HEAD against real servers, with a plain websockets server as the baseline (~7 min; PROFILE=1 adds py-spy and strace)
live-feed-bench: $(VENV)/.installed
	DATABASE_URL=$(BENCH_DATABASE_URL) REDIS_URL=$(BENCH_REDIS_URL) $(PY) -m bench.live_feed $(if $(PROFILE),--profile)

## anomaly-eval: event precision/recall/time to detect of the anomaly detectors on a held-out world, versus a z-score baseline (bench/anomaly_world; bench/results/anomaly_eval.*; about 3 minutes)
anomaly-eval: $(VENV)/.installed
	$(PY) bench/anomaly_eval.py

## ingest-bench: rows/s of POST /api/v1/monitoring/metrics at batches of 1-5000 versus a raw COPY (own database conflict_monitor_bench_ingest, truncated; about 1 minute)
ingest-bench: $(VENV)/.installed
	$(PY) -m bench.ingest_throughput --redis-url $(BENCH_REDIS_URL)

## foreign-writes-bench: another program's 1 M-row INSERT ... SELECT, COPY, UPDATE and DELETEs with the rollup triggers versus without (DISABLE TRIGGER USER), and the rollups' exactness after each (own database conflict_monitor_bench_foreign, dropped and migrated afresh; about 5 minutes)
foreign-writes-bench: $(VENV)/.installed
	$(PY) -m bench.foreign_writes

## db-per-tick-bench: SQL statements and CPU per tick, broadcaster versus naive per-connection loops, at 10/100/1000 clients (own database conflict_monitor_bench_ticks; about 1.5 minutes)
db-per-tick-bench: $(VENV)/.installed
	$(PY) -m bench.db_per_tick --redis-url $(BENCH_REDIS_URL)

## connection-memory-bench: RSS and Python heap per open live-feed socket, by the package that allocates it (about 1 minute)
connection-memory-bench: $(VENV)/.installed
	REDIS_URL=$(BENCH_REDIS_URL) $(PY) -m bench.connection_memory

## anomaly-tick-bench: what live anomaly detection adds to a broadcaster tick at 100 sources with judging in the background (fresh judgement, the tick that starts a judgement, ticks during a refresh, an hour turn and a build) and what judging costs, against the 20 ms budget (own database conflict_monitor_bench_anomaly_tick, truncated and filled; about 3.5 minutes)
anomaly-tick-bench: $(VENV)/.installed
	$(PY) -m bench.anomaly_tick --redis-url $(BENCH_REDIS_URL)

clean:
	rm -rf $(VENV) staticfiles db.sqlite3 test-artifacts

## openapi: regenerate docs/openapi.yaml, the API's OpenAPI schema (fails on any schema warning)
.PHONY: openapi
openapi: $(VENV)/.installed
	$(PY) manage.py spectacular --validate --fail-on-warn --file docs/openapi.yaml

## forecast-eval: backtest of the forecasts on the held-out world: 1/6/24 h errors against naive baselines (last value, same local hour yesterday / last week), 80 % band coverage, and precision, recall and lead time of "will cross within 24 h" warnings on the rate thresholds (bench/forecast_world; bench/results/forecast_eval.*; about 3 minutes)
forecast-eval: $(VENV)/.installed
	$(PY) bench/forecast_eval.py
