"""One example's state (``World``), the base of every operation, and the helpers all writers share."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.db import connection
from django.test import Client
from django.utils import timezone
from hypothesis import note as hypothesis_note
from hypothesis import strategies as st
from hypothesis.control import currently_in_test_context

from monitoring.tests.truth import oracle
from monitoring.tests.truth.moments import At, written

# Three sources, so that groups collide.
SOURCES = ("acled", "gdelt", "ucdp")
# A metric's stage as written (None: reported without one).
STAGES = ("scrape", "geocode", "validate", None)


def note(text: str) -> None:
    """Hypothesis's note inside a Hypothesis test (shown with the falsifying example), else printed."""
    if currently_in_test_context():
        hypothesis_note(text)
    else:
        print(text)


class World:
    """One example's state: its ``now``, the clients, and what retention removed (for the oracle)."""

    def __init__(self, *, now: datetime, api, admin_client: Client, superuser) -> None:
        self.now = now
        self.api = api
        self.admin = admin_client
        self.superuser = superuser
        self.history = oracle.History()

    def at(self, at: At) -> datetime:
        return at.resolve(self.now)

    def run_time(self, at: At) -> datetime:
        """Run times never lie after ``now``."""
        return min(self.at(at), self.now)

    def api_time(self, at: At) -> datetime:
        """Ingest refuses timestamps more than 5 minutes ahead of the wall clock."""
        return min(self.at(at), timezone.now() + timedelta(minutes=4))

    @staticmethod
    def ids(model) -> list[int]:
        return list(model.objects.order_by("pk").values_list("pk", flat=True))

    def run_link(self, pick_index: int | None) -> tuple[int, str, str] | None:
        """The run a metric's ``link`` picks, as (id, source, stage); None without a link or a run."""
        if pick_index is None:
            return None
        from monitoring.models import PipelineRun

        runs = list(PipelineRun.objects.order_by("pk").values_list("pk", "source", "stage"))
        return runs[pick_index % len(runs)] if runs else None


class Op:
    def apply(self, world: World) -> None:  # pragma: no cover - every operation overrides it
        raise NotImplementedError


def pick(ids: list[int], index: int) -> int | None:
    return ids[index % len(ids)] if ids else None


def in_list(ids: list[int]) -> str:
    return ", ".join(str(int(pk)) for pk in ids)


@dataclass(frozen=True)
class Select:
    """Rows picked by index into the table's ids (modulo its size), or every row of a source."""

    picks: tuple[int, ...] = ()
    source: str | None = None

    def ids(self, model) -> list[int]:
        ids = World.ids(model)
        if self.source is not None:
            return list(model.objects.filter(source=self.source).order_by("pk").values_list("pk", flat=True))
        return sorted({pick(ids, i) for i in self.picks} - {None})


def selections() -> st.SearchStrategy[Select]:
    return st.one_of(
        st.builds(Select, st.lists(st.integers(0, 50), min_size=1, max_size=4).map(tuple)),
        st.builds(Select, st.just(()), st.sampled_from(SOURCES)),
    )


def sql_timestamp(moment: datetime, offset: str) -> Any:
    """How another program writes a timestamp: UTC text on SQLite; on PostgreSQL text with its offset."""
    if connection.vendor == "sqlite":
        return oracle.sqlite_text(moment)
    return written(moment, offset).isoformat(sep=" ")


def copy_rows(table: str, columns: tuple[str, ...], rows: list[list[Any]]) -> None:
    """Another program's ``COPY ... FROM STDIN`` on the same PostgreSQL connection (psycopg 3)."""
    connection.ensure_connection()
    statement = f"COPY {table} ({', '.join(columns)}) FROM STDIN"
    with connection.connection.cursor() as cursor, cursor.copy(statement) as copy:
        for row in rows:
            copy.write_row(row)
