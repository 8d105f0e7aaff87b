from datetime import UTC

from django.db import migrations, models
from django.db.models import Max
from django.db.models.functions import TruncHour


def backfill(apps, schema_editor):
    """Rollups written before the column existed take the newest timestamp of their raw metrics (one pass)."""
    Metric = apps.get_model("monitoring", "DataQualityMetric")
    Rollup = apps.get_model("monitoring", "HourlyRollup")
    newest = {
        (row["source"], row["hour"]): row["newest"]
        for row in Metric.objects.annotate(hour=TruncHour("timestamp", tzinfo=UTC))
        .values("source", "hour")
        .annotate(newest=Max("timestamp"))
    }
    changed = []
    for rollup in Rollup.objects.filter(last_report_at__isnull=True).iterator(chunk_size=2000):
        rollup.last_report_at = newest.get((rollup.source, rollup.hour))
        if rollup.last_report_at is not None:
            changed.append(rollup)
    Rollup.objects.bulk_update(changed, ["last_report_at"], batch_size=2000)


class Migration(migrations.Migration):
    dependencies = [("monitoring", "0001_initial")]

    operations = [
        migrations.AddField(
            model_name="hourlyrollup",
            name="last_report_at",
            field=models.DateTimeField(help_text="Newest metric timestamp in the hour.", null=True),
        ),
        migrations.RunPython(backfill, migrations.RunPython.noop),
    ]
