import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('accounts', '0001_initial'),
        ('audit', '0001_initial'),
    ]

    operations = [
        migrations.CreateModel(
            name='SealingKey',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('certificate_pem', models.TextField()),
                ('private_key_pem', models.TextField()),
                ('created_at', models.DateTimeField()),
                ('organisation', models.OneToOneField(on_delete=django.db.models.deletion.PROTECT, related_name='+', to='accounts.organisation')),
            ],
        ),
        migrations.CreateModel(
            name='Checkpoint',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('chain', models.CharField(max_length=40)),
                ('seq', models.PositiveBigIntegerField()),
                ('hash', models.CharField(max_length=64)),
                ('created_at', models.DateTimeField()),
                ('signature', models.TextField()),
            ],
            options={
                'constraints': [models.UniqueConstraint(fields=('chain', 'seq'), name='audit_checkpoint_chain_seq')],
            },
        ),
    ]
