"""Django settings for Conflict Monitor, read from the environment (12-factor).

Unset ``DATABASE_URL`` and ``REDIS_URL`` give the embedded default: a SQLite file,
the in-memory channel layer, and the broadcaster inside the server process.
"""

from __future__ import annotations

import re
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

from conflict_monitor.env import env_bool, env_choice, env_float, env_int, env_list, env_str

BASE_DIR = Path(__file__).resolve().parent.parent

DEBUG = env_bool("DEBUG", False)

# Production has no default: without DEBUG an unset key stays empty, the ASGI entry point refuses to
# serve, `check --deploy` warns and Django refuses to sign anything; offline commands
# (makemigrations, collectstatic) still run. DEBUG alone gets a development-only key.
SECRET_KEY = env_str("SECRET_KEY") or ("django-insecure-local-development-only" if DEBUG else "")

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["127.0.0.1", "localhost", "[::1]"] if DEBUG else [])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])

INSTALLED_APPS = [
    # daphne first so that ``runserver`` serves ASGI (HTTP and WebSocket).
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "channels",
    "rest_framework",
    "drf_spectacular",
    "monitoring",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    # The dashboard's files come from the app server itself: no proxy or front-end server needed.
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "conflict_monitor.urls"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

ASGI_APPLICATION = "conflict_monitor.asgi.application"

# --- Database -------------------------------------------------------------------------------
DATABASE_URL = env_str("DATABASE_URL")
if DATABASE_URL:
    DATABASES = {"default": dj_database_url.parse(DATABASE_URL, conn_max_age=0)}
    if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql" and env_bool("DATABASE_POOL", True):
        # Django's psycopg 3 pool; it requires CONN_MAX_AGE = 0.
        DATABASES["default"].setdefault("OPTIONS", {})["pool"] = {
            "min_size": env_int("DATABASE_POOL_MIN_SIZE", 1, minimum=0),
            "max_size": env_int("DATABASE_POOL_MAX_SIZE", 10, minimum=1),
            "timeout": env_float("DATABASE_POOL_TIMEOUT", 10.0, minimum=0.1),
        }
else:
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": env_str("SQLITE_PATH", str(BASE_DIR / "db.sqlite3")),
            # Concurrent ingest and reads from the same file: wait instead of failing at once.
            "OPTIONS": {"timeout": 20, "transaction_mode": "IMMEDIATE"},
        }
    }

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Channel layer, cache -------------------------------------------------------------------
REDIS_URL = env_str("REDIS_URL")
# channels-redis' core layer blocks on BZPOPMIN for 5 s; redis-py 8's default socket timeout is also
# 5 s, so an idle consumer's read times out ("Timeout reading from ...", channels_redis#422). The
# socket timeout must exceed the blocking read; ``monitoring.checks`` refuses a configuration where
# it does not, whichever channels-redis layer is used.
REDIS_SOCKET_TIMEOUT = env_float("REDIS_SOCKET_TIMEOUT", 15.0, minimum=0.1)
# A reconnect storm opens many Redis connections at once; redis-py's default pool of 100 would
# turn that into failed handshakes.
REDIS_MAX_CONNECTIONS = env_int("REDIS_MAX_CONNECTIONS", 1000, minimum=1)
CHANNEL_LAYER_PREFIX = env_str("CHANNEL_LAYER_PREFIX", "conflict_monitor")
if REDIS_URL:
    CHANNEL_LAYERS = {
        "default": {
            # Pub/sub layer: one Redis PUBLISH per group_send, fanned out locally by each process,
            # instead of one Redis message per group member.
            "BACKEND": "conflict_monitor.overrides.channels_redis.PubSubChannelLayer",
            "CONFIG": {
                "hosts": [
                    {
                        "address": REDIS_URL,
                        "socket_timeout": REDIS_SOCKET_TIMEOUT,
                        "socket_connect_timeout": 5,
                        "health_check_interval": 30,
                        "retry_on_timeout": True,
                        "max_connections": REDIS_MAX_CONNECTIONS,
                    }
                ],
                "prefix": CHANNEL_LAYER_PREFIX,
            },
        }
    }
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": CHANNEL_LAYER_PREFIX,
            "OPTIONS": {"socket_timeout": 5, "socket_connect_timeout": 5},
        }
    }
else:
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

# --- Auth, i18n, static ---------------------------------------------------------------------
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = Path(env_str("STATIC_ROOT", str(BASE_DIR / "staticfiles")))
# The image serves what collectstatic gathered into STATIC_ROOT; without a STATIC_ROOT (the launcher run
# outside the image, make run) or in DEBUG, WhiteNoise serves straight from the apps.
WHITENOISE_USE_FINDERS = env_bool("WHITENOISE_USE_FINDERS", DEBUG or not STATIC_ROOT.is_dir())

# --- Security (production behind TLS sets SECURE_* through the environment) -----------------
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", False)
SESSION_COOKIE_SECURE = env_bool("SESSION_COOKIE_SECURE", not DEBUG)
CSRF_COOKIE_SECURE = env_bool("CSRF_COOKIE_SECURE", not DEBUG)
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 0, minimum=0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", False)
SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", False)
if env_bool("SECURE_PROXY_SSL_HEADER", False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

# SQLite has no INCLUDE columns; the covering indexes still work there as plain indexes.
SILENCED_SYSTEM_CHECKS = ["models.W040"]

# --- REST framework -------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["monitoring.api.parsers.BoundedJSONParser"],
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "monitoring.api.authentication.IngestTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["monitoring.api.permissions.CanReadMonitoring"],
    "EXCEPTION_HANDLER": "monitoring.api.exceptions.json_exception_handler",
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    # Each request counts against one scope (monitoring.api.throttling): ``ingest`` per ingest token for
    # writes, ``user`` per logged-in user (or per token for a token's reads), ``anon`` per client address.
    # Health, readiness and GET /metrics are never throttled.
    "DEFAULT_THROTTLE_CLASSES": [
        "monitoring.api.throttling.IngestThrottle",
        "monitoring.api.throttling.UserThrottle",
        "monitoring.api.throttling.AnonThrottle",
    ],
    # "<requests>/<second|minute|hour|day>", or "off". Defaults leave room for the project's own
    # benches (bench/ingest_throughput.py sends ~1,000 requests with one token within a minute;
    # bench/status_latency ~500 anonymous reads).
    "DEFAULT_THROTTLE_RATES": {
        "ingest": env_str("API_THROTTLE_INGEST", "1200/min"),
        "user": env_str("API_THROTTLE_USER", "1200/min"),
        "anon": env_str("API_THROTTLE_ANON", "600/min"),
    },
}
for _scope, _rate in REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"].items():
    if _rate.strip().lower() == "off":
        REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"][_scope] = None
    elif not re.fullmatch(r"[1-9][0-9]*/(s|sec|second|m|min|minute|h|hour|d|day)", _rate.strip()):
        raise ImproperlyConfigured(
            f"API_THROTTLE_{_scope.upper()} must be <requests>/<second|minute|hour|day> (e.g. 600/min) or off, "
            f"got {_rate!r}"
        )
    else:
        REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"][_scope] = _rate.strip()
del _scope, _rate
if DEBUG:
    REST_FRAMEWORK["DEFAULT_RENDERER_CLASSES"].append("rest_framework.renderers.BrowsableAPIRenderer")

# OpenAPI schema of the API (docs/openapi.yaml, GET /api/v1/monitoring/schema). Nothing in it depends
# on the environment, so the committed file is the schema every deployment serves.
SPECTACULAR_SETTINGS = {
    "TITLE": "Conflict Monitor API",
    "VERSION": "1",
    "DESCRIPTION": (
        "Monitoring of the conflict-data pipeline: ingest of data-quality metrics and pipeline runs, the "
        "pipeline status, trends, alerts and silences. Every error is a JSON body "
        '`{"error": <code>, "detail": <message>[, "fields": {...}]}` (docs/api.md).'
    ),
    # Whoever may read the monitoring API may read its schema.
    "SERVE_PERMISSIONS": ["monitoring.api.permissions.CanReadMonitoring"],
    # Separate request and response components: a run as sent (no id) is not a run as answered.
    "COMPONENT_SPLIT_REQUEST": True,
    # Operation ids and tags from the path after the API's base.
    "SCHEMA_PATH_PREFIX": "/api/v1/monitoring/",
    # Several bodies have a "status" (or "direction") with different values: one named enum per meaning.
    "ENUM_NAME_OVERRIDES": {
        "PipelineStatusEnum": "monitoring.api.documents.STATUSES",
        "ReadinessEnum": "monitoring.api.documents.READINESS",
        "CheckResultEnum": "monitoring.api.documents.CHECK_RESULTS",
        "LivenessEnum": "monitoring.api.documents.LIVENESS",
        "RunStatusEnum": "monitoring.models.PipelineRun.Status",
        "FinishedRunStatusEnum": "monitoring.services.runs.FINISHED",
        "AnomalyDirectionEnum": "monitoring.api.documents.ANOMALY_DIRECTIONS",
        "AnomalyReadinessStateEnum": "monitoring.api.documents.ANOMALY_READINESS_STATES",
        "StateEnum": "monitoring.models.Alert.State",
        "TrendDirectionEnum": "monitoring.api.documents.TREND_DIRECTIONS",
        "StageEnum": "monitoring.models.PipelineRun.Stage",
        "StageFilterEnum": "monitoring.trends.STAGE_FILTERS",
    },
}

# --- Monitoring -----------------------------------------------------------------------------
# Read access to status endpoints without credentials (on for local use, off in production).
MONITORING_PUBLIC_READ = env_bool("MONITORING_PUBLIC_READ", DEBUG)
# Bearer token a Prometheus scraper sends to GET /metrics; unset: /metrics follows MONITORING_PUBLIC_READ.
MONITORING_METRICS_TOKEN = env_str("MONITORING_METRICS_TOKEN", "")
# /metrics/pipeline exports at most this many sources (worst first), bounding Prometheus cardinality.
MONITORING_PIPELINE_METRICS_MAX_SOURCES = env_int("MONITORING_PIPELINE_METRICS_MAX_SOURCES", 200, minimum=1)
# run_broadcaster serves its own metrics here (0: not served); loopback unless told otherwise.
MONITORING_BROADCASTER_METRICS_PORT = env_int("MONITORING_BROADCASTER_METRICS_PORT", 9101, minimum=0)
MONITORING_BROADCASTER_METRICS_ADDR = env_str("MONITORING_BROADCASTER_METRICS_ADDR", "127.0.0.1")
MONITORING_WINDOW_HOURS = env_int("MONITORING_WINDOW_HOURS", 24, minimum=1)
MONITORING_THRESHOLDS = {
    # Rates in percent: below ``warn`` is degraded, below ``critical`` is critical.
    "geocoding_warn": env_float("MONITORING_GEOCODING_WARN", 85.0, minimum=0, maximum=100),
    "geocoding_critical": env_float("MONITORING_GEOCODING_CRITICAL", 70.0, minimum=0, maximum=100),
    "validation_warn": env_float("MONITORING_VALIDATION_WARN", 90.0, minimum=0, maximum=100),
    "validation_critical": env_float("MONITORING_VALIDATION_CRITICAL", 75.0, minimum=0, maximum=100),
    # Failed share of finished scraper runs in the window, percent: at or above is degraded/critical.
    "failure_rate_warn": env_float("MONITORING_FAILURE_RATE_WARN", 10.0, minimum=0, maximum=100),
    "failure_rate_critical": env_float("MONITORING_FAILURE_RATE_CRITICAL", 25.0, minimum=0, maximum=100),
    # Fewer attempts than this cannot move a status (a source with 3 records pages nobody).
    "min_sample_size": env_int("MONITORING_MIN_SAMPLE_SIZE", 10, minimum=1),
    # Fewer finished scraper runs than this in the window cannot move a source's status on failure rate.
    "min_runs": env_int("MONITORING_MIN_RUNS", 3, minimum=1),
    # No successful scrape for this long marks a source stale; no metric for this long marks data stale.
    "source_stale_after_seconds": env_int("MONITORING_SOURCE_STALE_AFTER", 2 * 3600, minimum=1),
    "data_stale_after_seconds": env_int("MONITORING_DATA_STALE_AFTER", 2 * 3600, minimum=1),
    # A source with no scrape run for this long is retired from the status (renamed or removed feeds).
    "source_retire_after_seconds": env_int("MONITORING_SOURCE_RETIRE_AFTER", 7 * 86400, minimum=60),
    # A run still "running" after this long is counted as stuck (its worker died without reporting).
    "run_timeout_seconds": env_int("MONITORING_RUN_TIMEOUT", 6 * 3600, minimum=60),
}
# Default alert rules, created in the database when missing (edit them in the admin afterwards).
# Rates fire below a level; drops (points) and increases (count) fire at or above one.
MONITORING_ALERT_RULES = [
    {
        "name": "geocoding-rate-low",
        "kind": "threshold",
        "metric": "geocoding_success_rate",
        "critical": 70,
        "high": 80,
        "medium": 85,
        "window_hours": 1,
        "min_sample": 50,
    },
    {
        "name": "validation-rate-low",
        "kind": "threshold",
        "metric": "validation_pass_rate",
        "critical": 75,
        "high": 85,
        "medium": 90,
        "window_hours": 1,
        "min_sample": 50,
    },
    {
        "name": "geocoding-rate-drop",
        "kind": "score_drop",
        "metric": "geocoding_success_rate",
        "critical": 20,
        "high": 10,
        "medium": 5,
        "window_hours": 1,
        "min_sample": 50,
    },
    {
        "name": "validation-rate-drop",
        "kind": "score_drop",
        "metric": "validation_pass_rate",
        "critical": 20,
        "high": 10,
        "medium": 5,
        "window_hours": 1,
        "min_sample": 50,
    },
    {
        "name": "failed-runs-increase",
        "kind": "issue_increase",
        "metric": "failed_runs",
        "critical": 10,
        "high": 5,
        "medium": 2,
        "window_hours": 1,
        "min_sample": 3,
    },
    {
        "name": "failed-validations-increase",
        "kind": "issue_increase",
        "metric": "failed_validations",
        "critical": 10,
        "high": 5,
        "medium": 2,
        "window_hours": 1,
        "min_sample": 3,
    },
    # Failed / finished runs of one stage per source, in percent, over the status's window. The medium
    # and high levels are the status's failure_rate_warn / failure_rate_critical defaults (10 %, 25 %).
    *(
        {
            "name": f"{stage}-failure-rate",
            "kind": "failure_rate",
            "metric": f"{stage}_failure_rate",
            "scope": "per_source",
            "critical": 50,
            "high": 25,
            "medium": 10,
            "window_hours": min(MONITORING_WINDOW_HOURS, 168),  # a rule's window is at most a week
            "min_sample": 5,
        }
        for stage in ("scrape", "geocode", "validate")
    ),
    {"name": "source-stale", "kind": "stale_source", "metric": "scrape", "scope": "per_source", "high": 1},
    {
        "name": "anomaly",
        "kind": "anomaly",
        "metric": "any",
        "scope": "per_source",
        "critical": 10,
        "high": 6,
        "medium": 4,
    },
]
# A source is new (onboarding) until its first successful scrape or this long after its first run:
# meanwhile the staleness and failure alert rules do not page for it.
MONITORING_ONBOARDING_HOURS = env_int("MONITORING_ONBOARDING_HOURS", 24, minimum=0)
# Anomaly detection on hourly rollups (see docs/anomaly-detection.md).
MONITORING_ANOMALY_SENSITIVITY = env_float("MONITORING_ANOMALY_SENSITIVITY", 4.5, minimum=0.1)
MONITORING_ANOMALY_TRAINING_DAYS = env_int("MONITORING_ANOMALY_TRAINING_DAYS", 14, minimum=1)
# The fed detectors are kept per process; the current hour's judgement is shared this long (0: every call).
MONITORING_ANOMALY_CACHE_SECONDS = env_int("MONITORING_ANOMALY_CACHE_SECONDS", 60, minimum=0)
# Judge in a thread of its own and show the latest judgement: a tick or a request never waits for it.
MONITORING_ANOMALY_BACKGROUND = env_bool("MONITORING_ANOMALY_BACKGROUND", True)
# Webhook for new critical/high alerts and their resolution (unset: no notifications).
MONITORING_WEBHOOK_URL = env_str("MONITORING_WEBHOOK_URL")
MONITORING_WEBHOOK_FORMAT = env_choice("MONITORING_WEBHOOK_FORMAT", "json", choices=("json", "slack"))
MONITORING_WEBHOOK_TIMEOUT = env_float("MONITORING_WEBHOOK_TIMEOUT", 5.0, minimum=0.1)
MONITORING_WEBHOOK_MAX_ATTEMPTS = env_int("MONITORING_WEBHOOK_MAX_ATTEMPTS", 8, minimum=1)
# Slack's Web API with a bot token (chat:write): one message per alert group, edited in place. Takes
# the place of MONITORING_WEBHOOK_URL when both the token and the channel are set.
MONITORING_SLACK_BOT_TOKEN = env_str("MONITORING_SLACK_BOT_TOKEN")
MONITORING_SLACK_CHANNEL = env_str("MONITORING_SLACK_CHANNEL")
MONITORING_SLACK_API_URL = env_str("MONITORING_SLACK_API_URL", "https://slack.com/api")
# Grouping (as Alertmanager): alerts of one source (or stage, rule) share a notice. A new group waits
# GROUP_WAIT seconds to collect alerts of one cause; its later notices are GROUP_INTERVAL apart at least;
# a group still firing unacknowledged is re-sent every REPEAT_INTERVAL.
MONITORING_NOTIFY_GROUP_BY = env_choice(
    "MONITORING_NOTIFY_GROUP_BY", "source", choices=("source", "stage", "rule", "alert")
)
MONITORING_NOTIFY_GROUP_WAIT = env_float("MONITORING_NOTIFY_GROUP_WAIT", 30.0, minimum=0.0)
MONITORING_NOTIFY_GROUP_INTERVAL = env_float("MONITORING_NOTIFY_GROUP_INTERVAL", 300.0, minimum=0.0)
MONITORING_NOTIFY_REPEAT_INTERVAL = env_float("MONITORING_NOTIFY_REPEAT_INTERVAL", 4 * 3600.0, minimum=60.0)
MONITORING_INGEST_MAX_BATCH = env_int("MONITORING_INGEST_MAX_BATCH", 5000, minimum=1)
MONITORING_INGEST_MAX_BODY_BYTES = env_int("MONITORING_INGEST_MAX_BODY_BYTES", 2 * 1024 * 1024, minimum=1024)
MONITORING_IDEMPOTENCY_TTL_HOURS = env_int("MONITORING_IDEMPOTENCY_TTL_HOURS", 24, minimum=1)
# OpenLineage jobs named explicitly, JSON {"<namespace>/<name>": {"source": ..., "stage": ...}}; parsed and
# checked by monitoring.openlineage.mapping when used (and by `manage.py check`). Unset: the default mapping.
MONITORING_OPENLINEAGE_JOB_MAP = env_str("MONITORING_OPENLINEAGE_JOB_MAP", "")

# --- Live feed ------------------------------------------------------------------------------
WEBSOCKET_BROADCAST_INTERVAL = env_float("WEBSOCKET_BROADCAST_INTERVAL", 5.0, minimum=0.1)
# Event-driven pushes per topic per second (a burst of ingests coalesces into at most this many).
WEBSOCKET_MAX_PUSH_RATE = env_float("WEBSOCKET_MAX_PUSH_RATE", 2.0, minimum=0.01)
# A server tells its clients the status is stale once no status frame reached it for this long. Below
# the 1.5 intervals a standby broadcaster needs to take over, so a handover shows as stale, not frozen.
WEBSOCKET_STALE_AFTER = env_float("WEBSOCKET_STALE_AFTER", 1.3 * WEBSOCKET_BROADCAST_INTERVAL, minimum=0.1)
# Without Redis there is one process, so the broadcaster runs inside it.
WEBSOCKET_EMBEDDED_BROADCASTER = env_bool("WEBSOCKET_EMBEDDED_BROADCASTER", not REDIS_URL)
WEBSOCKET_MAX_CONNECTIONS = env_int("WEBSOCKET_MAX_CONNECTIONS", 10000, minimum=1)
WEBSOCKET_MAX_CONNECTIONS_PER_IP = env_int("WEBSOCKET_MAX_CONNECTIONS_PER_IP", 200, minimum=1)
# Connections are closed (code 4000, "reconnect and resume") after this long, with up to 10 % jitter,
# well before daphne's own 24 h websocket timeout.
WEBSOCKET_MAX_CONNECTION_AGE = env_float("WEBSOCKET_MAX_CONNECTION_AGE", 3600.0, minimum=1)
WEBSOCKET_MAX_FRAME_BYTES = env_int("WEBSOCKET_MAX_FRAME_BYTES", 16 * 1024, minimum=64)
WEBSOCKET_RATE_PER_SECOND = env_float("WEBSOCKET_RATE_PER_SECOND", 10.0, minimum=0.1)
WEBSOCKET_RATE_BURST = env_int("WEBSOCKET_RATE_BURST", 20, minimum=1)
# Bad frames (invalid, oversized, binary, over the rate) tolerated within 10 s before the close.
WEBSOCKET_MAX_STRIKES = env_int("WEBSOCKET_MAX_STRIKES", 20, minimum=1)
WEBSOCKET_MAX_TOPICS = env_int("WEBSOCKET_MAX_TOPICS", 50, minimum=1)
# Frames kept per topic for resume (1000 status frames = 83 min at the default interval).
WEBSOCKET_HISTORY_LENGTH = env_int("WEBSOCKET_HISTORY_LENGTH", 1000, minimum=10)
WEBSOCKET_TICKET_TTL = env_int("WEBSOCKET_TICKET_TTL", 30, minimum=1)
# A socket with more than this many bytes waiting in the server (beyond the kernel's buffers) at every
# send for WEBSOCKET_SLOW_CLIENT_SECONDS is dropped: ~50 status frames, and longer than a resume's burst.
WEBSOCKET_SEND_BUFFER_LIMIT = env_int("WEBSOCKET_SEND_BUFFER_LIMIT", 1024 * 1024, minimum=64 * 1024)
WEBSOCKET_SLOW_CLIENT_SECONDS = env_float("WEBSOCKET_SLOW_CLIENT_SECONDS", 15.0, minimum=0.1)

# --- Dashboard ------------------------------------------------------------------------------
# Where the page opens the live feed, e.g. wss://feed.example.org when the feed has its own host (that
# host must trust the page's origin: ALLOWED_HOSTS or CSRF_TRUSTED_ORIGINS there). Empty: the page's
# own host, ws: on http and wss: on https.
DASHBOARD_WS_BASE_URL = env_str("DASHBOARD_WS_BASE_URL", "")
# Seconds between REST polls while the live feed is unavailable.
DASHBOARD_POLL_INTERVAL = env_float("DASHBOARD_POLL_INTERVAL", 30.0, minimum=1)

# "text" (the default): one plain line per record; "json": one JSON object per line (monitoring.logs).
LOG_FORMAT = env_str("LOG_FORMAT", "text").strip().lower()
if LOG_FORMAT not in ("text", "json"):
    raise ImproperlyConfigured(f"LOG_FORMAT must be text or json, got {LOG_FORMAT!r}")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    # The id of the request or WebSocket being handled, on every record (X-Request-ID).
    "filters": {"request_id": {"()": "monitoring.logs.RequestIdFilter"}},
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"},
        "json": {"()": "monitoring.logs.JsonFormatter"},
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": "json" if LOG_FORMAT == "json" else "plain",
            "filters": ["request_id"],
        }
    },
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO")},
}
if LOG_FORMAT == "json":
    # Django's own handlers (its DEBUG console, runserver's django.server) write plain text: their
    # records go to the root's handler instead. Python's warnings become records too.
    LOGGING["loggers"] = {
        "django": {"handlers": [], "propagate": True},
        "django.server": {"handlers": [], "propagate": True},
    }
    LOGGING_CONFIG = "monitoring.logs.configure_json"
