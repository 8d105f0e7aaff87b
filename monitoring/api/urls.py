from django.urls import path

from monitoring.api import alerts, notifications, views
from monitoring.api.openlineage import OpenLineageView
from monitoring.api.schema import SchemaView
from monitoring.api.trends import TrendsView

urlpatterns = [
    path("pipeline-status", views.PipelineStatusView.as_view(), name="pipeline-status"),
    path("health", views.HealthView.as_view(), name="health"),
    path("ready", views.ReadyView.as_view(), name="ready"),
    path("metrics", views.MetricIngestView.as_view(), name="metrics"),
    path("runs", views.RunListCreateView.as_view(), name="runs"),
    path("runs/<int:run_id>", views.RunDetailView.as_view(), name="run"),
    path("runs/<int:run_id>/finish", views.RunFinishView.as_view(), name="run-finish"),
    path("openlineage", OpenLineageView.as_view(), name="openlineage"),
    path("ws-ticket", views.WebSocketTicketView.as_view(), name="ws-ticket"),
    path("trends", TrendsView.as_view(), name="trends"),
    path("alerts", alerts.AlertListView.as_view(), name="alerts"),
    path("alerts/<int:alert_id>", alerts.AlertDetailView.as_view(), name="alert"),
    path("alerts/<int:alert_id>/acknowledge", alerts.AlertAcknowledgeView.as_view(), name="alert-acknowledge"),
    path("alerts/<int:alert_id>/resolve", alerts.AlertResolveView.as_view(), name="alert-resolve"),
    path("silences", alerts.SilenceListCreateView.as_view(), name="silences"),
    path("silences/<int:silence_id>/expire", alerts.SilenceExpireView.as_view(), name="silence-expire"),
    path("notifications/test", notifications.NotificationTestView.as_view(), name="notification-test"),
    path("schema", SchemaView.as_view(), name="schema"),
]
