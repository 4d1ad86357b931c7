"""Delivery reports of the outbox (see notify.services) update the code they concern."""

from django.dispatch import receiver

from sealbox.notify.services import delivered, undelivered
from sealbox.twofactor import services
from sealbox.twofactor.models import CodeDelivery


@receiver(delivered)
def code_delivered(sender, reference: str = "", channel: str = "", **kwargs) -> None:
    services.mark_delivery(reference, CodeDelivery.SENT, channel=channel)


@receiver(undelivered)
def code_not_delivered(
    sender, reference: str = "", reason: str = "", channel: str = "", **kwargs
) -> None:
    services.mark_delivery(reference, CodeDelivery.FAILED, reason, channel=channel)
