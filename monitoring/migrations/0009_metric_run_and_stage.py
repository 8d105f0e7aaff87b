# Metrics carry the run that reported them and its stage; the hourly rollups are kept per stage too.
#
# PostgreSQL: the metric's new columns are nullable, so adding them rewrites no table (the stage's CHECK
# is validated by one scan; the run's key has no database constraint, see the model). SQLite rebuilds the metrics and rollup tables for
# the CHECK and the new unique key, which drops the triggers: they are dropped first on both backends
# and installed again at the end with the rollup key this migration leaves (source, hour, stage).
# Existing rollups become unstaged ('') rows, which they are: no metric had a stage before.

import django.db.models.deletion
from django.db import migrations, models

from monitoring import triggers


def uninstall(apps, schema_editor):
    triggers.uninstall(schema_editor)


def install_by_source(apps, schema_editor):
    triggers.install(schema_editor, key=triggers.BY_SOURCE)


def install_by_stage(apps, schema_editor):
    # No rebuild: the rows were only copied or given the stage '' while no trigger ran, so the
    # rollups are still exact (a rebuild would aggregate every raw metric again).
    triggers.install(schema_editor, key=triggers.BY_SOURCE_AND_STAGE, rebuild=False)


def merge_stages(apps, schema_editor):
    """Going back to one rollup per source and hour: each hour's stages added up into one row."""
    counts = "geocoding_attempts, geocoding_successes, validation_attempts, validation_passes, reports"
    sums = ", ".join(f"SUM({column})" for column in counts.split(", "))
    with schema_editor.connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {triggers.ROLLUPS} (source, stage, hour, {counts}, last_report_at) "
            f"SELECT source, '*', hour, {sums}, MAX(last_report_at) FROM {triggers.ROLLUPS} GROUP BY source, hour"
        )
        cursor.execute(f"DELETE FROM {triggers.ROLLUPS} WHERE stage <> '*'")
        cursor.execute(f"UPDATE {triggers.ROLLUPS} SET stage = ''")


class Migration(migrations.Migration):

    dependencies = [
        ('monitoring', '0008_pipelinerun_openlineage_run_id'),
    ]

    operations = [
        migrations.RunPython(uninstall, install_by_source),
        migrations.AddField(
            model_name='dataqualitymetric',
            name='run',
            field=models.ForeignKey(blank=True, db_constraint=False, db_index=False, help_text='The pipeline run that reported this batch.', null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='metrics', to='monitoring.pipelinerun'),
        ),
        migrations.AddField(
            model_name='dataqualitymetric',
            name='stage',
            field=models.CharField(blank=True, choices=[('scrape', 'Scrape'), ('geocode', 'Geocode'), ('validate', 'Validate')], help_text='Pipeline stage that reported this batch; empty: unstaged.', max_length=16, null=True),
        ),
        migrations.AddConstraint(
            model_name='dataqualitymetric',
            constraint=models.CheckConstraint(condition=models.Q(('stage__isnull', True), ('stage__in', ['scrape', 'geocode', 'validate']), _connector='OR'), name='dqm_stage_valid'),
        ),
        migrations.AddIndex(
            model_name='dataqualitymetric',
            index=models.Index(condition=models.Q(('run__isnull', False)), fields=['run'], name='dqm_run'),
        ),
        migrations.RemoveConstraint(
            model_name='hourlyrollup',
            name='rollup_source_hour_unique',
        ),
        migrations.RemoveIndex(
            model_name='hourlyrollup',
            name='rollup_hour_cover',
        ),
        migrations.AddField(
            model_name='hourlyrollup',
            name='stage',
            field=models.CharField(blank=True, default='', help_text="The metrics' stage; empty: unstaged.", max_length=16),
        ),
        migrations.AddIndex(
            model_name='hourlyrollup',
            index=models.Index(fields=['hour'], include=('source', 'stage', 'geocoding_attempts', 'geocoding_successes', 'validation_attempts', 'validation_passes', 'reports', 'last_report_at'), name='rollup_hour_cover'),
        ),
        migrations.AddConstraint(
            model_name='hourlyrollup',
            constraint=models.UniqueConstraint(fields=('source', 'hour', 'stage'), name='rollup_source_hour_stage_unique'),
        ),
        # Backwards, before the one-per-hour key comes back.
        migrations.RunPython(migrations.RunPython.noop, merge_stages),
        migrations.RunPython(install_by_stage, uninstall),
    ]
