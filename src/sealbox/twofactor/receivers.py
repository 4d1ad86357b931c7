"""Delivery reports of the SMS task (see notify.sms_tasks) update the code they concern."""

from django.dispatch import receiver

from sealbox.notify.sms_tasks import sms_failed, sms_sent
from sealbox.twofactor import services
from sealbox.twofactor.models import CodeDelivery


@receiver(sms_sent)
def code_delivered(sender, reference: str = "", **kwargs) -> None:
    services.mark_delivery(reference, CodeDelivery.SENT)


@receiver(sms_failed)
def code_not_delivered(sender, reference: str = "", reason: str = "", **kwargs) -> None:
    services.mark_delivery(reference, CodeDelivery.FAILED, reason)
