"""Changing the email address of an account: a link sent to the new address."""

from __future__ import annotations

from datetime import timedelta

from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import transaction
from django.http import HttpRequest
from django.utils.translation import gettext as _
from django.utils.translation import gettext_noop

from sealbox.accounts.errors import AccountError
from sealbox.accounts.members import domain_refused_message, email_allowed
from sealbox.accounts.models import EmailChange, User, normalise_email
from sealbox.accounts.notices import _lazy, email_security_notice, token_hash
from sealbox.audit import services as audit
from sealbox.audit.actions import Action
from sealbox.lib import clock
from sealbox.notify import services as notify

EMAIL_CHANGE_LIFETIME = timedelta(hours=24)


def request_email_change(request: HttpRequest, user: User, new_email: str, password: str) -> None:
    """Send a confirmation link to the new address; nothing changes until it is used."""
    import secrets

    from django.conf import settings
    from django.urls import reverse

    if not user.check_password(password):
        raise AccountError(_("Your password is not correct."))
    new_email = normalise_email(new_email)
    try:
        validate_email(new_email)
    except ValidationError:
        raise AccountError(
            _("%(email)s is not a valid email address.") % {"email": new_email}
        ) from None
    if new_email == user.email:
        raise AccountError(_("This is already your email address."))
    if User.objects.filter(email=new_email).exists():
        raise AccountError(_("Another account already uses this address."))
    if not email_allowed(user.organisation, new_email):
        raise AccountError(domain_refused_message(user.organisation, new_email))
    secret = secrets.token_urlsafe(32)
    now = clock.now()
    with transaction.atomic():
        EmailChange.objects.filter(user=user, used_at__isnull=True).delete()
        EmailChange.objects.create(
            user=user,
            new_email=new_email,
            token_hash=token_hash(secret),
            created_at=now,
            expires_at=now + EMAIL_CHANGE_LIFETIME,
        )
        audit.record(
            Action.EMAIL_CHANGE_REQUESTED,
            actor=user,
            target=user,
            request=request,
            details={"from": user.email, "to": new_email},
        )
    notify.send_templated_email(
        new_email,
        subject_template="accounts/email/email_change_subject.txt",
        text_template="accounts/email/email_change.txt",
        context={
            "user_name": user.display_name,
            "confirm_url": settings.SEALBOX_BASE_URL
            + reverse("accounts:email_confirm", kwargs={"token": secret}),
            "hours": int(EMAIL_CHANGE_LIFETIME.total_seconds() // 3600),
        },
        language=user.language,
        sensitive=True,
    )


def pending_email_for(user: User) -> str:
    """The address waiting for confirmation, if any."""

    change = (
        EmailChange.objects.filter(user=user, used_at__isnull=True, expires_at__gt=clock.now())
        .order_by("-created_at")
        .first()
    )
    return change.new_email if change else ""


def pending_email_change(token: str):

    change = (
        EmailChange.objects.select_related("user")
        .filter(token_hash=token_hash(token or ""), used_at__isnull=True)
        .first()
    )
    if change is None or change.expires_at <= clock.now() or not change.user.is_active:
        return None
    return change


def confirm_email_change(request: HttpRequest, token: str) -> User:

    with transaction.atomic():
        change = pending_email_change(token)
        if change is None:
            raise AccountError(_("This link has expired or was already used."))
        # Single use, even when two requests race for it.
        claimed = EmailChange.objects.filter(pk=change.pk, used_at__isnull=True).update(
            used_at=clock.now()
        )
        if not claimed:
            raise AccountError(_("This link has expired or was already used."))
        user = change.user
        if User.objects.filter(email=change.new_email).exclude(pk=user.pk).exists():
            raise AccountError(_("Another account already uses this address."))
        old_email = user.email
        user.email = change.new_email
        user.save(update_fields=["email"])
        audit.record(
            Action.EMAIL_CHANGED,
            actor=user,
            target=user,
            request=request,
            details={"from": old_email, "to": user.email},
        )
        email_security_notice(
            user,
            _lazy(
                gettext_noop("The email address of your account was changed to %(email)s."),
                email=user.email,
            ),
            to=old_email,
        )
    return user
