"""Email and SMS delivery through an outbox: sealed while queued, erased once done.

Every email and SMS becomes one `OutboxMessage` row whose content is sealed with a key
that dies with the delivery (see `sealing` and `keystore`); the background task carries
only the row's id. When the gateway has accepted the message, or the last attempt has
failed, the sealed content and its key are erased in the same step that records the
outcome (`_finish`), and the task's own row is deleted as soon as the worker is done with
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
"""

from __future__ import annotations

import logging
import smtplib
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.utils import parseaddr
from typing import Any

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.db import transaction
from django.db.models import Q
from django.dispatch import Signal
from django.template.loader import render_to_string
from django.utils import timezone, translation

from sealbox.audit import services as audit
from sealbox.audit.models import ActorType
from sealbox.lib import clock
from sealbox.lib.errors import StorageUnavailable
from sealbox.notify import keystore, sealing, sms
from sealbox.notify.models import (
    FINAL_STATUSES,
    LIVE_STATUSES,
    Channel,
    OutboxMessage,
    OutboxStatus,
)
from sealbox.notify.tasks import deliver_email
from sealbox.ops import services as ops
from sealbox.ops.worker import TASK_LEASE

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
# A claim by a worker that still beats is taken over only after this (a send stuck this
# long is as dead as its task, which the worker's lease gives back at the same time).
SEND_LEASE = TASK_LEASE
# A claim by a process that does not beat (a dead worker, or a process running tasks
# without `sealbox worker`) is taken over after this: the time a worker may stay silent.
ORPHAN_CLAIM_AFTER = ops.HEARTBEAT_STALE_AFTER
# A message due this long ago with no task to deliver it (its task failed with a database
# error, say) gets a new task from the purge.
STALLED_AFTER = timedelta(minutes=2)

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
) -> uuid.UUID:
    """Queue one email for the task worker.

    Every email is sealed while queued, whatever `sensitive` says (it stays for the
    callers, which mark the emails that carry a link or a code): a subject or a notice
    is private too, and one path for all emails leaves no way to get it wrong.
    """
    recipients = [to] if isinstance(to, str) else list(to)
    with transaction.atomic():
        payload = {"subject": subject, "text": text, "html": html}
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
) -> uuid.UUID:
    with translation.override(language):
        subject = " ".join(render_to_string(subject_template, context).split())
        text = render_to_string(text_template, context)
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
    )


# --- Retry policy -------------------------------------------------------------------


def retry_delays(channel: str) -> tuple[float, ...]:
    """Seconds to wait before each further attempt (read when used: tests shorten them)."""
    from sealbox.notify import sms_tasks, tasks

    return tuple(
        sms_tasks.RETRY_DELAYS_SECONDS if channel == Channel.SMS else tasks.RETRY_DELAYS_SECONDS
    )


def max_attempts(channel: str) -> int:
    return len(retry_delays(channel)) + 1


def is_transient(error: BaseException) -> bool:
    """Whether another attempt may succeed where this one failed.

    Permanent: the receiving server refused this message for good (an SMTP 5xx answer to
    the sender, the recipients or the content: a mailbox that does not exist, a message
    rejected as spam), a gateway that said so, or an error of our own (a bug will not fix
    itself). Everything about reaching the gateway is transient: connections refused or
    cut, time-outs, SMTP 4xx, a server that refused our credentials or TLS (an operator
    can fix those while the message waits).
    """
    if isinstance(error, sms.SMSDeliveryError):
        return error.transient
    if isinstance(error, smtplib.SMTPRecipientsRefused):
        codes = [code for code, _reply in error.recipients.values()]
        return not codes or any(not 500 <= code < 600 for code in codes)
    if isinstance(error, smtplib.SMTPSenderRefused | smtplib.SMTPDataError):
        return not 500 <= error.smtp_code < 600
    # SMTPException is an OSError: disconnections, auth and connection errors included.
    return isinstance(error, OSError)


def describe_failure(error: BaseException) -> str:
    """A short reason for the logs and the audit event: the gateway's answer, never the
    content (SMTP errors carry the server's reply and the refused addresses only)."""
    text = " ".join(str(error).split())
    if isinstance(error, sms.SMSDeliveryError):
        return text  # already the gateway's answer, in words
    return f"{error.__class__.__name__}: {text}" if text else error.__class__.__name__


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
        _finish(
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


def _audit(message: OutboxMessage, action: str, reason: str = "", **extra) -> None:
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


def _finish(message: OutboxMessage, status: str, reason: str = "", *, only_if: Q) -> bool:
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
                _audit(message, f"{message.channel}.{status}", reason)
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
    return _finish(message, status, reason, only_if=only_if)


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
        _audit(message, f"{message.channel}.deferred", reason[:200], retry_in=retry_in)
        ops.count(COUNTER_NAMES[(message.channel, OutboxStatus.QUEUED)])
        _enqueue(message.channel, message.pk, delay)
    message.status, message.next_attempt_at, message.last_error = (
        OutboxStatus.QUEUED,
        due,
        reason[:200],
    )
    return True


def _delivery_task(channel: str):
    from sealbox.notify.sms_tasks import deliver_sms

    return deliver_sms if channel == Channel.SMS else deliver_email


def _enqueue(channel: str, outbox_id: uuid.UUID, delay: timedelta | None = None) -> None:
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
    email = EmailMultiAlternatives(
        payload["subject"],
        payload["text"],
        settings.DEFAULT_FROM_EMAIL,
        message.recipients,
        headers={"Message-ID": message_id(message.pk)},
    )
    if payload["html"]:
        email.attach_alternative(payload["html"], "text/html")
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


# --- Purge --------------------------------------------------------------------------


@dataclass
class PurgeReport:
    abandoned: int = 0
    rows_deleted: int = 0
    keys_destroyed: int = 0
    resumed: int = 0


def _pending_task_ids() -> set[str]:
    """Outbox ids that a waiting or running task will deliver (database backend)."""
    from django_tasks_db.models import DBTaskResult

    from sealbox.notify.receivers import NOTIFY_TASKS

    rows = DBTaskResult.objects.filter(
        status__in=["READY", "RUNNING"], task_path__in=NOTIFY_TASKS
    ).values_list("args_kwargs", flat=True)
    return {str((row.get("kwargs") or {}).get("outbox_id")) for row in rows}


def resume_stalled() -> int:
    """Give a task back to every live message that is due and that no task will deliver:
    one whose task ended with an error, or whose claim ran out while its worker lives on.
    A second task for the same message is harmless (the claim), a missing one is not."""
    now = clock.now()
    due = OutboxMessage.objects.filter(
        Q(status=OutboxStatus.QUEUED, next_attempt_at__lt=now - STALLED_AFTER)
        | Q(status=OutboxStatus.QUEUED, next_attempt_at=None, created_at__lt=now - STALLED_AFTER)
        | Q(status=OutboxStatus.SENDING, claimed_at__lt=now - ORPHAN_CLAIM_AFTER)
    )
    candidates = [m for m in due if m.status == OutboxStatus.QUEUED or claim_expired(m, now)]
    if not candidates:
        return 0
    pending = _pending_task_ids()
    resumed = 0
    for message in candidates:
        if str(message.pk) in pending:
            continue
        with transaction.atomic():
            _enqueue(message.channel, message.pk)
        resumed += 1
    if resumed:
        logger.warning("gave %d stalled outbox message(s) a new delivery task", resumed)
    return resumed


def purge() -> PurgeReport:
    """Erase what was left undelivered too long, give stalled messages a task again, drop
    old finished rows, destroy stray keys."""
    now = clock.now()
    report = PurgeReport()
    for message in OutboxMessage.objects.filter(
        status__in=LIVE_STATUSES, created_at__lt=now - QUEUED_LIFETIME
    ):
        if message.status == OutboxStatus.SENDING and not claim_expired(message, now):
            continue  # an attempt is under way: its outcome will be recorded
        expected = Q(status=message.status, attempts=message.attempts)
        if _finish(message, OutboxStatus.FAILED, "not delivered in time: erased", only_if=expected):
            report.abandoned += 1
    report.resumed = resume_stalled()
    report.rows_deleted, _ = OutboxMessage.objects.filter(
        status__in=FINAL_STATUSES, finished_at__lt=now - FINISHED_LIFETIME
    ).delete()
    stored = list(keystore.stored_ids())
    statuses = dict(OutboxMessage.objects.filter(pk__in=stored).values_list("pk", "status"))
    for outbox_id in stored:
        status = statuses.get(outbox_id)
        if status in LIVE_STATUSES:
            continue
        if status is None:
            # No row: its queuing transaction rolled back, or is still committing.
            # Storage times are wall-clock times, not sealbox.lib.clock's.
            stored_at = keystore.stored_at(outbox_id)
            if stored_at is None or stored_at > timezone.now() - ORPHAN_KEY_GRACE:
                continue
        # Otherwise a finished row whose key survived a storage error.
        keystore.destroy(outbox_id)
        report.keys_destroyed += 1
    return report
