"""SQL statement counter for ``bench/db_per_tick.py`` (on PYTHONPATH of the measured processes only, put there by
``bench.lib.processes.Service(count_queries=True)``).

Every Django database connection the process opens gets an execute wrapper that counts statements
(``executemany`` counts once, as one round trip). On SIGUSR1 the total so far is written as JSON to
$BENCH_QUERY_PROBE. Does nothing without that variable.
"""

import itertools
import json
import os
import signal
import time

_OUTPUT = os.environ.get("BENCH_QUERY_PROBE")

if _OUTPUT:
    from django.db.backends.signals import connection_created

    # next() on itertools.count is atomic under the GIL: the ORM runs in several threads.
    _counter = itertools.count()

    def _count(execute, sql, params, many, context):
        next(_counter)
        return execute(sql, params, many, context)

    def _on_connection(sender, connection, **kwargs):
        if _count not in connection.execute_wrappers:
            connection.execute_wrappers.append(_count)

    def _dump(_signum, _frame):
        # count() has no read method: its repr holds the next value without advancing it.
        statements = int(repr(_counter)[6:-1])
        scratch = _OUTPUT + ".tmp"
        with open(scratch, "w") as handle:
            json.dump({"statements": statements, "at": time.time()}, handle)
        os.replace(scratch, _OUTPUT)

    connection_created.connect(_on_connection, weak=False)
    signal.signal(signal.SIGUSR1, _dump)
