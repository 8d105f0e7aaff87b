"""Settings for the test suite: the production settings with a throwaway secret.

``DATABASE_URL`` and ``REDIS_URL`` still come from the environment, so ``make test`` runs on
real PostgreSQL and Redis.
"""

import os

os.environ.setdefault("SECRET_KEY", "insecure-key-for-the-test-suite-only")

from conflict_monitor.settings import *  # noqa: E402,F403

# Fast hashing: tests create users, and PBKDF2 at production cost dominates their run time.
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]

# A per-process cache that each test clears (conftest); clearing a Redis cache would flush the
# whole Redis database other processes use. Tests of Redis-backed features configure their own.
CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

# Static files straight from the apps: the unit tests run no collectstatic (the browser tests do).
WHITENOISE_USE_FINDERS = True
STATIC_ROOT = None

# Notices go out on the next sender round unless a test sets the grouping timers it is about.
MONITORING_NOTIFY_GROUP_WAIT = 0.0
MONITORING_NOTIFY_GROUP_INTERVAL = 0.0

# Judged in the caller: a background thread could not see a test's uncommitted rows. The background path
# has tests of its own (monitoring/tests/selectors/test_anomalies.py).
MONITORING_ANOMALY_BACKGROUND = False
