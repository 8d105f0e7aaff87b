from django.urls import path

from monitoring.consumers import PipelineStatusConsumer

websocket_urlpatterns = [
    path("ws/monitoring/pipeline-status", PipelineStatusConsumer.as_asgi()),
]
