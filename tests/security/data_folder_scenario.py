"""The server side of test_data_folder_copy_rebuilds_no_link, in a process of its own.

It runs with the PRODUCT's settings (sealbox.settings, not the test settings) on a fresh
data folder: the embedded default's SQLite file in WAL mode (or the PostgreSQL database
named by SEALBOX_DATABASE_URL), blobs on disk, a secret key generated into the folder, the
database task backend, a real SMTP server, and the task worker run exactly as
`sealbox worker` runs it (django_tasks_db's `db_worker`, here with --batch).

    python -m tests.security.data_folder_scenario run OUT_DIR
        Everything that puts a link or a code in an email or an SMS, delivered; then a
        copy of the data folder is taken WHILE the database is open (so the SQLite -wal
        and -shm are in it) into OUT_DIR/copy, the received emails go to
        OUT_DIR/inbox.json. On PostgreSQL every table is dumped into the copy
        (database.json), the copy of "the database".
    python -m tests.security.data_folder_scenario probe PATH...
        GETs each path on the live server (following redirects) and prints, as JSON,
        whether it shows a form that sets a password ("form") or not ("refused").
"""

from __future__ import annotations

import base64
import email
import json
import os
import shutil
import socket
import sys
from datetime import date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

PASSWORD = "correct horse battery staple"
SMS_PHONE = "+15145550199"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def setup(smtp_port: int | None = None) -> None:
    os.environ["DJANGO_SETTINGS_MODULE"] = "sealbox.settings"
    if smtp_port is not None:
        os.environ["SEALBOX_EMAIL_URL"] = f"smtp://127.0.0.1:{smtp_port}"
    import django
    from django.conf import settings

    django.setup()
    # Django's test client speaks to "testserver"; the product only knows its base URL.
    settings.ALLOWED_HOSTS = [*settings.ALLOWED_HOSTS, "testserver"]


def run_worker() -> None:
    """What `sealbox worker` runs (cli.cmd_worker → db_worker), until the queue is empty."""
    from django.core.management import call_command

    call_command(
        "db_worker", "--batch", "--no-startup-delay", "--interval", "0", "--no-reload",
        verbosity=0,
    )  # fmt: skip


class Inbox:
    def __init__(self):
        self.messages: list[dict] = []

    async def handle_DATA(self, server, session, envelope):
        parsed = email.message_from_bytes(envelope.content)
        parts = [
            part.get_payload(decode=True).decode()
            for part in parsed.walk()
            if part.get_content_maintype() == "text"
        ]
        self.messages.append(
            {"to": envelope.rcpt_tos, "subject": parsed["Subject"], "text": "\n".join(parts)}
        )
        return "250 Message accepted for delivery"

    def to(self, address: str) -> list[dict]:
        return [m for m in self.messages if address in m["to"]]


def dump_tables() -> dict:
    """Every row of every table (the copy of a PostgreSQL database)."""
    from django.db import connection

    def plain(value):
        if isinstance(value, memoryview | bytes | bytearray):
            return {"$bytes": base64.b64encode(bytes(value)).decode()}
        if isinstance(value, datetime | date):
            return value.isoformat()
        if isinstance(value, Decimal):
            return str(value)
        return value

    tables = {}
    with connection.cursor() as cursor:
        for table in connection.introspection.table_names():
            cursor.execute(f'SELECT * FROM "{table}"')  # noqa: S608 - introspected names
            columns = [c[0] for c in cursor.description]
            tables[table] = [
                {c: plain(v) for c, v in zip(columns, row, strict=True)}
                for row in cursor.fetchall()
            ]
    return tables


def run(out: Path) -> None:
    from aiosmtpd.controller import Controller

    inbox = Inbox()
    port = free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        setup(port)
        scenario(inbox, out)
    finally:
        controller.stop()
        (out / "inbox.json").write_text(json.dumps(inbox.messages, indent=1))


def scenario(inbox: Inbox, out: Path) -> None:
    from django.conf import settings
    from django.db import connection
    from django.test import Client, RequestFactory

    from sealbox import cli
    from sealbox.accounts import services as accounts
    from sealbox.accounts.models import Role
    from sealbox.client import messages as client
    from sealbox.envelopes import services as envelopes
    from sealbox.lib import clock
    from sealbox.users import services as users
    from tests.envelopes.conftest import api, seal_for_owner, submit
    from tests.exchange.conftest import LINK, OPENING_CODE, DjangoTransport

    cli.migrate()
    organisation, _ = accounts.get_or_create_organisation("Tremblay Avocats")
    admin = accounts.create_user("boss@example.com", PASSWORD, organisation, role=Role.ADMIN)
    sender = accounts.create_user("sender@example.com", PASSWORD, organisation)
    browser = Client()
    assert browser.post("/login/", {"email": sender.email, "password": PASSWORD}).status_code == 302

    # A message sent by email: an opening-code recipient, an SMS-code recipient and the
    # sender's own copy; replies allowed.
    client.send_message(
        DjangoTransport(browser),
        base_url=settings.SEALBOX_BASE_URL,
        subject="Quarterly report",
        body="The figures.",
        recipients=[
            client.Recipient("client@example.org"),
            client.Recipient("sms@example.org", "sms_code", phone=SMS_PHONE),
            client.Recipient(sender.email, "account"),
        ],
        expires_at=clock.now() + timedelta(days=7),
        delivery="email",
        keep_copy=True,
        reply_mode="text",
    )
    # A submission through a public envelope: its owner is emailed a link.
    envelope = envelopes.create_envelope(
        sender,
        envelopes.EnvelopeSpec(
            subject="Your tax documents",
            expires_at=clock.now() + timedelta(days=7),
            public=True,
            delivery="links",
        ),
    )
    assert submit(envelope, body="My documents.", files={"t4.pdf": b"%PDF-1.4"}).status == 200
    # A pending administrator invitation, a password reset and an address change.
    users.invite_user(None, admin, users.NewUser("newcomer@example.com", role=Role.ADMIN))
    assert Client().post("/password-reset/", {"email": sender.email}).status_code == 302
    accounts.request_email_change(
        RequestFactory().post("/"), admin, "boss.new@example.com", PASSWORD
    )
    run_worker()

    # The recipients act on what they received: an SMS code, and a reply.
    [notice] = [m for m in inbox.to("sms@example.org") if LINK.search(m["text"])]
    token = LINK.search(notice["text"]).group(0).split("/o/")[1].split("#")[0]
    status, answer = api(Client(), "POST", f"/api/v1/open/{token}/code")
    assert status == 200, answer
    mails = inbox.to("client@example.org")
    link = next(found.group(0) for m in mails if (found := LINK.search(m["text"])))
    code = next(found.group(1) for m in mails if (found := OPENING_CODE.search(m["text"])))
    token = link.split("/o/")[1].split("#")[0]
    status, unlocked = api(Client(), "POST", f"/api/v1/open/{token}/unlock", {"code": code})
    assert status == 200, unlocked
    replied = seal_for_owner(
        Client(),
        "/api/v1/replies",
        {"authorisation": unlocked["reply"]["authorisation"]},
        "/api/v1/replies/{id}/finalise",
        body="Thank you.",
    )
    assert replied.status == 200, replied.data
    run_worker()

    # The copy, taken while the database is open and in use.
    copy = out / "copy"
    shutil.copytree(settings.DATA_DIR, copy)
    if connection.vendor != "sqlite":
        (copy / "database.json").write_text(json.dumps(dump_tables(), default=str))
    (out / "facts.json").write_text(
        json.dumps({"vendor": connection.vendor, "sender_id": sender.pk})
    )


def probe(paths: list[str]) -> None:
    setup()
    from django.test import Client

    found = {}
    for path in paths:
        page = Client().get(path, follow=True).content.decode()
        found[path] = "form" if 'name="new_password1"' in page else "refused"
    print(json.dumps(found))


if __name__ == "__main__":
    if sys.argv[1] == "run":
        run(Path(sys.argv[2]))
    else:
        probe(sys.argv[2:])
