"""Fixtures the security tests share with the app tests (senders, recipients, envelopes)."""

from tests.envelopes.conftest import make_envelope  # noqa: F401
from tests.exchange.conftest import (  # noqa: F401
    recipient_transport,
    send,
    sender,
    sender_transport,
    sms_outbox,
)
