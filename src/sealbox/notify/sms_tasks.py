"""Background delivery of SMS, with retries.

The SMS body (which carries a code) is sealed before it is queued, so a queued task row
in the database never holds a code in clear. Whoever queued the SMS learns the outcome
through the `sms_sent` / `sms_failed` signals, sent with the `reference` it chose.
"""

from __future__ import annotations

import logging
import time

from django.dispatch import Signal
from django_tasks import task

from sealbox.notify import sealing, sms

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
    deliver_sms.enqueue(to=to, sealed=sealing.seal({"body": body}), reference=reference)


@task()
def deliver_sms(to: str, sealed: str, reference: str = "") -> bool:
    body = sealing.unseal(sealed)["body"]
    attempts = len(RETRY_DELAYS_SECONDS) + 1
    reason = ""
    for attempt in range(1, attempts + 1):
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
        sms_sent.send(sender=SENDER, reference=reference)
        return True
    sms_failed.send(sender=SENDER, reference=reference, reason=reason)
    return False
