"""Issue 13, finding 3: a worker killed while sending lost the email for good (the task
stayed RUNNING, nothing retried it, and the audit log already said `notification.sent`).

Real processes: a `sealbox worker` is SIGKILLed while a slow SMTP server (aiosmtpd whose
DATA handler sleeps) is receiving the email; a second worker delivers it later, once:
the server accepts one message, and the audit log says queued, then sent, once. On a
SQLite data folder, and on PostgreSQL when SEALBOX_TEST_DATABASE_URL is set.
"""

from __future__ import annotations

import asyncio
import email
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time

import pytest
from aiosmtpd.controller import Controller

from tests.processes import SHARED_SECRET_KEY, clean_env, empty_postgres_database

SEALBOX = os.path.join(os.path.dirname(sys.executable), "sealbox")

QUEUE = """
import secrets
from datetime import timedelta
from django.db import transaction
from sealbox.lib import clock
from sealbox.accounts import services as accounts
from sealbox.accounts.models import Plan
from sealbox.accounts.plans import ensure_default_plans
from sealbox.exchange import notifications
from sealbox.exchange.models import Grant, Message
ensure_default_plans(Plan)
org, _ = accounts.get_or_create_organisation("Slow Mail LLP", plan_name="Advanced")
sender = accounts.create_user("sender@example.com", "correct horse battery staple", org)
now = clock.now()
message = Message.objects.create(
    organisation=org, sender=sender, subject="Contract", state="sent", delivery="email",
    expires_at=now + timedelta(days=7), created_at=now, sent_at=now,
)
grant = Grant.objects.create(
    token=secrets.token_urlsafe(16), message=message, email="client@example.org",
    verification="opening_code", expires_at=message.expires_at,
)
with transaction.atomic():
    notifications.send_recipient_notification(message, grant, "http://x/o/t#LINK-SECRET-1")
print(message.pk)
"""

STATE = """
import json
from sealbox.audit.models import Event
from sealbox.notify import keystore
from sealbox.notify.models import OutboxMessage
from sealbox.ops.models import WorkerHeartbeat
from django_tasks_db.models import DBTaskResult
row = OutboxMessage.objects.get()
print(json.dumps({
    "status": row.status, "attempts": row.attempts, "claimed_by": row.claimed_by,
    "sealed": row.sealed is not None, "key": keystore.load(row.pk) is not None,
    "outbox": str(row.pk),
    "events": list(Event.objects.filter(target_id=row.target_id, target_type="message")
        .order_by("id").values_list("action", "chain")),
    "sent_attempts": [e.details["attempts"] for e in Event.objects.filter(action="email.sent")],
    "tasks": list(DBTaskResult.objects.values_list("status", flat=True)),
    "workers": list(WorkerHeartbeat.objects.values_list("name", flat=True)),
}))
"""

# What the passing of the lease looks like to the cluster, without waiting for it: the
# killed worker's last heartbeat and its claim are as old as a silent worker may be.
AS_IF_THE_LEASE_RAN_OUT = """
from datetime import timedelta
from sealbox.notify import services as notify
from sealbox.notify.models import OutboxMessage
from sealbox.ops.models import WorkerHeartbeat
name = {name!r}
ago = notify.ORPHAN_CLAIM_AFTER + timedelta(seconds=30)
for beat in WorkerHeartbeat.objects.filter(name=name):
    WorkerHeartbeat.objects.filter(name=name).update(beat_at=beat.beat_at - ago)
for row in OutboxMessage.objects.filter(claimed_by=name):
    OutboxMessage.objects.filter(pk=row.pk).update(claimed_at=row.claimed_at - ago)
"""


class SlowMailbox:
    """Takes its time over the first message: long enough to kill the worker mid-DATA.
    A message counts as accepted only once 250 went back to a client still there (a
    client that vanished cancels the handler, as a real server drops the transaction)."""

    def __init__(self, first_delay: float) -> None:
        self.first_delay = first_delay
        self.handed: list[str] = []
        self.accepted: list[email.message.Message] = []
        self.receiving = threading.Event()

    async def handle_DATA(self, server, session, envelope):
        parsed = email.message_from_bytes(envelope.content)
        self.handed.append(parsed["Message-ID"])
        if len(self.handed) == 1:
            self.receiving.set()
            await asyncio.sleep(self.first_delay)
        self.accepted.append(parsed)
        return "250 Message accepted for delivery"


def manage(env: dict[str, str], code: str) -> str:
    done = subprocess.run(  # noqa: S603
        [SEALBOX, "manage", "shell", "-c", code],
        env=env,
        check=True,
        timeout=120,
        capture_output=True,
        text=True,
    )
    return done.stdout.strip().splitlines()[-1] if done.stdout.strip() else ""


def start_worker(env: dict[str, str]) -> subprocess.Popen:
    return subprocess.Popen(  # noqa: S603
        [SEALBOX, "worker", "--no-migrate", "--purge-interval", "1"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def wait_for(predicate, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.2)
    pytest.fail(f"timed out waiting for {what}")


@pytest.fixture(params=["sqlite", "postgres"])
def database_env(request, tmp_path):
    env = clean_env(tmp_path, SEALBOX_SECRET_KEY=SHARED_SECRET_KEY)
    if request.param == "postgres":
        with empty_postgres_database() as url:
            yield {**env, "SEALBOX_DATABASE_URL": url}
    else:
        yield env


@pytest.fixture
def slow_smtp():
    mailbox = SlowMailbox(first_delay=60)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    controller = Controller(mailbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield mailbox, port
    finally:
        controller.stop()


def test_a_worker_killed_while_sending_leaves_the_email_to_the_next_one_which_sends_it_once(
    database_env, slow_smtp
):
    mailbox, port = slow_smtp
    env = {**database_env, "SEALBOX_EMAIL_URL": f"smtp://127.0.0.1:{port}"}
    subprocess.run([SEALBOX, "migrate"], env=env, check=True, timeout=180)  # noqa: S603
    manage(env, QUEUE)
    state = json.loads(manage(env, STATE))
    chain = state["events"][0][1]
    assert state["events"] == [["notification.queued", chain]]  # not "sent": only queued
    assert (state["status"], state["attempts"]) == ("queued", 0)

    first = start_worker(env)
    try:
        assert mailbox.receiving.wait(60), "the first worker never reached DATA"
        os.kill(first.pid, signal.SIGKILL)  # mid-DATA: the server has not answered yet
        first.wait(timeout=30)
    finally:
        if first.poll() is None:
            first.kill()
    output_first = first.stdout.read()

    state = json.loads(manage(env, STATE))
    assert state["status"] == "sending" and state["attempts"] == 1, output_first
    assert state["claimed_by"].endswith(f":{first.pid}")
    assert state["sealed"] and state["key"]  # nothing erased: it was not delivered
    assert state["tasks"] == ["RUNNING"]  # the dead worker's task, held for the lease
    assert state["events"] == [["notification.queued", chain]]
    assert mailbox.accepted == []

    manage(env, AS_IF_THE_LEASE_RAN_OUT.format(name=state["claimed_by"]))
    second = start_worker(env)
    try:
        wait_for(lambda: mailbox.accepted, 60, "the second worker's delivery")
        wait_for(lambda: json.loads(manage(env, STATE))["status"] == "sent", 30, "sent recorded")
        time.sleep(3)  # a few more rounds of the worker and its purge: nothing more goes out
        assert second.poll() is None, "the second worker exited"
        state = json.loads(manage(env, STATE))
    finally:
        second.send_signal(signal.SIGTERM)
        try:
            output_second, _ = second.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            second.kill()
            output_second, _ = second.communicate()

    # Exactly once: one message accepted; the one the killed worker was handing over
    # carried the same Message-ID, so even a server that had kept it could drop the repeat.
    assert len(mailbox.accepted) == 1, output_second
    assert [m["To"] for m in mailbox.accepted] == ["client@example.org"]
    assert "LINK-SECRET-1" in mailbox.accepted[0].get_payload()[0].get_payload(decode=True).decode()
    assert mailbox.handed == [f"<{state['outbox']}@localhost>"] * 2  # from no-reply@localhost
    assert (state["status"], state["attempts"], state["sealed"], state["key"]) == (
        "sent",
        2,
        False,
        False,
    )
    # The audit: queued, then sent, once, in the organisation's chain, on the message.
    assert state["events"] == [["notification.queued", chain], ["email.sent", chain]]
    assert chain.startswith("org:")
    assert state["sent_attempts"] == [2]
    assert state["tasks"] == []  # the requeued task's row is gone once it finished
