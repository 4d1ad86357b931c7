# A separate migration: PostgreSQL cannot alter a table in the transaction that filled it.

import django.db.models.functions.text
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0007_organisation_slug"),
    ]

    operations = [
        migrations.AlterField(
            model_name="organisation",
            name="slug",
            field=models.SlugField(editable=False, max_length=60, unique=True, verbose_name="slug"),
        ),
        migrations.AddConstraint(
            model_name="organisation",
            constraint=models.UniqueConstraint(
                django.db.models.functions.text.Lower("name"),
                name="accounts_organisation_name_ci",
                violation_error_message="Another organisation already has this name (letter case aside).",
            ),
        ),
    ]
