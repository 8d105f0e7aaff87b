"""The API's opaque paging cursor: a listing's ``next`` names the key its next page starts after."""

from __future__ import annotations

import base64
import binascii
import json
from datetime import datetime

from rest_framework import serializers

from monitoring.selectors import isoformat
from monitoring.selectors.paging import Key


def encode(key: Key | None) -> str | None:
    if key is None:
        return None
    raw = json.dumps([isoformat(key.at), key.id], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


class CursorField(serializers.CharField):
    """``?cursor=`` as a listing's ``next`` gave it; anything else is a 400 naming the parameter."""

    default_error_messages = {"invalid": "Not a cursor this listing gave (use the `next` of the previous page)."}

    def __init__(self, **kwargs) -> None:
        super().__init__(required=False, source="after", **kwargs)

    def run_validators(self, value) -> None:
        return None  # the decoded Key is checked in to_internal_value; CharField's length check is for text

    def to_internal_value(self, data) -> Key:
        text = super().to_internal_value(data)
        if len(text) > 200:
            self.fail("invalid")
        try:
            at, row_id = json.loads(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)))
            key = Key(at=datetime.fromisoformat(at), id=int(row_id))
        except (binascii.Error, ValueError, TypeError):
            self.fail("invalid")
        if key.at.tzinfo is None:
            self.fail("invalid")
        return key
