"""Adding users by invitation: the seat check, the link that sets the password, its
acceptance."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.http import HttpRequest
from django.urls import reverse
from django.utils.translation import gettext as _

from sealbox.accounts import services as accounts
from sealbox.accounts.models import Invitation, Organisation, Role, User, normalise_email
from sealbox.accounts.services import AccountError, AddressUnavailable, token_hash
from sealbox.audit import services as audit
from sealbox.audit.actions import Action
from sealbox.exchange.notifications import brand as email_brand
from sealbox.lib import clock
from sealbox.notify import services as notify
from sealbox.users.access import require_admin

INVITATION_LIFETIME = timedelta(hours=72)


@dataclass
class NewUser:
    email: str
    first_name: str = ""
    last_name: str = ""
    role: str = Role.MEMBER
    mobile_phone: str = ""  # E.164, already parsed
    sms_country: str = ""
    time_zone: str = ""
    language: str = ""


def _check_seats(organisation: Organisation, wanted: int = 1) -> None:
    free = organisation.seats - accounts.seats_used(organisation)
    if wanted > free:
        raise AccountError(
            _(
                "The licence of %(org)s has no free seat for this (%(used)d of %(seats)d "
                "seats in use). Disable or delete a user, or add seats to the licence."
            )
            % {
                "org": organisation.name,
                "used": accounts.seats_used(organisation),
                "seats": organisation.seats,
            },
            code="no_free_seat",
        )


def _create_invited(request: HttpRequest | None, actor: User, spec: NewUser) -> tuple[User, str]:
    organisation = actor.organisation
    user = User.objects.create_user(
        spec.email,
        None,  # no password until the invitation is accepted
        organisation=organisation,
        role=spec.role,
        first_name=spec.first_name,
        last_name=spec.last_name,
        mobile_phone=spec.mobile_phone,
        sms_country=spec.sms_country or organisation.default_sms_country,
        time_zone=spec.time_zone or actor.time_zone,
        language=spec.language or actor.language,
    )
    secret = _new_invitation(user)
    audit.record(
        Action.USER_INVITED,
        organisation=organisation,
        actor=actor,
        target=user,
        request=request,
        details={"email": user.email, "role": user.role},
    )
    return user, secret


def _new_invitation(user: User) -> str:
    secret = secrets.token_urlsafe(32)
    now = clock.now()
    Invitation.objects.filter(user=user, used_at__isnull=True).delete()
    Invitation.objects.create(
        user=user,
        token_hash=token_hash(secret),
        created_at=now,
        expires_at=now + INVITATION_LIFETIME,
    )
    return secret


def _send_invitation(user: User, actor: User, secret: str) -> None:
    # The link sets a password: it is a secret, queued sealed. An account email: from
    # Sealbox itself (no Reply-To), in the organisation's layout.
    accept_url = settings.SEALBOX_BASE_URL + reverse("users:invitation", kwargs={"token": secret})
    notify.send_templated_email(
        user.email,
        subject_template="users/email/invitation_subject.txt",
        text_template="users/email/invitation.txt",
        html_template="users/email/invitation.html",
        context={
            "user_name": user.display_name,
            "admin_name": actor.display_name,
            "organisation": user.organisation.name,
            "accept_url": accept_url,
            "link": accept_url,
            "hours": int(INVITATION_LIFETIME.total_seconds() // 3600),
        },
        language=user.language,
        brand=email_brand(user.organisation),
        time_zone=actor.time_zone,
        sensitive=True,
        # The invitation's fate (email.sent / email.failed) goes to the organisation's
        # log, on the invited user, beside user.invited.
        organisation=user.organisation,
        target=user,
        reference=f"invitation:{user.pk}",
    )


def _record_unavailable(request: HttpRequest | None, actor: User, email: str) -> None:
    """Note in the administrator's organisation that an address was refused without a
    reason. The event must not say more than the page did: the organisation's own log
    is readable by its administrators."""
    with transaction.atomic():
        audit.record(
            Action.USER_INVITATION_REFUSED,
            organisation=actor.organisation,
            actor=actor,
            request=request,
            details={"email": normalise_email(email), "reason": "address unavailable"},
        )


def invite_user(request: HttpRequest | None, actor: User, spec: NewUser) -> User:
    """Add a user and email them a link to set their password (72 hours, single use)."""
    require_admin(actor)
    organisation = actor.organisation
    try:
        spec.email = accounts.check_new_email(organisation, spec.email)
    except AddressUnavailable:
        _record_unavailable(request, actor, spec.email)
        raise
    if spec.role not in Role.values:
        raise AccountError(_("Choose a role from the list."))
    with transaction.atomic():
        # Locking the organisation row serialises concurrent additions against the seats.
        Organisation.objects.select_for_update().filter(pk=organisation.pk).first()
        _check_seats(organisation)
        user, secret = _create_invited(request, actor, spec)
    _send_invitation(user, actor, secret)
    return user


def resend_invitation(request: HttpRequest | None, actor: User, target: User) -> None:
    require_admin(actor)
    if target.has_usable_password():
        raise AccountError(_("%(email)s has already set a password.") % {"email": target.email})
    if not target.is_active:
        raise AccountError(_("Enable the user first."))
    with transaction.atomic():
        secret = _new_invitation(target)
        audit.record(
            Action.USER_INVITATION_RESENT,
            organisation=actor.organisation,
            actor=actor,
            target=target,
            request=request,
            details={"email": target.email},
        )
    _send_invitation(target, actor, secret)


def pending_invitation(token: str) -> Invitation | None:
    invitation = (
        Invitation.objects.select_related("user")
        .filter(token_hash=token_hash(token or ""), used_at__isnull=True)
        .first()
    )
    if (
        invitation is None
        or invitation.expires_at <= clock.now()
        or not invitation.user.is_active
        or invitation.user.deleted_at is not None
    ):
        return None
    return invitation


def accept_invitation(request: HttpRequest | None, token: str, password: str) -> User:
    from django.contrib.auth import password_validation

    invitation = pending_invitation(token)
    if invitation is None:
        raise AccountError(_("This link has expired or was already used."))
    user = invitation.user
    try:
        password_validation.validate_password(password, user)
    except ValidationError as error:
        raise AccountError(" ".join(error.messages)) from None
    with transaction.atomic():
        claimed = Invitation.objects.filter(pk=invitation.pk, used_at__isnull=True).update(
            used_at=clock.now()
        )
        if not claimed:
            raise AccountError(_("This link has expired or was already used."))
        user.set_password(password)
        user.save(update_fields=["password"])
        audit.record(Action.USER_INVITATION_ACCEPTED, actor=user, target=user, request=request)
    return user
