"""Keyset paging for newest-first listings: a page is the rows strictly after a (moment, id) key, and
the next page starts after the last row of this one, so rows written meanwhile never shift a page."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Generic, TypeVar

from django.db.models import Model, Q, QuerySet

RowT = TypeVar("RowT", bound=Model)


@dataclass(frozen=True)
class Key:
    """The position after which the next page starts: the last row's ordering moment and id."""

    at: datetime
    id: int


@dataclass(frozen=True)
class Page(Generic[RowT]):
    rows: list[RowT]
    next: Key | None  # None: this was the last page


def newest_first(*, rows: QuerySet[RowT], moment: str, after: Key | None, limit: int) -> Page[RowT]:
    """``rows`` ordered by ``moment`` then id, both descending, from just after ``after``."""
    if after is not None:
        rows = rows.filter(Q(**{f"{moment}__lt": after.at}) | Q(**{moment: after.at, "pk__lt": after.id}))
    found = list(rows.order_by(f"-{moment}", "-pk")[: limit + 1])
    page, more = found[:limit], len(found) > limit
    last = page[-1] if page else None
    return Page(rows=page, next=Key(at=getattr(last, moment), id=last.pk) if more and last else None)
