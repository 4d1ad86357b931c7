"""Emails of envelopes. Links and codes are sealed in the outbox while queued, erased once
delivered (never stored in clear). Each email's outcome (`email.sent` / `email.failed`)
is audited in the envelope's organisation, on the envelope (or on the submission's
message for the owner's link to a submission).

The emails to the person asked for documents come from the envelope's owner ("Owner
(Organisation) via Sealbox", Reply-To the owner) in the organisation's layout; the
notices to the owner come from Sealbox, in the owner's language and time zone.
"""

from __future__ import annotations

from typing import Any

from sealbox.envelopes.models import Envelope, EnvelopeLink, Submission
from sealbox.exchange.models import Grant, Message
from sealbox.exchange.notifications import brand, mask_phone, on_behalf_of
from sealbox.notify import services as notify


def _send(
    to: str,
    template: str,
    context: dict,
    language: str,
    *,
    sensitive: bool,
    target: Any,
    envelope: Envelope,
    reference: str = "",
    **extra: Any,
) -> None:
    notify.send_templated_email(
        to,
        subject_template=f"envelopes/email/{template}_subject.txt",
        text_template=f"envelopes/email/{template}.txt",
        html_template=f"envelopes/email/{template}.html",
        context=context,
        language=language,
        sensitive=sensitive,
        organisation=envelope.organisation,
        target=target,
        reference=reference,
        brand=brand(envelope.organisation),
        time_zone=envelope.owner.time_zone,
        **extra,
    )


def _to_invitee(link: EnvelopeLink, template: str, context: dict, *, reference: str) -> None:
    """An email to the person the envelope asks for documents, from its owner."""
    envelope = link.envelope
    _send(
        link.email,
        template,
        context,
        envelope.language,
        sensitive=True,
        target=envelope,
        envelope=envelope,
        reference=reference,
        **on_behalf_of(envelope.owner),
    )


def link_reference(link: EnvelopeLink) -> str:
    return f"envelopelink:{link.pk}"


def _invitee_context(envelope: Envelope, link: EnvelopeLink) -> dict:
    return {
        "owner_name": envelope.owner.display_name,
        "organisation": envelope.organisation.name,
        "sender_name": envelope.owner.display_name,
        "sender_email": envelope.owner.email,
        "subject": envelope.subject,
        "expires_at": envelope.expires_at,
        "verification": link.verification,
        "masked_phone": mask_phone(link.phone) if link.phone else "",
    }


def send_envelope_link(
    envelope: Envelope, link: EnvelopeLink, url: str, *, opening_code: str = ""
) -> None:
    """A recipient's link to fill the envelope (and its opening code, here or apart, as the
    organisation chose for messages)."""
    separate = envelope.organisation.opening_code_in_separate_email
    context = _invitee_context(envelope, link) | {
        "link": url,
        "opening_code": opening_code if not separate else "",
    }
    _to_invitee(link, "invitation", context, reference=link_reference(link))
    if opening_code and separate:
        _to_invitee(
            link,
            "opening_code",
            _invitee_context(envelope, link) | {"code": opening_code, "verification": ""},
            reference=link_reference(link),
        )


def send_code(link: EnvelopeLink, code: str, *, reference: str = "") -> None:
    envelope = link.envelope
    # The code's own lifetime is said in the email; the envelope's would confuse.
    context = _invitee_context(envelope, link) | {
        "code": code,
        "verification": "",
        "expires_at": None,
    }
    _to_invitee(link, "code", context, reference=reference)


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
        envelope=envelope,
    )


def send_submission_link(
    submission: Submission, message: Message, url: str, *, grant: Grant | None = None
) -> None:
    """The owner's link to what was submitted (opens only while they are logged in).

    From Sealbox, without a Reply-To: the name and address were typed by the submitter,
    unchecked on a public envelope, so an answer is not sent to them without the owner
    choosing to (the address is in the email)."""
    envelope = submission.envelope
    context = {
        "subject": envelope.subject,
        "reference": envelope.reference,
        "name": submission.name,
        "email": submission.email,
        "link": url,
        # Said with the number of opens, in one sentence (not as the layout's row).
        "opens_until": message.expires_at,
        "max_opens": message.max_opens,
        "verification": "account",
    }
    _send(
        envelope.owner.email,
        "submission",
        context,
        envelope.owner.language,
        sensitive=True,
        target=message,
        envelope=envelope,
        reference=f"grant:{grant.pk}" if grant is not None else "",
    )
