from __future__ import annotations

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django_tasks import task

from sealbox.notify import sealing


@task()
def deliver_email(
    to: list[str], subject: str, text: str = "", html: str = "", sealed: str = ""
) -> None:
    if sealed:
        payload = sealing.unseal(sealed)
        subject, text, html = payload["subject"], payload["text"], payload["html"]
    message = EmailMultiAlternatives(subject, text, settings.DEFAULT_FROM_EMAIL, to)
    if html:
        message.attach_alternative(html, "text/html")
    message.send()
