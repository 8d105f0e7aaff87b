"""The bench library: what every benchmark under ``bench/`` shares, one module per concern.

- ``runtime``: paths (``ROOT``, ``RESULTS``, ``VENV_BIN``), the ``[bench]`` log, SIGTERM and file limits;
- ``processes``: child processes (daphne, the launcher, the broadcaster) with logs, CPU, RSS and health
  waits, CPU pinning, the servers' environment, Redis cleanup;
- ``database``: the bench databases (create, fingerprint, migrate, drop), Django subprocesses, seeding;
- ``machine``: CPU, package versions, PostgreSQL settings and the code state a result was measured on;
- ``wsclient``: the load generator's RFC 6455 client and the sequence checks of received frames;
- ``http``: keep-alive HTTP clients (blocking and asyncio);
- ``reports``: percentiles and medians, and writing ``bench/results/*.{json,md}``.

Benchmarks import this package and never each other. Run them from the repository root as modules
(``python -m bench.<name>``), as the Makefile does.
"""
