"""Jobs mapped to a source and stage: by MONITORING_OPENLINEAGE_JOB_MAP, else by the job's name."""

from __future__ import annotations

import json

import pytest
from django.core.exceptions import ImproperlyConfigured

from monitoring.checks import check_openlineage_job_map
from monitoring.openlineage.mapping import Target, job_map, parse_job_map, resolve_job


@pytest.mark.parametrize(
    ("namespace", "name", "expected"),
    [
        ("airflow", "acled.scrape", Target("acled", "scrape")),  # Airflow: <dag_id>.<task_id>
        ("default", "gdelt.geocode", Target("gdelt", "geocode")),
        ("acled", "validate", Target("acled", "validate")),  # the name alone: the namespace is the source
        ("airflow", "ReliefWeb.v2.Scrape", Target("ReliefWeb.v2", "scrape")),
    ],
)
def test_a_name_ending_in_a_stage_maps_by_default(namespace, name, expected):
    assert resolve_job(namespace=namespace, name=name, explicit={}).target == expected


@pytest.mark.parametrize(
    ("namespace", "name", "why"),
    [
        ("workshop", "process_taxes", "maps to no stage"),  # the specification's example job
        ("my-scheduler-namespace", "myjob.mytask", "maps to no stage"),
        ("airflow", "acled", "maps to no stage"),  # a DAG's own run
        ("s3://bucket", "scrape", "is not a source name"),
        ("airflow", "two words.scrape", "is not a source name"),
    ],
)
def test_any_other_job_maps_to_nothing_and_says_why(namespace, name, why):
    resolution = resolve_job(namespace=namespace, name=name, explicit={})
    assert resolution.target is None
    assert why in resolution.reason and "MONITORING_OPENLINEAGE_JOB_MAP" in resolution.reason


def test_the_setting_names_jobs_and_wins_over_the_default():
    explicit = parse_job_map(
        json.dumps(
            {
                "workshop/process_taxes": {"source": "acled", "stage": "validate"},
                "airflow/acled.scrape": {"source": "acled-v2", "stage": "scrape"},
            }
        )
    )
    assert resolve_job(namespace="workshop", name="process_taxes", explicit=explicit).target == Target(
        "acled", "validate"
    )
    assert resolve_job(namespace="airflow", name="acled.scrape", explicit=explicit).target == Target(
        "acled-v2", "scrape"
    )


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("{not json", "is not JSON"),
        ("[]", "must be a JSON object"),
        ('{"no-slash": {"source": "a", "stage": "scrape"}}', "a key is '<job namespace>/<job name>'"),
        ('{"a/b": {"source": "a"}}', "those two keys only"),
        ('{"a/b": {"source": "a", "stage": "scrape", "x": 1}}', "those two keys only"),
        ('{"a/b": {"source": "a b", "stage": "scrape"}}', "source 'a b' must be"),
        ('{"a/b": {"source": "a", "stage": "load"}}', "stage 'load' must be one of scrape, geocode, validate"),
    ],
)
def test_a_wrong_setting_names_the_entry_at_fault(raw, message):
    with pytest.raises(ImproperlyConfigured, match="MONITORING_OPENLINEAGE_JOB_MAP") as caught:
        parse_job_map(raw)
    assert message in str(caught.value)


def test_the_setting_is_read_when_called_and_checked_by_manage_py_check(settings):
    settings.MONITORING_OPENLINEAGE_JOB_MAP = ""
    assert job_map() == {} and check_openlineage_job_map() == []
    settings.MONITORING_OPENLINEAGE_JOB_MAP = '{"a/b": {"source": "s", "stage": "scrape"}}'
    assert job_map() == {"a/b": Target("s", "scrape")}
    settings.MONITORING_OPENLINEAGE_JOB_MAP = '{"a/b": {"source": "s", "stage": "load"}}'
    (error,) = check_openlineage_job_map()
    assert error.id == "monitoring.E004" and "stage 'load'" in error.msg
