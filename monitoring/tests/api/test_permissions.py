"""API permissions on real requests: ingest endpoints take a token, operator endpoints a logged-in
person (401 without credentials, refused for a token), reads are public or need either."""

import pytest
from django.contrib.auth.models import AnonymousUser
from rest_framework.exceptions import NotAuthenticated
from rest_framework.request import Request
from rest_framework.test import APIRequestFactory

from monitoring.api.permissions import CanReadMonitoring, HasIngestToken, IsOperator
from monitoring.services.tokens import create_ingest_token

pytestmark = pytest.mark.django_db


def _request(*, user=None, auth=None) -> Request:
    request = Request(APIRequestFactory().get("/"))
    request.user = user or AnonymousUser()
    request.auth = auth
    return request


@pytest.fixture
def token():
    return create_ingest_token(name="pipeline")[0]


@pytest.fixture
def operator(django_user_model):
    return django_user_model.objects.create_user("operator", password="pw")


def test_only_an_ingest_token_may_ingest(token, operator):
    assert HasIngestToken().has_permission(_request(auth=token), view=None)
    assert not HasIngestToken().has_permission(_request(user=operator), view=None)
    assert not HasIngestToken().has_permission(_request(auth="something else"), view=None)


def test_an_operator_endpoint_admits_a_logged_in_person(operator):
    assert IsOperator().has_permission(_request(user=operator), view=None)


def test_an_operator_endpoint_without_credentials_is_not_authenticated_saying_to_log_in():
    with pytest.raises(NotAuthenticated, match="log in at /admin/login/"):
        IsOperator().has_permission(_request(), view=None)


def test_an_operator_endpoint_refuses_an_ingest_token_as_forbidden(token):
    permission = IsOperator()
    assert permission.has_permission(_request(auth=token), view=None) is False
    assert permission.code == "forbidden"


def test_reads_are_public_when_public_read_is_on(settings):
    settings.MONITORING_PUBLIC_READ = True
    assert CanReadMonitoring().has_permission(_request(), view=None)


def test_private_reads_need_a_logged_in_user_or_an_ingest_token(settings, token, operator):
    settings.MONITORING_PUBLIC_READ = False
    permission = CanReadMonitoring()
    assert not permission.has_permission(_request(), view=None)
    assert permission.has_permission(_request(user=operator), view=None)
    assert permission.has_permission(_request(auth=token), view=None)
