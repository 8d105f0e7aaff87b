"""The project's URLs plus the trends route, for tests that must pass before and after it is wired.

The trends route comes first, so once ``monitoring.api.urls`` serves it too the same view still answers.
"""

from django.urls import path

from conflict_monitor.urls import handler404, handler500
from conflict_monitor.urls import urlpatterns as project_urlpatterns
from monitoring.api.trends import TrendsView

urlpatterns = [path("api/v1/monitoring/trends", TrendsView.as_view()), *project_urlpatterns]

__all__ = ["handler404", "handler500", "urlpatterns"]
