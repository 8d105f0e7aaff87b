from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from monitoring.models import IngestToken
from monitoring.services.tokens import authenticate_token

pytestmark = pytest.mark.django_db


def test_prints_a_working_key_once_and_stores_only_its_hash():
    out, err = StringIO(), StringIO()
    call_command("create_ingest_token", "scraper-acled", stdout=out, stderr=err)
    key = out.getvalue().strip()
    assert "not kept" in err.getvalue()
    token = IngestToken.objects.get(name="scraper-acled")
    assert authenticate_token(raw_key=key) == token
    assert key not in token.key_hash


def test_a_taken_name_is_a_command_error():
    call_command("create_ingest_token", "dup", stdout=StringIO(), stderr=StringIO())
    with pytest.raises(CommandError, match="already exists"):
        call_command("create_ingest_token", "dup", stdout=StringIO(), stderr=StringIO())


def test_create_read_token_prints_a_read_key():
    out, err = StringIO(), StringIO()
    call_command("create_read_token", "ops-dashboard", stdout=out, stderr=err)
    key = out.getvalue().strip()
    assert key.startswith("cmr_") and "read token" in err.getvalue()
    assert authenticate_token(raw_key=key) == IngestToken.objects.get(name="ops-dashboard", scope="read")


def test_create_read_token_refuses_a_taken_name_or_a_blank_one():
    call_command("create_ingest_token", "taken", stdout=StringIO(), stderr=StringIO())
    with pytest.raises(CommandError, match="already exists"):
        call_command("create_read_token", "taken", stdout=StringIO(), stderr=StringIO())
    with pytest.raises(CommandError, match="1-100 characters"):
        call_command("create_read_token", "  ", stdout=StringIO(), stderr=StringIO())
