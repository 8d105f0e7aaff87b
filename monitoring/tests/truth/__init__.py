"""The parts of the truth tests (monitoring/tests/test_truth.py).

``moments``: times relative to an example's ``now``; ``world``: one example's state and the helpers every
writer shares; ``metric_writes``, ``run_writes``, ``admin_writes``: the operations that write metrics and
runs, with their strategies; ``checks``: the product's figures compared with ``oracle`` (plain SQL over
the raw tables); ``sequences``: whole sequences of operations.
"""
