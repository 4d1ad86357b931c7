"""Rules of two-factor authentication: SMS codes, factors, the login step, re-authentication.

Every function does one job and records its audit event in the same transaction as the
change it makes. Codes never leave this module except inside the SMS body itself: they
are not logged, not put in audit details, and stored only as HMACs (SMS) or hashes
(recovery codes).
"""

from __future__ import annotations

import base64
import enum
import hashlib
import hmac
import secrets
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import segno
from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.http import HttpRequest
from django.utils import translation
from django.utils.translation import gettext as _
from django.utils.translation import ngettext
from django_otp import login as otp_login
from django_otp.oath import TOTP
from django_otp.plugins.otp_totp.models import TOTPDevice
from django_otp.util import random_hex
from django_otp_webauthn.models import WebAuthnCredential

from sealbox import keys
from sealbox.accounts import reauth
from sealbox.accounts import services as accounts
from sealbox.accounts.models import Organisation, User
from sealbox.audit import services as audit
from sealbox.audit.actions import Action
from sealbox.lib import clock
from sealbox.lib.errors import SealboxError
from sealbox.lib.http import client_ip
from sealbox.lib.phones import mask_phone
from sealbox.notify import services as notify
from sealbox.notify import sms_tasks
from sealbox.ratelimit import services as ratelimit
from sealbox.ratelimit.services import Rule
from sealbox.twofactor.models import (
    CodeDelivery,
    Factor,
    FactorLock,
    PendingLogin,
    RecoveryCode,
    RecoveryCodeDevice,
    SMSCode,
    SMSDevice,
    recovery_code_hash,
)

# --- The rules, in one place ----------------------------------------------------------

CODE_DIGITS = 6
CODE_LIFETIME = timedelta(minutes=10)
MAX_CODE_FAILURES = 5  # wrong tries before a code (and its binding) dies
RESEND_COOLDOWN = timedelta(seconds=60)
# The cooldown is a limit like the others (one code per binding per 60 s), so it is
# reserved with them: parallel requests cannot all find it over.
SMS_PER_BINDING = Rule("sms-binding", 1, RESEND_COOLDOWN)
SMS_PER_ACCOUNT = Rule("sms-account", 5, timedelta(hours=1))
SMS_PER_IP = Rule("sms-ip", 20, timedelta(hours=1))
LOCK_AFTER_FAILURES = 100  # consecutive failures of one factor
PENDING_LOGIN_LIFETIME = timedelta(minutes=10)
TOTP_KEY_BYTES = 20  # 160 bits
TOTP_STEP = 30
TOTP_DIGITS = 6
TOTP_TOLERANCE = 1  # one step before or after
RECOVERY_CODE_COUNT = 10
# 16 characters from a 32-letter alphabet: 80 bits per code. No i, l, o, u: nothing to
# confuse when copying from paper.
RECOVERY_ALPHABET = "0123456789abcdefghjkmnpqrstvwxyz"
RECOVERY_CODE_LENGTH = 16

SESSION_PENDING = "sealbox_2fa_pending"
SESSION_PASSKEY_STATE = "sealbox_passkey_state"
SESSION_PASSKEY_REGISTER_STATE = "sealbox_passkey_register_state"

PRIMARY_FACTORS = (Factor.SMS, Factor.TOTP, Factor.PASSKEY)


class TwoFactorError(SealboxError):
    """A second-factor request the rules refuse (403 unless a raise site says otherwise:
    429 when it is a matter of waiting)."""

    status = 403
    code = "refused"


class PendingLoginExpired(TwoFactorError):
    def __init__(self) -> None:
        super().__init__(_("Your login attempt has expired. Please log in again."), code="expired")


# --- SMS codes (login and phone confirmation; reusable for message opening) ---------


class CodeResult(enum.Enum):
    OK = "ok"
    WRONG = "wrong"
    WRONG_LAST_TRY = "wrong_last_try"  # wrong, and that was the fifth wrong try
    EXPIRED = "expired"
    EXHAUSTED = "exhausted"
    USED = "used"
    NO_CODE = "no_code"


def new_code() -> str:
    return f"{secrets.randbelow(10**CODE_DIGITS):0{CODE_DIGITS}d}"


CODE_INFO = b"sealbox sms code v1"


def hash_code(binding: str, code: str, key: bytes | None = None) -> str:
    """An HMAC keyed by the server secret: a copy of the database alone cannot try the
    million possible codes. The binding is part of the input, so a code only ever
    matches what it was sent for. `key`: the current one unless given."""
    key = key or keys.derive(CODE_INFO)
    return hmac.new(key, f"{binding}\n{code}".encode(), hashlib.sha256).hexdigest()


def code_matches(stored: str, binding: str, code: str) -> bool:
    """Whether `code` is the one hashed in `stored`, under the current secret key or a
    fallback: a code sent just before a rotation still works for its ten minutes."""
    return keys.matching(stored, lambda key: hash_code(binding, code, key), CODE_INFO) is not None


def sms_text(code: str, language: str) -> str:
    with translation.override(language or "en"):
        return _("Your Sealbox code is %(code)s. It expires in %(minutes)d minutes.") % {
            "code": code,
            "minutes": int(CODE_LIFETIME.total_seconds() // 60),
        }


def latest_code(binding: str) -> SMSCode | None:
    return SMSCode.objects.filter(binding=binding).order_by("-created_at", "-pk").first()


def latest_delivered_code(binding: str) -> SMSCode | None:
    return (
        SMSCode.objects.filter(binding=binding)
        .exclude(delivery=CodeDelivery.FAILED)
        .order_by("-created_at", "-pk")
        .first()
    )


def binding_failures(binding: str) -> int:
    code = latest_code(binding)
    return code.failures if code else 0


def resend_wait(binding: str) -> int:
    """Seconds before another code may be sent for this binding (0: now)."""
    return ratelimit.check(SMS_PER_BINDING, binding).retry_after


def _too_many_sms(retry_after: int) -> TwoFactorError:
    minutes = max(1, -(-retry_after // 60))
    return TwoFactorError(
        ngettext(
            "Too many codes were sent. You can ask for a new one in %(n)d minute.",
            "Too many codes were sent. You can ask for a new one in %(n)d minutes.",
            minutes,
        )
        % {"n": minutes},
        status=429,
        code="sms_limit",
        retry_after=retry_after,
    )


def send_code(
    *,
    binding: str,
    phone: str,
    language: str,
    account_key: str,
    ip: str | None,
    purpose: str,
    user: User | None = None,
    organisation: Organisation | None = None,
    request: HttpRequest | None = None,
    channel: str = "sms",
    deliver: Callable[[str, str], None] | None = None,
    fresh_tries: bool = False,
    target: Any = None,
) -> SMSCode:
    """Queue a new 6-digit code for `binding` to `phone`, within every sending limit.

    `deliver(code, reference)` sends the code another way (a recipient's email code)
    under the same rules; it is called inside the transaction, so a failure records
    nothing, and it queues its message with `reference` so that the outbox's report
    marks the code sent or failed, as for an SMS. `target` is what the code is for in the
    audit log (a message, an envelope; the user by default).

    Earlier codes of the binding die; the failure count carries over, unless
    `fresh_tries`: then each code has its own tries, for a binding that lives longer than
    one attempt (a recipient's link, which anyone who has its path can mistype) and whose
    owner counts failures across codes itself. The returned row tells whether delivery
    already failed (always known at once when tasks run inline).
    """
    previous = latest_code(binding)
    failures = previous.failures if previous and not fresh_tries else 0
    if failures >= MAX_CODE_FAILURES:
        raise TwoFactorError(code_exhausted_message(purpose), code="exhausted")
    # The hourly limits come first: when they refuse too, theirs is the real wait.
    reservation = ratelimit.reserve(
        [
            (SMS_PER_ACCOUNT, account_key),
            (SMS_PER_IP, ip or "unknown"),
            (SMS_PER_BINDING, binding),
        ]
    )
    if reservation.refused_by is SMS_PER_BINDING:
        wait = reservation.retry_after
        raise TwoFactorError(
            ngettext(
                "You can ask for a new code in %(n)d second.",
                "You can ask for a new code in %(n)d seconds.",
                wait,
            )
            % {"n": wait},
            status=429,
            code="cooldown",
            retry_after=wait,
        )
    if not reservation.allowed:
        raise _too_many_sms(reservation.retry_after)
    code = new_code()
    now = clock.now()
    try:
        with transaction.atomic():
            # Read again inside the write: a wrong try of the previous code that has just
            # been counted carries over.
            previous = (
                SMSCode.objects.select_for_update()
                .filter(binding=binding)
                .order_by("-created_at", "-pk")
                .first()
            )
            SMSCode.objects.filter(binding=binding, expires_at__gt=now).update(expires_at=now)
            row = SMSCode.objects.create(
                binding=binding,
                user=user,
                phone=phone,
                code_hash=hash_code(binding, code),
                created_at=now,
                expires_at=now + CODE_LIFETIME,
                failures=previous.failures if previous and not fresh_tries else 0,
            )
            # Queued, not sent: the outbox records sms.sent / email.sent (or failed) when
            # the gateway answered, and marks the code's delivery.
            audit.record(
                Action.TWOFACTOR_CODE_QUEUED,
                organisation=organisation,
                actor=user,
                target=target if target is not None else user,
                request=request,
                details={
                    "purpose": purpose,
                    "to": mask_phone(phone) if phone else "",
                    "channel": channel,
                },
            )
            reference = f"smscode:{row.pk}"
            if deliver is not None:
                deliver(code, reference)
            else:
                sms_tasks.queue_sms(
                    phone,
                    sms_text(code, language),
                    reference=reference,
                    organisation=organisation or getattr(user, "organisation", None),
                    target=target if target is not None else user,
                )
    except BaseException:
        reservation.release()  # nothing was sent: nothing counts
        raise
    row.refresh_from_db()
    return row


def code_exhausted_message(purpose: str) -> str:
    if purpose == "phone":
        return _("This code was mistyped too many times. Enter your number again to get a new one.")
    if purpose == "message":  # a recipient or an envelope submitter: no login to restart
        return _(
            "This code is no longer valid: it was mistyped too many times. Ask for a new code."
        )
    return _("This code was mistyped too many times. Log in again to get a new one.")


def check_code(binding: str, code: str) -> CodeResult:
    """Check a code against the latest one sent for `binding`; a wrong try counts."""
    now = clock.now()
    with transaction.atomic():
        row = (
            SMSCode.objects.select_for_update()
            .filter(binding=binding)
            .exclude(delivery=CodeDelivery.FAILED)
            .order_by("-created_at", "-pk")
            .first()
        )
        if row is None:
            return CodeResult.NO_CODE
        if row.failures >= MAX_CODE_FAILURES:
            return CodeResult.EXHAUSTED
        if row.used_at is not None:
            return CodeResult.USED
        if now >= row.expires_at:
            return CodeResult.EXPIRED
        if not code_matches(row.code_hash, binding, code):
            row.failures += 1
            row.save(update_fields=["failures"])
            if row.failures >= MAX_CODE_FAILURES:
                return CodeResult.WRONG_LAST_TRY
            return CodeResult.WRONG
        row.used_at = now
        row.save(update_fields=["used_at"])
        return CodeResult.OK


def code_result_message(result: CodeResult, purpose: str) -> str:
    return {
        CodeResult.WRONG: _("This code is not correct. Check the SMS and try again."),
        CodeResult.WRONG_LAST_TRY: code_exhausted_message(purpose),
        CodeResult.EXPIRED: _("This code has expired. Ask for a new code."),
        CodeResult.EXHAUSTED: code_exhausted_message(purpose),
        CodeResult.USED: _("This code was already used. Ask for a new code."),
        CodeResult.NO_CODE: _("No code has been sent yet. Ask for a code first."),
    }[result]


def mark_delivery(reference: str, delivery: str, reason: str = "", *, channel: str = "sms") -> None:
    """Record the outcome reported by the outbox (reference "smscode:<id>")."""
    kind, _sep, pk = reference.partition(":")
    if kind != "smscode" or not pk.isdigit():
        return
    with transaction.atomic():
        row = SMSCode.objects.select_related("user").filter(pk=int(pk)).first()
        if row is None:
            return
        row.delivery = delivery
        row.save(update_fields=["delivery"])
        if delivery == CodeDelivery.FAILED and latest_code(row.binding) == row:
            # A code that never arrived does not hold the person back from another.
            ratelimit.clear(SMS_PER_BINDING, row.binding)
        if delivery == CodeDelivery.FAILED and channel == "sms":
            audit.record(
                Action.TWOFACTOR_SMS_FAILED,
                actor=row.user,
                target=row.user,
                details={"to": mask_phone(row.phone), "reason": reason[:200]},
            )


def sms_not_sent_error() -> TwoFactorError:
    return TwoFactorError(_("We could not send the SMS. Please try again."), code="not_sent")


# --- Factors ---------------------------------------------------------------------------


def sms_device(user: User) -> SMSDevice | None:
    return SMSDevice.objects.filter(user=user, confirmed=True).first()


def totp_device(user: User) -> TOTPDevice | None:
    return TOTPDevice.objects.filter(user=user, confirmed=True).first()


def passkeys(user: User):
    return WebAuthnCredential.objects.filter(user=user, confirmed=True).order_by("pk")


def recovery_device(user: User) -> RecoveryCodeDevice | None:
    return RecoveryCodeDevice.objects.filter(user=user, confirmed=True).first()


def recovery_codes_left(user: User) -> int:
    device = recovery_device(user)
    return device.remaining() if device else 0


def primary_factors(user: User) -> list[str]:
    """The user's confirmed second factors (recovery codes are only a backup)."""
    factors = []
    if sms_device(user):
        factors.append(Factor.SMS)
    if totp_device(user):
        factors.append(Factor.TOTP)
    if passkeys(user).exists():
        factors.append(Factor.PASSKEY)
    return factors


def has_second_factor(user: User) -> bool:
    return bool(primary_factors(user))


def second_factor_required(user: User) -> bool:
    """Operators (who see every organisation) always need one; other users when their
    organisation's "Require 2FA for all users" is on."""
    return bool(user.is_staff or user.is_superuser or user.organisation.require_2fa)


def held_for_second_factor(user: User) -> bool:
    """True for a user who must set up a second factor before using anything else: not
    the portal, not the operator area, not the API (session or token)."""
    return second_factor_required(user) and not has_second_factor(user)


def held_message(user: User) -> str:
    if user.is_staff or user.is_superuser:
        return _(
            "Operators of this server must use two-factor authentication. Set up a second "
            "factor to continue."
        )
    return _(
        "Your organisation requires two-factor authentication. Set up a second factor to continue."
    )


def api_held_message() -> str:
    return _(
        "Two-factor authentication is required for your account: set up a second factor "
        "in your security settings (Account › Security settings), then try again."
    )


def login_methods(user: User) -> list[str]:
    methods = primary_factors(user)
    if methods and recovery_codes_left(user):
        methods.append(Factor.RECOVERY)
    return methods


def is_locked(user: User, factor: str) -> bool:
    return FactorLock.objects.filter(user=user, factor=factor, locked_at__isnull=False).exists()


def default_method(user: User) -> str:
    """The method used last (people tend to keep one); SMS first otherwise, as in the seed."""
    methods = [m for m in login_methods(user) if not is_locked(user, m)] or login_methods(user)
    if not methods:
        return Factor.SMS
    used = dict(
        FactorLock.objects.filter(user=user, last_used_at__isnull=False).values_list(
            "factor", "last_used_at"
        )
    )
    candidates = [m for m in methods if m != Factor.RECOVERY] or methods
    recent = [m for m in candidates if m in used]
    if recent:
        return max(recent, key=lambda m: used[m])
    return candidates[0]


def reserve_factor_try(user: User, factor: str) -> bool:
    """Count a try of this factor as a failure before the code is checked.

    False when the factor is locked, or when the tries in flight already reach the lock:
    parallel guesses can never exceed the limit. A right code resets the count
    (`register_success`); a try that does not count is given back.
    """
    FactorLock.objects.get_or_create(user=user, factor=factor)
    return ratelimit.take(
        FactorLock.objects.filter(user=user, factor=factor, locked_at__isnull=True),
        "failures",
        LOCK_AFTER_FAILURES,
    )


def release_factor_try(user: User, factor: str) -> None:
    ratelimit.give_back(
        FactorLock.objects.filter(user=user, factor=factor, locked_at__isnull=True), "failures"
    )


def confirm_factor_failure(user: User, factor: str, request: HttpRequest | None = None) -> bool:
    """The reserved try was wrong: lock the factor if it was the last. True if locked."""
    with transaction.atomic():
        newly_locked = FactorLock.objects.filter(
            user=user, factor=factor, locked_at__isnull=True, failures__gte=LOCK_AFTER_FAILURES
        ).update(locked_at=clock.now())
        if newly_locked:
            audit.record(
                Action.TWOFACTOR_LOCKED,
                actor=user,
                target=user,
                request=request,
                details={"method": factor, "failures": LOCK_AFTER_FAILURES},
            )
            _email(user, "factor_locked", {"method": Factor(factor).label})
    return is_locked(user, factor)


def register_failure(user: User, factor: str, request: HttpRequest | None = None) -> bool:
    """Count one more consecutive failure; lock the factor at the limit. True if locked."""
    if not reserve_factor_try(user, factor):
        return True
    return confirm_factor_failure(user, factor, request)


def register_success(user: User, factor: str) -> None:
    FactorLock.objects.update_or_create(
        user=user, factor=factor, defaults={"failures": 0, "last_used_at": clock.now()}
    )


def locked_message() -> str:
    return _(
        "This method is locked after too many wrong codes. Use another method, or ask "
        "your administrator to reset your two-factor authentication."
    )


def ensure_can_remove(user: User, factor: str) -> None:
    remaining = [f for f in primary_factors(user) if f != factor]
    if remaining or not second_factor_required(user):
        return
    if user.organisation.require_2fa:
        raise TwoFactorError(
            _(
                "Your organisation requires two-factor authentication: add another method "
                "before removing this one."
            ),
            code="required",
        )
    raise TwoFactorError(
        _("Operators must keep a second factor: add another method before removing this one."),
        code="required",
    )


def _verify_session_with_first_factor(
    request: HttpRequest | None, user: User, device, *, had_factor: bool
) -> None:
    """Setting up a first factor proves it in this very session: the session becomes
    verified, as if logged in with it. A user who already had a factor keeps the
    session's state: a password alone must never turn into a verified session while a
    factor exists that it did not prove."""
    if had_factor or request is None or not hasattr(request, "session"):
        return
    current = getattr(request, "user", None)
    if current is None or current.pk != user.pk:
        return
    otp_login(request, device)


def drop_orphan_recovery_codes(user: User) -> None:
    # Without any second factor, 2FA is off: leftover recovery codes would only mislead.
    if not has_second_factor(user):
        RecoveryCodeDevice.objects.filter(user=user).delete()


def _email(user: User, template: str, context: dict | None = None) -> None:
    notify.send_templated_email(
        user.email,
        subject_template=f"twofactor/email/{template}_subject.txt",
        text_template=f"twofactor/email/{template}.txt",
        context={
            "user_name": user.display_name,
            "base_url": settings.SEALBOX_BASE_URL,
            "when": clock.now(),
            **(context or {}),
        },
        language=user.language,
        organisation=user.organisation,
        target=user,
    )


# --- Phone (SMS factor) ----------------------------------------------------------------


def pending_phone_device(user: User) -> SMSDevice | None:
    return SMSDevice.objects.filter(user=user, confirmed=False).order_by("-pk").first()


def phone_binding(device: SMSDevice) -> str:
    return f"phone:{device.pk}"


def _send_phone_code(request: HttpRequest, user: User, device: SMSDevice) -> SMSCode:
    return send_code(
        binding=phone_binding(device),
        phone=str(device.number),
        language=user.language,
        account_key=f"user:{user.pk}",
        ip=client_ip(request),
        purpose="phone",
        user=user,
        request=request,
    )


def start_phone_confirmation(request: HttpRequest, user: User, number: str) -> SMSDevice:
    """Send a confirmation code to a new number. Nothing about the account changes until
    the code comes back, so a mistyped number can never lock anyone out.

    Needs a recent password: a stolen session must not move the codes to its own phone.
    """
    reauth.require_recent_authentication(request)
    pending = pending_phone_device(user)
    if pending is not None and str(pending.number) == number:
        device = pending
    else:
        SMSDevice.objects.filter(user=user, confirmed=False).delete()
        device = SMSDevice.objects.create(
            user=user, name=_("Mobile phone"), number=number, confirmed=False
        )
    try:
        code = _send_phone_code(request, user, device)
    except TwoFactorError:
        if device is not pending:
            device.delete()
        raise
    if code.delivery == CodeDelivery.FAILED:
        device.delete()
        raise sms_not_sent_error()
    return device


def resend_phone_code(request: HttpRequest, user: User) -> SMSCode:
    device = pending_phone_device(user)
    if device is None:
        raise TwoFactorError(_("Enter your mobile phone number first."), code="no_phone")
    code = _send_phone_code(request, user, device)
    if code.delivery == CodeDelivery.FAILED:
        raise sms_not_sent_error()
    return code


def cancel_phone_confirmation(user: User) -> None:
    SMSDevice.objects.filter(user=user, confirmed=False).delete()


def confirm_phone(request: HttpRequest, user: User, code: str) -> SMSDevice:
    """The code sent to the new number came back: it becomes the SMS factor at once."""
    device = pending_phone_device(user)
    if device is None:
        raise TwoFactorError(_("Enter your mobile phone number first."), code="no_phone")
    result = check_code(phone_binding(device), code)
    if result is not CodeResult.OK:
        audit.record(
            Action.TWOFACTOR_FAILED,
            actor=user,
            target=user,
            request=request,
            details={"method": Factor.SMS, "purpose": "phone", "reason": result.value},
        )
        raise TwoFactorError(code_result_message(result, "phone"), code=result.value)
    had_factor = has_second_factor(user)
    with transaction.atomic():
        previous = sms_device(user)
        SMSDevice.objects.filter(user=user, confirmed=True).delete()
        device.confirmed = True
        device.save(update_fields=["confirmed"])
        old_number = user.mobile_phone
        user.mobile_phone = device.number
        user.save(update_fields=["mobile_phone"])
        # A newly proven phone starts with a clean failure count.
        FactorLock.objects.filter(user=user, factor=Factor.SMS).delete()
        if previous is None:
            audit.record(
                Action.TWOFACTOR_ENABLED,
                actor=user,
                target=user,
                request=request,
                details={"method": Factor.SMS, "phone": mask_phone(device.number)},
            )
            _email(user, "factor_added", {"method": Factor.SMS.label})
        if previous is None and str(old_number or "") != str(device.number):
            _phone_changed(request, user, old_number, device.number, email=False)
        elif previous is not None:
            _phone_changed(request, user, previous.number, device.number, email=True)
    _verify_session_with_first_factor(request, user, device, had_factor=had_factor)
    return device


def _phone_changed(
    request: HttpRequest, user: User, old: object, new: object, *, email: bool
) -> None:
    audit.record(
        Action.TWOFACTOR_PHONE_CHANGED,
        actor=user,
        target=user,
        request=request,
        details={"from": mask_phone(old), "to": mask_phone(new)},
    )
    if email:
        _email(user, "phone_changed", {"old": mask_phone(old), "new": mask_phone(new)})


def change_mobile_phone(request: HttpRequest, user: User, number: str) -> bool:
    """Change the number on file while SMS 2FA is off (no code is sent to it)."""
    if sms_device(user) is not None:
        raise TwoFactorError(
            _("Confirm a new number with a code to change the number that receives codes."),
            code="sms_on",
        )
    if str(user.mobile_phone or "") == number:
        return False
    reauth.require_recent_authentication(request)
    with transaction.atomic():
        old = user.mobile_phone
        user.mobile_phone = number
        user.save(update_fields=["mobile_phone"])
        _phone_changed(request, user, old, number, email=True)
    return True


def disable_sms(request: HttpRequest, user: User) -> None:
    device = sms_device(user)
    if device is None:
        return
    reauth.require_recent_authentication(request)
    ensure_can_remove(user, Factor.SMS)
    with transaction.atomic():
        SMSDevice.objects.filter(user=user).delete()
        audit.record(
            Action.TWOFACTOR_DISABLED,
            actor=user,
            target=user,
            request=request,
            details={"method": Factor.SMS},
        )
        drop_orphan_recovery_codes(user)
        _email(user, "factor_removed", {"method": Factor.SMS.label})


# --- Authenticator app (TOTP) --------------------------------------------------------


def start_totp_setup(user: User) -> TOTPDevice:
    """The unconfirmed authenticator being set up (a new 160-bit secret if none)."""
    device = TOTPDevice.objects.filter(user=user, confirmed=False).order_by("-pk").first()
    if device is None:
        device = TOTPDevice.objects.create(
            user=user,
            name=_("Authenticator app"),
            confirmed=False,
            key=random_hex(TOTP_KEY_BYTES),
            step=TOTP_STEP,
            digits=TOTP_DIGITS,
            tolerance=TOTP_TOLERANCE,
            drift=0,
        )
    return device


def totp_matches(device: TOTPDevice, code: str) -> bool:
    """Check a code on Sealbox's clock, within ±tolerance steps, and never at or before
    the step of the last accepted code (no replay). Updates last_t; the caller saves."""
    if not code.isdigit():
        return False
    totp = TOTP(device.bin_key, device.step, device.t0, device.digits, 0)
    totp.time = clock.now().timestamp()
    # No drift learning: the accepted window stays exactly one step either side.
    if totp.verify(int(code), device.tolerance, device.last_t + 1):
        device.last_t = totp.t()
        return True
    return False


def totp_secret_text(device: TOTPDevice) -> str:
    key = base64.b32encode(device.bin_key).decode()
    return " ".join(key[i : i + 4] for i in range(0, len(key), 4))


def totp_qr_data_uri(device: TOTPDevice) -> str:
    return segno.make(device.config_url, error="m").svg_data_uri(scale=5, border=2)


def confirm_totp(request: HttpRequest, user: User, code: str) -> TOTPDevice:
    had_factor = has_second_factor(user)
    with transaction.atomic():
        device = (
            TOTPDevice.objects.select_for_update()
            .filter(user=user, confirmed=False)
            .order_by("-pk")
            .first()
        )
        if device is None:
            raise TwoFactorError(_("Start the set-up again."), code="no_device")
        if not totp_matches(device, code):
            ok = False
        else:
            ok = True
            replaced = TOTPDevice.objects.filter(user=user, confirmed=True).exists()
            TOTPDevice.objects.filter(user=user, confirmed=True).delete()
            device.confirmed = True
            device.save(update_fields=["confirmed", "last_t"])
            FactorLock.objects.filter(user=user, factor=Factor.TOTP).delete()
            audit.record(
                Action.TWOFACTOR_ENABLED,
                actor=user,
                target=user,
                request=request,
                details={"method": Factor.TOTP, "replaced": replaced},
            )
            _email(user, "factor_added", {"method": Factor.TOTP.label})
    if not ok:
        audit.record(
            Action.TWOFACTOR_FAILED,
            actor=user,
            target=user,
            request=request,
            details={"method": Factor.TOTP, "purpose": "setup", "reason": "wrong"},
        )
        raise TwoFactorError(
            _("This code is not correct. Check the time on your phone and try again."),
            code="wrong",
        )
    _verify_session_with_first_factor(request, user, device, had_factor=had_factor)
    return device


def remove_totp(request: HttpRequest, user: User) -> None:
    if totp_device(user) is None:
        return
    ensure_can_remove(user, Factor.TOTP)
    with transaction.atomic():
        TOTPDevice.objects.filter(user=user).delete()
        audit.record(
            Action.TWOFACTOR_DISABLED,
            actor=user,
            target=user,
            request=request,
            details={"method": Factor.TOTP},
        )
        drop_orphan_recovery_codes(user)
        _email(user, "factor_removed", {"method": Factor.TOTP.label})


# --- Passkeys (WebAuthn) ---------------------------------------------------------------


def _webauthn_helper(request: HttpRequest):
    return WebAuthnCredential.get_webauthn_helper(request=request)


def passkey_register_begin(request: HttpRequest, user: User) -> dict:
    options, state = _webauthn_helper(request).register_begin(user=user)
    request.session[SESSION_PASSKEY_REGISTER_STATE] = state
    return options


def passkey_register_complete(
    request: HttpRequest, user: User, data: dict, name: str
) -> WebAuthnCredential:
    from django_otp_webauthn.utils import rewrite_exceptions

    state = request.session.pop(SESSION_PASSKEY_REGISTER_STATE, None)
    request.session.modified = True
    if not state:
        raise TwoFactorError(_("Start adding the passkey again."), code="no_state")
    had_factor = has_second_factor(user)
    try:
        with transaction.atomic(), rewrite_exceptions(logger=None):
            device = _webauthn_helper(request).register_complete(user=user, state=state, data=data)
            device.name = (name or "").strip()[:64] or _("Passkey")
            device.save(update_fields=["name"])
            audit.record(
                Action.TWOFACTOR_ENABLED,
                actor=user,
                target=user,
                request=request,
                details={"method": Factor.PASSKEY, "name": device.name},
            )
            _email(user, "factor_added", {"method": Factor.PASSKEY.label})
    except TwoFactorError:
        raise
    except Exception as error:
        raise TwoFactorError(
            _("The passkey could not be added: %(reason)s") % {"reason": _plain_error(error)},
            code="webauthn",
        ) from None
    _verify_session_with_first_factor(request, user, device, had_factor=had_factor)
    return device


def _plain_error(error: Exception) -> str:
    return str(getattr(error, "detail", "") or error.__class__.__name__)[:200]


def rename_passkey(request: HttpRequest, user: User, pk: int, name: str) -> WebAuthnCredential:
    device = passkeys(user).get(pk=pk)
    name = (name or "").strip()[:64]
    if not name:
        raise TwoFactorError(_("Give the passkey a name."), code="name")
    with transaction.atomic():
        device.name = name
        device.save(update_fields=["name"])
        audit.record(
            Action.TWOFACTOR_PASSKEY_RENAMED,
            actor=user,
            target=user,
            request=request,
            details={"name": name},
        )
    return device


def remove_passkey(request: HttpRequest, user: User, pk: int) -> None:
    device = passkeys(user).get(pk=pk)
    if passkeys(user).count() == 1:
        ensure_can_remove(user, Factor.PASSKEY)
    with transaction.atomic():
        name = device.name
        device.delete()
        audit.record(
            Action.TWOFACTOR_DISABLED,
            actor=user,
            target=user,
            request=request,
            details={"method": Factor.PASSKEY, "name": name},
        )
        drop_orphan_recovery_codes(user)
        _email(user, "factor_removed", {"method": f"{Factor.PASSKEY.label} ({name})"})


# --- Recovery codes ---------------------------------------------------------------------


def new_recovery_code() -> str:
    raw = "".join(secrets.choice(RECOVERY_ALPHABET) for _ in range(RECOVERY_CODE_LENGTH))
    return "-".join(raw[i : i + 4] for i in range(0, RECOVERY_CODE_LENGTH, 4))


def generate_recovery_codes(request: HttpRequest, user: User) -> list[str]:
    """Ten new codes replace any earlier ones. Only their hashes are kept: the caller
    shows them once."""
    if not has_second_factor(user):
        raise TwoFactorError(
            _("Turn on a second factor first: recovery codes are its backup."),
            code="no_factor",
        )
    codes = [new_recovery_code() for _ in range(RECOVERY_CODE_COUNT)]
    with transaction.atomic():
        replaced = RecoveryCodeDevice.objects.filter(user=user).exists()
        RecoveryCodeDevice.objects.filter(user=user).delete()
        device = RecoveryCodeDevice.objects.create(
            user=user, name=_("Recovery codes"), confirmed=True, created_at=clock.now()
        )
        RecoveryCode.objects.bulk_create(
            RecoveryCode(device=device, code_hash=recovery_code_hash(code)) for code in codes
        )
        FactorLock.objects.filter(user=user, factor=Factor.RECOVERY).delete()
        audit.record(
            Action.TWOFACTOR_ENABLED,
            actor=user,
            target=user,
            request=request,
            details={"method": Factor.RECOVERY, "count": len(codes), "replaced": replaced},
        )
        _email(user, "factor_added", {"method": _("Recovery codes")})
    return codes


def unused_recovery_codes_among(user: User, codes: list[str]) -> list[str]:
    """The given codes that are the user's unused codes (for the one-time download)."""
    device = recovery_device(user)
    if device is None:
        return []
    unused = set(device.codes.filter(used_at__isnull=True).values_list("code_hash", flat=True))
    return [code for code in codes if recovery_code_hash(code) in unused]


# --- The login step ---------------------------------------------------------------------


def needs_second_step(user: User) -> bool:
    return has_second_factor(user)


def start_login(request: HttpRequest, user: User, next_url: str = "") -> PendingLogin:
    """The password was right: remember the attempt (not a session) for 10 minutes."""
    now = clock.now()
    with transaction.atomic():
        pending = PendingLogin.objects.create(
            id=secrets.token_urlsafe(32),
            user=user,
            created_at=now,
            expires_at=now + PENDING_LOGIN_LIFETIME,
            ip=client_ip(request),
            method=default_method(user),
            next_url=next_url[:2000],
        )
        audit.record(
            Action.TWOFACTOR_REQUIRED,
            actor=user,
            target=user,
            request=request,
            details={"methods": login_methods(user)},
        )
    request.session[SESSION_PENDING] = pending.pk
    return pending


def current_pending_login(request: HttpRequest) -> PendingLogin | None:
    pk = request.session.get(SESSION_PENDING)
    if not pk:
        return None
    pending = (
        PendingLogin.objects.select_related("user", "user__organisation").filter(pk=pk).first()
    )
    if pending is None or not pending.is_live() or not pending.user.is_active:
        return None
    return pending


def forget_pending_login(request: HttpRequest) -> None:
    request.session.pop(SESSION_PENDING, None)


def choose_method(pending: PendingLogin, method: str) -> None:
    if method not in login_methods(pending.user):
        raise TwoFactorError(_("This method is not available."), code="method")
    pending.method = method
    pending.save(update_fields=["method"])


def send_login_code(request: HttpRequest, pending: PendingLogin) -> SMSCode:
    _require_live(pending)
    user = pending.user
    device = sms_device(user)
    if device is None:
        raise TwoFactorError(_("This method is not available."), code="method")
    if is_locked(user, Factor.SMS):
        raise TwoFactorError(locked_message(), code="locked")
    code = send_code(
        binding=pending.binding,
        phone=str(device.number),
        language=user.language,
        account_key=f"user:{user.pk}",
        ip=client_ip(request),
        purpose="login",
        user=user,
        request=request,
    )
    if code.delivery == CodeDelivery.FAILED:
        raise sms_not_sent_error()
    return code


def _require_live(pending: PendingLogin) -> None:
    if not PendingLogin.objects.filter(
        pk=pending.pk, completed_at__isnull=True, expires_at__gt=clock.now()
    ).exists():
        raise PendingLoginExpired()


def _login_failed(
    request: HttpRequest,
    pending: PendingLogin,
    method: str,
    reason: str,
    *,
    counts: bool,
    reserved: bool = True,
) -> bool:
    """Record a failed second step; True if the factor is now locked. `reserved`: a try
    of the factor was reserved, which this failure confirms or gives back."""
    user = pending.user
    with transaction.atomic():
        audit.record(
            Action.TWOFACTOR_FAILED,
            actor=user,
            target=user,
            request=request,
            details={"method": method, "purpose": "login", "reason": reason},
        )
        if reserved and counts:
            return confirm_factor_failure(user, method, request)
        if reserved:
            release_factor_try(user, method)
        return False


def verify_login(request: HttpRequest, pending: PendingLogin, method: str, code: str) -> None:
    """Check the second factor of a pending login and, if right, open the session.

    Every limit on the code (the factor's lock, the attempt's tries) is taken before the
    code is checked, so parallel requests cannot check more codes than they allow.
    """
    _require_live(pending)
    user = pending.user
    if method not in login_methods(user) or method == Factor.PASSKEY:
        raise TwoFactorError(_("This method is not available."), code="method")
    if not reserve_factor_try(user, method):
        raise TwoFactorError(locked_message(), code="locked")
    if method == Factor.SMS:
        # The code itself counts its wrong tries (check_code, under the code's lock).
        result = check_code(pending.binding, code)
        if result is not CodeResult.OK:
            counts = result in (CodeResult.WRONG, CodeResult.WRONG_LAST_TRY)
            locked = _login_failed(request, pending, method, result.value, counts=counts)
            message = locked_message() if locked else code_result_message(result, "login")
            raise TwoFactorError(message, code=result.value)
        _finish_reserved_login(request, pending, method, sms_device(user))
        return
    # Authenticator-app and recovery codes: the attempt itself allows 5 wrong tries.
    attempt = PendingLogin.objects.filter(pk=pending.pk)
    if not ratelimit.take(attempt, "failures", MAX_CODE_FAILURES):
        release_factor_try(user, method)
        raise TwoFactorError(code_exhausted_message("login"), code="exhausted")
    device, ok = _check_static_or_totp(user, method, code)
    if not ok:
        locked = _login_failed(request, pending, method, "wrong", counts=True)
        if locked:
            raise TwoFactorError(locked_message(), code="locked")
        if attempt.filter(failures__gte=MAX_CODE_FAILURES).exists():
            raise TwoFactorError(code_exhausted_message("login"), code="exhausted")
        raise TwoFactorError(
            _("This code is not correct. Try again.")
            if method == Factor.TOTP
            else _("This recovery code is not correct or was already used."),
            code="wrong",
        )
    ratelimit.give_back(attempt, "failures")
    if method == Factor.RECOVERY:
        _recovery_code_used(request, user, device)
    _finish_reserved_login(request, pending, method, device)


def _finish_reserved_login(request: HttpRequest, pending: PendingLogin, method: str, device):
    try:
        finish_login(request, pending, method, device)
    except PendingLoginExpired:
        # A right code for an attempt that ended meanwhile is no wrong guess.
        release_factor_try(pending.user, method)
        raise


def _check_static_or_totp(user: User, method: str, code: str):
    with transaction.atomic():
        if method == Factor.TOTP:
            device = (
                TOTPDevice.objects.select_for_update().filter(user=user, confirmed=True).first()
            )
            if device is None:
                return None, False
            ok = totp_matches(device, code)
            if ok:
                device.save(update_fields=["last_t"])
            return device, ok
        device = recovery_device(user)
        if device is None:
            return None, False
        return device, device.verify_token(code)


def _recovery_code_used(request: HttpRequest, user: User, device: RecoveryCodeDevice) -> None:
    remaining = device.remaining()
    audit.record(
        Action.TWOFACTOR_RECOVERY_CODE_USED,
        actor=user,
        target=user,
        request=request,
        details={"remaining": remaining},
    )
    _email(user, "recovery_code_used", {"remaining": remaining})


def finish_login(request: HttpRequest, pending: PendingLogin, method: str, device=None) -> None:
    """The factor is verified: open the session (new session id) and start the clocks."""
    now = clock.now()
    with transaction.atomic():
        done = PendingLogin.objects.filter(
            pk=pending.pk, completed_at__isnull=True, expires_at__gt=now
        ).update(completed_at=now)
        if not done:
            raise PendingLoginExpired()
        register_success(pending.user, method)
        audit.record(
            Action.TWOFACTOR_VERIFIED,
            actor=pending.user,
            target=pending.user,
            request=request,
            details={"method": method},
        )
        accounts.complete_login(request, pending.user)
    if device is not None:
        otp_login(request, device)
    forget_pending_login(request)
    reauth.mark_authenticated(request, now.timestamp())


def passkey_login_begin(request: HttpRequest, pending: PendingLogin) -> dict:
    _require_live(pending)
    if not passkeys(pending.user).exists():
        raise TwoFactorError(_("This method is not available."), code="method")
    options, state = _webauthn_helper(request).authenticate_begin(
        user=pending.user, require_user_verification=False
    )
    request.session[SESSION_PASSKEY_STATE] = {"state": state, "pending": pending.pk}
    return options


def passkey_login_complete(request: HttpRequest, pending: PendingLogin, data: dict) -> None:
    from django_otp_webauthn.utils import rewrite_exceptions

    _require_live(pending)
    # The challenge is used once, whatever happens next.
    saved = request.session.pop(SESSION_PASSKEY_STATE, None)
    request.session.modified = True
    if not saved or saved.get("pending") != pending.pk:
        raise TwoFactorError(_("Start again with the passkey button."), code="no_state")
    try:
        with rewrite_exceptions(logger=None):
            device = _webauthn_helper(request).authenticate_complete(
                user=pending.user, state=saved["state"], data=data
            )
    except Exception as error:
        _login_failed(
            request, pending, Factor.PASSKEY, _plain_error(error), counts=False, reserved=False
        )
        raise TwoFactorError(
            _("The passkey could not be verified. Try again or use another method."),
            code="webauthn",
        ) from None
    if not device.confirmed or device.user_id != pending.user_id:
        raise TwoFactorError(_("This passkey cannot be used."), code="webauthn")
    finish_login(request, pending, Factor.PASSKEY, device)


# --- Organisation policy and administrator reset -----------------------------------


def _require_admin_of(actor: User, organisation: Organisation) -> None:
    if not (actor.is_org_admin and actor.organisation_id == organisation.pk):
        raise PermissionDenied


def set_require_2fa(
    request: HttpRequest, actor: User, organisation: Organisation, required: bool
) -> bool:
    _require_admin_of(actor, organisation)
    if organisation.require_2fa == required:
        return False
    with transaction.atomic():
        organisation.require_2fa = required
        organisation.save(update_fields=["require_2fa"])
        audit.record(
            Action.TWOFACTOR_POLICY_CHANGED,
            organisation=organisation,
            actor=actor,
            target=organisation,
            request=request,
            details={"require_2fa": required},
        )
    return True


def remove_all_factors(user: User) -> None:
    """Every second factor of the user and its failure counts go (the caller records
    why, in its transaction: a reset, a deleted account)."""
    SMSDevice.objects.filter(user=user).delete()
    TOTPDevice.objects.filter(user=user).delete()
    WebAuthnCredential.objects.filter(user=user).delete()
    RecoveryCodeDevice.objects.filter(user=user).delete()
    FactorLock.objects.filter(user=user).delete()


def phone_changed_by_admin(
    request: HttpRequest | None, actor: User, target: User, old: object, new: str
) -> None:
    """An administrator changed the number on file (users' edit page, in its
    transaction): the SMS factor, if any, follows the number."""
    audit.record(
        Action.TWOFACTOR_PHONE_CHANGED,
        organisation=actor.organisation,
        actor=actor,
        target=target,
        request=request,
        details={"from": mask_phone(old), "to": mask_phone(new)},
    )
    SMSDevice.objects.filter(user=target, confirmed=True).update(number=new)


def set_sms_by_admin(request: HttpRequest | None, actor: User, target: User, number: str) -> None:
    """An administrator vouches for `number`: it becomes the user's confirmed SMS factor
    at once (no code is sent), and the next login asks for the code sent to it; an
    empty number turns SMS off. In the caller's transaction; the caller tells the user."""
    _require_admin_of(actor, target.organisation)
    SMSDevice.objects.filter(user=target).delete()
    if not number:
        drop_orphan_recovery_codes(target)
        audit.record(
            Action.TWOFACTOR_DISABLED,
            organisation=actor.organisation,
            actor=actor,
            target=target,
            request=request,
            details={"method": Factor.SMS, "by": "admin"},
        )
        return
    SMSDevice.objects.create(
        user=target, name=str(_("Mobile phone")), number=number, confirmed=True
    )
    FactorLock.objects.filter(user=target, factor=Factor.SMS).delete()
    audit.record(
        Action.TWOFACTOR_ENABLED,
        organisation=actor.organisation,
        actor=actor,
        target=target,
        request=request,
        details={"method": Factor.SMS, "phone": mask_phone(number), "by": "admin"},
    )


def reset_factors(request: HttpRequest, actor: User, target: User) -> None:
    """An administrator removes every second factor of a user of their organisation
    (lost phone, locked factor). The user sets up a new one at their next login."""
    _require_admin_of(actor, target.organisation)
    if actor.pk == target.pk:
        raise TwoFactorError(
            _("Use your own security settings to change your second factors."), code="self"
        )
    with transaction.atomic():
        methods = login_methods(target)
        remove_all_factors(target)
        PendingLogin.objects.filter(user=target, completed_at__isnull=True).update(
            expires_at=clock.now()
        )
        audit.record(
            Action.TWOFACTOR_RESET,
            organisation=target.organisation,
            actor=actor,
            target=target,
            request=request,
            details={"methods": methods},
        )
        _email(target, "factors_reset", {"admin_name": actor.display_name})


def organisation_members(actor: User):
    return User.objects.filter(organisation=actor.organisation).order_by("email")


def user_status(user: User) -> dict:
    locks = set(
        FactorLock.objects.filter(user=user, locked_at__isnull=False).values_list(
            "factor", flat=True
        )
    )
    return {"user": user, "methods": primary_factors(user), "locked": sorted(locks)}


def purge_expired(older_than: timedelta = timedelta(days=1)) -> int:
    """Delete SMS codes and pending logins that ended long ago (rows hold no secret,
    only HMACs, but they need not pile up)."""
    cutoff = clock.now() - older_than
    codes, _d = SMSCode.objects.filter(expires_at__lt=cutoff).delete()
    logins, _d = PendingLogin.objects.filter(expires_at__lt=cutoff).delete()
    return codes + logins
