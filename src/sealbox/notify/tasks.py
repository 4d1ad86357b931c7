"""The email delivery task. It carries only the outbox message's id: the content stays
sealed in the outbox (see sealbox.notify.services) until this task sends and erases it."""

from __future__ import annotations

from django_tasks import task

# Waits before each further attempt after a transient failure: six attempts over about
# half an hour, long enough for a mail server to restart or a greylisting to pass, short
# enough that the links and codes an email carries are still worth receiving.
RETRY_DELAYS_SECONDS: tuple[float, ...] = (30.0, 60.0, 180.0, 480.0, 1020.0)


@task()
def deliver_email(outbox_id: str) -> bool:
    from sealbox.notify import services

    return services.deliver_queued_email(outbox_id)
