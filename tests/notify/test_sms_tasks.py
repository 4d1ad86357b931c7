"""SMS delivery runs as a background task, with retries, and reports the outcome."""

import json
import time
from datetime import timedelta

import pytest
from django.test import override_settings

from sealbox.audit.models import Event
from sealbox.notify import sms, sms_tasks
from tests.notify.conftest import run_worker

# Every SMS goes through the outbox (a database row): even the immediate task backend
# of the tests needs the database.
pytestmark = pytest.mark.django_db


@pytest.fixture
def reports():
    sent, failed = [], []

    def on_sent(sender, reference="", **kwargs):
        sent.append(reference)

    def on_failed(sender, reference="", reason="", **kwargs):
        failed.append((reference, reason))

    sms_tasks.sms_sent.connect(on_sent)
    sms_tasks.sms_failed.connect(on_failed)
    yield sent, failed
    sms_tasks.sms_sent.disconnect(on_sent)
    sms_tasks.sms_failed.disconnect(on_failed)


@pytest.fixture
def flaky(monkeypatch):
    """A gateway that fails a given number of times, then works. Nothing may sleep: a
    retry is a new task for later, not a worker held waiting."""
    sleeps, calls = [], []
    monkeypatch.setattr(time, "sleep", sleeps.append)

    def install(failures: int):
        def send(to, body, **kwargs):
            calls.append((to, body))
            if len(calls) <= failures:
                raise sms.SMSDeliveryError("the SMS webhook answered 503")

        monkeypatch.setattr(sms, "send_sms_now", send)
        return calls, sleeps

    return install


def test_a_transient_failure_is_retried(flaky, reports):
    calls, sleeps = flaky(2)
    sms_tasks.queue_sms("+15145550100", "hello", reference="test:1")
    assert len(calls) == 3
    assert sleeps == []
    assert reports == (["test:1"], [])


@pytest.mark.django_db(transaction=True)
def test_each_retry_is_a_task_run_after_the_delay(flaky, reports, database_tasks):
    """The quick first retries of a code (1 s, then 3 s) are new tasks run after the wait;
    the worker sends other messages meanwhile."""
    from django.utils import timezone
    from django_tasks_db.models import DBTaskResult

    from sealbox.notify.models import OutboxMessage

    calls, sleeps = flaky(2)
    sms_tasks.queue_sms("+15145550100", "hello", reference="test:3")
    for attempt, delay in enumerate(sms_tasks.RETRY_DELAYS_SECONDS, start=1):
        before = timezone.now()
        run_worker()
        [row] = OutboxMessage.objects.all()
        assert (row.status, row.attempts, len(calls)) == ("queued", attempt, attempt)
        assert row.last_error == "the SMS webhook answered 503"
        [task] = DBTaskResult.objects.all()  # the finished one is gone, the retry waits
        assert task.status == "READY"
        assert before + timedelta(seconds=delay) <= task.run_after
        assert task.run_after <= timezone.now() + timedelta(seconds=delay)
        # Not due yet: a worker passing by leaves it.
        run_worker()
        assert len(calls) == attempt
        DBTaskResult.objects.update(run_after=timezone.now())
        OutboxMessage.objects.update(next_attempt_at=timezone.now())
    run_worker()
    [row] = OutboxMessage.objects.all()
    assert (row.status, row.attempts, row.sealed) == ("sent", 3, None)
    assert sleeps == []
    assert reports == (["test:3"], [])
    assert DBTaskResult.objects.count() == 0
    deferred = Event.objects.filter(action="sms.deferred", target_id=str(row.pk))
    assert [e.details["retry_in"] for e in deferred.order_by("id")] == [1, 3]
    assert Event.objects.filter(action="sms.sent", target_id=str(row.pk)).count() == 1


def test_after_the_last_attempt_the_failure_is_reported(flaky, reports, caplog):
    calls, _ = flaky(99)
    sms_tasks.queue_sms("+15145550100", "code 123456", reference="test:2")
    assert len(calls) == 3
    assert reports == ([], [("test:2", "the SMS webhook answered 503")])
    assert "123456" not in caplog.text


def test_the_queued_task_holds_the_body_sealed(flaky):
    from django_tasks_db.models import DBTaskResult

    from sealbox.notify.models import OutboxMessage

    calls, _ = flaky(0)
    with override_settings(TASKS={"default": {"BACKEND": "django_tasks_db.DatabaseBackend"}}):
        sms_tasks.queue_sms("+15145550100", "Your Sealbox code is 123456.", reference="r")
        [row] = DBTaskResult.objects.all()
        stored = json.dumps(row.args_kwargs)
        assert "123456" not in stored and "Sealbox code" not in stored
        # The task carries only the outbox id; the number is on the outbox row, the body
        # sealed there.
        [queued] = OutboxMessage.objects.all()
        assert row.args_kwargs["kwargs"] == {"outbox_id": str(queued.pk)}
        assert queued.recipients == ["+15145550100"]
        assert b"123456" not in bytes(queued.sealed)
        assert calls == []
        sms_tasks.deliver_sms.call(**row.args_kwargs["kwargs"])
    assert calls == [("+15145550100", "Your Sealbox code is 123456.")]
