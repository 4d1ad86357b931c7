"""Email and SMS delivery through an outbox: sealed while queued, erased once done.

Every email and SMS becomes one `OutboxMessage` row whose content is sealed with a key
that dies with the delivery (see `sealing` and `keystore`); the background task carries
only the row's id. When the gateway has accepted the message, or the last attempt has
failed, the sealed content and its key are erased in the same step that records the
outcome (`finish`), and the task's own row is deleted as soon as the worker is done with
it (`receivers`). The purge erases what a dead worker left queued for too long.

The row is also where the scale-out work (leases, retries with backoff, "sent" audited
only once the gateway accepted) plugs in: the status moves forward in one conditional
update, so a second delivery of the same task finds nothing to do.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.db import transaction
from django.db.models import F, Q
from django.template.loader import render_to_string
from django.utils import timezone, translation

from sealbox import clock
from sealbox.audit import services as audit
from sealbox.audit.models import ActorType
from sealbox.notify import keystore, sealing
from sealbox.notify.models import Channel, OutboxMessage, OutboxStatus
from sealbox.notify.tasks import deliver_email

logger = logging.getLogger(__name__)

# A message a worker has not delivered within this time is erased (and marked failed):
# the links and codes it carries are stale by then (reset links live one hour, codes ten
# minutes, invitations 72 hours), and a crashed worker must not leave secrets queued for
# good. Also how long a delivered row is kept (without content) for operators.
QUEUED_LIFETIME = timedelta(hours=72)
FINISHED_LIFETIME = timedelta(days=7)
# A payload key whose row never committed (the queuing transaction rolled back) is
# removed after this grace period; a live transaction is never that long.
ORPHAN_KEY_GRACE = timedelta(hours=1)


# --- Queuing ------------------------------------------------------------------------


def queue(channel: str, recipients: list[str], payload: dict, *, reference: str = "") -> uuid.UUID:
    """Seal `payload` under a fresh key and store it as a queued outbox message.

    The caller enqueues the delivery task (with the returned id) in the same transaction,
    so a task never exists without its message, nor a message without its task.
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
        reference=reference,
        sealed=sealed,
        created_at=clock.now(),
    )
    return outbox_id


def send_email(
    to: str | list[str], subject: str, text: str, html: str = "", *, sensitive: bool = False
) -> None:
    """Queue one email for the task worker.

    Every email is sealed while queued, whatever `sensitive` says (it stays for the
    callers, which mark the emails that carry a link or a code): a subject or a notice
    is private too, and one path for all emails leaves no way to get it wrong.
    """
    recipients = [to] if isinstance(to, str) else list(to)
    with transaction.atomic():
        payload = {"subject": subject, "text": text, "html": html}
        outbox_id = queue(Channel.EMAIL, recipients, payload)
        deliver_email.enqueue(outbox_id=str(outbox_id))


def send_templated_email(
    to: str | list[str],
    *,
    subject_template: str,
    text_template: str,
    context: dict,
    language: str = "en",
    html_template: str = "",
    sensitive: bool = False,
) -> None:
    with translation.override(language):
        subject = " ".join(render_to_string(subject_template, context).split())
        text = render_to_string(text_template, context)
        html = render_to_string(html_template, context) if html_template else ""
    send_email(to, subject, text, html, sensitive=sensitive)


# --- Delivery -----------------------------------------------------------------------


@dataclass
class Opened:
    message: OutboxMessage
    payload: dict


def open_for_delivery(outbox_id: str | uuid.UUID, channel: str) -> Opened | None:
    """The queued message and its content, or None when there is nothing to deliver.

    None when the message was already delivered or erased (tasks run at least once: a
    second run must not send twice), or when its content cannot be opened any more (the
    key was destroyed, the secret key changed): that one is finished as failed.
    """
    try:
        pk = uuid.UUID(str(outbox_id))
    except ValueError:
        return None
    message = OutboxMessage.objects.filter(
        pk=pk, channel=channel, status=OutboxStatus.QUEUED
    ).first()
    if message is None:
        return None
    payload_key = keystore.load(message.pk)
    if payload_key is None or message.sealed is None:
        finish(message, OutboxStatus.FAILED, "the sealed content is no longer available")
        return None
    try:
        payload = sealing.unseal(bytes(message.sealed), payload_key, message.pk)
    except sealing.SealError:
        finish(message, OutboxStatus.FAILED, "the sealed content cannot be opened")
        return None
    return Opened(message, payload)


def count_attempt(message: OutboxMessage) -> None:
    OutboxMessage.objects.filter(pk=message.pk).update(attempts=F("attempts") + 1)
    message.attempts += 1


def finish(message: OutboxMessage, status: str, reason: str = "") -> bool:
    """Record the outcome, erase the sealed content, destroy its key.

    One conditional update moves the message out of "queued" (False if something else
    already did); the audit event is recorded in the same transaction. The key is
    destroyed even when recording fails: erasure comes first, and a message left queued
    without its key is finished as failed by its next run or by the purge.
    """
    reason = reason[:200]
    try:
        with transaction.atomic():
            moved = OutboxMessage.objects.filter(pk=message.pk, status=OutboxStatus.QUEUED).update(
                status=status,
                sealed=None,
                finished_at=clock.now(),
                last_error=reason,
            )
            if moved:
                details = {
                    "channel": message.channel,
                    "reference": message.reference,
                    "attempts": message.attempts,
                }
                if message.channel == Channel.EMAIL:
                    details["to"] = ", ".join(message.recipients)[:300]
                if reason:
                    details["reason"] = reason
                audit.record(
                    f"{message.channel}.{status}",
                    actor_type=ActorType.SYSTEM,
                    target_type="outboxmessage",
                    target_id=str(message.pk),
                    details=details,
                )
    finally:
        keystore.destroy(message.pk)
    message.status, message.sealed, message.last_error = status, None, reason
    return bool(moved)


def describe_failure(error: BaseException) -> str:
    """A short reason for the logs and the audit event: the gateway's answer, never the
    content (SMTP errors carry the server's reply and the refused addresses only)."""
    text = " ".join(str(error).split())
    return f"{error.__class__.__name__}: {text}" if text else error.__class__.__name__


def deliver_queued_email(outbox_id: str) -> bool:
    """Send one queued email through the configured backend (one attempt for now)."""
    opened = open_for_delivery(outbox_id, Channel.EMAIL)
    if opened is None:
        return False
    message, payload = opened.message, opened.payload
    count_attempt(message)
    try:
        email = EmailMultiAlternatives(
            payload["subject"], payload["text"], settings.DEFAULT_FROM_EMAIL, message.recipients
        )
        if payload["html"]:
            email.attach_alternative(payload["html"], "text/html")
        email.send()
    except Exception as error:  # any failure is final until retries exist (issue 13)
        reason = describe_failure(error)
        logger.warning("email %s was not delivered: %s", message.pk, reason)
        finish(message, OutboxStatus.FAILED, reason)
        return False
    finish(message, OutboxStatus.SENT)
    return True


# --- Purge --------------------------------------------------------------------------


@dataclass
class PurgeReport:
    abandoned: int = 0
    rows_deleted: int = 0
    keys_destroyed: int = 0


def purge() -> PurgeReport:
    """Erase what was left queued too long, drop old finished rows, destroy stray keys."""
    now = clock.now()
    report = PurgeReport()
    for message in OutboxMessage.objects.filter(
        status=OutboxStatus.QUEUED, created_at__lt=now - QUEUED_LIFETIME
    ):
        if finish(message, OutboxStatus.FAILED, "not delivered in time: erased"):
            report.abandoned += 1
    report.rows_deleted, _ = OutboxMessage.objects.filter(
        ~Q(status=OutboxStatus.QUEUED), finished_at__lt=now - FINISHED_LIFETIME
    ).delete()
    stored = list(keystore.stored_ids())
    statuses = dict(OutboxMessage.objects.filter(pk__in=stored).values_list("pk", "status"))
    for outbox_id in stored:
        status = statuses.get(outbox_id)
        if status == OutboxStatus.QUEUED:
            continue
        if status is None:
            # No row: its queuing transaction rolled back, or is still committing.
            # Storage times are wall-clock times, not sealbox.clock's.
            stored_at = keystore.stored_at(outbox_id)
            if stored_at is None or stored_at > timezone.now() - ORPHAN_KEY_GRACE:
                continue
        # Otherwise a finished row whose key survived a storage error.
        keystore.destroy(outbox_id)
        report.keys_destroyed += 1
    return report
