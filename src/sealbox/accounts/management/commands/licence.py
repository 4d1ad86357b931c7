from datetime import date

from django.core.management.base import BaseCommand, CommandError

from sealbox.accounts import services
from sealbox.accounts.models import Plan


class Command(BaseCommand):
    help = "Show or change an organisation's licence: plan, seats, renewal date."

    def add_arguments(self, parser):
        parser.add_argument("organisation", help="the organisation's id, slug or name")
        parser.add_argument("--plan")
        parser.add_argument("--seats", type=int)
        parser.add_argument("--renewal", help="renewal date, YYYY-MM-DD")

    def handle(self, *args, organisation, plan=None, seats=None, renewal=None, **options):
        try:
            org = services.find_organisation(organisation)
        except services.AccountError as error:
            raise CommandError(str(error)) from None
        new_plan = None
        if plan:
            new_plan = Plan.objects.filter(name__iexact=plan).first()
            if new_plan is None:
                names = ", ".join(Plan.objects.values_list("name", flat=True))
                raise CommandError(f"no plan named {plan!r} (plans: {names})")
        renewal_date = None
        if renewal:
            try:
                renewal_date = date.fromisoformat(renewal)
            except ValueError:
                raise CommandError(f"--renewal: expected YYYY-MM-DD, got {renewal!r}") from None
        if seats is not None and seats < 1:
            raise CommandError("--seats: expected at least 1")
        try:
            services.set_licence(org, plan=new_plan, seats=seats, renewal_date=renewal_date)
        except services.AccountError as error:
            raise CommandError(str(error)) from None
        summary = services.licence_summary(org)
        self.stdout.write(
            f"{org.name}: plan {org.plan.name}, {summary.seats_used}/{org.seats} seats used, "
            f"renews {org.renewal_date.isoformat()}"
        )
