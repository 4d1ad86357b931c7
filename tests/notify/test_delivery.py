"""Delivery is at least once for the task and exactly once for the email: each attempt is
claimed before the gateway is called, transient failures come back later as new tasks,
permanent ones fail at once, and the audit log says queued, then sent or failed, in the
organisation of whoever queued the message, on its object.

Emails go to a real SMTP server (aiosmtpd) started by the tests."""

from __future__ import annotations

import asyncio
import email
import smtplib
import socket
import threading
from datetime import timedelta

import pytest
from aiosmtpd.controller import Controller
from django.conf import settings
from django.db import connections
from django.utils import timezone
from django_tasks_db.models import DBTaskResult

from sealbox.audit import services as audit
from sealbox.audit.models import Event
from sealbox.client import messages as client
from sealbox.history import services as history
from sealbox.notify import delivery, keystore, sms
from sealbox.notify import services as notify
from sealbox.notify.models import OutboxMessage
from sealbox.ops import services as ops
from sealbox.ops.models import EventCounter
from tests.notify.conftest import run_worker


class Mailbox:
    """An SMTP server's handler: answers each DATA with the next scripted reply (then
    250), after `delay` seconds; counts what it accepted (replied 250 to a client still
    there) and every Message-ID it was handed, accepted or not."""

    def __init__(self) -> None:
        self.replies: list[str] = []
        self.refuse_rcpt = ""  # for every recipient
        self.refused: dict[str, str] = {}  # by address
        self.delay = 0.0
        self.handed: list[str] = []
        self.accepted: list[email.message.Message] = []
        self.data_started = threading.Event()

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if self.refuse_rcpt or address in self.refused:
            return self.refuse_rcpt or self.refused[address]
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        parsed = email.message_from_bytes(envelope.content)
        self.handed.append(parsed["Message-ID"])
        self.data_started.set()
        if self.delay:
            await asyncio.sleep(self.delay)
        if self.replies:
            return self.replies.pop(0)
        self.accepted.append(parsed)
        return "250 Message accepted for delivery"


@pytest.fixture
def mailbox(settings):
    box = Mailbox()
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    controller = Controller(box, hostname="127.0.0.1", port=port)
    controller.start()
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", port
    settings.EMAIL_USE_TLS = settings.EMAIL_USE_SSL = False
    settings.EMAIL_HOST_USER = settings.EMAIL_HOST_PASSWORD = ""
    settings.EMAIL_TIMEOUT = 10
    try:
        yield box
    finally:
        controller.stop()


def counter(name: str) -> int:
    row = EventCounter.objects.filter(name=name).first()
    return row.value if row else 0


def make_due() -> None:
    """What the passing of the retry delay does: the waiting task and its message are due."""
    DBTaskResult.objects.filter(status="READY").update(run_after=timezone.now())
    OutboxMessage.objects.filter(status="queued").update(next_attempt_at=timezone.now())


def queue(subject: str = "Your link") -> OutboxMessage:
    outbox_id = notify.send_email("client@example.org", subject, "http://x/o/abc#SECRET-4321")
    return OutboxMessage.objects.get(pk=outbox_id)


# --- Retries ----------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_a_transient_smtp_failure_is_retried_later_then_delivered_once(mailbox, database_tasks):
    mailbox.replies = ["451 4.3.0 Mailbox busy, try again later"]
    queued = queue()

    run_worker()

    queued.refresh_from_db()
    assert queued.status == "queued" and queued.attempts == 1
    assert "451" in queued.last_error
    assert queued.sealed is not None and keystore.load(queued.pk) is not None  # still needed
    [retry] = DBTaskResult.objects.all()  # the first task's row is gone, the retry waits
    assert retry.status == "READY"
    assert retry.run_after > timezone.now() + timedelta(seconds=20)  # 30 s, not at once
    assert retry.args_kwargs == {"args": [], "kwargs": {"outbox_id": str(queued.pk)}}
    run_worker()  # not due yet: nothing happens
    assert mailbox.accepted == []

    make_due()
    run_worker()

    queued.refresh_from_db()
    assert (queued.status, queued.attempts, queued.sealed) == ("sent", 2, None)
    assert keystore.load(queued.pk) is None
    assert [m["Subject"] for m in mailbox.accepted] == ["Your link"]
    # The same Message-ID both times: a receiving system can tell a repeat.
    assert mailbox.handed == [notify.message_id(queued.pk)] * 2
    domain = settings.DEFAULT_FROM_EMAIL.rpartition("@")[2].rstrip(">")
    assert notify.message_id(queued.pk) == f"<{queued.pk}@{domain}>"
    actions = list(
        Event.objects.filter(target_id=str(queued.pk))
        .order_by("id")
        .values_list("action", "details")
    )
    assert [action for action, _ in actions] == ["email.deferred", "email.sent"]
    assert actions[0][1]["retry_in"] == 30 and "451" in actions[0][1]["reason"]
    assert actions[1][1]["attempts"] == 2
    assert DBTaskResult.objects.count() == 0
    assert (counter("emails_retried"), counter("emails_sent"), counter("emails_failed")) == (
        1,
        1,
        0,
    )


@pytest.mark.django_db(transaction=True)
def test_an_email_that_keeps_failing_fails_after_the_last_attempt(mailbox, database_tasks):
    from sealbox.notify import tasks

    mailbox.replies = ["421 4.7.0 Try again later"] * 10
    queued = queue()
    delays = []
    for _attempt in tasks.RETRY_DELAYS_SECONDS:
        before = timezone.now()
        run_worker()
        [retry] = DBTaskResult.objects.all()
        delays.append(round((retry.run_after - before).total_seconds()))
        make_due()
    run_worker()

    assert delays == [30, 60, 180, 480, 1020]  # six attempts over about half an hour
    queued.refresh_from_db()
    assert (queued.status, queued.attempts, queued.sealed) == ("failed", 6, None)
    assert keystore.load(queued.pk) is None
    assert len(mailbox.handed) == 6 and mailbox.accepted == []
    assert Event.objects.filter(action="email.deferred").count() == 5
    [failed] = Event.objects.filter(action="email.failed")
    assert failed.details["attempts"] == 6 and "421" in failed.details["reason"]
    assert DBTaskResult.objects.count() == 0
    assert (counter("emails_retried"), counter("emails_failed")) == (5, 1)


@pytest.mark.django_db(transaction=True)
def test_a_refused_recipient_fails_at_once(mailbox, database_tasks):
    mailbox.refuse_rcpt = "550 5.1.1 No such user"
    queued = queue()
    run_worker()
    queued.refresh_from_db()
    assert (queued.status, queued.attempts) == ("failed", 1)
    assert "550" in queued.last_error
    assert DBTaskResult.objects.count() == 0  # no retry scheduled
    assert Event.objects.filter(action="email.deferred").count() == 0


@pytest.mark.parametrize(
    "error, transient",
    [
        (smtplib.SMTPRecipientsRefused({"a@x.org": (550, b"no such user")}), False),
        (smtplib.SMTPRecipientsRefused({"a@x.org": (450, b"mailbox busy")}), True),
        (
            smtplib.SMTPRecipientsRefused({"a@x.org": (550, b"no"), "b@x.org": (451, b"later")}),
            True,
        ),
        (smtplib.SMTPSenderRefused(553, b"sender refused", "s@x.org"), False),
        (smtplib.SMTPSenderRefused(451, b"try later", "s@x.org"), True),
        (smtplib.SMTPDataError(554, b"rejected as spam"), False),
        (smtplib.SMTPDataError(452, b"too many messages"), True),
        (smtplib.SMTPServerDisconnected("Connection unexpectedly closed"), True),
        (smtplib.SMTPAuthenticationError(535, b"bad credentials"), True),
        (smtplib.SMTPConnectError(421, b"too busy"), True),
        (ConnectionRefusedError(111, "Connection refused"), True),
        (TimeoutError("timed out"), True),
        (sms.SMSDeliveryError("the SMS webhook answered 503"), True),
        (sms.SMSDeliveryError("Twilio refused the SMS", transient=False), False),
        (KeyError("subject"), False),
    ],
)
def test_transient_and_permanent_errors(error, transient):
    assert notify.is_transient(error) is transient


def test_the_email_timeout_is_set():
    # Production settings: a mail server that stops answering cannot hold a worker.
    assert settings.EMAIL_TIMEOUT == 30


# --- Claims -----------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("workers", [2, 4])
def test_workers_racing_on_the_same_message_send_it_once(mailbox, database_tasks, workers):
    """What two workers holding the same task id do (a task given back while its first
    worker was still sending): real threads, each with its own connection."""
    mailbox.delay = 0.3  # every claimer is past its claim while the first one sends
    queued = queue()
    barrier = threading.Barrier(workers)
    results: list[bool] = []

    def worker() -> None:
        try:
            barrier.wait()
            results.append(notify.deliver(str(queued.pk), "email"))
        finally:
            connections.close_all()

    threads = [threading.Thread(target=worker) for _ in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted(results) == [False] * (workers - 1) + [True]
    assert len(mailbox.accepted) == 1 and len(mailbox.handed) == 1
    queued.refresh_from_db()
    assert (queued.status, queued.attempts) == ("sent", 1)
    assert Event.objects.filter(action="email.sent").count() == 1
    assert counter("emails_sent") == 1


@pytest.mark.django_db(transaction=True)
def test_a_message_being_sent_is_left_to_its_worker(mailbox, database_tasks):
    """A second task for a message in the hands of a live worker does nothing, even once
    the first worker is slow; the claim is taken over only after the lease."""
    mailbox.delay = 1.0
    queued = queue()
    first = threading.Thread(
        target=lambda: (notify.deliver(str(queued.pk), "email"), connections.close_all())
    )
    first.start()
    assert mailbox.data_started.wait(10)
    assert notify.deliver(str(queued.pk), "email") is False  # claimed meanwhile: left alone
    first.join()
    assert len(mailbox.handed) == 1 and len(mailbox.accepted) == 1


@pytest.mark.django_db(transaction=True)
def test_a_claim_is_taken_over_after_its_lease(mailbox, database_tasks, clock):
    queued = queue()
    alive, dead = "node-a:101", "node-b:202"
    ops.beat(alive, clock())

    def claimed_by(name: str, ago: timedelta) -> None:
        OutboxMessage.objects.filter(pk=queued.pk).update(
            status="sending", attempts=1, claimed_by=name, claimed_at=clock() - ago
        )

    # A live worker keeps its claim for the whole lease...
    claimed_by(alive, notify.SEND_LEASE - timedelta(seconds=5))
    assert notify.deliver(str(queued.pk), "email") is False
    # ...a silent one only as long as a worker may be silent...
    claimed_by(dead, notify.ORPHAN_CLAIM_AFTER - timedelta(seconds=5))
    assert notify.deliver(str(queued.pk), "email") is False
    assert mailbox.handed == []
    claimed_by(dead, notify.ORPHAN_CLAIM_AFTER + timedelta(seconds=5))
    assert notify.deliver(str(queued.pk), "email") is True
    queued.refresh_from_db()
    assert (queued.status, queued.attempts) == ("sent", 2)
    assert len(mailbox.accepted) == 1

    # ...and even a live worker loses a claim older than the lease.
    again = queue("second")
    OutboxMessage.objects.filter(pk=again.pk).update(
        status="sending",
        attempts=1,
        claimed_by=alive,
        claimed_at=clock() - notify.SEND_LEASE - timedelta(seconds=1),
    )
    assert notify.deliver(str(again.pk), "email") is True


@pytest.mark.django_db(transaction=True)
def test_a_worker_whose_claim_was_taken_over_cannot_record_a_failure(mailbox, database_tasks):
    queued = queue()
    first = notify.claim(str(queued.pk), "email")
    OutboxMessage.objects.filter(pk=queued.pk).update(
        claimed_at=timezone.now() - timedelta(hours=1)
    )
    second = notify.claim(str(queued.pk), "email")
    assert second is not None and second.message.attempts == 2
    # The first worker comes back with a failure: it changes nothing, erases nothing.
    assert delivery._finish_claimed(first.message, "failed", "late error") is False
    assert delivery._retry_later(first.message, "late 451") is False
    assert keystore.load(queued.pk) is not None
    queued.refresh_from_db()
    assert (queued.status, queued.attempts) == ("sending", 2)
    # A success is the truth whoever reports it: the message went out.
    assert delivery._finish_claimed(first.message, "sent") is True
    assert delivery._finish_claimed(second.message, "sent") is False
    assert Event.objects.filter(action="email.sent").count() == 1
    assert keystore.load(queued.pk) is None


@pytest.mark.django_db(transaction=True)
def test_a_message_whose_worker_died_on_every_attempt_fails(mailbox, database_tasks, clock):
    """A message that kills its worker (or whose workers keep dying) is not retried for
    ever: after the last attempt it fails, and says why."""
    queued = queue()
    OutboxMessage.objects.filter(pk=queued.pk).update(
        status="sending",
        attempts=notify.max_attempts("email"),
        claimed_by="gone:1",
        claimed_at=clock() - timedelta(hours=1),
    )
    assert notify.deliver(str(queued.pk), "email") is False
    queued.refresh_from_db()
    assert (queued.status, queued.sealed) == ("failed", None)
    assert "stopped during the last attempt" in queued.last_error
    assert keystore.load(queued.pk) is None and mailbox.handed == []


@pytest.mark.django_db(transaction=True)
def test_the_purge_gives_a_stalled_message_a_task_again(mailbox, database_tasks, clock):
    """A message whose task ended with an error (the database went away mid-attempt) is
    neither lost nor left claimed for ever."""
    queue("lost task")
    stuck = queue("stuck claim")
    waiting = queue("waiting in the queue")
    DBTaskResult.objects.exclude(args_kwargs__kwargs__outbox_id=str(waiting.pk)).delete()
    OutboxMessage.objects.filter(pk=stuck.pk).update(
        status="sending", attempts=1, claimed_by="gone:2", claimed_at=clock()
    )
    assert notify.purge().resumed == 0  # too early for either
    clock.advance(minutes=3)
    report = notify.purge()
    assert report.resumed == 2  # not the one that still has its task
    assert DBTaskResult.objects.count() == 3
    assert notify.purge().resumed == 0  # each has a task now
    run_worker()
    assert sorted(m["Subject"] for m in mailbox.accepted) == [
        "lost task",
        "stuck claim",
        "waiting in the queue",
    ]
    assert set(OutboxMessage.objects.values_list("status", flat=True)) == {"sent"}


# --- SMS --------------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_an_sms_carries_its_delivery_key_on_every_attempt(database_tasks, monkeypatch):
    from sealbox.notify import sms_tasks

    monkeypatch.setattr(sms_tasks, "RETRY_DELAYS_SECONDS", (0.0, 0.0))
    keys = []

    def gateway(to, body, *, key=""):
        keys.append(key)
        if len(keys) == 1:
            raise sms.SMSDeliveryError("the SMS webhook answered 502")

    monkeypatch.setattr(sms, "send_sms_now", gateway)
    sms_tasks.queue_sms("+15145550100", "Your code is 111222.", reference="r:1")
    run_worker()
    row = OutboxMessage.objects.get()
    assert row.status == "sent" and keys == [str(row.pk)] * 2
    assert (counter("sms_retried"), counter("sms_sent")) == (1, 1)


@pytest.mark.django_db(transaction=True)
def test_a_permanent_sms_refusal_is_not_retried(database_tasks, monkeypatch):
    from sealbox.notify import sms_tasks

    calls = []

    def gateway(to, body, *, key=""):
        calls.append(to)
        raise sms.SMSDeliveryError(
            "Twilio refused the SMS (status 400, code 21211)", transient=False
        )

    monkeypatch.setattr(sms, "send_sms_now", gateway)
    sms_tasks.queue_sms("+15145550100", "Your code is 111222.")
    run_worker()
    assert calls == ["+15145550100"]
    assert OutboxMessage.objects.get().status == "failed"
    assert counter("sms_failed") == 1


# --- Audit: queued, then sent or failed, where the sender looks ----------------------------


@pytest.mark.django_db(transaction=True)
def test_a_notification_is_audited_queued_then_sent_in_the_organisation(
    mailbox, database_tasks, send, sender
):
    from sealbox.exchange.models import Message

    sent = send(delivery="email")
    message = Message.objects.get(public_id=sent.id)

    def timeline() -> list[tuple[str, str]]:
        return list(
            Event.objects.filter(target_type="message", target_id=str(message.pk))
            .order_by("id")
            .values_list("action", "chain")
        )

    chain = f"org:{sender.organisation_id}"
    # Queued: nothing says sent before the mail server took it.
    assert timeline() == [
        ("message.created", chain),
        ("message.sent", chain),
        ("notification.queued", chain),
    ]
    assert mailbox.accepted == []
    run_worker()
    assert timeline()[3:] == [("email.sent", chain)] * 2  # the link, then the opening code
    grant = message.grants.get()
    sent_events = Event.objects.filter(action="email.sent", target_id=str(message.pk))
    assert [e.details["reference"] for e in sent_events] == [f"grant:{grant.pk}"] * 2
    assert not Event.objects.filter(action="notification.sent").exists()
    assert len(mailbox.accepted) == 2


@pytest.mark.django_db
def test_a_notification_that_fails_shows_in_the_timeline_and_the_history(
    mailbox, send, sender, sender_transport
):
    from sealbox.exchange.models import Message

    mailbox.refused = {"nobody@example.org": "550 5.1.1 No such user here"}
    sent = send(
        delivery="email",
        recipients=[client.Recipient("nobody@example.org"), client.Recipient("client@example.org")],
    )
    message = Message.objects.get(public_id=sent.id)
    failed = Event.objects.filter(action="email.failed", target_id=str(message.pk))
    assert failed.count() == 2  # the link and the opening code, each refused at once
    assert {e.organisation_id for e in failed} == {sender.organisation_id}
    assert {e.details["attempts"] for e in failed} == {1}
    assert [m["To"] for m in mailbox.accepted] == ["client@example.org"] * 2

    browser = sender_transport.client
    page = browser.get(f"/messages/{message.public_id}/").content.decode()
    assert page.count("Email not delivered (nobody@example.org)") == 2  # the timeline
    assert "Email accepted by the mail server (client@example.org)" in page
    assert page.count("<strong>Email not delivered</strong>") == 1  # the recipients table
    history = browser.get("/history/").content.decode()
    assert history.count('class="status status-not_delivered">Email not delivered<') == 1
    assert history.count('class="status status-not_opened">Not opened<') == 1
    export = b"".join(browser.get("/history/export.csv").streaming_content).decode()
    [undelivered] = [line for line in export.splitlines() if "nobody@example.org" in line]
    assert "Email not delivered" in undelivered
    [fine] = [line for line in export.splitlines() if "client@example.org" in line]
    assert "Not opened" in fine


@pytest.mark.django_db
def test_an_email_code_is_marked_by_the_outcome_of_its_email(
    mailbox, send, recipient_transport, sender
):
    """An emailed verification code was marked sent the moment it was queued; now the
    outbox's report marks it, so a refused email is told to the recipient at once (and
    a new code may be asked for straight away)."""
    from sealbox.twofactor.models import SMSCode

    mailbox.refused = {"nobody@example.org": "550 5.1.1 No such user here"}
    sent = send(
        recipients=[
            client.Recipient("nobody@example.org", "email_code"),
            client.Recipient("client@example.org", "email_code"),
        ]
    )
    with pytest.raises(client.ClientError) as refused:
        client.request_code(recipient_transport, sent.links["nobody@example.org"])
    assert refused.value.status == 502 and refused.value.data["error"] == "not_delivered"
    assert client.request_code(recipient_transport, sent.links["client@example.org"])
    deliveries = dict(SMSCode.objects.values_list("binding", "delivery"))
    assert sorted(deliveries.values()) == ["failed", "sent"]
    [failed] = Event.objects.filter(action="email.failed")
    assert failed.details["reference"].startswith("smscode:")
    assert failed.target_type == "message" and failed.organisation_id == sender.organisation_id
    # A code email is not the link: the recipient's row is not "not delivered".
    assert history.undelivered_grants([int(failed.target_id)]) == set()


@pytest.mark.django_db
def test_an_invitation_that_fails_is_audited_on_the_invited_user(mailbox, admin_user):
    from sealbox.users import services as users

    mailbox.refused = {"new@example.com": "550 5.1.1 No such user here"}
    invited = users.invite_user(None, admin_user, users.NewUser(email="new@example.com"))
    [failed] = Event.objects.filter(action="email.failed")
    assert (failed.target_type, failed.target_id) == ("user", str(invited.pk))
    assert failed.organisation_id == admin_user.organisation_id
    assert failed.details["to"] == "new@example.com"
    actions = list(
        Event.objects.filter(target_type="user", target_id=str(invited.pk))
        .order_by("id")
        .values_list("action", flat=True)
    )
    assert actions == ["user.invited", "email.failed"]


@pytest.mark.django_db
def test_an_envelope_link_that_fails_is_audited_on_the_envelope(mailbox, sender):
    from sealbox.envelopes import services as envelopes

    mailbox.refused = {"nobody@example.org": "550 5.1.1 No such user here"}
    envelope = envelopes.create_envelope(
        sender,
        envelopes.EnvelopeSpec(
            subject="Your tax documents",
            expires_at=timezone.now() + timedelta(days=7),
            recipients=[envelopes.EnvelopeRecipient("nobody@example.org")],
            delivery="email",
        ),
    )
    link = envelope.links.get()
    events = list(
        Event.objects.filter(target_type="envelope", target_id=str(envelope.pk))
        .order_by("id")
        .values_list("action", "chain", "details__reference")
    )
    chain = f"org:{sender.organisation_id}"
    assert ("envelope.link_queued", chain, envelope.reference) in events
    failed = [e for e in events if e[0] == "email.failed"]
    assert failed and set(failed) == {("email.failed", chain, f"envelopelink:{link.pk}")}
    assert not any(action == "envelope.delivered" for action, _c, _r in events)


@pytest.mark.django_db(transaction=True)
def test_a_success_that_could_not_be_recorded_is_sent_again_not_called_failed(
    mailbox, database_tasks, clock, monkeypatch
):
    """The database went away just after the mail server took the email: the outcome
    could not be written. The key is kept, so the next attempt sends it again (same
    Message-ID: the receiving side can drop it) and records it sent, instead of finding
    nothing to send and recording as failed an email that went out."""
    from django.db import OperationalError

    queued = queue()
    real_record = audit.record
    down = {"email.sent": 1}

    def flaky_record(action, **kwargs):
        if down.get(action):
            down[action] -= 1
            raise OperationalError("server closed the connection unexpectedly")
        return real_record(action, **kwargs)

    monkeypatch.setattr(audit, "record", flaky_record)
    with pytest.raises(OperationalError):
        notify.deliver(str(queued.pk), "email")
    queued.refresh_from_db()
    assert queued.status == "sending" and keystore.load(queued.pk) is not None
    assert len(mailbox.accepted) == 1

    clock.advance(seconds=notify.ORPHAN_CLAIM_AFTER.total_seconds() + 1)
    assert notify.deliver(str(queued.pk), "email") is True
    assert mailbox.handed == [notify.message_id(queued.pk)] * 2
    assert Event.objects.filter(action="email.sent").count() == 1
    assert not Event.objects.filter(action="email.failed").exists()
    assert keystore.load(queued.pk) is None


@pytest.mark.django_db(transaction=True)
def test_a_failure_that_could_not_be_recorded_is_erased_all_the_same(
    mailbox, database_tasks, clock, monkeypatch
):
    from django.db import OperationalError

    mailbox.refuse_rcpt = "550 5.1.1 No such user"
    queued = queue()
    real_record = audit.record
    down = {"email.failed": 1}

    def flaky_record(action, **kwargs):
        if down.get(action):
            down[action] -= 1
            raise OperationalError("server closed the connection unexpectedly")
        return real_record(action, **kwargs)

    monkeypatch.setattr(audit, "record", flaky_record)
    with pytest.raises(OperationalError):
        notify.deliver(str(queued.pk), "email")
    assert keystore.load(queued.pk) is None  # erasure first
    clock.advance(seconds=notify.ORPHAN_CLAIM_AFTER.total_seconds() + 1)
    assert notify.deliver(str(queued.pk), "email") is False
    queued.refresh_from_db()
    assert (queued.status, queued.sealed) == ("failed", None)
    assert "no longer available" in queued.last_error
    assert Event.objects.filter(action="email.failed").count() == 1


@pytest.mark.django_db(transaction=True)
def test_a_storage_outage_defers_the_email_rather_than_failing_it(
    mailbox, database_tasks, monkeypatch
):
    """The payload key lives in blob storage: while the store does not answer, the email
    waits for it (the key is there, only unreachable) instead of being given up."""
    from sealbox.lib.errors import StorageUnavailable

    queued = queue()
    real_load = keystore.load

    def store_down(outbox_id):
        raise StorageUnavailable()

    monkeypatch.setattr(keystore, "load", store_down)
    run_worker()
    queued.refresh_from_db()
    assert queued.status == "queued" and queued.attempts == 1
    assert queued.last_error == "file storage is unavailable"
    assert queued.sealed is not None
    assert mailbox.accepted == []

    monkeypatch.setattr(keystore, "load", real_load)  # the store is back
    make_due()
    run_worker()
    queued.refresh_from_db()
    assert (queued.status, queued.sealed) == ("sent", None)
    assert [m["Subject"] for m in mailbox.accepted] == ["Your link"]
