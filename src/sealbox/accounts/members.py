"""New users of an organisation: the address they may have, and their creation."""

from __future__ import annotations

from django.contrib.auth import password_validation
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import transaction
from django.utils.translation import gettext as _

from sealbox.accounts.errors import AccountError, AddressUnavailable
from sealbox.accounts.models import Organisation, Role, User, normalise_email
from sealbox.accounts.organisations import seats_used
from sealbox.audit import services as audit
from sealbox.audit.actions import Action

# Addresses Sealbox gives deleted accounts: never a real mailbox.
DELETED_EMAIL_DOMAIN = "deleted.invalid"


def create_user(
    email: str,
    password: str,
    organisation: Organisation,
    *,
    role: str = Role.MEMBER,
    first_name: str = "",
    last_name: str = "",
    is_staff: bool = False,
    actor: User | None = None,
) -> User:
    email = check_new_email(organisation, email)
    if seats_used(organisation) >= organisation.seats:
        raise AccountError(
            _("%(org)s has no free seat (%(seats)d in use). Free one or add seats first.")
            % {"org": organisation.name, "seats": organisation.seats}
        )
    candidate = User(
        email=email, first_name=first_name, last_name=last_name, organisation=organisation
    )
    try:
        password_validation.validate_password(password, candidate)
    except ValidationError as error:
        raise AccountError(" ".join(error.messages)) from None
    with transaction.atomic():
        user = User.objects.create_user(
            email,
            password,
            organisation=organisation,
            role=role,
            first_name=first_name,
            last_name=last_name,
            sms_country=organisation.default_sms_country,
            is_staff=is_staff,
            is_superuser=is_staff,
        )
        audit.record(
            Action.USER_CREATED,
            organisation=organisation,
            actor=actor,
            target=user,
            details={"email": user.email, "role": role},
        )
    return user


def check_new_email(organisation: Organisation, email: str) -> str:
    """The address, normalised, if a new user of this organisation may have it.

    An address of this organisation's own users is named as such; an address taken in
    another organisation (or reserved) raises AddressUnavailable with the same answer
    whatever the reason, so administrators cannot probe who has an account elsewhere.
    """
    email = normalise_email(email)
    try:
        validate_email(email)
    except ValidationError:
        raise AccountError(
            _("%(email)s is not a valid email address.") % {"email": email}, code="invalid_email"
        ) from None
    unavailable = AddressUnavailable(_("%(email)s cannot be invited.") % {"email": email})
    if email.rsplit("@", 1)[-1] == DELETED_EMAIL_DOMAIN:
        raise unavailable
    existing = User.objects.filter(email=email).values_list("organisation_id", flat=True).first()
    if existing == organisation.pk:
        raise AccountError(
            _("A user with the email %(email)s already exists.") % {"email": email},
            code="email_taken",
        )
    # The domain rule before the accounts of others: an address it refuses is refused
    # alike, taken or not.
    if not email_allowed(organisation, email):
        raise AccountError(domain_refused_message(organisation, email), code="domain_refused")
    if existing is not None:
        raise unavailable
    return email


def email_allowed(organisation: Organisation, email: str) -> bool:
    domains = organisation.approved_domains
    if not domains:
        return True
    return email.rsplit("@", 1)[-1].lower() in domains


def domain_refused_message(organisation: Organisation, email: str) -> str:
    return _("%(email)s is outside the approved email domains of %(org)s (%(domains)s).") % {
        "email": email,
        "org": organisation.name,
        "domains": ", ".join(organisation.approved_domains),
    }
