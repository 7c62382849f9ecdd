"""Settings, driven by environment variables.

Without any variable set the service runs on embedded defaults: SQLite, tasks executed
in-process, mail between this server's mailboxes delivered locally and everything else
written as .eml files under var/outbox/. Every variable is documented in the README.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import dj_database_url
from django.utils.csp import CSP

BASE_DIR = Path(__file__).resolve().parent.parent


def env_str(name: str, default: str = "") -> str:
    return os.environ.get(name, default)


def env_bool(name: str, default: bool = False) -> bool:
    value = os.environ.get(name)
    if value is None:
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def env_int(name: str, default: int) -> int:
    value = os.environ.get(name)
    return int(value) if value not in (None, "") else default


def env_list(name: str, default: str = "") -> list[str]:
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


DEBUG = env_bool("DEBUG", False)
# The embedded default needs a key to start; production must set its own (check --deploy
# flags the insecure prefix).
SECRET_KEY = env_str("SECRET_KEY", "django-insecure-embedded-default-change-me-in-production")
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", "127.0.0.1,localhost,testserver,[::1]")

PUBLIC_BASE_URL = env_str("PUBLIC_BASE_URL", "http://127.0.0.1:8000").rstrip("/")
# Agents' mailboxes live on <slug>.<MAIL_DOMAIN> unless a custom domain is used.
MAIL_DOMAIN = env_str("MAIL_DOMAIN", "multimail.localhost").lower()
# Sender of operator notifications (codes, approval requests, copies).
SYSTEM_FROM_EMAIL = env_str("SYSTEM_FROM_EMAIL", f"MultiMail <no-reply@{MAIL_DOMAIN}>")
DEFAULT_FROM_EMAIL = SYSTEM_FROM_EMAIL
SERVER_EMAIL = SYSTEM_FROM_EMAIL

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    "django_htmx",
    "anymail",
    "multimail",
    "accounts",
    "mailboxes",
    "oversight",
    "billing",
    "console",
]

MIDDLEWARE = [
    "multimail.compat.CompatBaseUrlMiddleware",
    "multimail.middleware.RequestIdMiddleware",
    "multimail.metrics.RequestMetricsMiddleware",
    "multimail.compliance.RegionBlockMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "multimail.middleware.ApiErrorEnvelopeMiddleware",
    "multimail.middleware.IdempotencyMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django.middleware.csp.ContentSecurityPolicyMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "multimail.operator_time.OperatorTimeZoneMiddleware",
]

ROOT_URLCONF = "multimail.urls"
WSGI_APPLICATION = "multimail.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.template.context_processors.csp",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "console.context_processors.refresh",
            ],
        },
    },
]

# --- Database -------------------------------------------------------------------------
# The embedded default's state (SQLite, outbox, signing key, demo credentials) lives here.
VAR_DIR = Path(env_str("MULTIMAIL_VAR_DIR", str(BASE_DIR / "var")))
DATABASE_URL = env_str("DATABASE_URL", f"sqlite:///{VAR_DIR / 'db.sqlite3'}")
DATABASES: dict[str, Any] = {
    "default": dj_database_url.parse(DATABASE_URL, conn_max_age=60, conn_health_checks=True)
}
# The embedded default serves the web workers, the SMTP listener, the scheduler and the
# in-process tasks from one file; WAL and a busy timeout keep them from tripping over
# each other's locks.
_SQLITE_OPTIONS = {
    "transaction_mode": "IMMEDIATE",
    "timeout": 20,
    "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
}
_EMBEDDED = DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3"
if _EMBEDDED:
    Path(DATABASES["default"]["NAME"]).parent.mkdir(parents=True, exist_ok=True)
    DATABASES["default"]["CONN_MAX_AGE"] = 0
    DATABASES["default"]["OPTIONS"] = dict(_SQLITE_OPTIONS)
    # Covering columns (INCLUDE) of the quota indexes are a PostgreSQL optimization; SQLite
    # builds the same indexes without them, which is all the embedded mode needs.
    SILENCED_SYSTEM_CHECKS = ["models.W040"]
elif DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    # The hot id-keyed statements (multimail.statements.hot_cursor) are prepared on a
    # connection from their third run there, so PostgreSQL stops planning them per request.
    # -1 turns preparing off: a transaction-mode pooler older than PgBouncer 1.21 routes a
    # connection's statements to server connections that never saw the PREPARE.
    _prepare_after = env_int("DATABASE_PREPARE_THRESHOLD", 2)
    DATABASES["default"].setdefault("OPTIONS", {})["prepare_threshold"] = (
        _prepare_after if _prepare_after >= 0 else None
    )
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Cache, broker, tasks -------------------------------------------------------------
REDIS_URL = env_str("REDIS_URL", "")
CACHES: dict[str, dict[str, Any]]
if REDIS_URL:
    CACHES = {
        "default": {
            "BACKEND": "multimail.cache.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": env_str("CACHE_KEY_PREFIX", "mm"),
        }
    }
else:
    # Without Redis every process shares Django's database cache (see multimail/cache.py):
    # a SQLite file of its own beside the main one, or a second connection to PostgreSQL.
    # `manage.py createcachetable` creates its table (make run does).
    _main = DATABASES["default"]
    if _EMBEDDED:
        _main_file = Path(_main["NAME"])
        DATABASES["cache"] = {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": str(_main_file.with_name(f"{_main_file.stem}-cache.sqlite3")),
            "CONN_MAX_AGE": 0,
            "OPTIONS": dict(_SQLITE_OPTIONS),
        }
    else:
        DATABASES["cache"] = dict(_main)
    DATABASE_ROUTERS = ["multimail.cache.CacheRouter"]
    CACHES = {
        "default": {
            "BACKEND": "multimail.cache.DatabaseCache",
            "LOCATION": "multimail_cache",
            # Django culls a third of the entries past MAX_ENTRIES, live counters included;
            # the periodic purge of expired entries keeps the table far below this instead.
            "OPTIONS": {"MAX_ENTRIES": 1_000_000},
        }
    }

CELERY_BROKER_URL = env_str("CELERY_BROKER_URL", "")
# No broker configured: run tasks in-process right after the enqueueing transaction
# commits, which is what the embedded default promises.
CELERY_TASK_ALWAYS_EAGER = not CELERY_BROKER_URL
CELERY_TASK_EAGER_PROPAGATES = False
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_BACKEND = None
CELERY_TASK_IGNORE_RESULT = True
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": 3600}
CELERY_TIMEZONE = "UTC"
# Celery's Django fixup closes the database connection around every task (CONN_MAX_AGE is
# not consulted there), and connecting took about a fifth of a task's time. With a reuse
# count the fixup keeps it; multimail.celery then treats each task like a request
# (CONN_MAX_AGE, CONN_HEALTH_CHECKS), so a connection the server dropped is replaced.
CELERY_DB_REUSE_MAX = env_int("CELERY_DB_REUSE_MAX", 1000)
# A delivery claims its email before the provider call (no lock is held across it); a
# claim older than this is taken for a dead worker's, and the sweep's task sends the email.
DELIVERY_CLAIM_LEASE_SECONDS = 120
# Scans wait behind every other task in the queue (on Redis the lower number is served
# first, and a task without one counts as 0): a backlog of scans never holds back an
# approved email's delivery, a retry, an operator's notification or a webhook.
CELERY_TASK_ROUTES = {"mailboxes.tasks.process_email": {"priority": 6}}
# Task modules beyond each app's tasks.py.
CELERY_IMPORTS = (
    "mailboxes.webhook_tasks",
    "mailboxes.notification_tasks",
    "mailboxes.deadline_tasks",
)
# Periodic work run by `celery beat` (or `celery worker --beat`): scheduled sends, the sweep
# that resumes emails stuck in a transient state, webhook and operator-notification
# retries, unpaid-account checks, and the purge of expired idempotency records,
# database-cache entries and old stream events.
CELERY_BEAT_SCHEDULE = {
    "send-due-scheduled": {"task": "mailboxes.tasks.send_due_scheduled", "schedule": 30.0},
    "sweep-stuck-emails": {"task": "mailboxes.tasks.sweep_stuck_emails", "schedule": 60.0},
    # Held mail past the account's approval_expiry_hours is rejected; reminders at half time.
    "approval-deadlines": {
        "task": "mailboxes.deadline_tasks.approval_deadlines",
        "schedule": 300.0,
    },
    "retry-webhook-deliveries": {
        "task": "mailboxes.webhook_tasks.deliver_due_webhooks",
        "schedule": 30.0,
    },
    "retry-operator-notifications": {
        "task": "mailboxes.notification_tasks.send_due_operator_notifications",
        "schedule": 30.0,
    },
    "enforce-unpaid-accounts": {
        "task": "billing.tasks.enforce_unpaid_accounts",
        "schedule": 3600.0,
    },
    "purge-expired-records": {"task": "multimail.tasks.purge_expired_records", "schedule": 3600.0},
    # Events of the live stream past EVENTS_RETENTION_HOURS.
    "purge-old-events": {"task": "mailboxes.webhook_tasks.purge_old_events", "schedule": 3600.0},
}

# --- Mail -----------------------------------------------------------------------------
# local: .eml files under MULTIMAIL_OUTBOX_DIR; postmark: Postmark through django-anymail;
# smtp: any relay (EMAIL_HOST, EMAIL_PORT, EMAIL_HOST_USER, EMAIL_HOST_PASSWORD, EMAIL_USE_TLS).
MULTIMAIL_MAIL_BACKEND = env_str("MULTIMAIL_MAIL_BACKEND", "local")
MULTIMAIL_OUTBOX_DIR = Path(env_str("MULTIMAIL_OUTBOX_DIR", str(VAR_DIR / "outbox")))
MAILERS = {
    "default": {
        "local": {
            "BACKEND": "mailboxes.backends.OutboxFileBackend",
            "OPTIONS": {"directory": str(MULTIMAIL_OUTBOX_DIR)},
        },
        "postmark": {"BACKEND": "anymail.backends.postmark.EmailBackend"},
        "smtp": {
            "BACKEND": "mailboxes.backends.SMTPRelayBackend",
            "OPTIONS": {
                "host": env_str("EMAIL_HOST", "localhost"),
                "port": env_int("EMAIL_PORT", 25),
                "username": env_str("EMAIL_HOST_USER", ""),
                "password": env_str("EMAIL_HOST_PASSWORD", ""),
                "use_tls": env_bool("EMAIL_USE_TLS", False),
                "timeout": env_int("EMAIL_TIMEOUT", 30),
            },
        },
    }[MULTIMAIL_MAIL_BACKEND]
}
ANYMAIL = {
    "POSTMARK_SERVER_TOKEN": env_str("POSTMARK_SERVER_TOKEN", ""),
    "POSTMARK_ACCOUNT_TOKEN": env_str("POSTMARK_ACCOUNT_TOKEN", ""),
    # HTTP Basic credentials Postmark sends on its webhooks, "user:password".
    "WEBHOOK_SECRET": env_str("POSTMARK_WEBHOOK_SECRET", "") or None,
}
POSTMARK_MESSAGE_STREAM = env_str("POSTMARK_MESSAGE_STREAM", "outbound")
MULTIMAIL_SMTP_HOST = env_str("MULTIMAIL_SMTP_HOST", "127.0.0.1")
MULTIMAIL_SMTP_PORT = env_int("MULTIMAIL_SMTP_PORT", 2525)
# STARTTLS for the listener (PEM files). SMTP submission requires it off loopback.
SMTP_TLS_CERT_FILE = env_str("SMTP_TLS_CERT_FILE", "")
SMTP_TLS_KEY_FILE = env_str("SMTP_TLS_KEY_FILE", "")
# Without those files: create a self-signed pair under VAR_DIR (make run sets this).
SMTP_TLS_SELF_SIGNED = env_bool("SMTP_TLS_SELF_SIGNED", False)

# --- API ------------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": ["multimail.authentication.ApiKeyAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["multimail.permissions.ScopePermission"],
    "DEFAULT_THROTTLE_CLASSES": ["multimail.throttling.ApiKeyRateThrottle"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["multimail.json_limits.BoundedJSONParser"],
    "EXCEPTION_HANDLER": "multimail.exceptions.api_exception_handler",
    "DEFAULT_SCHEMA_CLASS": "multimail.openapi.AutoSchema",
    "UNAUTHENTICATED_USER": None,
}
API_RATE_LIMIT_READ_PER_MINUTE = env_int("API_RATE_LIMIT_READ_PER_MINUTE", 600)
API_RATE_LIMIT_SEND_PER_MINUTE = env_int("API_RATE_LIMIT_SEND_PER_MINUTE", 600)
# How long a process may keep an authenticated API principal (key and account) in memory,
# checked against the account's version on every request (multimail.authentication); the
# rows are reloaded at least this often anyway. 0 reads the key from the database on every
# request. Must stay below accounts.principals.VERSION_TTL_SECONDS.
API_PRINCIPAL_CACHE_SECONDS = env_int("API_PRINCIPAL_CACHE_SECONDS", 600)
# Counts each remembered principal's request in its account's API calls, in the round trip
# that checks the principal's version (multimail.authentication); "" counts after the view.
API_CALL_COUNTER = "billing.usage.api_call_counter"
IDEMPOTENCY_TTL_SECONDS = 24 * 3600
# A key still claimed this long after its request started belongs to a process that died
# mid-request: the same request may then claim it again. Well above any request's length.
IDEMPOTENCY_IN_FLIGHT_SECONDS = env_int("IDEMPOTENCY_IN_FLIGHT_SECONDS", 300)
# Request bodies above this answer payload_too_large. Attachments are capped at 10 MB
# combined; base64 inflates them by a third, plus room for the rest of the JSON.
DATA_UPLOAD_MAX_MEMORY_SIZE = env_int("DATA_UPLOAD_MAX_MEMORY_SIZE", 15 * 1024 * 1024)
SIGNUP_POW_MAX_NUMBER = env_int("SIGNUP_POW_MAX_NUMBER", 50_000)
SIGNUP_POW_TTL_SECONDS = 300

SPECTACULAR_SETTINGS = {
    "TITLE": "MultiMail API",
    "DESCRIPTION": "Email for AI agents with human oversight. "
    "Errors use the envelope documented at /docs/errors.",
    "VERSION": "2.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "COMPONENT_SPLIT_REQUEST": True,
    "SCHEMA_PATH_PREFIX": r"/v1",
    "ENUM_NAME_OVERRIDES": {
        "EmailStatusEnum": "mailboxes.models.EmailStatus",
        "WebhookDeliveryStatusEnum": "mailboxes.models.WebhookDelivery.Status",
        "DomainStatusEnum": "mailboxes.models.Domain.Status",
        "SignupOversightModeEnum": "accounts.signup.SIGNUP_MODE_CHOICES",
        "PaidPlanEnum": "billing.serializers.PAID_PLAN_CHOICES",
        "OversightModeEnum": "mailboxes.models.OversightMode.values",
        "GateTimingEnum": "mailboxes.models.GateTiming.values",
        "DecisionStatusEnum": "oversight.serializers.DECISION_STATUSES",
    },
    "PREPROCESSING_HOOKS": ["multimail.compat.exclude_from_schema"],
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "multimail.openapi.require_non_empty_bodies",
        "multimail.openapi.add_error_responses",
    ],
}

# Countries refused with region_blocked, read from a header set by a trusted proxy.
REGION_HEADER = env_str("REGION_HEADER", "")
BLOCKED_REGIONS = env_list("BLOCKED_REGIONS", "CU,IR,KP,SY,RU,UA-43,UA-14,UA-09")
# Webhook targets on private/loopback addresses are refused unless this is set (local dev).
WEBHOOKS_ALLOW_PRIVATE_TARGETS = env_bool("WEBHOOKS_ALLOW_PRIVATE_TARGETS", False)
# The only ports outgoing webhook requests may use (comma-separated). Any other port could
# reach a service that listens on a public address but was never meant for the internet.
WEBHOOKS_ALLOWED_PORTS = [int(port) for port in env_list("WEBHOOKS_ALLOWED_PORTS", "443")]
# Header with the ISO 3166-2 subdivision ("43" or "UA-43"), for regions such as Crimea.
REGION_SUBDIVISION_HEADER = env_str("REGION_SUBDIVISION_HEADER", "")
# The live event stream (GET /v1/events, docs/api.md): events are kept this long for a
# client resuming with Last-Event-ID; each key may hold this many streams open at once; a
# heartbeat comment every so many seconds keeps proxies from closing an idle stream; a
# stream looks for new events this often (one short query, no connection held between).
EVENTS_RETENTION_HOURS = env_int("EVENTS_RETENTION_HOURS", 72)
EVENTS_STREAMS_PER_KEY = env_int("EVENTS_STREAMS_PER_KEY", 5)
EVENTS_HEARTBEAT_SECONDS = float(env_str("EVENTS_HEARTBEAT_SECONDS", "15"))
EVENTS_POLL_SECONDS = float(env_str("EVENTS_POLL_SECONDS", "1"))
# How often an open console page asks whether held mail or its counts changed.
CONSOLE_REFRESH_SECONDS = env_int("CONSOLE_REFRESH_SECONDS", 10)
# ECDSA P-256 key signing X-MultiMail-Identity (PEM). Unset: generated once into the file.
MULTIMAIL_SIGNING_KEY_PEM = env_str("MULTIMAIL_SIGNING_KEY_PEM", "").replace("\\n", "\n")
MULTIMAIL_SIGNING_KEY_FILE = Path(
    env_str("MULTIMAIL_SIGNING_KEY_FILE", str(VAR_DIR / "signing-key.pem"))
)
# Postmark's account API (domains); a setting so tests can point it at a local fake server.
POSTMARK_API_BASE = env_str("POSTMARK_API_BASE", "https://api.postmarkapp.com").rstrip("/")

# --- Billing --------------------------------------------------------------------------
STRIPE_SECRET_KEY = env_str("STRIPE_SECRET_KEY", "")
STRIPE_WEBHOOK_SECRET = env_str("STRIPE_WEBHOOK_SECRET", "")
STRIPE_API_BASE = env_str("STRIPE_API_BASE", "")
# Stripe price ids per plan and interval (STRIPE_PRICE_BUILDER_MONTHLY ... SCALE_ANNUAL).
STRIPE_PRICES = {
    (plan, interval): env_str(f"STRIPE_PRICE_{plan.upper()}_{interval.upper()}", "")
    for plan in ("builder", "pro", "scale")
    for interval in ("monthly", "annual")
}
# The SDK retries connection errors, 409 and 5xx; every POST carries an idempotency key.
STRIPE_MAX_NETWORK_RETRIES = env_int("STRIPE_MAX_NETWORK_RETRIES", 2)
STRIPE_WEBHOOK_TOLERANCE_SECONDS = env_int("STRIPE_WEBHOOK_TOLERANCE_SECONDS", 300)
# Days an invoice may stay unpaid before the account is deactivated (reason "unpaid").
BILLING_UNPAID_GRACE_DAYS = env_int("BILLING_UNPAID_GRACE_DAYS", 7)
# API calls are counted in the cache and written to the usage table at most this often.
BILLING_API_CALLS_FLUSH_SECONDS = env_int("BILLING_API_CALLS_FLUSH_SECONDS", 60)
MIDDLEWARE = [*MIDDLEWARE, "billing.middleware.ApiCallUsageMiddleware"]

# --- Operations -----------------------------------------------------------------------
# The demo key and mailbox id of `make run` (seed_demo), so every run prints the same key.
DEMO_CREDENTIALS_FILE = Path(env_str("DEMO_CREDENTIALS_FILE", str(VAR_DIR / "demo.env")))
# GET /metrics answers only with "Authorization: Bearer <METRICS_TOKEN>"; unset, it is off.
METRICS_TOKEN = env_str("METRICS_TOKEN", "")
# host:port where a Celery worker serves its own task metrics (a host with no web process).
METRICS_WORKER_ADDRESS = env_str("METRICS_WORKER_ADDRESS", "")

# --- Auth, sessions, security ---------------------------------------------------------
AUTH_PASSWORD_VALIDATORS: list[dict[str, str]] = []
LOGIN_URL = "/console/login"
SESSION_COOKIE_AGE = env_int("SESSION_COOKIE_AGE", 12 * 3600)
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_HTTPONLY = False
CSRF_FAILURE_VIEW = "multimail.views.csrf_failure"
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", False)
SESSION_COOKIE_SECURE = env_bool("SECURE_COOKIES", False)
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = SECURE_HSTS_SECONDS > 0
SECURE_HSTS_PRELOAD = SECURE_HSTS_SECONDS > 0
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https") if env_bool("BEHIND_PROXY") else None
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", "")
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_CSP = {
    "default-src": [CSP.SELF],
    "script-src": [CSP.SELF],
    "style-src": [CSP.SELF],
    "img-src": [CSP.SELF, "data:"],
    "frame-ancestors": [CSP.NONE],
    "form-action": [CSP.SELF],
    "base-uri": [CSP.NONE],
    "object-src": [CSP.NONE],
}

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = False
USE_TZ = True

STATIC_URL = "/static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = BASE_DIR / "staticfiles"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"
        if not DEBUG and env_bool("STATIC_MANIFEST", False)
        else "django.contrib.staticfiles.storage.StaticFilesStorage"
    },
}
MEDIA_ROOT = Path(env_str("MEDIA_ROOT", str(VAR_DIR / "media")))

# text: key=value lines (the embedded default); json: one JSON object per line, the
# default on PostgreSQL (production). Both carry the request id of the request they serve.
LOG_FORMAT = env_str("LOG_FORMAT", "text" if _EMBEDDED else "json")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"request_id": {"()": "multimail.logs.RequestIdFilter"}},
    "formatters": {
        "text": {
            "format": "%(asctime)s level=%(levelname)s logger=%(name)s "
            "request_id=%(request_id)s %(message)s",
        },
        "json": {"()": "multimail.logs.JsonFormatter"},
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": LOG_FORMAT,
            "filters": ["request_id"],
        }
    },
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO")},
    "loggers": {
        "django.request": {"level": "ERROR"},
        "multimail.api": {"level": "INFO"},
        # aiosmtpd logs every SMTP command (addresses included) at INFO.
        "mail.log": {"level": "WARNING"},
        # Without a broker, tasks run in-process: they would log every run of every
        # periodic job, and kombu warns once per process about the broker it never uses.
        **(
            {"celery.app.trace": {"level": "WARNING"}, "kombu.connection": {"level": "ERROR"}}
            if not CELERY_BROKER_URL
            else {}
        ),
    },
}

# --- Benchmark mode (bench/run.py only) ---------------------------------------------------
# Adds a plain comparison view and an X-Query-Count header; never set in production.
if env_bool("MULTIMAIL_BENCH", False):
    ROOT_URLCONF = "bench.urls"
    MIDDLEWARE = ["bench.middleware.QueryCountMiddleware", *MIDDLEWARE]
