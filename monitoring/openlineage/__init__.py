"""OpenLineage run events in: checked against the vendored specification (``validation``), read into the
monitor's terms (``events``), their jobs mapped to a source and stage (``mapping``). No transport and no
writes here: ``monitoring.api.openlineage`` receives the events, ``monitoring.services.openlineage``
applies them. docs/openlineage.md describes the whole."""
