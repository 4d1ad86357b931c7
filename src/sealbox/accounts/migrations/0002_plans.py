from django.db import migrations

from sealbox.accounts.plans import ensure_default_plans


def add_plans(apps, schema_editor):
    ensure_default_plans(apps.get_model("accounts", "Plan"))


class Migration(migrations.Migration):
    dependencies = [("accounts", "0001_initial")]
    operations = [migrations.RunPython(add_plans, migrations.RunPython.noop)]
