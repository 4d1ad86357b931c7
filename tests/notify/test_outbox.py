"""The outbox: every email and SMS is sealed under its own key while queued, delivered by
a task that carries only its id, and erased (content and key) once done."""

from __future__ import annotations

import base64
import importlib
import json
import os
import stat
import uuid
from datetime import timedelta
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from django.apps import apps
from django.core import mail
from django.core.files.storage import default_storage
from django.db import connection
from django_tasks_db.models import DBTaskResult

from sealbox.audit.models import Event
from sealbox.notify import keystore, sealing, sms, sms_tasks
from sealbox.notify import services as notify
from sealbox.notify.models import OutboxMessage
from sealbox.notify.tasks import deliver_email
from tests.exchange.test_storage_s3 import keys
from tests.notify.conftest import run_worker

pytestmark = pytest.mark.django_db


def key_path(outbox_id) -> Path:
    return Path(default_storage.path(keystore.key_name(outbox_id)))


def queue_one(subject="Your link", text="http://x/o/abc#SECRET-FRAGMENT-1234") -> OutboxMessage:
    notify.send_email("client@example.org", subject, text, "<p>html</p>", sensitive=True)
    return OutboxMessage.objects.order_by("-created_at").first()


@pytest.mark.django_db(transaction=True)
def test_an_email_is_queued_sealed_and_erased_once_sent(database_tasks):
    queued = queue_one()
    [task] = DBTaskResult.objects.all()
    assert task.args_kwargs == {"args": [], "kwargs": {"outbox_id": str(queued.pk)}}
    assert queued.status == "queued" and queued.recipients == ["client@example.org"]
    assert b"SECRET-FRAGMENT" not in bytes(queued.sealed) and b"Your link" not in bytes(
        queued.sealed
    )
    path = key_path(queued.pk)
    assert len(path.read_bytes()) == 32
    assert stat.S_IMODE(path.stat().st_mode) == 0o600

    run_worker()

    [sent] = mail.outbox
    assert (sent.subject, sent.to, sent.alternatives[0][0]) == (
        "Your link",
        ["client@example.org"],
        "<p>html</p>",
    )
    assert "SECRET-FRAGMENT-1234" in sent.body
    queued.refresh_from_db()
    assert (queued.status, queued.sealed, queued.attempts) == ("sent", None, 1)
    assert queued.finished_at is not None
    assert not path.exists()
    assert DBTaskResult.objects.count() == 0
    event = Event.objects.get(action="email.sent")
    assert event.organisation is None and event.actor_type == "system"
    assert event.details["to"] == "client@example.org"


def test_a_second_run_of_the_same_task_sends_nothing():
    queued = queue_one()
    assert len(mail.outbox) == 1
    assert deliver_email.call(outbox_id=str(queued.pk)) is False
    assert deliver_email.call(outbox_id="not-a-uuid") is False
    assert len(mail.outbox) == 1


def test_without_its_key_a_message_fails_and_is_erased(database_tasks):
    queued = queue_one()
    keystore.destroy(queued.pk)
    assert deliver_email.call(outbox_id=str(queued.pk)) is False
    queued.refresh_from_db()
    assert (queued.status, queued.sealed) == ("failed", None)
    assert "no longer available" in queued.last_error
    assert mail.outbox == []


def test_the_key_object_and_the_secret_key_are_both_needed(database_tasks, settings):
    queued = queue_one()
    sealed, payload_key = bytes(queued.sealed), key_path(queued.pk).read_bytes()
    assert sealing.unseal(sealed, payload_key, queued.pk)["subject"] == "Your link"
    with pytest.raises(sealing.SealError):  # the database and the secret key, no storage
        sealing.unseal(sealed, sealing.new_payload_key(), queued.pk)
    with pytest.raises(sealing.SealError):  # bound to its row
        sealing.unseal(sealed, payload_key, uuid.uuid4())
    settings.SECRET_KEY = "another-secret-key-another-secret-key-0123456789"
    with pytest.raises(sealing.SealError):  # the database and the storage, no secret key
        sealing.unseal(sealed, payload_key, queued.pk)


def test_a_secret_key_rotation_keeps_what_was_queued(database_tasks, settings):
    old = settings.SECRET_KEY
    kept, lost = queue_one(subject="kept"), queue_one(subject="lost")
    settings.SECRET_KEY = "a-rotated-secret-key-a-rotated-secret-key-0123456"
    settings.SECRET_KEY_FALLBACKS = [old]
    assert deliver_email.call(outbox_id=str(kept.pk)) is True
    settings.SECRET_KEY_FALLBACKS = []
    assert deliver_email.call(outbox_id=str(lost.pk)) is False
    assert [m.subject for m in mail.outbox] == ["kept"]
    lost.refresh_from_db()
    assert (lost.status, lost.sealed, lost.last_error) == (
        "failed",
        None,
        "the sealed content cannot be opened",
    )


def test_an_sms_is_sealed_in_the_outbox_and_erased_once_sent(monkeypatch):
    sent = []

    def gateway(to, body, **kwargs):
        row = OutboxMessage.objects.get()
        sent.append((to, body, row.sealed is not None, key_path(row.pk).exists()))

    monkeypatch.setattr(sms, "send_sms_now", gateway)
    sms_tasks.queue_sms("+15145550100", "Your Sealbox code is 314159.", reference="smscode:1")
    assert sent == [("+15145550100", "Your Sealbox code is 314159.", True, True)]
    row = OutboxMessage.objects.get()
    assert (row.channel, row.status, row.sealed, row.reference) == (
        "sms",
        "sent",
        None,
        "smscode:1",
    )
    assert not key_path(row.pk).exists()
    assert Event.objects.filter(action="sms.sent", target_id=str(row.pk)).exists()


def test_an_unexpected_gateway_error_still_erases_the_sms(monkeypatch):
    def broken(to, body, **kwargs):
        raise RuntimeError("gateway bug")

    monkeypatch.setattr(sms, "send_sms_now", broken)
    sms_tasks.queue_sms("+15145550100", "Your Sealbox code is 314159.")
    row = OutboxMessage.objects.get()
    assert (row.status, row.sealed, row.attempts) == ("failed", None, 1)
    assert row.last_error == "RuntimeError: gateway bug"


# --- Purge ----------------------------------------------------------------------------


def test_the_purge_erases_what_a_dead_worker_left_queued(database_tasks, clock):
    stale = queue_one()
    clock.advance(hours=71)
    fresh = queue_one()
    clock.advance(hours=2)
    report = notify.purge()
    assert report.abandoned == 1
    stale.refresh_from_db()
    fresh.refresh_from_db()
    assert (stale.status, stale.sealed) == ("failed", None)
    assert not key_path(stale.pk).exists()
    assert fresh.status == "queued" and key_path(fresh.pk).exists()
    assert Event.objects.filter(action="email.failed", target_id=str(stale.pk)).exists()


def test_the_purge_drops_old_finished_rows(clock):
    queue_one()  # delivered at once (immediate backend)
    clock.advance(days=6)
    assert notify.purge().rows_deleted == 0
    clock.advance(days=2)
    assert notify.purge().rows_deleted == 1
    assert not OutboxMessage.objects.exists()


def test_the_purge_destroys_stray_keys(database_tasks):
    queued = queue_one()
    finished = queue_one()
    OutboxMessage.objects.filter(pk=finished.pk).update(status="sent", sealed=None)
    orphan_old, orphan_new = uuid.uuid4(), uuid.uuid4()
    for orphan in (orphan_old, orphan_new):
        keystore.store(orphan, sealing.new_payload_key())
    hours_ago = (key_path(orphan_old).stat().st_mtime - 2 * 3600,) * 2
    os.utime(key_path(orphan_old), hours_ago)

    assert notify.purge().keys_destroyed == 2
    assert key_path(queued.pk).exists()  # still to be delivered
    assert not key_path(finished.pk).exists()  # its delivery could not destroy it
    assert not key_path(orphan_old).exists()  # its row never committed
    assert key_path(orphan_new).exists()  # its row may still be committing


def test_the_purge_runs_with_the_others():
    from sealbox import cli

    queue_one()
    OutboxMessage.objects.update(
        status="queued", created_at=OutboxMessage.objects.get().created_at - timedelta(days=4)
    )
    cli.run_purge()
    assert OutboxMessage.objects.get().status == "failed"


# --- Storage --------------------------------------------------------------------------


def test_payload_keys_on_s3(s3_storage):
    queued = queue_one()  # delivered at once: its key object came and went
    assert keys(s3_storage) == []
    assert OutboxMessage.objects.get(pk=queued.pk).status == "sent"
    outbox_id = uuid.uuid4()
    keystore.store(outbox_id, b"k" * 32)
    assert keys(s3_storage) == [f"tenant1/outbox/{outbox_id}"]
    assert keystore.load(outbox_id) == b"k" * 32
    assert list(keystore.stored_ids()) == [outbox_id]
    keystore.destroy(outbox_id)
    assert keys(s3_storage) == []
    assert keystore.load(outbox_id) is None


def test_sqlite_zeroes_what_it_deletes():
    if connection.vendor != "sqlite":
        pytest.skip("SQLite only")
    with connection.cursor() as cursor:
        cursor.execute("PRAGMA secure_delete")
        assert cursor.fetchone()[0] == 1


# --- Upgrading: rows of the old tasks -------------------------------------------------


def legacy_seal(payload: dict, secret_key: str) -> str:
    info = b"sealbox task payload v1"
    key = HKDF(hashes.SHA256(), 32, salt=None, info=info).derive(secret_key.encode())
    nonce = os.urandom(12)
    sealed = AESGCM(key).encrypt(nonce, json.dumps(payload).encode(), info)
    return base64.urlsafe_b64encode(nonce + sealed).decode()


def legacy_row(task_path: str, status: str, **kwargs) -> DBTaskResult:
    from django.utils import timezone

    return DBTaskResult.objects.create(
        task_path=task_path,
        status=status,
        args_kwargs={"args": [], "kwargs": kwargs},
        backend_name="default",
        run_after=timezone.now(),
        started_at=timezone.now() - timedelta(days=1),
    )


def test_the_upgrade_moves_queued_legacy_tasks_into_the_outbox(settings, monkeypatch):
    migration = importlib.import_module("sealbox.notify.migrations.0002_legacy_task_rows")
    secret = settings.SECRET_KEY
    email = {"subject": "Reset", "text": "http://x/password-reset/a/b/", "html": ""}
    queued_email = legacy_row(
        migration.EMAIL_TASK,
        "READY",
        to=["a@example.org"],
        subject="",
        sealed=legacy_seal(email, secret),
    )
    queued_sms = legacy_row(
        migration.SMS_TASK, "READY", to="+15145550100",
        sealed=legacy_seal({"body": "code 123456"}, secret), reference="smscode:9",
    )  # fmt: skip
    done = legacy_row(migration.EMAIL_TASK, "SUCCESSFUL", to=["b@example.org"], sealed="x")
    failed = legacy_row(migration.SMS_TASK, "FAILED", to="+15145550100", sealed="x")
    orphan = legacy_row(migration.EMAIL_TASK, "RUNNING", to=["c@example.org"], sealed="x")

    migration.move_queued_into_outbox(apps, None)

    assert set(DBTaskResult.objects.values_list("pk", flat=True)) == {
        queued_email.pk,
        queued_sms.pk,
    }
    assert not DBTaskResult.objects.filter(pk__in=[done.pk, failed.pk, orphan.pk]).exists()
    for row in (queued_email, queued_sms):
        row.refresh_from_db()
        assert set(row.args_kwargs["kwargs"]) == {"outbox_id"}
        assert "sealed" not in json.dumps(row.args_kwargs)
    sms_row = OutboxMessage.objects.get(channel="sms")
    assert (sms_row.recipients, sms_row.reference) == (["+15145550100"], "smscode:9")
    # Delivered as the new tasks deliver them.
    delivered = []
    monkeypatch.setattr(sms, "send_sms_now", lambda to, body, **kw: delivered.append((to, body)))
    assert sms_tasks.deliver_sms.call(**queued_sms.args_kwargs["kwargs"]) is True
    assert deliver_email.call(**queued_email.args_kwargs["kwargs"]) is True
    assert delivered == [("+15145550100", "code 123456")]
    assert [(m.subject, m.to, m.body) for m in mail.outbox] == [
        ("Reset", ["a@example.org"], "http://x/password-reset/a/b/")
    ]
