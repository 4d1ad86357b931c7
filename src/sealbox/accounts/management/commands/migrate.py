"""Django's `migrate`, under Sealbox's migration lock (see sealbox.migrationlock)."""

from django.core.management.commands.migrate import Command as DjangoMigrate

from sealbox.migrationlock import migration_lock


class Command(DjangoMigrate):
    def handle(self, *args, **options):
        with migration_lock(options["database"]):
            return super().handle(*args, **options)
