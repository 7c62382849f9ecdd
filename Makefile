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

.PHONY: run test setup lint typecheck bench worker smtpd clean

$(VENV)/.synced: pyproject.toml uv.lock
	@$(PYTHON) -m uv --version >/dev/null 2>&1 || $(PYTHON) -m pip install --quiet uv==0.13.8
	$(UV) sync --frozen --quiet
	@touch $@

setup: $(VENV)/.synced

# Embedded defaults: SQLite in var/, tasks in-process, local mail to var/outbox/,
# the SMTP listener on 127.0.0.1:$$MULTIMAIL_SMTP_PORT (2525).
run: export PUBLIC_BASE_URL ?= http://127.0.0.1:$(PORT)
run: setup
	@mkdir -p var
	$(VENV)/bin/python manage.py migrate --noinput -v 0
	$(VENV)/bin/python manage.py collectstatic --noinput -v 0
	$(VENV)/bin/python manage.py seed_demo
	@trap 'kill 0' EXIT INT TERM; \
	$(VENV)/bin/python manage.py smtpd & \
	$(VENV)/bin/gunicorn multimail.wsgi:application --bind 127.0.0.1:$(PORT) \
	  --workers 2 --threads 4 --access-logfile - & \
	wait

test: setup
	DATABASE_URL=$${DATABASE_URL:-$(TEST_DATABASE_URL)} REDIS_URL=$${REDIS_URL:-$(TEST_REDIS_URL)} \
	  $(VENV)/bin/pytest $(PYTEST_ARGS)

lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy .
	$(VENV)/bin/lint-imports

bench: setup
	$(VENV)/bin/python bench/run.py

worker: setup
	$(VENV)/bin/celery -A multimail worker --beat --loglevel=INFO

smtpd: setup
	$(VENV)/bin/python manage.py smtpd

clean:
	rm -rf var staticfiles test-artifacts
