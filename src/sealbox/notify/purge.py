"""The outbox's purge: erase what waited too long, give stalled messages a task again,
drop old finished rows, destroy stray payload keys."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from sealbox.lib import clock
from sealbox.notify import keystore
from sealbox.notify.delivery import ORPHAN_CLAIM_AFTER, claim_expired, enqueue_delivery, finish
from sealbox.notify.models import FINAL_STATUSES, LIVE_STATUSES, OutboxMessage, OutboxStatus

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
# A message due this long ago with no task to deliver it (its task failed with a database
# error, say) gets a new task from the purge.
STALLED_AFTER = timedelta(minutes=2)


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
            enqueue_delivery(message.channel, message.pk)
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
        if finish(message, OutboxStatus.FAILED, "not delivered in time: erased", only_if=expected):
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
