"""Sources: one scrape state per name, and a time zone that must be a real IANA zone (the settings'
full_clean cases are in test_source_settings.py)."""

import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction

from monitoring.models import ScrapeSource, SourceSettings
from monitoring.models.sources import validate_time_zone

pytestmark = pytest.mark.django_db


def test_a_source_name_has_one_scrape_state_and_one_settings_row():
    ScrapeSource.objects.create(name="acled")
    with pytest.raises(IntegrityError), transaction.atomic():
        ScrapeSource.objects.create(name="acled")
    SourceSettings.objects.create(source="acled")
    with pytest.raises(IntegrityError), transaction.atomic():
        SourceSettings.objects.create(source="acled", timezone="Europe/Kyiv")


@pytest.mark.django_db(False)
def test_an_unknown_zone_is_refused_with_a_message_naming_it_and_an_example():
    validate_time_zone("Asia/Damascus")
    with pytest.raises(ValidationError) as refused:
        validate_time_zone("Mars/Olympus")
    (message,) = refused.value.messages
    assert "'Mars/Olympus' is not an IANA time zone" in message
    assert "Europe/Kyiv" in message


@pytest.mark.django_db(False)
def test_settings_read_as_the_source_and_its_zone():
    assert str(SourceSettings(source="gdelt", timezone="Asia/Damascus")) == "gdelt (Asia/Damascus)"
