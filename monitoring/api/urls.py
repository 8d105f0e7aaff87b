from django.urls import path

from monitoring.api import views

urlpatterns = [
    path("pipeline-status", views.PipelineStatusView.as_view(), name="pipeline-status"),
    path("health", views.HealthView.as_view(), name="health"),
    path("ready", views.ReadyView.as_view(), name="ready"),
    path("metrics", views.MetricIngestView.as_view(), name="metrics"),
    path("runs", views.RunListCreateView.as_view(), name="runs"),
    path("runs/<int:run_id>/finish", views.RunFinishView.as_view(), name="run-finish"),
    path("ws-ticket", views.WebSocketTicketView.as_view(), name="ws-ticket"),
]
