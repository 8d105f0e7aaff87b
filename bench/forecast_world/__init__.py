"""The forecast backtest on the held-out world of ``bench/anomaly_world`` (issue 21 item 2).

- :mod:`.drive` runs one forecaster over one source's hours through its public API and scores it;
- :mod:`.scoring` defines the forecast errors against naive baselines, crossings of the rate
  thresholds, and the precision, recall and lead time of "will cross within 24 h" warnings.

The world's generator is imported only to produce the hours and to read the labels for scoring;
nothing in ``monitoring/forecast`` imports it.
"""
