from tests.exchange.conftest import (  # noqa: F401 - shared fixtures
    recipient_transport,
    send,
    sender,
    sender_transport,
)
