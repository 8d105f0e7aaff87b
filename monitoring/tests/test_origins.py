"""Which browser origins may open the live feed: ALLOWED_HOSTS, CSRF_TRUSTED_ORIGINS, the DEBUG
fallback, and a missing Origin (not a browser); settings are read per connection."""

from urllib.parse import urlparse

import pytest

from monitoring.origins import TrustedOriginValidator


def _allowed(origin: str | None) -> bool:
    validator = TrustedOriginValidator(application=None)
    return validator.valid_origin(urlparse(origin) if origin is not None else None)


@pytest.fixture
def production(settings):
    settings.DEBUG = False
    settings.ALLOWED_HOSTS = ["monitor.example.org"]
    settings.CSRF_TRUSTED_ORIGINS = []


@pytest.mark.usefixtures("production")
def test_an_origin_whose_host_is_allowed_may_connect_any_other_may_not():
    assert _allowed("https://monitor.example.org")
    assert _allowed("http://monitor.example.org:8080")
    assert not _allowed("https://evil.example.com")
    assert not _allowed("https://monitor.example.org.evil.com")


@pytest.mark.usefixtures("production")
def test_a_socket_without_origin_is_not_a_browser_and_goes_on_to_auth():
    assert _allowed(None)


def test_a_trusted_origin_must_match_scheme_host_and_port(settings):
    settings.DEBUG = False
    settings.ALLOWED_HOSTS = []
    settings.CSRF_TRUSTED_ORIGINS = ["https://dash.example.org:8443"]
    assert _allowed("https://dash.example.org:8443")
    assert not _allowed("http://dash.example.org:8443")
    assert not _allowed("https://dash.example.org")


def test_debug_without_allowed_hosts_accepts_only_local_origins(settings):
    settings.DEBUG = True
    settings.ALLOWED_HOSTS = []
    settings.CSRF_TRUSTED_ORIGINS = []
    assert _allowed("http://localhost:8000")
    assert _allowed("http://127.0.0.1:8000")
    assert not _allowed("http://192.168.1.5:8000")
    settings.DEBUG = False
    assert not _allowed("http://localhost:8000")


@pytest.mark.usefixtures("production")
def test_a_wildcard_host_accepts_every_origin_and_settings_are_read_per_connection(settings):
    validator = TrustedOriginValidator(application=None)
    assert not validator.valid_origin(urlparse("https://anywhere.example"))
    settings.ALLOWED_HOSTS = ["*"]
    assert validator.valid_origin(urlparse("https://anywhere.example"))
