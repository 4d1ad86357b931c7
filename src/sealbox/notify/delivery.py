"""One delivery attempt of an outbox message: claim it, send it, record the outcome.

See `sealbox.notify.services` for the whole picture (claims, leases, retries, erasure).
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.utils import parseaddr
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.dispatch import Signal
from django.utils import timezone

from sealbox.audit import services as audit
from sealbox.audit.actions import Action, delivery_outcome
from sealbox.audit.models import ActorType
from sealbox.lib import clock
from sealbox.lib.errors import StorageUnavailable
from sealbox.notify import emails, keystore, sealing, sms
from sealbox.notify.models import LIVE_STATUSES, Channel, OutboxMessage, OutboxStatus
from sealbox.notify.retries import describe_failure, is_transient, max_attempts, retry_delays
from sealbox.notify.tasks import deliver_email
from sealbox.ops import services as ops
from sealbox.ops.worker import TASK_LEASE

logger = logging.getLogger(__name__)

# A claim by a worker that still beats is taken over only after this (a send stuck this
# long is as dead as its task, which the worker's lease gives back at the same time).
SEND_LEASE = TASK_LEASE
# A claim by a process that does not beat (a dead worker, or a process running tasks
# without `sealbox worker`) is taken over after this: the time a worker may stay silent.
ORPHAN_CLAIM_AFTER = ops.HEARTBEAT_STALE_AFTER

# Sent with channel=, reference= in the transaction that records the outcome, once the
# gateway accepted the message.
delivered = Signal()
# Sent with channel=, reference=, reason= (never the content) once the last attempt
# failed, in the transaction that records it.
undelivered = Signal()

COUNTER_NAMES = {
    (Channel.EMAIL, OutboxStatus.SENT): "emails_sent",
    (Channel.EMAIL, OutboxStatus.FAILED): "emails_failed",
    (Channel.EMAIL, OutboxStatus.QUEUED): "emails_retried",
    (Channel.SMS, OutboxStatus.SENT): "sms_sent",
    (Channel.SMS, OutboxStatus.FAILED): "sms_failed",
    (Channel.SMS, OutboxStatus.QUEUED): "sms_retried",
}


# --- Claiming -----------------------------------------------------------------------


@dataclass
class Claimed:
    message: OutboxMessage
    payload: dict


def claim_expired(message: OutboxMessage, now: datetime | None = None) -> bool:
    """Whether the claim on a message being sent may be taken over."""
    if message.claimed_at is None:
        return True
    now = now or clock.now()
    alive = ops.WorkerHeartbeat.objects.filter(
        name=message.claimed_by, beat_at__gte=now - ops.HEARTBEAT_STALE_AFTER
    ).exists()
    return message.claimed_at < now - (SEND_LEASE if alive else ORPHAN_CLAIM_AFTER)


def claim(outbox_id: str | uuid.UUID, channel: str) -> Claimed | None:
    """Claim the message for one attempt and open its content, or None: nothing to do.

    None when it is already delivered or failed, when another worker holds it, when its
    next attempt is not due yet (the task scheduled for it will come), or when its
    content cannot be opened any more (the key was destroyed, the secret key changed):
    that one is finished as failed. A message that already used all its attempts (a
    worker died on each of them) is failed instead of being tried again.
    """
    try:
        pk = uuid.UUID(str(outbox_id))
    except ValueError:
        return None
    now = clock.now()
    message = OutboxMessage.objects.filter(pk=pk, channel=channel, status__in=LIVE_STATUSES).first()
    if message is None:
        return None
    if message.status == OutboxStatus.QUEUED:
        if message.next_attempt_at is not None and message.next_attempt_at > now:
            return None
    elif not claim_expired(message, now):
        return None
    if message.attempts >= max_attempts(channel):
        if message.status == OutboxStatus.SENDING:
            reason = "the worker stopped during the last attempt; its outcome is unknown"
        else:
            reason = message.last_error or "no attempt left"
        finish(
            message,
            OutboxStatus.FAILED,
            reason,
            only_if=Q(status=message.status, attempts=message.attempts),
        )
        return None
    attempt = message.attempts + 1
    name = ops.worker_name()
    won = OutboxMessage.objects.filter(
        pk=pk, status=message.status, attempts=message.attempts
    ).update(
        status=OutboxStatus.SENDING,
        attempts=attempt,
        claimed_at=now,
        claimed_by=name,
        next_attempt_at=None,
    )
    if not won:
        return None
    message.status, message.attempts = OutboxStatus.SENDING, attempt
    message.claimed_at, message.claimed_by, message.next_attempt_at = now, name, None
    try:
        payload_key = keystore.load(message.pk)
    except StorageUnavailable:
        # The key is there but cannot be read now: an outage, not an undeliverable email.
        if message.attempts >= max_attempts(message.channel) or not _retry_later(
            message, "file storage is unavailable"
        ):
            _finish_claimed(message, OutboxStatus.FAILED, "file storage is unavailable")
        return None
    if payload_key is None or message.sealed is None:
        _finish_claimed(message, OutboxStatus.FAILED, "the sealed content is no longer available")
        return None
    try:
        payload = sealing.unseal(bytes(message.sealed), payload_key, message.pk)
    except sealing.SealError:
        _finish_claimed(message, OutboxStatus.FAILED, "the sealed content cannot be opened")
        return None
    return Claimed(message, payload)


# --- Outcomes -----------------------------------------------------------------------


def _audit(message: OutboxMessage, action: Action, reason: str = "", **extra) -> None:
    details: dict[str, Any] = {
        "channel": message.channel,
        "reference": message.reference,
        "attempts": message.attempts,
        "outbox": str(message.pk),
    }
    if message.channel == Channel.EMAIL:
        details["to"] = ", ".join(message.recipients)[:300]
    if reason:
        details["reason"] = reason
    details.update(extra)
    linked = bool(message.target_type and message.target_id)
    audit.record(
        action,
        organisation=message.organisation if message.organisation_id else None,
        actor_type=ActorType.SYSTEM,
        target_type=message.target_type if linked else "outboxmessage",
        target_id=message.target_id if linked else str(message.pk),
        details=details,
    )


def _report(message: OutboxMessage, status: str, reason: str) -> None:
    """Tell whoever queued the message, in the transaction that records the outcome (a
    savepoint: a receiver's error is logged and cannot undo the outcome)."""
    signal = delivered if status == OutboxStatus.SENT else undelivered
    kwargs = {"channel": message.channel, "reference": message.reference}
    if status == OutboxStatus.FAILED:
        kwargs["reason"] = reason
    try:
        with transaction.atomic():
            signal.send(sender=__name__, **kwargs)
    except Exception:
        logger.exception("a delivery report receiver failed (outbox %s)", message.pk)


def finish(message: OutboxMessage, status: str, reason: str = "", *, only_if: Q) -> bool:
    """Record the final outcome, erase the sealed content, destroy its key.

    One conditional update (`only_if`) moves the message to its final state (False if
    the row is no longer in that state); the audit event, the counter and the report to
    the caller are in the same transaction. The key is destroyed unless another attempt
    still holds the message. When recording a failure fails (the database went away),
    the key is destroyed all the same: erasure comes first, and the next attempt finds
    nothing to send and records the failure. When recording a success fails, the key is
    kept: the next attempt sends again (with the same delivery key) and records it,
    rather than recording as failed a message that went out.
    """
    reason = reason[:200]
    moved = False
    try:
        with transaction.atomic():
            moved = bool(
                OutboxMessage.objects.filter(Q(pk=message.pk) & only_if).update(
                    status=status,
                    sealed=None,
                    finished_at=clock.now(),
                    last_error=reason,
                    next_attempt_at=None,
                )
            )
            if moved:
                _audit(message, delivery_outcome(message.channel, status), reason)
                ops.count(COUNTER_NAMES[(message.channel, status)])
                _report(message, status, reason)
    except Exception:
        if status == OutboxStatus.FAILED:
            keystore.destroy(message.pk)
        raise
    if moved or not OutboxMessage.objects.filter(pk=message.pk, status__in=LIVE_STATUSES).exists():
        keystore.destroy(message.pk)
    if moved:
        message.status, message.sealed, message.last_error = status, None, reason
    return moved


def _finish_claimed(message: OutboxMessage, status: str, reason: str = "") -> bool:
    """The outcome of this worker's attempt. A success is recorded even when the claim
    was taken over meanwhile (the message did go out; the other attempt then finds it
    sent); a failure only while the claim is still this attempt's."""
    if status == OutboxStatus.SENT:
        only_if = Q(status__in=LIVE_STATUSES)
    else:
        only_if = Q(status=OutboxStatus.SENDING, attempts=message.attempts)
    return finish(message, status, reason, only_if=only_if)


def _retry_later(message: OutboxMessage, reason: str) -> bool:
    """Back to queued, due after this attempt's delay, with a new task scheduled for
    then: the worker moves on to other messages instead of sleeping."""
    delay = timedelta(seconds=retry_delays(message.channel)[message.attempts - 1])
    if not _delivery_task(message.channel).get_backend().supports_defer:
        delay = timedelta(0)  # a backend that runs tasks at once retries at once
    due = clock.now() + delay
    with transaction.atomic():
        moved = OutboxMessage.objects.filter(
            pk=message.pk, status=OutboxStatus.SENDING, attempts=message.attempts
        ).update(status=OutboxStatus.QUEUED, next_attempt_at=due, last_error=reason[:200])
        if not moved:
            return False
        retry_in = int(delay.total_seconds())
        _audit(
            message,
            delivery_outcome(message.channel, "deferred"),
            reason[:200],
            retry_in=retry_in,
        )
        ops.count(COUNTER_NAMES[(message.channel, OutboxStatus.QUEUED)])
        enqueue_delivery(message.channel, message.pk, delay)
    message.status, message.next_attempt_at, message.last_error = (
        OutboxStatus.QUEUED,
        due,
        reason[:200],
    )
    return True


def _delivery_task(channel: str):
    from sealbox.notify.sms_tasks import deliver_sms

    return deliver_sms if channel == Channel.SMS else deliver_email


def enqueue_delivery(channel: str, outbox_id: uuid.UUID, delay: timedelta | None = None) -> None:
    task = _delivery_task(channel)
    if delay and task.get_backend().supports_defer:
        # The queue's own clock (the worker compares run_after with the real time).
        task = task.using(run_after=timezone.now() + delay)
    task.enqueue(outbox_id=str(outbox_id))


# --- Delivery -----------------------------------------------------------------------


def message_id(outbox_id: uuid.UUID) -> str:
    """The Message-ID of an outbox email: the same for every attempt, so that a receiving
    system that got it twice (a worker died before recording the first) can tell."""
    domain = parseaddr(settings.DEFAULT_FROM_EMAIL)[1].rpartition("@")[2] or "sealbox.invalid"
    return f"<{outbox_id}@{domain}>"


def _send_email(message: OutboxMessage, payload: dict) -> None:
    email = emails.build(payload, message.recipients, {"Message-ID": message_id(message.pk)})
    email.send()


def _send_sms(message: OutboxMessage, payload: dict) -> None:
    [to] = message.recipients
    sms.send_sms_now(to, payload["body"], key=str(message.pk))


SENDERS = {Channel.EMAIL: _send_email, Channel.SMS: _send_sms}


def deliver(outbox_id: str | uuid.UUID, channel: str) -> bool:
    """One attempt at delivering a queued message; True once the gateway accepted it."""
    claimed = claim(outbox_id, channel)
    if claimed is None:
        return False
    message = claimed.message
    try:
        SENDERS[channel](message, claimed.payload)
    except Exception as error:
        reason = describe_failure(error)
        last = message.attempts >= max_attempts(channel)
        transient = is_transient(error)
        logger.warning(
            "%s delivery attempt %d of %d failed (outbox %s, reference %s, %s): %s",
            "SMS" if channel == Channel.SMS else "Email",
            message.attempts,
            max_attempts(channel),
            message.pk,
            message.reference or "-",
            "will retry" if transient and not last else "final",
            reason,
        )
        if not (transient and not last and _retry_later(message, reason)):
            _finish_claimed(message, OutboxStatus.FAILED, reason)
        return False
    finally:
        claimed.payload = {}
    _finish_claimed(message, OutboxStatus.SENT)
    return True


def deliver_queued_email(outbox_id: str) -> bool:
    return deliver(outbox_id, Channel.EMAIL)
