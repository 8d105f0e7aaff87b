"""The operations that write through the Django admin: add, change and delete of metrics (with their run and
stage) and runs, posted as a browser would post the model's admin form."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from django import forms
from django.contrib import admin
from django.test import RequestFactory

from monitoring.models import DataQualityMetric, PipelineRun
from monitoring.tests.truth.metric_writes import Metric
from monitoring.tests.truth.run_writes import Run
from monitoring.tests.truth.world import Op, World, note, pick


def _admin_form(world: World, model, values: dict[str, Any], obj=None) -> dict[str, str]:
    """POST data for the model's admin form, built from the fields that form has (split date/time widgets)."""
    request = RequestFactory().get("/admin/")
    request.user = world.superuser
    form = admin.site._registry[model].get_form(request, obj, change=obj is not None)
    data: dict[str, str] = {}
    for name, field in form.base_fields.items():
        value = values.get(name)
        if isinstance(value, datetime):
            value = value.astimezone(UTC)
        if isinstance(field.widget, forms.MultiWidget):
            parts = ["", ""] if value is None else [value.strftime("%Y-%m-%d"), value.strftime("%H:%M:%S.%f")]
            data.update({f"{name}_{i}": part for i, part in enumerate(parts)})
        elif isinstance(value, datetime):
            data[name] = value.strftime("%Y-%m-%d %H:%M:%S.%f")
        else:
            data[name] = "" if value is None else str(value)
    return data


def _admin_url(model, suffix: str) -> str:
    return f"/admin/{model._meta.app_label}/{model._meta.model_name}/{suffix}"


def _admin_post(world: World, model, url: str, data: dict[str, str], *, may_refuse: bool) -> None:
    """A successful admin write redirects; the metric admin may refuse writes altogether (403, nothing changes)."""
    before = list(model.objects.order_by("pk").values())
    request_log = logging.getLogger("django.request")
    level = request_log.level
    request_log.setLevel(logging.ERROR)  # a refusal is logged as a warning with its traceback
    try:
        response = world.admin.post(url, data)
    finally:
        request_log.setLevel(level)
    if response.status_code == 403 and may_refuse:
        note(f"  the admin refused {url} (403)")
        assert list(model.objects.order_by("pk").values()) == before
        return
    errors = response.context["adminform"].form.errors if response.status_code == 200 and response.context else None
    assert response.status_code == 302, (url, response.status_code, errors)


def _metric_values(metric: Metric, world: World) -> dict[str, Any]:
    """The metric's fields under the admin form's names: its run is the form's ``run`` (an id box)."""
    fields = metric.fields(world)
    return {**fields, "run": fields["run_id"]}


@dataclass(frozen=True)
class AdminMetricAdd(Op):
    metric: Metric

    def apply(self, world: World) -> None:
        data = _admin_form(world, DataQualityMetric, _metric_values(self.metric, world))
        _admin_post(world, DataQualityMetric, _admin_url(DataQualityMetric, "add/"), data, may_refuse=True)


@dataclass(frozen=True)
class AdminMetricChange(Op):
    pick: int
    metric: Metric

    def apply(self, world: World) -> None:
        pk = pick(World.ids(DataQualityMetric), self.pick)
        if pk is None:
            return
        instance = DataQualityMetric.objects.get(pk=pk)
        data = _admin_form(world, DataQualityMetric, _metric_values(self.metric, world), instance)
        _admin_post(world, DataQualityMetric, _admin_url(DataQualityMetric, f"{pk}/change/"), data, may_refuse=True)


@dataclass(frozen=True)
class AdminMetricDelete(Op):
    pick: int

    def apply(self, world: World) -> None:
        pk = pick(World.ids(DataQualityMetric), self.pick)
        if pk is not None:
            url = _admin_url(DataQualityMetric, f"{pk}/delete/")
            _admin_post(world, DataQualityMetric, url, {"post": "yes"}, may_refuse=True)


@dataclass(frozen=True)
class AdminRunAdd(Op):
    run: Run

    def apply(self, world: World) -> None:
        data = _admin_form(world, PipelineRun, self.run.fields(world))
        _admin_post(world, PipelineRun, _admin_url(PipelineRun, "add/"), data, may_refuse=False)


@dataclass(frozen=True)
class AdminRunChange(Op):
    pick: int
    run: Run

    def apply(self, world: World) -> None:
        pk = pick(World.ids(PipelineRun), self.pick)
        if pk is None:
            return
        data = _admin_form(world, PipelineRun, self.run.fields(world), PipelineRun.objects.get(pk=pk))
        _admin_post(world, PipelineRun, _admin_url(PipelineRun, f"{pk}/change/"), data, may_refuse=False)


@dataclass(frozen=True)
class AdminRunDelete(Op):
    pick: int

    def apply(self, world: World) -> None:
        pk = pick(World.ids(PipelineRun), self.pick)
        if pk is not None:
            url = _admin_url(PipelineRun, f"{pk}/delete/")
            _admin_post(world, PipelineRun, url, {"post": "yes"}, may_refuse=False)
