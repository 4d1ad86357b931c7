"""Background delivery of SMS, with retries.

The SMS body (which carries a code) is queued sealed in the outbox like an email's
content, and erased once the gateway accepted it or the last attempt failed; the task
carries only the outbox id. Whoever queued the SMS learns the outcome through the
`sms_sent` / `sms_failed` signals (the outbox's `delivered` / `undelivered`), sent with
the `reference` it chose.
"""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django_tasks import task

from sealbox.notify import services
from sealbox.notify.models import Channel

# Waits before each further attempt: a gateway hiccup usually passes within seconds, and
# the person is waiting for the code, so retries are quick and few; after the last one
# the failure is reported at once and the person may ask for a new code straight away.
# Each retry is a new task run after the wait, so the worker is not held by the wait.
RETRY_DELAYS_SECONDS: tuple[float, ...] = (1.0, 3.0)

# The outbox's reports, under the names the SMS callers know (every channel reports
# through them: tell yours apart by the `channel` or by your `reference`).
sms_sent = services.delivered
sms_failed = services.undelivered


def queue_sms(
    to: str, body: str, *, reference: str = "", organisation: Any = None, target: Any = None
) -> None:
    """Queue one SMS for delivery by the task worker."""
    with transaction.atomic():
        outbox_id = services.queue(
            Channel.SMS,
            [to],
            {"body": body},
            reference=reference,
            organisation=organisation,
            target=target,
        )
        deliver_sms.enqueue(outbox_id=str(outbox_id))


@task()
def deliver_sms(outbox_id: str) -> bool:
    return services.deliver(outbox_id, Channel.SMS)
