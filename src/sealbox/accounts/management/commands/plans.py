from django.core.management.base import BaseCommand, CommandError

from sealbox.accounts.models import Plan

GB = 1000 * 1000 * 1000


def parse_size(text: str) -> int | None:
    """'none' (no limit), '0', '100MB', '2.5GB' → bytes."""
    value = text.strip().upper().replace(" ", "")
    if value in ("NONE", "UNLIMITED"):
        return None
    units = {"GB": GB, "MB": GB // 1000, "KB": 1000, "B": 1}
    for unit, factor in units.items():
        if value.endswith(unit):
            try:
                return int(float(value[: -len(unit)]) * factor)
            except ValueError:
                break
    try:
        return int(value)
    except ValueError:
        raise CommandError(f"size {text!r}: expected e.g. 0, 100MB, 2.5GB or none") from None


def parse_limit(text: str) -> int | None:
    if text.strip().lower() in ("none", "unlimited"):
        return None
    try:
        return int(text)
    except ValueError:
        raise CommandError(f"{text!r}: expected a whole number or none") from None


class Command(BaseCommand):
    help = "List the licence plans, or change one plan's limits."

    def add_arguments(self, parser):
        parser.add_argument("name", nargs="?", help="plan to change (created if new)")
        parser.add_argument(
            "--max-send", help="largest attachment total per send: 0, 100MB, 2.5GB or none"
        )
        parser.add_argument("--retention-days", type=int)
        parser.add_argument("--messages-per-month", help="a number or none")
        parser.add_argument("--seats", type=int, help="seats included for new organisations")

    def handle(self, *args, name=None, **options):
        if name:
            self._change(name, options)
        for plan in Plan.objects.all():
            size = "no limit" if plan.max_send_bytes is None else f"{plan.max_send_bytes} bytes"
            monthly = plan.messages_per_month if plan.messages_per_month is not None else "no limit"
            self.stdout.write(
                f"{plan.name}: attachments {size} per send, retention "
                f"{plan.max_retention_days} days, {monthly} messages per month, "
                f"{plan.default_seats} seats"
            )

    def _change(self, name: str, options: dict) -> None:
        plan = Plan.objects.filter(name__iexact=name).first()
        if plan is None:
            if options["retention_days"] is None:
                raise CommandError(f"new plan {name!r}: --retention-days is required")
            plan = Plan(name=name)
        if options["max_send"] is not None:
            plan.max_send_bytes = parse_size(options["max_send"])
        if options["retention_days"] is not None:
            if options["retention_days"] < 1:
                raise CommandError("--retention-days: expected at least 1")
            plan.max_retention_days = options["retention_days"]
        if options["messages_per_month"] is not None:
            plan.messages_per_month = parse_limit(options["messages_per_month"])
        if options["seats"] is not None:
            if options["seats"] < 1:
                raise CommandError("--seats: expected at least 1")
            plan.default_seats = options["seats"]
        plan.save()
