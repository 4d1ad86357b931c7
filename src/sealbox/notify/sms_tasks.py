"""Background delivery of SMS, with retries.

The SMS body (which carries a code) is queued sealed in the outbox like an email's
content, and erased once the gateway accepted it or the last attempt failed; the task
carries only the outbox id. Whoever queued the SMS learns the outcome through the
`sms_sent` / `sms_failed` signals, sent with the `reference` it chose.
"""

from __future__ import annotations

import logging
import time

from django.db import transaction
from django.dispatch import Signal
from django_tasks import task

from sealbox.notify import sms

logger = logging.getLogger(__name__)
SENDER = "sealbox.notify.sms"

# Waits between attempts: a gateway hiccup usually passes within seconds, and the person
# is waiting for the SMS, so retries are quick and few. Tests set these to zero.
RETRY_DELAYS_SECONDS: tuple[float, ...] = (1.0, 3.0)

# Sent with reference=str after the gateway accepted the SMS.
sms_sent = Signal()
# Sent with reference=str and reason=str (never containing the body) after every
# attempt failed.
sms_failed = Signal()


def queue_sms(to: str, body: str, *, reference: str = "") -> None:
    """Queue one SMS for delivery by the task worker."""
    from sealbox.notify import services
    from sealbox.notify.models import Channel

    with transaction.atomic():
        outbox_id = services.queue(Channel.SMS, [to], {"body": body}, reference=reference)
        deliver_sms.enqueue(outbox_id=str(outbox_id))


@task()
def deliver_sms(outbox_id: str) -> bool:
    from sealbox.notify import services
    from sealbox.notify.models import Channel, OutboxStatus

    opened = services.open_for_delivery(outbox_id, Channel.SMS)
    if opened is None:
        return False
    message, body = opened.message, opened.payload["body"]
    [to] = message.recipients
    reference = message.reference
    attempts = len(RETRY_DELAYS_SECONDS) + 1
    reason = ""
    for attempt in range(1, attempts + 1):
        services.count_attempt(message)
        try:
            sms.send_sms_now(to, body)
        except sms.SMSDeliveryError as error:
            reason = str(error)
            logger.warning(
                "SMS delivery attempt %d of %d failed (reference %s): %s",
                attempt,
                attempts,
                reference or "-",
                reason,
            )
            if attempt < attempts:
                time.sleep(RETRY_DELAYS_SECONDS[attempt - 1])
            continue
        except Exception as error:  # a bug or a broken gateway: final, and still erased
            reason = services.describe_failure(error)
            logger.warning(
                "SMS %s was not delivered (reference %s): %s", message.pk, reference or "-", reason
            )
            break
        services.finish(message, OutboxStatus.SENT)
        sms_sent.send(sender=SENDER, reference=reference)
        return True
    services.finish(message, OutboxStatus.FAILED, reason)
    sms_failed.send(sender=SENDER, reference=reference, reason=reason)
    return False
