"""Anomaly detection on per-source volume and data-quality rates (issues 4 and 18).

``contract`` is the interface, ``streaming`` (with ``seasonal``, ``rates``, ``cusum``) the detector,
``synthetic`` and ``evaluation`` its development world and scoring: pure Python, no Django.
``series`` feeds the live detectors from the hourly rollups and ``tuning`` replays the stored history.
Method and measured figures: ``docs/anomaly-detection.md``.
"""
