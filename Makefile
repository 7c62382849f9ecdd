# MultiMail: `make run` serves the whole service on embedded defaults,
# `make test` runs the full suite against the local PostgreSQL and Redis.
SHELL := /bin/bash
PYTHON ?= python3.12
UV := $(PYTHON) -m uv
VENV := .venv
PORT ?= 8000
TEST_DATABASE_URL ?= postgres://postgres@localhost:5432/multimail
TEST_REDIS_URL ?= redis://localhost:6379/15
PYTEST_ARGS ?=
# pytest-xdist processes for make test: one per CPU, at most 8 (tests/xdist_redis.py gives
# each two Redis indexes of its own below REDIS_URL's). TEST_WORKERS=0 runs in one process.
TEST_WORKERS ?= auto
# Where the embedded default keeps its state (the SQLite files, the outbox, demo.env).
export MULTIMAIL_VAR_DIR ?= $(CURDIR)/var

.PHONY: run test setup lint typecheck bench worker scheduler smtpd clean

$(VENV)/.synced: pyproject.toml uv.lock
	@$(PYTHON) -m uv --version >/dev/null 2>&1 || $(PYTHON) -m pip install --quiet uv==0.13.8
	$(UV) sync --frozen --quiet
	@touch $@

setup: $(VENV)/.synced

# Embedded defaults: SQLite in var/, tasks in-process, local mail to var/outbox/,
# the SMTP listener on 127.0.0.1:$$MULTIMAIL_SMTP_PORT (2525), the periodic jobs in the
# scheduler, metrics shared through var/metrics. Ctrl-C or SIGTERM stops all of it.
run: export PUBLIC_BASE_URL ?= http://127.0.0.1:$(PORT)
run: export PROMETHEUS_MULTIPROC_DIR ?= $(MULTIMAIL_VAR_DIR)/metrics
run: export PYTHONUNBUFFERED = 1
run: export SMTP_TLS_SELF_SIGNED ?= 1
run: setup
	@mkdir -p "$$PROMETHEUS_MULTIPROC_DIR" && rm -f "$$PROMETHEUS_MULTIPROC_DIR"/*.db
	$(VENV)/bin/python manage.py embedded_setup
	@export METRICS_TOKEN=$${METRICS_TOKEN:-$$(cat "$$MULTIMAIL_VAR_DIR/metrics-token")}; \
	trap 'trap - INT TERM; kill -TERM $$(jobs -p) 2>/dev/null; wait; exit 0' INT TERM; \
	$(VENV)/bin/python manage.py smtpd & \
	$(VENV)/bin/python manage.py scheduler & \
	$(VENV)/bin/gunicorn multimail.asgi:application --worker-class multimail.asgi_worker.Worker \
	  --bind 127.0.0.1:$(PORT) --workers 2 --graceful-timeout 3 --access-logfile - & \
	wait -n; status=$$?; kill -TERM $$(jobs -p) 2>/dev/null; wait; exit $$status

test: setup
	DATABASE_URL=$${DATABASE_URL:-$(TEST_DATABASE_URL)} REDIS_URL=$${REDIS_URL:-$(TEST_REDIS_URL)} \
	  $(VENV)/bin/pytest --numprocesses $(TEST_WORKERS) --maxprocesses 8 $(PYTEST_ARGS)

lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	@# python -m puts this directory first on sys.path: the Django plugin imports the settings,
	@# and the dev dependency multimail (MultiMail's SDK) would otherwise shadow the project.
	$(VENV)/bin/python -m mypy .
	$(VENV)/bin/lint-imports

bench: setup
	$(VENV)/bin/python bench/run.py

worker: setup
	$(VENV)/bin/celery -A multimail worker --beat --loglevel=INFO

scheduler: setup
	$(VENV)/bin/python manage.py scheduler

smtpd: setup
	$(VENV)/bin/python manage.py smtpd

clean:
	rm -rf var staticfiles test-artifacts
