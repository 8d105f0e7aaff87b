from django.contrib import admin
from django.urls import include, path

from monitoring.telemetry_views import metrics, pipeline_metrics
from monitoring.views import dashboard

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/v1/monitoring/", include("monitoring.api.urls")),
    path("metrics", metrics, name="metrics"),
    path("metrics/pipeline", pipeline_metrics, name="pipeline-metrics"),
    path("", dashboard, name="dashboard"),
]

# API clients get JSON errors, not HTML pages.
handler400 = "monitoring.api.exceptions.bad_request"
handler404 = "monitoring.api.exceptions.not_found"
handler500 = "monitoring.api.exceptions.server_error"
