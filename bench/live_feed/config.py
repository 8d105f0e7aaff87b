"""The live-feed bench's fixed settings: windows, the ladder, the pass/fail bounds and the issue's targets."""

INGEST_PATH = "/api/v1/monitoring/metrics"
INGEST_BODY = {"source": "acled", "geocoding_attempts": 10, "geocoding_successes": 9}
DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/conflict_monitor_bench"
NOFILE_WANTED = 65536
SETTLE_SECONDS = 0.5
RECEIPT_TIMEOUT = 5.0
# Fan-out scenario. Latency and CPU per message are measured at BASE_RATE, which the project's current
# fan-out still sustains at 5,000 clients on one core; the ladder then looks for the highest rate kept up.
BASE_RATE = 1.0
LADDER = (0.5, 1.0, 2.0, 5.0, 10.0)  # 10/s: the broadcaster's shortest interval is 0.1 s
LAG_BOUND_MS = 1000.0
# Median lag of the window's last third of publishes over its first third: a server that falls behind
# piles frames up, so its lag grows through the window even while p99 is still under LAG_BOUND_MS.
# 250 ms leaves room for one full GC pause of daphne (~170 ms).
LAG_GROWTH_MS = 250.0
DRAIN_SECONDS = 2.0
# A ladder search starts at the highest rate whose CPU, extrapolated linearly from the base window,
# fits in this share of the server's core: the server's limit is usually there or one step away, so
# the search needs two steps; the steps below it are not run (the server kept up at the base rate).
LADDER_START_SHARE = 1.0
# Waiting for a backlog to drain after a failed window; what is still queued after it is charged to the next
# window, which then fails too (the server did not keep up in between either).
BACKLOG_TIMEOUT = 8.0
# The load generator is flagged as the bottleneck above this share of its core (its own process), or
# when its core is this busy in all (broadcaster, Redis and PostgreSQL run there too).
CLIENT_BOUND_SHARE = 0.8
CLIENT_CORE_BOUND_SHARE = 0.95
# A failed ladder step is charged to the machine rather than the server when other processes took more
# than this share of the server's core in it.
FOREIGN_LIMIT_SHARE = 0.3
# Targets of the performance issue, shown as pass/fail.
TARGET_CPU_RATIO = 3.0
TARGET_P99_MS_5000 = 250.0
TARGET_SUSTAINED_5000 = 5.0
TARGET_TWO_PROCESS_CLIENTS = 10000
TARGET_RSS_KB = 20.0
TARGET_INGEST_P99_MS = 100.0
TARGET_INGEST_CLIENTS = 1000
