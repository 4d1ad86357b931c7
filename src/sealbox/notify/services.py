"""Email delivery: rendered in the recipient's language, sent by a background task."""

from __future__ import annotations

from django.template.loader import render_to_string
from django.utils import translation

from sealbox.notify import sealing
from sealbox.notify.tasks import deliver_email


def send_email(
    to: str | list[str], subject: str, text: str, html: str = "", *, sensitive: bool = False
) -> None:
    """Queue one email. `sensitive` seals the content so the queue never holds it in clear."""
    recipients = [to] if isinstance(to, str) else list(to)
    if sensitive:
        sealed = sealing.seal({"subject": subject, "text": text, "html": html})
        deliver_email.enqueue(to=recipients, subject="", sealed=sealed)
    else:
        deliver_email.enqueue(to=recipients, subject=subject, text=text, html=html)


def send_templated_email(
    to: str | list[str],
    *,
    subject_template: str,
    text_template: str,
    context: dict,
    language: str = "en",
    html_template: str = "",
    sensitive: bool = False,
) -> None:
    with translation.override(language):
        subject = " ".join(render_to_string(subject_template, context).split())
        text = render_to_string(text_template, context)
        html = render_to_string(html_template, context) if html_template else ""
    send_email(to, subject, text, html, sensitive=sensitive)
