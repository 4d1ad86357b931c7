from django.core.management.base import BaseCommand

from sealbox.accounts.models import Organisation


class Command(BaseCommand):
    help = "List the organisations: id, slug and name (what other commands accept as --org)."

    def handle(self, *args, **options):
        for organisation in Organisation.objects.select_related("plan").order_by("pk"):
            self.stdout.write(
                f"{organisation.pk}\t{organisation.slug}\t{organisation.name}\t"
                f"{organisation.plan.name}"
            )
