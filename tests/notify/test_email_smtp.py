"""Security notifications go out through a real SMTP server (aiosmtpd) started here."""

import email
import socket

import pytest
from aiosmtpd.controller import Controller
from django.conf import settings
from django.test import override_settings

from sealbox.twofactor import services


class Inbox:
    def __init__(self):
        self.messages = []

    async def handle_DATA(self, server, session, envelope):
        self.messages.append((envelope.rcpt_tos, email.message_from_bytes(envelope.content)))
        return "250 Message accepted for delivery"


@pytest.fixture
def smtp_server():
    inbox = Inbox()
    with socket.socket() as probe:  # a free port: the controller checks it can connect
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield controller, inbox
    finally:
        controller.stop()


@pytest.mark.django_db
def test_a_recovery_code_email_through_smtp(smtp_server, user, rf, clock):
    from tests.twofactor.conftest import enable_totp

    controller, inbox = smtp_server
    enable_totp(user)
    with override_settings(
        EMAIL_BACKEND="django.core.mail.backends.smtp.EmailBackend",
        EMAIL_HOST="127.0.0.1",
        EMAIL_PORT=controller.port,
        EMAIL_USE_TLS=False,
        EMAIL_USE_SSL=False,
        EMAIL_HOST_USER="",
        EMAIL_HOST_PASSWORD="",
    ):
        codes = services.generate_recovery_codes(rf.post("/"), user)
        device = services.recovery_device(user)
        assert device.verify_token(codes[0])
        services._recovery_code_used(rf.post("/"), user, device)
    subjects = [message["Subject"] for _, message in inbox.messages]
    assert subjects == [
        "Sealbox: a second factor was added to your account",
        "Sealbox: a recovery code was used",
    ]
    recipients, message = inbox.messages[1]
    assert recipients == [user.email]
    # Security emails stay from Sealbox itself: no person's name, no Reply-To.
    assert message["From"] == settings.DEFAULT_FROM_EMAIL and message["Reply-To"] is None
    body = message.get_payload(decode=True).decode()
    assert "9 unused codes are left" in body
    assert not any(code in body for code in codes)
