"""Email and SMS delivery through an outbox: sealed while queued, erased once done.

Every email and SMS becomes one `OutboxMessage` row whose content is sealed with a key
that dies with the delivery (see `sealing` and `keystore`); the background task carries
only the row's id. When the gateway has accepted the message, or the last attempt has
failed, the sealed content and its key are erased in the same step that records the
outcome (`delivery.finish`), and the task's own row is deleted as soon as the worker is done with
it (`receivers`). The purge erases what was left queued for too long.

Tasks run at least once (a worker that dies leaves its task to be run again, see
`sealbox.ops.worker`); the effect happens once:

- before the gateway is called, the row is *claimed*: one conditional update moves it
  from queued to sending and numbers the attempt, so of two workers holding the same id
  only one sends. Every later change of the row names that attempt number, so a worker
  whose claim was taken over can change nothing (except to report that it did send).
- a claim held by a worker that stopped beating is taken over after
  `HEARTBEAT_STALE_AFTER`; any claim after `SEND_LEASE`. Only then can a message go out
  twice, if the first worker died after the gateway accepted it and before recording it;
  each message carries a delivery key for that case (a stable Message-ID for SMTP, an
  Idempotency-Key for the SMS webhook) so that the receiving side can drop the repeat.
- a transient failure (connection, SMTP 4xx, a webhook error) puts the row back to
  queued and enqueues a new task for later (`run_after`), up to the channel's number of
  attempts; a permanent one (SMTP 5xx refusal) fails at once.
- the audit events say what happened: `<channel>.sent` once the gateway accepted it,
  `<channel>.deferred` for a retry, `<channel>.failed` at the end, in the chain of the
  organisation that queued the message and linked to its object, and the `delivered` /
  `undelivered` signals tell whoever queued it, in the same transaction.

This module queues; `delivery` claims, sends and records the outcome, `retries` says when
to try again, `purge` cleans up. Callers use the names gathered here.
"""

from __future__ import annotations

import re
import uuid
from typing import Any

from django.conf import settings
from django.db import transaction
from django.template.loader import render_to_string
from django.utils import translation

from sealbox.lib import clock
from sealbox.notify import emails, keystore, sealing
from sealbox.notify.delivery import (
    COUNTER_NAMES,
    ORPHAN_CLAIM_AFTER,
    SEND_LEASE,
    SENDERS,
    Claimed,
    claim,
    claim_expired,
    deliver,
    deliver_queued_email,
    delivered,
    message_id,
    undelivered,
)
from sealbox.notify.emails import Brand, reply_to_header, via_sealbox
from sealbox.notify.models import Channel, OutboxMessage
from sealbox.notify.purge import (
    FINISHED_LIFETIME,
    ORPHAN_KEY_GRACE,
    QUEUED_LIFETIME,
    STALLED_AFTER,
    PurgeReport,
    purge,
    resume_stalled,
)
from sealbox.notify.retries import describe_failure, is_transient, max_attempts, retry_delays
from sealbox.notify.tasks import deliver_email

__all__ = [
    "Brand",
    "COUNTER_NAMES",
    "FINISHED_LIFETIME",
    "ORPHAN_CLAIM_AFTER",
    "ORPHAN_KEY_GRACE",
    "QUEUED_LIFETIME",
    "SENDERS",
    "SEND_LEASE",
    "STALLED_AFTER",
    "Claimed",
    "PurgeReport",
    "claim",
    "claim_expired",
    "deliver",
    "deliver_email",
    "deliver_queued_email",
    "delivered",
    "describe_failure",
    "is_transient",
    "max_attempts",
    "message_id",
    "purge",
    "queue",
    "reply_to_header",
    "resume_stalled",
    "retry_delays",
    "send_email",
    "send_templated_email",
    "undelivered",
    "via_sealbox",
]


# --- Queuing ------------------------------------------------------------------------


def queue(
    channel: str,
    recipients: list[str],
    payload: dict,
    *,
    reference: str = "",
    organisation: Any = None,
    target: Any = None,
) -> uuid.UUID:
    """Seal `payload` under a fresh key and store it as a queued outbox message.

    `organisation` and `target` (any model instance) say where the outcome is audited:
    the caller's chain, linked to the caller's object. The caller enqueues the delivery
    task (with the returned id) in the same transaction, so a task never exists without
    its message, nor a message without its task.
    """
    outbox_id = uuid.uuid4()
    payload_key = sealing.new_payload_key()
    sealed = sealing.seal(payload, payload_key, outbox_id)
    # The key first: a row without its key could never be delivered, while a key without
    # its row (a rolled-back transaction) is harmless and removed by the purge.
    keystore.store(outbox_id, payload_key)
    OutboxMessage.objects.create(
        id=outbox_id,
        channel=channel,
        recipients=list(recipients),
        reference=reference[:64],
        organisation=organisation,
        target_type=target._meta.model_name if target is not None else "",
        target_id=str(target.pk) if target is not None else "",
        sealed=sealed,
        created_at=clock.now(),
    )
    return outbox_id


def send_email(
    to: str | list[str],
    subject: str,
    text: str,
    html: str = "",
    *,
    sensitive: bool = False,
    organisation: Any = None,
    target: Any = None,
    reference: str = "",
    from_name: str = "",
    reply_to: str = "",
    inline: list[dict[str, str]] | None = None,
) -> uuid.UUID:
    """Queue one email for the task worker.

    Every email is sealed while queued, whatever `sensitive` says (it stays for the
    callers, which mark the emails that carry a link or a code): a subject or a notice
    is private too, and one path for all emails leaves no way to get it wrong. The HTML
    (which carries the same link as the text) and the inline logo are sealed with it.
    `from_name` is the From display name (on the configured address), `reply_to` a
    ready Reply-To mailbox (see `emails.reply_to_header`).
    """
    recipients = [to] if isinstance(to, str) else list(to)
    with transaction.atomic():
        payload: dict[str, Any] = {"subject": subject, "text": text, "html": html}
        if from_name:
            payload["from_name"] = emails.header_safe(from_name)
        if reply_to:
            payload["reply_to"] = reply_to
        if inline and html:
            payload["inline"] = list(inline)
        outbox_id = queue(
            Channel.EMAIL,
            recipients,
            payload,
            reference=reference,
            organisation=organisation,
            target=target,
        )
        deliver_email.enqueue(outbox_id=str(outbox_id))
    return outbox_id


def _tidy_text(text: str) -> str:
    """A plain-text body without the blank lines and trailing spaces template tags leave."""
    lines = [line.rstrip() for line in text.strip().splitlines()]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)) + "\n"


def send_templated_email(
    to: str | list[str],
    *,
    subject_template: str,
    text_template: str,
    context: dict,
    language: str = "en",
    html_template: str = "",
    sensitive: bool = False,
    organisation: Any = None,
    target: Any = None,
    reference: str = "",
    brand: emails.Brand | None = None,
    from_name: str = "",
    reply_to: str = "",
    time_zone: str = "",
) -> uuid.UUID:
    """Render an email in `language` and queue it.

    With a `brand`, the layout (`email/base.html`, `email/base.txt`) shows the
    organisation's letterhead and its logo goes with the email as an inline part.
    `time_zone` is the one the email's dates are written in, named beside them (the
    sender's setting: the recipient reads the time the sender meant).
    """
    context = dict(context)
    context.setdefault("portal", settings.SEALBOX_BASE_URL)
    context.setdefault("time_zone", time_zone or settings.TIME_ZONE)
    if brand is not None:
        context = brand.context() | context
    with translation.override(language):
        subject = " ".join(render_to_string(subject_template, context).split())
        context["email_subject"] = subject
        context["language_code"] = language
        text = _tidy_text(render_to_string(text_template, context))
        html = render_to_string(html_template, context) if html_template else ""
    return send_email(
        to,
        subject,
        text,
        html,
        sensitive=sensitive,
        organisation=organisation,
        target=target,
        reference=reference,
        from_name=from_name,
        reply_to=reply_to,
        inline=brand.inline_parts() if brand is not None else None,
    )
