# Tokens get a scope: ingest (write) or read (the status API and the private live feed). Every existing
# token was made for ingest, so the default makes them ingest tokens. PostgreSQL 11+ adds a column with a
# constant default without rewriting the table.

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("monitoring", "0009_metric_run_and_stage"),
    ]

    operations = [
        migrations.AddField(
            model_name="ingesttoken",
            name="scope",
            field=models.CharField(
                choices=[
                    ("ingest", "ingest: write metrics, runs, OpenLineage events"),
                    ("read", "read: the status API and the private live feed"),
                ],
                default="ingest",
                max_length=8,
            ),
        ),
    ]
