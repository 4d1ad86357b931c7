"""Verification codes for recipients (SMS or email), on the same rules as login codes:
6 digits, 10 minutes, single use, bound to the grant, 5 wrong tries, 60 s between sends,
sending limits per recipient and per IP address."""

from __future__ import annotations

from collections.abc import Callable

from django.http import HttpRequest
from django.utils.translation import gettext as _

from sealbox.exchange.models import Grant, Verification
from sealbox.lib.http import client_ip
from sealbox.twofactor import services as codes


def binding(grant: Grant) -> str:
    return f"grant:{grant.pk}"


def send(grant: Grant, request: HttpRequest | None = None) -> codes.SMSCode:
    """Send a new code to the recipient by the channel their grant uses."""
    from sealbox.exchange import notifications

    message = grant.message
    common = {
        "binding": binding(grant),
        "language": message.language,
        "account_key": f"grant:{grant.token}",
        "ip": client_ip(request) if request else None,
        "purpose": "message",
        "organisation": message.organisation,
        "target": message,
        "request": request,
        # A code dies after 5 wrong tries and the next one starts afresh: the grant counts
        # failures across codes and locks at the limit (exchange.services.count_proof_failure).
        "fresh_tries": True,
    }
    if grant.verification == Verification.SMS_CODE:
        return codes.send_code(phone=grant.phone, **common)
    return codes.send_code(
        phone="",
        channel="email",
        deliver=lambda code, reference: notifications.send_recipient_code(
            grant, code, reference=reference
        ),
        **common,
    )


def resend_wait(grant: Grant) -> int:
    """Seconds before the recipient may ask for another code (the resend cooldown)."""
    return codes.resend_wait(binding(grant))


def check(grant: Grant, code: str) -> tuple[bool, str]:
    """(True, "") when the code is right; otherwise (False, what to tell the person)."""
    result = codes.check_code(binding(grant), code.strip())
    if result == codes.CodeResult.OK:
        return True, ""
    return False, codes.code_result_message(result, "message")


def send_or_refuse(send: Callable[[], codes.SMSCode]) -> codes.SMSCode:
    """Run a code-sending call; its refusals and failed deliveries become API errors."""
    from sealbox.exchange.services import ExchangeError

    try:
        row = send()
    except codes.TwoFactorError as error:
        raise ExchangeError(
            error.message, status=error.status, code=error.code, retry_after=error.retry_after
        ) from None
    if row.delivery == "failed":
        raise ExchangeError(
            _("We could not send the code. Try again in a minute."),
            status=502,
            code="not_delivered",
        )
    return row
