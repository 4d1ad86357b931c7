from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('accounts', '0004_account_management'),
    ]

    operations = [
        migrations.AddField(
            model_name='organisation',
            name='audit_retention_days',
            field=models.PositiveIntegerField(default=2557, verbose_name='keep activity logs for (days)'),
        ),
    ]
