from django.core.management.base import BaseCommand, CommandError

from sealbox.audit import sealing
from sealbox.audit.models import SealingKey


class Command(BaseCommand):
    help = (
        "Encrypt every organisation's sealing key under the current SEALBOX_SECRET_KEY "
        "(run after a rotation, before removing the former key from the fallbacks)."
    )

    def handle(self, *args, **options):
        moved = already = 0
        unreadable = []
        for stored in SealingKey.objects.select_related("organisation").order_by("pk"):
            try:
                if sealing.reencrypt(stored):
                    moved += 1
                else:
                    already += 1
            except sealing.SealingKeyUnavailable:
                unreadable.append(stored.organisation)
        self.stdout.write(
            f"Sealing keys: {moved} encrypted under the current secret key, {already} already were."
        )
        if unreadable:
            names = ", ".join(f"{o.name} (id {o.pk})" for o in unreadable)
            raise CommandError(
                f"{len(unreadable)} sealing key(s) decrypt under no accepted secret key: "
                f"{names}. Put the secret key they were made under in "
                "SEALBOX_SECRET_KEY_FALLBACKS and run this again."
            )
