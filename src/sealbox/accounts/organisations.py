"""Organisations and their licences: names, the plan, seats and this month's usage."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils.translation import gettext as _

from sealbox.accounts import registry
from sealbox.accounts.errors import AccountError, OrganisationNotFound
from sealbox.accounts.models import Organisation, Plan
from sealbox.audit import services as audit
from sealbox.audit.actions import Action
from sealbox.lib import clock


def organisation_name_taken(name: str, *, exclude: Organisation | None = None) -> bool:
    """Whether another organisation has this name, letter case aside (as the database's
    constraint on Lower(name) judges it)."""
    others = Organisation.objects.filter(name__iexact=name.strip())
    if exclude is not None and exclude.pk:
        others = others.exclude(pk=exclude.pk)
    return others.exists()


def check_organisation_name(name: str, *, exclude: Organisation | None = None) -> str:
    """The name cleaned, or AccountError when it is empty or another organisation's."""
    name = (name or "").strip()
    if not name:
        raise AccountError(_("The organisation needs a name."))
    if organisation_name_taken(name, exclude=exclude):
        raise AccountError(
            _("Another organisation already has this name (letter case aside). Choose another.")
        )
    return name


def find_organisation(reference: str) -> Organisation:
    """The organisation an operator names by id, slug or name, or AccountError.

    A number is only ever an id. Otherwise the reference may match a slug or a name
    (letter case aside); administrators choose names, so one could be made to look like
    another organisation's slug: a reference that fits more than one is refused, never
    guessed, and the id always names exactly one.
    """
    text = (reference or "").strip()
    if text.isdigit():
        found = Organisation.objects.filter(pk=int(text)).first()
        if found is None:
            raise OrganisationNotFound(_("no organisation with id %(id)s") % {"id": text})
        return found
    matches = list(
        Organisation.objects.filter(Q(slug=text.lower()) | Q(name__iexact=text)).order_by("pk")
    )
    if not matches:
        raise OrganisationNotFound(_("no organisation named %(name)r") % {"name": reference})
    if len(matches) > 1:
        listed = ", ".join(f"id {o.pk} (slug {o.slug}, name {o.name!r})" for o in matches)
        raise AccountError(
            _("%(reference)r could be several organisations: %(listed)s. Give its id.")
            % {"reference": reference, "listed": listed}
        )
    return matches[0]


def get_or_create_organisation(
    name: str, *, plan_name: str = "Advanced"
) -> tuple[Organisation, bool]:
    name = (name or "").strip()
    if not name:
        raise AccountError(_("The organisation needs a name."))
    existing = Organisation.objects.filter(name__iexact=name).first()
    if existing:
        return existing, False
    try:
        plan = Plan.objects.get(name__iexact=plan_name)
    except Plan.DoesNotExist:
        raise AccountError(_("There is no plan named %(name)s.") % {"name": plan_name}) from None
    for _attempt in range(3):
        try:
            with transaction.atomic():
                organisation = Organisation.objects.create(
                    name=name,
                    plan=plan,
                    seats=plan.default_seats,
                    renewal_date=clock.now().date() + timedelta(days=365),
                    default_expiry_days=min(7, plan.max_retention_days),
                )
                audit.record(
                    Action.ORGANISATION_CREATED,
                    organisation=organisation,
                    target=organisation,
                    details={"plan": plan.name},
                )
            return organisation, True
        except IntegrityError:
            # Created at the same moment by someone else (the same name in another case,
            # or a name that makes the same slug): join it, or take the next slug.
            existing = Organisation.objects.filter(name__iexact=name).first()
            if existing:
                return existing, False
    raise AccountError(_("The organisation could not be created. Try again."))


def set_licence(
    organisation: Organisation,
    *,
    plan: Plan | None = None,
    seats: int | None = None,
    renewal_date: date | None = None,
) -> Organisation:
    changes = {}
    if plan is not None and plan != organisation.plan:
        organisation.plan = plan
        changes["plan"] = plan.name
    if seats is not None and seats != organisation.seats:
        if seats < seats_used(organisation):
            raise AccountError(
                _("%(org)s has %(used)d active users: it needs at least that many seats.")
                % {"org": organisation.name, "used": seats_used(organisation)}
            )
        organisation.seats = seats
        changes["seats"] = seats
    if renewal_date is not None and renewal_date != organisation.renewal_date:
        organisation.renewal_date = renewal_date
        changes["renewal_date"] = renewal_date.isoformat()
    if changes:
        with transaction.atomic():
            organisation.save()
            audit.record(
                Action.LICENCE_CHANGED,
                organisation=organisation,
                target=organisation,
                details=changes,
            )
    return organisation


def seats_used(organisation: Organisation) -> int:
    return organisation.users.filter(is_active=True).count()


def messages_sent_this_month(organisation: Organisation) -> int:
    # The apps that send messages count them (accounts.registry, filled at their ready()).
    return registry.messages_sent_since(
        organisation, clock.now().replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    )


@dataclass(frozen=True)
class LicenceSummary:
    plan: Plan
    renewal_date: date
    seats_used: int
    seats_total: int
    messages_sent_this_month: int

    @property
    def messages_remaining(self) -> int | None:
        limit = self.plan.messages_per_month
        if limit is None:
            return None
        return max(0, limit - self.messages_sent_this_month)


def licence_summary(organisation: Organisation) -> LicenceSummary:
    return LicenceSummary(
        plan=organisation.plan,
        renewal_date=organisation.renewal_date,
        seats_used=seats_used(organisation),
        seats_total=organisation.seats,
        messages_sent_this_month=messages_sent_this_month(organisation),
    )
