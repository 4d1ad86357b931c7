"""Rows of the old email and SMS tasks held their content sealed with a key derived from
the secret key alone, and finished rows were never deleted: a copy of the data folder
opened every one of them (links with their secret, codes, reset and invitation links).

Finished (and long-orphaned running) rows are deleted; rows still queued are moved into
the outbox, sealed again under a per-message key, and left carrying only the outbox id.
Then the freed bytes are scrubbed as far as the database allows: SQLite (secure_delete is
on for every connection) has its -wal truncated, PostgreSQL rewrites the task table so
the dead row versions leave it. Backups taken before this migration still hold the old
rows: see docs/operations.md ("Upgrading: queued emails").
"""

import base64
import json
import uuid
from datetime import timedelta

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from django.conf import settings
from django.db import migrations
from django.utils import timezone

EMAIL_TASK = "sealbox.notify.tasks.deliver_email"
SMS_TASK = "sealbox.notify.sms_tasks.deliver_sms"
LEGACY_INFO = b"sealbox task payload v1"


def _legacy_unseal(token: str) -> dict | None:
    raw = base64.urlsafe_b64decode(token.encode())
    for secret in [settings.SECRET_KEY, *getattr(settings, "SECRET_KEY_FALLBACKS", [])]:
        key = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=LEGACY_INFO).derive(
            secret.encode()
        )
        try:
            return json.loads(AESGCM(key).decrypt(raw[:12], raw[12:], LEGACY_INFO))
        except Exception:
            continue
    return None


def _legacy_payload(row) -> tuple[str, list[str], dict, str] | None:
    kwargs = dict(row.args_kwargs.get("kwargs") or {})
    if row.args_kwargs.get("args") or "outbox_id" in kwargs:
        return None
    if row.task_path == EMAIL_TASK:
        to = kwargs.get("to") or []
        if kwargs.get("sealed"):
            payload = _legacy_unseal(kwargs["sealed"])
        else:
            payload = {k: kwargs.get(k, "") for k in ("subject", "text", "html")}
        if payload is None:
            return None
        return "email", list(to), payload, ""
    sealed = kwargs.get("sealed")
    payload = _legacy_unseal(sealed) if sealed else None
    if payload is None or not kwargs.get("to"):
        return None
    return "sms", [kwargs["to"]], {"body": payload["body"]}, kwargs.get("reference", "")[:64]


def move_queued_into_outbox(apps, schema_editor):
    from sealbox.notify import keystore, sealing

    DBTaskResult = apps.get_model("django_tasks_database", "DBTaskResult")
    OutboxMessage = apps.get_model("notify", "OutboxMessage")
    legacy = DBTaskResult.objects.filter(task_path__in=[EMAIL_TASK, SMS_TASK])
    kept = []
    for row in legacy.filter(status="READY"):
        found = _legacy_payload(row)
        if found is None:
            if "outbox_id" in (row.args_kwargs.get("kwargs") or {}):
                kept.append(row.pk)
            continue  # cannot be delivered (e.g. the secret key changed): deleted below
        channel, recipients, payload, reference = found
        outbox_id = uuid.uuid4()
        payload_key = sealing.new_payload_key()
        keystore.store(outbox_id, payload_key)
        OutboxMessage.objects.create(
            id=outbox_id,
            channel=channel,
            recipients=recipients,
            reference=reference,
            sealed=sealing.seal(payload, payload_key, outbox_id),
            created_at=timezone.now(),
        )
        row.args_kwargs = {"args": [], "kwargs": {"outbox_id": str(outbox_id)}}
        row.save(update_fields=["args_kwargs"])
        kept.append(row.pk)
    # A running row may be in a worker's hands right now (a rolling deploy): only the
    # ones no worker can still be holding are removed.
    in_flight = legacy.filter(status="RUNNING", started_at__gt=timezone.now() - timedelta(hours=1))
    kept += list(in_flight.values_list("pk", flat=True))
    legacy.exclude(pk__in=kept).delete()


def scrub(apps, schema_editor):
    connection = schema_editor.connection
    with connection.cursor() as cursor:
        if connection.vendor == "sqlite":
            cursor.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        elif connection.vendor == "postgresql":
            table = apps.get_model("django_tasks_database", "DBTaskResult")._meta.db_table
            cursor.execute(f"VACUUM FULL {connection.ops.quote_name(table)}")


class Migration(migrations.Migration):
    # VACUUM and a WAL checkpoint cannot run inside a transaction.
    atomic = False

    dependencies = [
        ("notify", "0001_initial"),
        ("django_tasks_database", "0021_conditional_partial_index_ordering"),
    ]

    operations = [
        migrations.RunPython(move_queued_into_outbox, migrations.RunPython.noop, atomic=True),
        migrations.RunPython(scrub, migrations.RunPython.noop, atomic=False),
    ]
