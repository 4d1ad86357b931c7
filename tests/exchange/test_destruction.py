"""Expiry, deletion and purge: dead grants are wiped and ciphertext is deleted."""

import io
import sys

import pytest
from django.core.files.storage import default_storage

from sealbox import cli
from sealbox.audit.models import Event
from sealbox.client import messages as client
from sealbox.crypto import links
from sealbox.exchange import services
from sealbox.exchange.models import BlobChunk, Grant, Message, MessageState

pytestmark = pytest.mark.django_db


def chunk_names(message) -> list[str]:
    return list(
        BlobChunk.objects.filter(blob__message=message).values_list("storage_name", flat=True)
    )


def unlock(transport, link, code):
    token = links.parse_link(link).grant_token
    return transport.request("POST", f"/api/v1/open/{token}/unlock", json_body={"code": code})


def test_expiry_is_exact_to_the_second_and_purge_destroys(clock, send, recipient_transport):
    sent = send(days=1, attachments=[client.Attachment("a.bin", data=b"x" * 5000)])
    message = Message.objects.get(public_id=sent.id)
    names = chunk_names(message)
    assert names and all(default_storage.exists(n) for n in names)
    link, code = sent.links["client@example.org"], sent.opening_codes["client@example.org"]

    clock.current = message.expires_at  # at the expiry instant the grant is dead
    status, data = unlock(recipient_transport, link, code)
    assert status == 410
    clock.advance(seconds=-1)  # one second before: still open
    assert services.grant_state(Grant.objects.get()) == "open"
    clock.advance(seconds=2)

    report = services.purge()
    assert (report.grants_wiped, report.blobs_deleted, report.messages_expired) == (1, 1, 1)
    grant = Grant.objects.get()
    assert grant.server_secret is None and grant.wrapped_key is None and grant.wiped_at
    assert not any(default_storage.exists(n) for n in names)
    assert not BlobChunk.objects.exists()
    assert Event.objects.filter(action="message.expired").exists()
    assert Event.objects.filter(action="grant.expired").exists()
    # Metadata and events stay.
    assert Message.objects.get().subject == "Quarterly report"
    assert services.purge().grants_wiped == 0  # idempotent


def test_content_stays_while_a_grant_is_alive(clock, send, recipient_transport):
    sent = send(
        recipients=[client.Recipient("a@example.org"), client.Recipient("b@example.org")],
        attachments=[client.Attachment("a.bin", data=b"x" * 100)],
    )
    client.open_message(
        recipient_transport, sent.links["a@example.org"], code=sent.opening_codes["a@example.org"]
    )
    clock.advance(hours=2)  # a's download window is over, b has not opened yet
    report = services.purge()
    assert report.blobs_deleted == 0
    message = Message.objects.get()
    assert chunk_names(message)
    opened = client.open_message(
        recipient_transport, sent.links["b@example.org"], code=sent.opening_codes["b@example.org"]
    )
    assert opened.files["a.bin"] == b"x" * 100
    assert services.purge().blobs_deleted == 0  # b may still download for an hour
    clock.advance(minutes=61)
    assert services.purge().blobs_deleted == 1
    assert not chunk_names(message)


def test_sender_deletes_before_expiry(send, sender_transport, recipient_transport):
    sent = send(max_opens=5, attachments=[client.Attachment("a.bin", data=b"y" * 100)])
    link, code = sent.links["client@example.org"], sent.opening_codes["client@example.org"]
    status, data = unlock(recipient_transport, link, code)
    download_url = data["downloads"][0]["url"]
    message = Message.objects.get()
    names = chunk_names(message)
    status, _ = sender_transport.request("DELETE", f"/api/v1/messages/{sent.id}")
    assert status == 204
    message.refresh_from_db()
    assert message.state == MessageState.DELETED
    assert not any(default_storage.exists(n) for n in names)
    assert unlock(recipient_transport, link, code)[0] == 410
    assert recipient_transport.client.get(download_url).status_code == 410
    grant = Grant.objects.get()
    assert grant.revoked_at and grant.server_secret is None
    event = Event.objects.get(action="message.deleted")
    assert event.actor_label == "sender@example.com"


def test_delete_page_asks_for_confirmation(send, sender_transport):
    sent = send()
    page = sender_transport.client.get(f"/messages/{sent.id}/delete/")
    assert "Delete now" in page.content.decode()
    assert Message.objects.get().state == MessageState.SENT
    response = sender_transport.client.post(f"/messages/{sent.id}/delete/")
    assert response.status_code == 302
    assert Message.objects.get().state == MessageState.DELETED


def test_an_administrator_can_delete_a_members_message(send, admin_of_org):
    from django.test import Client

    from tests.conftest import PASSWORD

    sent = send()
    admin = Client()
    admin.post("/login/", {"email": admin_of_org.email, "password": PASSWORD})
    assert admin.get(f"/messages/{sent.id}/").status_code == 200
    assert admin.post(f"/messages/{sent.id}/delete/").status_code == 302
    assert Message.objects.get().state == MessageState.DELETED


def test_purge_command(capsys, monkeypatch, clock, send):
    send(days=1)
    clock.advance(days=2)
    monkeypatch.setattr(sys, "stdin", io.StringIO(""))
    assert cli.main(["purge"]) == 0
    out = capsys.readouterr().out
    assert "1 grants wiped, 1 messages' content deleted (1 expired)" in out


@pytest.mark.parametrize("how", ["deleted", "purged"])
def test_a_chunk_still_arriving_when_its_draft_goes_leaves_nothing_behind(
    sender, sender_transport, clock, how
):
    """The chunk is written before it is recorded: if the draft is deleted or purged
    meanwhile, the upload finds no draft to record it in and deletes what it wrote."""
    from sealbox.exchange import storage
    from sealbox.exchange.models import Blob
    from tests.exchange.test_send import create_draft

    created = create_draft(sender_transport, size=100)
    blob = Blob.objects.select_related("message").get(public_id=created["blobs"][1]["id"])
    message = blob.message

    class ArrivesWhileTheDraftGoes(io.BytesIO):
        def read(self, size=-1):
            if self.tell() == 50:
                if how == "deleted":
                    services.delete_message(sender, Message.objects.get(pk=message.pk))
                else:
                    clock.advance(hours=25)
                    assert services.purge().drafts_removed == 1
            return super().read(min(size, 50) if self.tell() < 50 else size)

    with pytest.raises(services.ExchangeError) as refused:
        services.store_chunk(blob, 0, 100, ArrivesWhileTheDraftGoes(b"y" * 100))
    assert (refused.value.status, refused.value.code) == (410, "gone")
    assert storage.names_under(storage.message_folder(message.public_id)) == []
    assert not BlobChunk.objects.exists()
