"""Emails of the exchange: the recipient's link, codes, and open notices to the sender.

Every email is sealed in the notify outbox while queued and erased once delivered (never
stored in clear; see sealbox.notify.sealing). Each email's outcome is audited by the
outbox (`email.sent` once the mail server accepted it, `email.failed`) in the message's
organisation, on the message, with the reference `grant:<id>` of the recipient it was
for: the History shows a recipient whose link never left as "Email not delivered".
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.http import HttpRequest

from sealbox.audit import services as audit
from sealbox.audit.actions import Action
from sealbox.exchange.models import Grant, Message, Verification

# The one masking helper, where it lives today (exchange.api takes it from there too);
# it moves to sealbox.lib.phones with issue 12's lower layer.
from sealbox.lib.phones import mask_phone
from sealbox.notify import services as notify


def brand(organisation) -> notify.Brand:
    """The organisation's letterhead in its emails: name, colour, logo (embedded in the
    email, never fetched from the server), postal address and phone if set."""
    return notify.Brand(
        organisation=organisation.name,
        accent=organisation.accent_colour or "",
        logo=bytes(organisation.logo or b"") if organisation.logo_type else b"",
        logo_type=organisation.logo_type,
        postal_address=getattr(organisation, "postal_address", ""),
        phone=getattr(organisation, "phone", ""),
    )


def on_behalf_of(user) -> dict:
    """The From display name and Reply-To of an email sent for `user` (a member): the
    recipient sees who it is from, and answering reaches that person, not a no-reply."""
    return {
        "from_name": notify.via_sealbox(user.display_name, user.organisation.name),
        "reply_to": notify.reply_to_header(user.display_name, user.email),
    }


def _context(message: Message, grant: Grant) -> dict:
    return {
        "organisation": message.organisation.name,
        "sender_name": message.sender.display_name,
        "sender_email": message.sender.email,
        # Hidden from the email when the sender chose so (it stays in their History).
        "subject": message.subject if message.show_subject else "",
        "expires_at": grant.expires_at or message.expires_at,
        "verification": grant.verification,
        "masked_phone": mask_phone(grant.phone) if grant.phone else "",
    }


def grant_reference(grant: Grant) -> str:
    """The outbox reference of the emails that bring a recipient their link."""
    return f"grant:{grant.pk}"


def _send(
    grant: Grant, template: str, context: dict, *, sensitive: bool, reference: str = ""
) -> None:
    message = grant.message
    notify.send_templated_email(
        grant.email,
        subject_template=f"exchange/email/{template}_subject.txt",
        text_template=f"exchange/email/{template}.txt",
        html_template=f"exchange/email/{template}.html",
        context=context,
        language=message.language,
        sensitive=sensitive,
        organisation=message.organisation,
        target=message,
        reference=reference or grant_reference(grant),
        brand=brand(message.organisation),
        time_zone=message.sender.time_zone,
        **on_behalf_of(message.sender),
    )


def send_recipient_notification(
    message: Message,
    grant: Grant,
    link: str,
    *,
    opening_code: str = "",
    request: HttpRequest | None = None,
) -> None:
    """Email the recipient their link (and the opening code, here or in a second email)."""
    separate = message.organisation.opening_code_in_separate_email
    context = _context(message, grant) | {"link": link}
    if opening_code and not separate:
        context["opening_code"] = opening_code
    _send(grant, "notification", context, sensitive=True)
    if opening_code and separate:
        _send(
            grant,
            "opening_code",
            _context(message, grant) | {"code": opening_code, "verification": ""},
            sensitive=True,
        )
    # Queued, not sent: the outbox records email.sent (or email.failed) when the mail
    # server answered.
    audit.record(
        Action.NOTIFICATION_QUEUED,
        organisation=message.organisation,
        actor=message.sender,
        target=message,
        request=request,
        details={
            "reference": message.reference,
            "to": grant.email,
            "opening_code": "separate email"
            if opening_code and separate
            else ("same email" if opening_code else "none"),
        },
    )


def _to_sender(
    message: Message, grant: Grant | None, template: str, context: dict, **extra: Any
) -> None:
    """An email to the message's sender (their copy, a reply, an open notice): from
    Sealbox itself, in their language and time zone, with their organisation's letterhead."""
    sender = message.sender
    notify.send_templated_email(
        sender.email,
        subject_template=f"exchange/email/{template}_subject.txt",
        text_template=f"exchange/email/{template}.txt",
        html_template=f"exchange/email/{template}.html",
        context=context,
        language=sender.language,
        organisation=message.organisation,
        target=message,
        reference=grant_reference(grant) if grant is not None else "",
        brand=brand(message.organisation),
        time_zone=sender.time_zone,
        **extra,
    )


def send_sender_copy(message: Message, grant: Grant, link: str) -> None:
    """The sender's own copy: a link only they can open, while logged in."""
    context = {
        "subject": message.subject,
        "reference": message.reference,
        "link": link,
        "expires_at": message.expires_at,
        "verification": Verification.ACCOUNT,
    }
    _to_sender(message, grant, "copy", context, sensitive=True)


def send_reply_link(message: Message, grant: Grant, link: str) -> None:
    """The original sender's link to a reply (only they can open it, while logged in).
    From the person who replied ("client@example.org via Sealbox"), answering reaches them."""
    parent = message.parent
    replier = message.replied_by.email if message.replied_by else ""
    context = {
        "replier": replier,
        "sender_name": replier,
        "subject": parent.subject,
        "reference": parent.reference,
        "link": link,
        "expires_at": message.expires_at,
        "verification": Verification.ACCOUNT,
    }
    extra: dict[str, Any] = {"sensitive": True}
    if replier:
        extra |= {
            "from_name": notify.via_sealbox(replier),
            "reply_to": notify.reply_to_header("", replier),
        }
    _to_sender(message, grant, "reply", context, **extra)


def send_recipient_code(grant: Grant, code: str, *, reference: str = "") -> None:
    """A verification code by email; `reference` is the code's, for its delivery report."""
    _send(
        grant,
        "code",
        # The code's own lifetime is said in the email; the message's would confuse.
        _context(grant.message, grant) | {"code": code, "verification": "", "expires_at": None},
        sensitive=True,
        reference=reference or f"code:{grant.pk}",
    )


def send_open_notification(grant: Grant, opened_at: datetime) -> None:
    message = grant.message
    context = {
        "recipient": grant.email,
        "subject": message.subject,
        "reference": message.reference,
        "opened_at": opened_at,
        "opens": grant.opens,
        "max_opens": grant.max_opens,
    }
    _to_sender(message, None, "opened", context)


__all__ = [
    "Verification",
    "brand",
    "on_behalf_of",
    "send_open_notification",
    "send_recipient_code",
    "send_recipient_notification",
]
