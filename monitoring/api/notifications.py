"""Operator check of the paging path: send a marked test notification through the real webhook delivery."""

from __future__ import annotations

from dataclasses import asdict

from drf_spectacular.utils import extend_schema
from rest_framework.request import Request
from rest_framework.response import Response

from monitoring.api.alerts import _OperatorView
from monitoring.api.documents import NotificationTestResult
from monitoring.api.schema import OPERATOR_NOTES, OPERATOR_WWW_AUTHENTICATE, RETRY_AFTER, error_responses
from monitoring.services.notifications import send_test_notification


class NotificationTestView(_OperatorView):
    @extend_schema(
        summary="Send a test notification",
        description=(
            'Logged-in session with CSRF. POSTs a notification marked as a test (`"test": true`, '
            "`[TEST] … no action needed`) to `MONITORING_WEBHOOK_URL` in `MONITORING_WEBHOOK_FORMAT`, the way alerts "
            "are sent, and answers with the receiver's reply. A receiver that fails or does not answer is still a "
            "200 here, with `ok`: false and `error`. Creates no alert and no delivery record."
        ),
        operation_id="notifications_test",
        request=None,
        parameters=[OPERATOR_WWW_AUTHENTICATE, RETRY_AFTER],
        responses={
            200: NotificationTestResult,
            **error_responses(statuses=(401, 403, 413, 503), notes=OPERATOR_NOTES),
        },
    )
    def post(self, request: Request) -> Response:
        return Response(asdict(send_test_notification()))
