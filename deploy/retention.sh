#!/bin/sh
# Scheduled pruning, kept simple: prune_metrics once at start, then again every RETENTION_INTERVAL seconds
# (86400: once a day, drifting by the run's own length; no cron, no missed-run catch-up beyond the run at
# start). A failed run is reported and retried at the next turn. Used by compose.yaml's `retention` service
# and by `make stack` (deploy/stack.py).
#
#   RETENTION_DAYS      days of raw metrics and finished runs to keep (default 90; prune_metrics refuses < 30)
#   RETENTION_INTERVAL  seconds between runs (default 86400)
#   PYTHON              the interpreter (default: python on PATH, as in the image)
set -u
days="${RETENTION_DAYS:-90}"
interval="${RETENTION_INTERVAL:-86400}"
while :; do
    "${PYTHON:-python}" manage.py prune_metrics --days "$days" \
        || echo "retention: prune_metrics failed (exit $?); next run in $interval s" >&2
    sleep "$interval"
done
