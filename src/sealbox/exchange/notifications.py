"""Emails of the exchange: the recipient's link, codes, and open notices to the sender.

Every email is sealed in the notify outbox while queued and erased once delivered (never
stored in clear; see sealbox.notify.sealing). Each email's outcome is audited by the
outbox (`email.sent` once the mail server accepted it, `email.failed`) in the message's
organisation, on the message, with the reference `grant:<id>` of the recipient it was
for: the History shows a recipient whose link never left as "Email not delivered".
"""

from __future__ import annotations

from datetime import datetime

from django.http import HttpRequest

from sealbox.audit import services as audit
from sealbox.audit.actions import Action
from sealbox.exchange.models import Grant, Message, Verification
from sealbox.notify import services as notify


def brand(organisation) -> dict:
    """Logo and accent colour for the HTML emails (absolute URLs: mail clients fetch them)."""
    from django.conf import settings
    from django.urls import reverse

    logo_url = ""
    if organisation.logo_type:
        logo_url = settings.SEALBOX_BASE_URL + reverse("users:logo", args=[organisation.pk])
    return {"logo_url": logo_url, "accent": organisation.accent_colour or "#1f5fbf"}


def _context(message: Message, grant: Grant) -> dict:
    return brand(message.organisation) | {
        "organisation": message.organisation.name,
        "sender_name": message.sender.display_name,
        "sender_email": message.sender.email,
        "subject": message.subject if message.show_subject else "",
        "expires_at": message.expires_at,
        "grant": grant,
        "verification": grant.verification,
    }


def grant_reference(grant: Grant) -> str:
    """The outbox reference of the emails that bring a recipient their link."""
    return f"grant:{grant.pk}"


def _send(
    grant: Grant, template: str, context: dict, *, sensitive: bool, reference: str = ""
) -> None:
    notify.send_templated_email(
        grant.email,
        subject_template=f"exchange/email/{template}_subject.txt",
        text_template=f"exchange/email/{template}.txt",
        html_template=f"exchange/email/{template}.html",
        context=context,
        language=grant.message.language,
        sensitive=sensitive,
        organisation=grant.message.organisation,
        target=grant.message,
        reference=reference or grant_reference(grant),
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
            _context(message, grant) | {"opening_code": opening_code},
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


def send_sender_copy(message: Message, grant: Grant, link: str) -> None:
    """The sender's own copy: a link only they can open, while logged in."""
    notify.send_templated_email(
        message.sender.email,
        subject_template="exchange/email/copy_subject.txt",
        text_template="exchange/email/copy.txt",
        context={
            "subject": message.subject,
            "reference": message.reference,
            "link": link,
            "expires_at": message.expires_at,
        },
        language=message.sender.language,
        sensitive=True,
        organisation=message.organisation,
        target=message,
        reference=grant_reference(grant),
    )


def send_reply_link(message: Message, grant: Grant, link: str) -> None:
    """The original sender's link to a reply (only they can open it, while logged in)."""
    parent = message.parent
    notify.send_templated_email(
        message.sender.email,
        subject_template="exchange/email/reply_subject.txt",
        text_template="exchange/email/reply.txt",
        context={
            "replier": message.replied_by.email if message.replied_by else "",
            "subject": parent.subject,
            "reference": parent.reference,
            "link": link,
            "expires_at": message.expires_at,
        },
        language=message.sender.language,
        sensitive=True,
        organisation=message.organisation,
        target=message,
        reference=grant_reference(grant),
    )


def send_recipient_code(grant: Grant, code: str, *, reference: str = "") -> None:
    """A verification code by email; `reference` is the code's, for its delivery report."""
    _send(
        grant,
        "code",
        _context(grant.message, grant) | {"code": code},
        sensitive=True,
        reference=reference or f"code:{grant.pk}",
    )


def send_open_notification(grant: Grant, opened_at: datetime) -> None:
    message = grant.message
    sender = message.sender
    notify.send_templated_email(
        sender.email,
        subject_template="exchange/email/opened_subject.txt",
        text_template="exchange/email/opened.txt",
        context={
            "recipient": grant.email,
            "subject": message.subject,
            "reference": message.reference,
            "opened_at": opened_at,
            "opens": grant.opens,
            "max_opens": grant.max_opens,
        },
        language=sender.language,
        organisation=message.organisation,
        target=message,
    )


__all__ = [
    "Verification",
    "send_open_notification",
    "send_recipient_code",
    "send_recipient_notification",
]
