"""A held-out, labelled world of pipeline sources for judging anomaly detectors (issue 18).

Kept outside ``monitoring/`` on purpose: no detector may import the generator that judges it, and the
generator knows detectors only through the Protocol in ``monitoring/anomaly/contract.py``.

- :mod:`.world` builds one seed's world: sources with their own time zones, cycles, noise, batch
  habits and unlabelled normal oddities, plus labelled incidents (:mod:`.sources`, :mod:`.incidents`,
  :mod:`.sampling`);
- :mod:`.harness` drives a detector hour by hour (three partial judgements, then the closed hour);
- :mod:`.scoring` scores the findings per event (precision, recall, time to detect) and per hour;
- :mod:`.baselines` holds the comparison detectors (plain z-score, the pre-rewrite robust detector).
"""
