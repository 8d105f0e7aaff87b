"""Anomaly detection on per-source volume and data-quality rates (issue 4, point 3).

``detector``, ``synthetic`` and ``evaluation`` are pure Python and import nothing from Django, so the
evaluation script runs without settings; ``series.recent_anomalies`` reads the hourly rollups.
Method and measured precision/recall: ``docs/anomaly-detection.md``.
"""
