"""Nothing leaks from envelope submissions and replies either: a full copy of the database
and the storage, the logs and the audit events reveal no body, file name, file content or
link secret of what a submitter or a replying recipient sent."""

import logging

import pytest
from django.test import Client

from sealbox.audit.models import Event
from sealbox.crypto import links
from tests.envelopes.conftest import api, emails_to, link_in, seal_for_owner, submit
from tests.exchange.test_leaks import database_dump, forms_of, storage_dump

pytestmark = pytest.mark.django_db

BODY = "SUBMISSION-BODY-MARKER-41c7: my salary is 98,765"
FILE_NAME = "SUBMISSION-FILENAME-MARKER-9e2b.pdf"
FILE_CONTENT = b"SUBMISSION-CONTENT-MARKER-feed " * 5000
REPLY_BODY = "REPLY-BODY-MARKER-3d5a: I accept the offer"
REPLY_FILE = "REPLY-FILENAME-MARKER-77aa.pdf"
REPLY_CONTENT = b"REPLY-CONTENT-MARKER-beef " * 5000


@pytest.fixture
def queued_tasks(settings):
    # Keep tasks in the database, as the embedded default does, so their rows are dumped.
    settings.TASKS = {"default": {"BACKEND": "django_tasks_db.DatabaseBackend"}}


def test_nothing_leaks_from_submissions_and_replies(
    make_envelope, send, sender, caplog, capsys, settings
):
    caplog.set_level(logging.DEBUG)
    envelope = make_envelope(public=True)
    submitted = submit(envelope, body=BODY, files={FILE_NAME: FILE_CONTENT})
    assert submitted.status == 200
    sent = send(reply_mode="files", max_opens=2)
    token = sent.links["client@example.org"].split("/o/")[1].split("#")[0]
    status, unlocked = api(
        Client(),
        "POST",
        f"/api/v1/open/{token}/unlock",
        {"code": sent.opening_codes["client@example.org"]},
    )
    assert status == 200
    replied = seal_for_owner(
        Client(),
        "/api/v1/replies",
        {"authorisation": unlocked["reply"]["authorisation"]},
        "/api/v1/replies/{id}/finalise",
        body=REPLY_BODY,
        files={REPLY_FILE: REPLY_CONTENT},
    )
    assert replied.status == 200
    # The owner really can read both (the markers travelled, encrypted).
    assert link_in(emails_to(sender.email)[-1]) == replied.link

    secrets = [links.parse_link(s.link).link_secret for s in (submitted, replied)]
    db = database_dump()
    blobs = storage_dump()
    assert len(blobs) > len(FILE_CONTENT) + len(REPLY_CONTENT)  # the ciphertext is there
    logs = (
        "\n".join(r.getMessage() for r in caplog.records) + "".join(capsys.readouterr())
    ).encode()
    events = "\n".join(
        str(e.details) + e.actor_label + e.target_id for e in Event.objects.all()
    ).encode()
    markers = [
        BODY.encode(),
        FILE_NAME.encode(),
        b"SUBMISSION-CONTENT-MARKER",
        REPLY_BODY.encode(),
        REPLY_FILE.encode(),
        b"REPLY-CONTENT-MARKER",
    ]
    for where, dump in (("database", db), ("storage", blobs), ("logs", logs), ("audit", events)):
        for marker in markers:
            assert marker not in dump, f"{marker[:24]!r} found in {where}"
        for secret in secrets:
            for form in forms_of(secret):
                assert form not in dump, f"an owner's link secret was found in {where}"


def test_queued_owner_emails_are_sealed(make_envelope, sender, queued_tasks):
    """With a real task queue, the email carrying the owner's link waits sealed."""
    envelope = make_envelope(public=True, notify_on_use=False)
    submitted = submit(envelope, body=BODY)
    assert submitted.status == 200
    secret = links.parse_link(submitted.link).link_secret
    db = database_dump()
    assert b"deliver_email" in db
    for form in forms_of(secret):
        assert form not in db
    assert BODY.encode() not in db
