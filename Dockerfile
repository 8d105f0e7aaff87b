# Conflict Monitor: production image, served by daphne (ASGI: HTTP and WebSocket) on port 8000.
#
# Runtime environment (nothing secret is baked into the image):
#   SECRET_KEY     required; the settings refuse to start without it (DEBUG is off by default).
#   ALLOWED_HOSTS  comma-separated host names the app answers to, e.g. "monitor.example.org".
#                  The HEALTHCHECK sends its request with the first entry as Host header.
#   DATABASE_URL   e.g. postgres://user:pass@db:5432/conflict_monitor. Unset falls back to
#                  SQLite at $SQLITE_PATH (/app/data/db.sqlite3; mount a volume there to keep it).
#   REDIS_URL      e.g. redis://redis:6379/0. Unset means the in-memory channel layer, which only
#                  works with a single container.
#
# Migrations are a separate, one-off step before (re)starting the server:
#   docker run --rm -e SECRET_KEY=... -e DATABASE_URL=... IMAGE python manage.py migrate --noinput
# CMD rather than ENTRYPOINT runs daphne so that such commands can replace it. conflict_monitor.serve is
# daphne with its own arguments, on a reactor that writes to sockets once per loop iteration
# (conflict_monitor/overrides/twisted.py; docs/performance.md). -v 0 turns off daphne's own access log
# (plain text, with query strings): the app logs each request itself, as JSON with LOG_FORMAT=json.
#
# Static files (the dashboard's scripts and styles) are collected at build time into /app/staticfiles
# and served by the app itself (WhiteNoise), so the image alone serves the whole dashboard.
# --proxy-headers trusts X-Forwarded-For/-Proto, so the container must only be reachable through a
# proxy that sets those headers.

FROM python:3.11-slim-bookworm AS builder

ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1

# A virtualenv copies into the runtime stage as one directory, leaving pip's build leftovers behind.
RUN python -m venv /opt/venv
COPY requirements.txt /tmp/requirements.txt
RUN /opt/venv/bin/pip install --no-cache-dir --require-hashes -r /tmp/requirements.txt


FROM python:3.11-slim-bookworm AS runtime

ENV PATH="/opt/venv/bin:$PATH" \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    DJANGO_SETTINGS_MODULE=conflict_monitor.settings \
    SQLITE_PATH=/app/data/db.sqlite3

# A fixed numeric id lets orchestrators verify runAsNonRoot without resolving the name.
RUN groupadd --system --gid 10001 app \
    && useradd --system --uid 10001 --gid app --no-create-home --home-dir /nonexistent \
       --shell /usr/sbin/nologin app

COPY --from=builder /opt/venv /opt/venv

WORKDIR /app
# Code and static files stay root-owned, so the server process cannot modify them.
COPY . .

# SECRET_KEY exists for this one command only; it must never reach an ENV layer.
RUN SECRET_KEY=collectstatic-only python manage.py collectstatic --noinput \
    && mkdir /app/data \
    && chown app:app /app/data

USER 10001:10001

EXPOSE 8000

# Django rejects a Host not in ALLOWED_HOSTS, so the probe borrows the first allowed name ("*" or
# unset: 127.0.0.1; a leading-dot domain: the bare domain). The X-Forwarded-* headers mark the
# request as HTTPS so that SECURE_SSL_REDIRECT=1 cannot turn the probe into a failing redirect.
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import os, sys, urllib.request as u; h = ([x.strip() for x in os.environ.get('ALLOWED_HOSTS', '').split(',') if x.strip()] or ['127.0.0.1'])[0].lstrip('.'); h = '127.0.0.1' if h in ('', '*') else h; r = u.urlopen(u.Request('http://127.0.0.1:8000/api/v1/monitoring/health', headers={'Host': h, 'X-Forwarded-For': '127.0.0.1', 'X-Forwarded-Proto': 'https'}), timeout=4); sys.exit(0 if r.status == 200 else 1)"]

CMD ["python", "-m", "conflict_monitor.serve", "-b", "0.0.0.0", "-p", "8000", "--proxy-headers", "-v", "0", "conflict_monitor.asgi:application"]
