"""The email delivery task. It carries only the outbox message's id: the content stays
sealed in the outbox (see sealbox.notify.services) until this task sends and erases it."""

from __future__ import annotations

from django_tasks import task


@task()
def deliver_email(outbox_id: str) -> bool:
    from sealbox.notify import services

    return services.deliver_queued_email(outbox_id)
