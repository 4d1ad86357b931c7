"""Issue 11, item 2: a delivery that fails for good erases its payload too.

Before the fix, a task that failed kept its row (status FAILED) with its sealed arguments
and a traceback, for ever, like a successful one. Now the outbox row's sealed content is
set to NULL and its payload key destroyed after the last attempt, and the task row is
deleted: nothing of it can be opened later, even with the secret key.

Run with the database task backend and the worker as `sealbox worker` runs it, against a
real SMTP server that refuses the recipient, and an SMS gateway that keeps failing.
"""

from __future__ import annotations

import re
import socket

import pytest
from aiosmtpd.controller import Controller
from django.core import mail
from django_tasks_db.models import DBTaskResult

from sealbox.audit.models import Event
from sealbox.notify import keystore, sms, sms_tasks
from sealbox.notify import services as notify
from sealbox.notify.models import OutboxMessage
from tests.exchange.test_leaks import database_dump
from tests.notify.conftest import database_tasks, run_worker  # noqa: F401 - fixture

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("database_tasks")]


class Refusing:
    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        return "550 5.1.1 mailbox unavailable"


@pytest.fixture
def refusing_smtp(settings):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    controller = Controller(Refusing(), hostname="127.0.0.1", port=port)
    controller.start()
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", port
    settings.EMAIL_USE_TLS = settings.EMAIL_USE_SSL = False
    settings.EMAIL_HOST_USER = settings.EMAIL_HOST_PASSWORD = ""
    try:
        yield
    finally:
        controller.stop()


def has_key(message: OutboxMessage) -> bool:
    return keystore.load(message.pk) is not None


def test_a_refused_email_is_erased_and_its_task_row_deleted(
    client, user, refusing_smtp, monkeypatch
):
    captured = {}
    real_queue = notify.queue

    def spy(channel, recipients, payload, **kwargs):
        captured.update(payload)
        return real_queue(channel, recipients, payload, **kwargs)

    monkeypatch.setattr(notify, "queue", spy)
    assert client.post("/password-reset/", {"email": user.email}).status_code == 302
    token = re.search(r"/password-reset/\S+/(\S+)/", captured["text"]).group(1)
    [queued] = OutboxMessage.objects.all()
    assert queued.sealed is not None and has_key(queued)
    assert DBTaskResult.objects.count() == 1

    run_worker()

    queued.refresh_from_db()
    assert queued.status == "failed" and queued.attempts == 1
    assert "550" in queued.last_error and "mailbox unavailable" in queued.last_error
    assert queued.sealed is None
    assert not has_key(queued)
    assert DBTaskResult.objects.count() == 0
    assert mail.outbox == []
    event = Event.objects.get(action="email.failed")
    assert event.target_id == str(queued.pk) and "550" in event.details["reason"]
    assert token.encode() not in database_dump()


def test_an_sms_the_gateway_keeps_refusing_is_erased_after_its_last_attempt(monkeypatch):
    monkeypatch.setattr(sms_tasks, "RETRY_DELAYS_SECONDS", (0, 0))
    while_trying = []

    def failing(to, body, **kwargs):
        # The content must still be there for every attempt, the last one included.
        queued = OutboxMessage.objects.get()
        while_trying.append(queued.sealed is not None and has_key(queued))
        raise sms.SMSDeliveryError("the SMS webhook answered 503")

    monkeypatch.setattr(sms, "send_sms_now", failing)
    failed = []
    sms_tasks.sms_failed.connect(receiver := lambda sender, **kw: failed.append(kw["reference"]))
    try:
        sms_tasks.queue_sms("+15145550100", "Your Sealbox code is 271828.", reference="t:1")
        run_worker()
    finally:
        sms_tasks.sms_failed.disconnect(receiver)

    assert while_trying == [True, True, True]
    queued = OutboxMessage.objects.get()
    assert (queued.status, queued.attempts, queued.sealed) == ("failed", 3, None)
    assert not has_key(queued)
    assert DBTaskResult.objects.count() == 0
    assert failed == ["t:1"]
    assert Event.objects.filter(action="sms.failed", target_id=str(queued.pk)).exists()
    assert b"271828" not in database_dump()
