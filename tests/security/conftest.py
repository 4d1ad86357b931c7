"""Fixtures the security tests share with the tests of the apps they attack."""

from tests.envelopes.conftest import make_envelope  # noqa: F401
from tests.exchange.conftest import (  # noqa: F401
    recipient_transport,
    send,
    sender,
    sender_transport,
    sms_outbox,
)
from tests.exchange.test_storage_s3 import moto_endpoint, s3_storage  # noqa: F401
