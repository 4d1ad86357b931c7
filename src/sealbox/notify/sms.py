"""SMS gateways, chosen by SEALBOX_SMS_URL.

- ``console://`` prints each SMS on standard output (development).
- ``file:////path/to/sms.jsonl`` appends one JSON object per SMS (``to``, ``body``,
  ``sent_at``); the tests read codes from it.
- ``twilio://SID:TOKEN@?from=+15145550000`` sends through Twilio (optional extra).
- ``https://user:secret@sms.example.com/send`` POSTs ``{"to": …, "body": …}`` as JSON
  (basic authentication when the URL carries credentials), with an ``Idempotency-Key``
  header that is the same for every attempt at one SMS.

The body of an SMS is the only place a code may appear: errors raised here never quote
it, and nothing here logs it.
"""

from __future__ import annotations

import base64
import json
import os
import sys
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Protocol
from urllib.parse import unquote, urlsplit, urlunsplit

from django.conf import settings

from sealbox.lib import clock

WEBHOOK_TIMEOUT_SECONDS = 10


class SMSDeliveryError(Exception):
    """The gateway did not accept the SMS. The message never contains the SMS body.

    `transient`: whether another attempt may succeed (the gateway could not be reached,
    or answered that it is busy); False when it refused this SMS for good."""

    def __init__(self, message: str, *, transient: bool = True) -> None:
        super().__init__(message)
        self.transient = transient


class SMSConfigurationError(ValueError):
    """SEALBOX_SMS_URL cannot be used."""


# Twilio error codes that mean "not now" rather than "never" (rate limits, queue full,
# service unavailable); any HTTP 429 or 5xx is retried too.
TWILIO_RETRYABLE_CODES = frozenset({20429, 20500, 20503, 30001})


class Gateway(Protocol):
    def send(self, to: str, body: str, *, key: str = "") -> None:
        """Send one SMS. `key` is the same for every attempt at the same SMS: a gateway
        that can tell repeats apart gets it (webhook: Idempotency-Key)."""


@dataclass(frozen=True)
class ConsoleGateway:
    def send(self, to: str, body: str, *, key: str = "") -> None:
        # Standard output, not logging: this *is* the SMS, as consolemail:// is the email.
        sys.stdout.write(f"SMS to {to}: {body}\n")
        sys.stdout.flush()


@dataclass(frozen=True)
class FileGateway:
    path: str

    def send(self, to: str, body: str, *, key: str = "") -> None:
        line = json.dumps(
            {"to": to, "body": body, "sent_at": clock.now().isoformat()}, ensure_ascii=False
        )
        try:
            os.makedirs(os.path.dirname(self.path) or ".", exist_ok=True)
            # One write per line in append mode: concurrent workers never interleave.
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            try:
                os.write(fd, (line + "\n").encode())
            finally:
                os.close(fd)
        except OSError as error:
            raise SMSDeliveryError(f"cannot write {self.path}: {error.strerror}") from None


@dataclass(frozen=True)
class TwilioGateway:
    account_sid: str
    auth_token: str
    from_number: str
    http_client: object | None = None  # tests inject a fake transport

    def send(self, to: str, body: str, *, key: str = "") -> None:
        # Twilio's API takes no idempotency key for a new message: a repeat after a lost
        # answer is possible, and rare (see docs/operations.md, "Delivery guarantees").
        try:
            from twilio.base.exceptions import TwilioException
            from twilio.rest import Client
        except ImportError:  # pragma: no cover - depends on the install
            raise SMSDeliveryError(
                "the twilio package is not installed (pip install 'sealbox[twilio]')",
                transient=False,
            ) from None
        client = Client(self.account_sid, self.auth_token, http_client=self.http_client)
        try:
            client.messages.create(to=to, from_=self.from_number, body=body)
        except TwilioException as error:
            status = getattr(error, "status", "")
            code = getattr(error, "code", "")
            retryable = (
                status == 429
                or (isinstance(status, int) and status >= 500)
                or code in TWILIO_RETRYABLE_CODES
            )
            raise SMSDeliveryError(
                f"Twilio refused the SMS (status {status}, code {code})", transient=retryable
            ) from None
        except OSError as error:
            raise SMSDeliveryError(f"cannot reach Twilio: {error.__class__.__name__}") from None


@dataclass(frozen=True)
class WebhookGateway:
    url: str
    username: str = ""
    password: str = ""

    def send(self, to: str, body: str, *, key: str = "") -> None:
        data = json.dumps({"to": to, "body": body}).encode()
        headers = {"Content-Type": "application/json"}
        if key:
            headers["Idempotency-Key"] = key
        request = urllib.request.Request(  # noqa: S310 - scheme checked in gateway_from_url
            self.url, data=data, method="POST", headers=headers
        )
        if self.username or self.password:
            token = base64.b64encode(f"{self.username}:{self.password}".encode()).decode()
            request.add_header("Authorization", f"Basic {token}")
        try:
            with urllib.request.urlopen(request, timeout=WEBHOOK_TIMEOUT_SECONDS) as response:  # noqa: S310
                status = response.status
        except urllib.error.HTTPError as error:
            raise SMSDeliveryError(f"the SMS webhook answered {error.code}") from None
        except (urllib.error.URLError, OSError) as error:
            reason = getattr(error, "reason", error)
            raise SMSDeliveryError(f"cannot reach the SMS webhook: {reason}") from None
        if not 200 <= status < 300:
            raise SMSDeliveryError(f"the SMS webhook answered {status}")


def _query(raw: str) -> dict[str, str]:
    # Not parse_qs: it would turn the "+" of an international number into a space.
    values = {}
    for part in raw.split("&"):
        if part:
            key, _, value = part.partition("=")
            values[unquote(key)] = unquote(value)
    return values


def gateway_from_url(url: str) -> Gateway:
    parts = urlsplit(url)
    if parts.scheme == "console":
        return ConsoleGateway()
    if parts.scheme == "file":
        if not parts.path:
            raise SMSConfigurationError("expected file:////absolute/path/to/sms.jsonl")
        return FileGateway(unquote(parts.path))
    if parts.scheme == "twilio":
        sender = _query(parts.query).get("from", "")
        if not (parts.username and parts.password and sender):
            raise SMSConfigurationError("expected twilio://ACCOUNT_SID:AUTH_TOKEN@?from=+1…")
        return TwilioGateway(unquote(parts.username), unquote(parts.password), sender)
    if parts.scheme in ("https", "http"):
        if not parts.hostname:
            raise SMSConfigurationError("expected https://host/path for the SMS webhook")
        netloc = parts.hostname if ":" not in parts.hostname else f"[{parts.hostname}]"
        if parts.port:
            netloc += f":{parts.port}"
        clean = urlunsplit((parts.scheme, netloc, parts.path or "/", parts.query, ""))
        return WebhookGateway(clean, unquote(parts.username or ""), unquote(parts.password or ""))
    raise SMSConfigurationError(f"unsupported SMS gateway scheme {parts.scheme!r}")


def configured_gateway() -> Gateway:
    return gateway_from_url(settings.SEALBOX_SMS_URL)


def send_sms_now(to: str, body: str, *, key: str = "") -> None:
    """Send one SMS through the configured gateway; raises SMSDeliveryError."""
    try:
        gateway = configured_gateway()
    except SMSConfigurationError as error:
        raise SMSDeliveryError(f"SEALBOX_SMS_URL: {error}", transient=False) from None
    gateway.send(to, body, key=key)
