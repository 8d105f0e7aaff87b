from django.conf import settings


def test_daphne_is_the_first_app_so_runserver_serves_asgi():
    assert settings.INSTALLED_APPS[0] == "daphne"
