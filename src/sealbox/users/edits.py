"""An administrator's edits of a user: details, role, phone and 2FA; disabling,
enabling and deleting."""

from __future__ import annotations

from dataclasses import dataclass

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.http import Http404, HttpRequest
from django.utils.translation import gettext as _
from django.utils.translation import gettext_noop

from sealbox.accounts import services as accounts
from sealbox.accounts.models import (
    ApiToken,
    EmailChange,
    Invitation,
    MessagePreferences,
    Organisation,
    Role,
    User,
)
from sealbox.accounts.notices import _lazy
from sealbox.accounts.services import AccountError
from sealbox.audit import services as audit
from sealbox.audit.actions import Action
from sealbox.envelopes import services as envelopes
from sealbox.exchange.models import Message, MessageState
from sealbox.exchange.services import delete_blobs, delete_message
from sealbox.lib import clock, phones
from sealbox.notify import services as notify
from sealbox.twofactor import services as twofactor
from sealbox.users.access import _ensure_not_last_admin, _ensure_not_self, _refusal, require_admin
from sealbox.users.invitations import _check_seats

EDIT_FIELDS = ("first_name", "last_name", "sms_country", "time_zone", "language", "role")


@dataclass(frozen=True)
class _PhoneEdit:
    """What an edit does to the user's phone number and SMS factor."""

    changed: bool
    new_phone: str
    turn_on: bool
    turn_off: bool


def update_user(
    request: HttpRequest | None,
    actor: User,
    target: User,
    *,
    mobile_phone: str | None = None,
    enable_2fa: bool | None = None,
    **values,
) -> list[str]:
    """Save an administrator's edit of a user; return the names of what changed.

    `mobile_phone` is E.164 ("" clears it). Ticking `enable_2fa` makes that number the
    user's confirmed SMS factor: the administrator vouches for the number, and the user's
    next login asks for the code sent to it.
    """
    require_admin(actor)
    if target.organisation_id != actor.organisation_id:
        raise Http404
    changed = [n for n in EDIT_FIELDS if n in values and getattr(target, n) != values[n]]
    if "role" in changed:
        _check_new_role(target, values["role"])
    phone = _phone_edit(target, mobile_phone, enable_2fa)
    if not (changed or phone.changed or phone.turn_on or phone.turn_off):
        return []
    notices = []
    with transaction.atomic():
        old_role = target.role
        old_phone = target.mobile_phone
        _save_edit(request, actor, target, changed, values, phone)
        if "role" in changed:
            notices.append(_role_changed(request, actor, target, old_role))
        if phone.changed:
            notices.append(_phone_changed(request, actor, target, old_phone, phone.new_phone))
        if phone.turn_on or phone.turn_off:
            notices.append(_sms_factor_changed(request, actor, target, phone))
        for notice in notices:
            accounts.email_security_notice(target, notice, actor=actor)
    return (
        changed
        + (["mobile_phone"] if phone.changed else [])
        + (["2fa"] if phone.turn_on or phone.turn_off else [])
    )


def _check_new_role(target: User, role: str) -> None:
    if role not in Role.values:
        raise AccountError(_("Choose a role from the list."), code="invalid")
    if role != Role.ADMIN:
        _ensure_not_last_admin(target)


def _phone_edit(target: User, mobile_phone: str | None, enable_2fa: bool | None) -> _PhoneEdit:
    """The phone and SMS-factor part of an edit, refused when it would leave the factor
    without a number."""
    device = twofactor.sms_device(target)
    phone_changed = mobile_phone is not None and str(target.mobile_phone or "") != mobile_phone
    new_phone = mobile_phone if mobile_phone is not None else str(target.mobile_phone or "")
    turn_on = bool(enable_2fa) and device is None
    turn_off = enable_2fa is False and device is not None
    if turn_on and not new_phone:
        raise AccountError(
            _("Enter the user's mobile phone number to enable 2FA authentication."),
            code="phone_required",
        )
    if device is not None and not turn_off and mobile_phone == "":
        raise AccountError(
            _("A user with SMS 2FA needs a mobile phone number."), code="phone_required"
        )
    return _PhoneEdit(phone_changed, new_phone, turn_on, turn_off)


def _save_edit(
    request: HttpRequest | None,
    actor: User,
    target: User,
    changed: list[str],
    values: dict,
    phone: _PhoneEdit,
) -> None:
    for name in changed:
        setattr(target, name, values[name])
    if phone.changed:
        target.mobile_phone = phone.new_phone
    try:
        target.full_clean(exclude=["password"])
    except ValidationError as error:
        raise _refusal(error) from None
    target.save()
    if changed:
        audit.record(
            Action.USER_UPDATED,
            organisation=actor.organisation,
            actor=actor,
            target=target,
            request=request,
            details={"fields": changed},
        )


def _role_changed(request: HttpRequest | None, actor: User, target: User, old_role: str) -> _lazy:
    audit.record(
        Action.USER_ROLE_CHANGED,
        organisation=actor.organisation,
        actor=actor,
        target=target,
        request=request,
        details={"from": old_role, "to": target.role},
    )
    return _lazy(gettext_noop("Your role is now: %(role)s."), role=Role(target.role).label)


def _phone_changed(
    request: HttpRequest | None, actor: User, target: User, old_phone, new_phone: str
) -> _lazy:
    twofactor.phone_changed_by_admin(request, actor, target, old_phone, new_phone)
    return _lazy(
        gettext_noop("Your mobile phone number is now %(phone)s."),
        phone=phones.mask_phone(new_phone),
    )


def _sms_factor_changed(
    request: HttpRequest | None, actor: User, target: User, phone: _PhoneEdit
) -> _lazy:
    if phone.turn_on:
        twofactor.set_sms_by_admin(request, actor, target, phone.new_phone)
        return _lazy(
            gettext_noop(
                "Two-factor authentication is on: logging in now asks for a code sent "
                "by SMS to %(phone)s."
            ),
            phone=phones.mask_phone(phone.new_phone),
        )
    twofactor.set_sms_by_admin(request, actor, target, "")
    return _lazy(gettext_noop("Two-factor authentication by SMS was turned off."))


def set_active(request: HttpRequest | None, actor: User, target: User, active: bool) -> bool:
    """Disable (sessions and API tokens stop at once) or enable a user."""
    require_admin(actor)
    if target.organisation_id != actor.organisation_id:
        raise Http404
    if target.is_active == active:
        return False
    if not active:
        _ensure_not_last_admin(target)
        _ensure_not_self(actor, target)
    with transaction.atomic():
        if active:
            Organisation.objects.select_for_update().filter(pk=actor.organisation_id).first()
            _check_seats(actor.organisation)
        target.is_active = active
        target.save(update_fields=["is_active"])
        if not active:
            accounts.end_sessions(target)
            envelopes.close_envelopes_of(
                target, actor=actor, reason=envelopes.CloseReason.OWNER_DISABLED, request=request
            )
        audit.record(
            Action.USER_ENABLED if active else Action.USER_DISABLED,
            organisation=actor.organisation,
            actor=actor,
            target=target,
            request=request,
            details={"email": target.email},
        )
        accounts.email_security_notice(
            target,
            _lazy(gettext_noop("Your account was enabled again."))
            if active
            else _lazy(gettext_noop("Your account was disabled: you can no longer log in.")),
            actor=actor,
        )
    return True


def live_messages_of(user: User) -> int:
    """The messages deleting the user revokes (the confirmation page says how many)."""
    return Message.objects.filter(sender=user).exclude(state=MessageState.DELETED).count()


def delete_user(request: HttpRequest | None, actor: User, target: User) -> None:
    """Delete a user: their messages are revoked and their ciphertext deleted; the row
    stays (messages keep their sender) with every personal detail scrubbed; the seat is
    freed. Audit events keep the address they were recorded with."""
    require_admin(actor)
    if target.organisation_id != actor.organisation_id:
        raise Http404
    _ensure_not_last_admin(target)
    _ensure_not_self(actor, target)
    email = target.email
    language = target.language
    name = target.display_name
    # The same messages live_messages_of counts.
    messages = list(Message.objects.filter(sender=target).exclude(state=MessageState.DELETED))
    for message in messages:
        delete_message(actor, message, request=request)
    for message in Message.objects.filter(sender=target, blobs_deleted_at__isnull=True):
        delete_blobs(message)
    with transaction.atomic():
        methods = twofactor.login_methods(target)
        twofactor.remove_all_factors(target)
        accounts.end_sessions(target)
        envelopes.close_envelopes_of(
            target, actor=actor, reason=envelopes.CloseReason.OWNER_DELETED, request=request
        )
        ApiToken.objects.filter(user=target).delete()
        Invitation.objects.filter(user=target).delete()
        EmailChange.objects.filter(user=target).delete()
        MessagePreferences.objects.filter(user=target).delete()
        target.email = f"deleted-{target.pk}@{accounts.DELETED_EMAIL_DOMAIN}"
        target.first_name = ""
        target.last_name = ""
        target.mobile_phone = ""
        target.is_active = False
        target.role = Role.MEMBER
        target.deleted_at = clock.now()
        target.set_unusable_password()
        target.save()
        audit.record(
            Action.USER_DELETED,
            organisation=actor.organisation,
            actor=actor,
            target=target,
            request=request,
            details={"email": email, "messages_revoked": len(messages), "factors": methods},
        )
    notify.send_templated_email(
        email,
        subject_template="accounts/email/security_notice_subject.txt",
        text_template="accounts/email/security_notice.txt",
        context={
            "user_name": name,
            "what": _lazy(gettext_noop("Your Sealbox account was deleted.")),
            "admin_name": actor.display_name,
            "base_url": settings.SEALBOX_BASE_URL,
        },
        language=language,
    )
