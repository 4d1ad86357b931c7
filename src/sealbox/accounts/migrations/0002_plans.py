from django.db import migrations

MB = 1000 * 1000

PLANS = [
    # name, largest attachment total per send, retention days, messages per month, seats
    ("Eco", 0, 7, 100, 1),
    ("Advanced", 100 * MB, 30, 1000, 5),
    ("Pro", 2500 * MB, 90, None, 25),
]


def add_plans(apps, schema_editor):
    Plan = apps.get_model("accounts", "Plan")
    for name, max_send, retention, monthly, seats in PLANS:
        Plan.objects.update_or_create(
            name=name,
            defaults={"max_send_bytes": max_send, "max_retention_days": retention,
                      "messages_per_month": monthly, "default_seats": seats},
        )


class Migration(migrations.Migration):
    dependencies = [("accounts", "0001_initial")]
    operations = [migrations.RunPython(add_plans, migrations.RunPython.noop)]
