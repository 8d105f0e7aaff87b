# The status's window sums group the raw metrics by stage too (migration 0009): the covering indexes carry
# the stage, so those sums stay index-only scans on PostgreSQL.
#
# Not atomic: on PostgreSQL each index is built CONCURRENTLY beside the old one, which is then dropped
# CONCURRENTLY and replaced by name, so ingest is never blocked while a large table is indexed. SQLite
# ignores INCLUDE (its indexes hold the key columns only, which do not change): nothing to do there.

from django.db import migrations, models

METRICS = "monitoring_dataqualitymetric"
COUNTS = ("geocoding_attempts", "geocoding_successes", "validation_attempts", "validation_passes")
# name -> (key columns, included columns before, included columns after)
INDEXES = {
    "dqm_timestamp_cover": (('"timestamp"',), (*COUNTS, "source"), (*COUNTS, "source", "stage")),
    "dqm_source_timestamp_cover": (("source", '"timestamp"'), COUNTS, (*COUNTS, "stage")),
}


def _swap(schema_editor, *, after: bool) -> None:
    if schema_editor.connection.vendor != "postgresql":
        return
    with schema_editor.connection.cursor() as cursor:
        for name, (key, before_include, after_include) in INDEXES.items():
            include = after_include if after else before_include
            # IF [NOT] EXISTS throughout: a run interrupted half-way can be run again.
            cursor.execute(f"DROP INDEX CONCURRENTLY IF EXISTS {name}_next")
            cursor.execute(
                f"CREATE INDEX CONCURRENTLY {name}_next ON {METRICS} ({', '.join(key)}) INCLUDE ({', '.join(include)})"
            )
            cursor.execute(f"DROP INDEX CONCURRENTLY IF EXISTS {name}")
            cursor.execute(f"ALTER INDEX {name}_next RENAME TO {name}")


def forwards(apps, schema_editor):
    _swap(schema_editor, after=True)


def backwards(apps, schema_editor):
    _swap(schema_editor, after=False)


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ('monitoring', '0010_ingesttoken_scope'),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            database_operations=[migrations.RunPython(forwards, backwards, atomic=False)],
            state_operations=[
                migrations.RemoveIndex(
                    model_name='dataqualitymetric',
                    name='dqm_timestamp_cover',
                ),
                migrations.RemoveIndex(
                    model_name='dataqualitymetric',
                    name='dqm_source_timestamp_cover',
                ),
                migrations.AddIndex(
                    model_name='dataqualitymetric',
                    index=models.Index(fields=['timestamp'], include=('geocoding_attempts', 'geocoding_successes', 'validation_attempts', 'validation_passes', 'source', 'stage'), name='dqm_timestamp_cover'),
                ),
                migrations.AddIndex(
                    model_name='dataqualitymetric',
                    index=models.Index(fields=['source', 'timestamp'], include=('geocoding_attempts', 'geocoding_successes', 'validation_attempts', 'validation_passes', 'stage'), name='dqm_source_timestamp_cover'),
                ),
            ],
        ),
    ]
