"""Emails of envelopes. Links and codes are sealed in the outbox while queued, erased once
delivered (never stored in clear). Each email's outcome (`email.sent` / `email.failed`)
is audited in the envelope's organisation, on the envelope (or on the submission's
message for the owner's link to a submission)."""

from __future__ import annotations

from typing import Any

from sealbox.envelopes.models import Envelope, EnvelopeLink, Submission
from sealbox.exchange.models import Grant, Message
from sealbox.notify import services as notify


def _send(
    to: str,
    template: str,
    context: dict,
    language: str,
    *,
    sensitive: bool,
    target: Any,
    organisation: Any,
    reference: str = "",
) -> None:
    notify.send_templated_email(
        to,
        subject_template=f"envelopes/email/{template}_subject.txt",
        text_template=f"envelopes/email/{template}.txt",
        context=context,
        language=language,
        sensitive=sensitive,
        organisation=organisation,
        target=target,
        reference=reference,
    )


def link_reference(link: EnvelopeLink) -> str:
    return f"envelopelink:{link.pk}"


def send_envelope_link(
    envelope: Envelope, link: EnvelopeLink, url: str, *, opening_code: str = ""
) -> None:
    """A recipient's link to fill the envelope (and its opening code, here or apart, as the
    organisation chose for messages)."""
    separate = envelope.organisation.opening_code_in_separate_email
    context = {
        "owner_name": envelope.owner.display_name,
        "organisation": envelope.organisation.name,
        "subject": envelope.subject,
        "link": url,
        "expires_at": envelope.expires_at,
        "verification": link.verification,
        "opening_code": opening_code if not separate else "",
    }
    where = {
        "target": envelope,
        "organisation": envelope.organisation,
        "reference": link_reference(link),
    }
    _send(link.email, "invitation", context, envelope.language, sensitive=True, **where)
    if opening_code and separate:
        _send(
            link.email,
            "opening_code",
            context | {"opening_code": opening_code},
            envelope.language,
            sensitive=True,
            **where,
        )


def send_code(link: EnvelopeLink, code: str, *, reference: str = "") -> None:
    envelope = link.envelope
    context = {"code": code, "subject": envelope.subject, "organisation": envelope.organisation}
    _send(
        link.email,
        "code",
        context,
        envelope.language,
        sensitive=True,
        target=envelope,
        organisation=envelope.organisation,
        reference=reference,
    )


def send_used_notice(link: EnvelopeLink) -> None:
    """Notify me when it is used: the owner learns the envelope was opened."""
    envelope = link.envelope
    context = {"subject": envelope.subject, "reference": envelope.reference, "who": link.email}
    _send(
        envelope.owner.email,
        "used",
        context,
        envelope.owner.language,
        sensitive=False,
        target=envelope,
        organisation=envelope.organisation,
    )


def send_submission_link(
    submission: Submission, message: Message, url: str, *, grant: Grant | None = None
) -> None:
    """The owner's link to what was submitted (opens only while they are logged in)."""
    envelope = submission.envelope
    context = {
        "subject": envelope.subject,
        "reference": envelope.reference,
        "name": submission.name,
        "email": submission.email,
        "link": url,
        "expires_at": message.expires_at,
        "max_opens": message.max_opens,
    }
    _send(
        envelope.owner.email,
        "submission",
        context,
        envelope.owner.language,
        sensitive=True,
        target=message,
        organisation=message.organisation,
        reference=f"grant:{grant.pk}" if grant is not None else "",
    )
