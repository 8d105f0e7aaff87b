import pytest
from django.utils import timezone


@pytest.fixture
def now():
    return timezone.now().replace(microsecond=0)
