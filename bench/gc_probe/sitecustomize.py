"""GC probe for the profile round of ``bench/live_feed`` (on PYTHONPATH of that daphne only).

Totals the time the cyclic garbage collector runs, per generation, through ``gc.callbacks``; on
SIGUSR1 the totals so far are written as JSON to $LIVE_FEED_GC_PROBE. Does nothing without that
variable.
"""

import gc
import json
import os
import signal
import time

_OUTPUT = os.environ.get("LIVE_FEED_GC_PROBE")

if _OUTPUT:
    _stats = {"collections": [0, 0, 0], "seconds": [0.0, 0.0, 0.0], "collected": 0}
    _started = [0.0]

    def _on_gc(phase, info):
        if phase == "start":
            _started[0] = time.perf_counter()
            return
        generation = info["generation"]
        _stats["collections"][generation] += 1
        _stats["seconds"][generation] += time.perf_counter() - _started[0]
        _stats["collected"] += info["collected"]

    def _dump(_signum, _frame):
        scratch = _OUTPUT + ".part"
        with open(scratch, "w") as handle:
            json.dump({**_stats, "at": time.time()}, handle)
        os.replace(scratch, _OUTPUT)

    gc.callbacks.append(_on_gc)
    signal.signal(signal.SIGUSR1, _dump)
