"""The database task backend keeps every finished task as a result row, with its
arguments, forever. The notify tasks carry only an outbox id, but a result row is still
one more copy of who was written to and when, and older versions of these tasks carried
sealed content: so their rows are deleted the moment the worker has finished with them
(the outcome is in the outbox row and the audit log)."""

from __future__ import annotations

import logging

from django.dispatch import receiver
from django_tasks.signals import task_finished

logger = logging.getLogger(__name__)

NOTIFY_TASKS = frozenset(
    {"sealbox.notify.tasks.deliver_email", "sealbox.notify.sms_tasks.deliver_sms"}
)


@receiver(task_finished)
def delete_finished_notify_task(sender, task_result=None, **kwargs) -> None:
    db_result = getattr(task_result, "db_result", None)
    if db_result is None:  # not the database backend: nothing was stored
        return
    try:
        if db_result.task_path not in NOTIFY_TASKS:
            return
        from django_tasks_db.models import DBTaskResult

        DBTaskResult.objects.filter(pk=db_result.pk).delete()
    except Exception:
        # The worker calls this outside its own error handling: raising would stop it.
        logger.exception("could not delete the finished task row %s", db_result.pk)
