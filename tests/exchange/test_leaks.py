"""Nothing leaks: a full copy of the database and the storage reveals no body, file name,
file content or link secret; neither do the logs or the audit events."""

import base64
import logging
from pathlib import Path

import pytest
from django.conf import settings
from django.core.files.storage import default_storage
from django.db import connection

from sealbox.audit.models import Event
from sealbox.client import messages as client
from sealbox.crypto import links

pytestmark = pytest.mark.django_db

BODY = "BODY-MARKER-7f3a9c: the settlement amount is 1,250,000"
FILE_NAME = "FILENAME-MARKER-b41d2e.pdf"
FILE_CONTENT = b"CONTENT-MARKER-c0ffee " * 5000
PASSWORD = "PASSWORD-MARKER-5e6f"


def database_dump() -> bytes:
    """Every row of every table, every column, as bytes."""
    parts = []
    with connection.cursor() as cursor:
        for table in connection.introspection.table_names():
            cursor.execute(f'SELECT * FROM "{table}"')  # noqa: S608 - introspected names
            for row in cursor.fetchall():
                for value in row:
                    if isinstance(value, memoryview | bytes | bytearray):
                        parts.append(bytes(value))
                    else:
                        parts.append(str(value).encode())
    return b"\n".join(parts)


def storage_dump() -> bytes:
    root = Path(default_storage.location)
    return b"\n".join(p.read_bytes() + p.name.encode() for p in root.rglob("*") if p.is_file())


def forms_of(secret: bytes) -> list[bytes]:
    """The ways a secret could be written down: raw, hex, base64, base64url."""
    return [
        secret,
        secret.hex().encode(),
        base64.b64encode(secret).rstrip(b"="),
        base64.urlsafe_b64encode(secret).rstrip(b"="),
    ]


@pytest.fixture
def queued_tasks(settings):
    # Keep tasks in the database, as the embedded default does, so their rows are dumped.
    settings.TASKS = {"default": {"BACKEND": "django_tasks_db.DatabaseBackend"}}


def test_nothing_leaks(send, recipient_transport, caplog, capsys, queued_tasks):
    caplog.set_level(logging.DEBUG)
    attachment = client.Attachment(FILE_NAME, data=FILE_CONTENT, type="application/pdf")
    by_email = send(
        body=BODY,
        attachments=[attachment],
        delivery="email",
        recipients=[
            client.Recipient("a@example.org"),
            client.Recipient("b@example.org", "password", password=PASSWORD),
            client.Recipient("c@example.org", "email_code"),
        ],
        max_opens=3,
    )
    by_links = send(body=BODY, attachments=[attachment], delivery="links", max_opens=3)
    opened = client.open_message(
        recipient_transport,
        by_links.links["client@example.org"],
        code=by_links.opening_codes["client@example.org"],
    )
    assert opened.files[FILE_NAME] == FILE_CONTENT  # the markers did travel, encrypted

    secrets = [
        links.parse_link(link).link_secret
        for sent in (by_email, by_links)
        for link in sent.links.values()
    ]
    db = database_dump()
    blobs = storage_dump()
    assert len(blobs) > len(FILE_CONTENT)  # the ciphertext is there
    logs = (
        "\n".join(r.getMessage() for r in caplog.records) + "".join(capsys.readouterr())
    ).encode()
    events = "\n".join(
        str(e.details) + e.actor_label + e.target_id for e in Event.objects.all()
    ).encode()

    for marker in (BODY.encode(), FILE_NAME.encode(), b"CONTENT-MARKER-c0ffee", PASSWORD.encode()):
        for where, dump in (
            ("database", db),
            ("storage", blobs),
            ("logs", logs),
            ("audit", events),
        ):
            assert marker not in dump, f"{marker[:20]!r} found in {where}"
    for secret in secrets:
        for form in forms_of(secret):
            for where, dump in (
                ("database", db),
                ("storage", blobs),
                ("logs", logs),
                ("audit", events),
            ):
                assert form not in dump, f"a link secret was found in {where}"
    # The queued emails exist (sealed), and the subject is the only content in clear.
    assert b"deliver_email" in db
    assert b"Quarterly report" in db


def test_server_secret_alone_cannot_open(send, recipient_transport):
    """What the server holds (server secret + wrapped key) does not give the content key."""
    from sealbox.crypto import CryptoError, grants
    from sealbox.exchange.models import Grant

    send()
    grant = Grant.objects.get()
    with pytest.raises(CryptoError):
        grants.unwrap_grant(
            grant.token, bytes(16), bytes(grant.server_secret), bytes(grant.wrapped_key)
        )


def test_secret_key_is_not_in_the_database():
    assert settings.SECRET_KEY.encode() not in database_dump()
