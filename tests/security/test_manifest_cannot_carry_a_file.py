"""Issue 11, finding 12: the "no attachments" plan rule cannot be bypassed by putting a file
inside the manifest (the encrypted body and file list).

The manifest has one cap on every plan (lib.limits.MAX_MANIFEST_BYTES of ciphertext),
checked in one place (exchange.services.validate_blobs) for messages, envelope submissions
and replies: the API answers 413 JSON naming the limit, and nothing is stored. The Python
client refuses before it uploads anything (the pages: tests/js/transfer.test.mjs and the
browser tests).
"""

from __future__ import annotations

import base64
import os
from datetime import timedelta

import pytest
from django.test import Client

from sealbox.accounts.models import Plan
from sealbox.client import messages as client
from sealbox.envelopes.models import Submission
from sealbox.exchange.models import Message, MessageKind
from sealbox.lib import clock
from sealbox.lib.limits import MAX_MANIFEST_BYTES
from tests.envelopes.conftest import api, seal_for_owner, submit
from tests.exchange.test_send import create_draft

pytestmark = pytest.mark.django_db

# A 300 kB file, base64 in the body: a manifest well over the cap.
HIDDEN_FILE = base64.b64encode(os.urandom(300_000)).decode()


@pytest.fixture
def eco(sender):
    """The plan that allows no attachments at all."""
    sender.organisation.plan = Plan.objects.get(name="Eco")
    sender.organisation.save()
    return sender


def assert_refused_with_the_limit(status: int, data: dict) -> None:
    assert status == 413, data
    assert data["error"] == "too_large" and data["field"] == "message"
    assert "at most 256\xa0kB" in data["message"]


def test_a_message_cannot_hide_a_file_in_its_body(eco, sender_transport):
    status, data = sender_transport.request(
        "POST", "/api/v1/messages", json_body=draft_payload(manifest_size=MAX_MANIFEST_BYTES + 1)
    )
    assert_refused_with_the_limit(status, data)
    assert not Message.objects.exists()


def test_the_cap_holds_on_every_plan(sender, sender_transport):
    sender.organisation.plan = Plan.objects.get(name="Pro")  # 2.5 GB of attachments
    sender.organisation.save()
    status, data = sender_transport.request(
        "POST", "/api/v1/messages", json_body=draft_payload(manifest_size=MAX_MANIFEST_BYTES + 1)
    )
    assert_refused_with_the_limit(status, data)


def test_a_manifest_at_the_cap_is_accepted(eco, sender_transport):
    created = create_draft(
        sender_transport, size=100, blobs=[{"kind": "manifest", "size": MAX_MANIFEST_BYTES}]
    )
    assert created["blobs"][0]["size"] == MAX_MANIFEST_BYTES


def draft_payload(*, manifest_size: int) -> dict:
    from sealbox.crypto import grants, links
    from sealbox.crypto._b64 import b64url_encode

    token = links.new_grant_token()
    grant = grants.create_grant(grants.new_content_key(), token)
    return {
        "subject": "Minutes",
        "delivery": "links",
        "expires_at": (clock.now() + timedelta(days=1)).isoformat(),
        "recipients": [
            {
                "email": "client@example.org",
                "grant_token": token,
                "server_secret": b64url_encode(grant.server_secret),
                "wrapped_key": b64url_encode(grant.wrapped_key),
            }
        ],
        "blobs": [{"kind": "manifest", "size": manifest_size}],
    }


def test_an_envelope_submission_cannot_hide_a_file_in_its_message(eco, make_envelope):
    envelope = make_envelope(files_mode="none")
    sealed = submit(envelope, body=HIDDEN_FILE)
    assert_refused_with_the_limit(sealed.status, sealed.data)
    assert not Submission.objects.exists()
    assert not Message.objects.filter(kind=MessageKind.ENVELOPE).exists()
    assert submit(envelope, body="Only words.").status == 200


def test_a_reply_cannot_hide_a_file_in_its_text(eco, send):
    sent = send(reply_mode="text")  # replies without files
    token = sent.links["client@example.org"].split("/o/")[1].split("#")[0]
    status, unlocked = api(
        Client(),
        "POST",
        f"/api/v1/open/{token}/unlock",
        {"code": sent.opening_codes["client@example.org"]},
    )
    assert status == 200, unlocked
    authorisation = unlocked["reply"]["authorisation"]

    def reply(body: str):
        return seal_for_owner(
            Client(),
            "/api/v1/replies",
            {"authorisation": authorisation},
            "/api/v1/replies/{id}/finalise",
            body=body,
        )

    refused = reply(HIDDEN_FILE)
    assert_refused_with_the_limit(refused.status, refused.data)
    assert not Message.objects.filter(kind=MessageKind.REPLY).exists()
    assert reply("Thank you.").status == 200


class Recording:
    """A transport that must not be called."""

    def __init__(self):
        self.calls: list[str] = []

    def request(self, method, path, **kwargs):
        self.calls.append(f"{method} {path}")
        raise AssertionError("nothing should be sent")

    def stream(self, path):
        raise AssertionError("nothing should be downloaded")


def test_the_python_client_refuses_before_uploading(eco):
    transport = Recording()
    with pytest.raises(client.ClientError) as refused:
        client.send_message(
            transport,
            base_url="http://testserver",
            subject="Scan",
            body=HIDDEN_FILE,
            recipients=[client.Recipient("client@example.org")],
            expires_at=clock.now() + timedelta(days=1),
        )
    assert refused.value.status == 413
    assert "at most 256 kB" in str(refused.value)
    assert transport.calls == []
