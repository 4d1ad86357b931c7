"""When an outbox message is tried again: the delays per channel, and which failures
another attempt may overcome."""

from __future__ import annotations

import smtplib

from sealbox.notify import sms
from sealbox.notify.models import Channel


def retry_delays(channel: str) -> tuple[float, ...]:
    """Seconds to wait before each further attempt (read when used: tests shorten them)."""
    from sealbox.notify import sms_tasks, tasks

    return tuple(
        sms_tasks.RETRY_DELAYS_SECONDS if channel == Channel.SMS else tasks.RETRY_DELAYS_SECONDS
    )


def max_attempts(channel: str) -> int:
    return len(retry_delays(channel)) + 1


def is_transient(error: BaseException) -> bool:
    """Whether another attempt may succeed where this one failed.

    Permanent: the receiving server refused this message for good (an SMTP 5xx answer to
    the sender, the recipients or the content: a mailbox that does not exist, a message
    rejected as spam), a gateway that said so, or an error of our own (a bug will not fix
    itself). Everything about reaching the gateway is transient: connections refused or
    cut, time-outs, SMTP 4xx, a server that refused our credentials or TLS (an operator
    can fix those while the message waits).
    """
    if isinstance(error, sms.SMSDeliveryError):
        return error.transient
    if isinstance(error, smtplib.SMTPRecipientsRefused):
        codes = [code for code, _reply in error.recipients.values()]
        return not codes or any(not 500 <= code < 600 for code in codes)
    if isinstance(error, smtplib.SMTPSenderRefused | smtplib.SMTPDataError):
        return not 500 <= error.smtp_code < 600
    # SMTPException is an OSError: disconnections, auth and connection errors included.
    return isinstance(error, OSError)


def describe_failure(error: BaseException) -> str:
    """A short reason for the logs and the audit event: the gateway's answer, never the
    content (SMTP errors carry the server's reply and the refused addresses only)."""
    text = " ".join(str(error).split())
    if isinstance(error, sms.SMSDeliveryError):
        return text  # already the gateway's answer, in words
    return f"{error.__class__.__name__}: {text}" if text else error.__class__.__name__
