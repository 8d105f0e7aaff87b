import pytest
from django.core.exceptions import ValidationError

from monitoring.models import SourceSettings

pytestmark = pytest.mark.django_db


def test_a_source_follows_utc_unless_told_otherwise():
    assert SourceSettings.objects.create(source="acled").timezone == "UTC"


@pytest.mark.parametrize("zone", ["Asia/Damascus", "Europe/Kyiv", "UTC"])
def test_an_iana_zone_is_accepted(zone):
    SourceSettings(source="acled", timezone=zone).full_clean()


@pytest.mark.parametrize("zone", ["Mars/Olympus", "GMT+3 please", ""])
def test_anything_else_is_refused(zone):
    with pytest.raises(ValidationError):
        SourceSettings(source="acled", timezone=zone).full_clean()
