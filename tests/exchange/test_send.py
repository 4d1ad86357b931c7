"""Sending: create → upload in chunks → finalise, with the licence's limits."""

import hashlib
import os
from datetime import timedelta

import pytest
from django.core import mail

from sealbox.audit.models import Event
from sealbox.client import messages as client
from sealbox.exchange import services
from sealbox.exchange.models import Blob, BlobChunk, Grant, Message, MessageState
from sealbox.lib import clock
from tests.exchange.conftest import emails_to, link_in, opening_code_in

pytestmark = pytest.mark.django_db


def test_send_with_links_and_open_with_the_opening_code(send, recipient_transport):
    data = os.urandom(200_000)
    sent = send(attachments=[client.Attachment("report.pdf", data=data)])
    message = Message.objects.get(public_id=sent.id)
    assert message.state == MessageState.SENT
    assert message.file_count == 1 and message.attachment_bytes == 200_000
    link = sent.links["client@example.org"]
    code = sent.opening_codes["client@example.org"]
    opened = client.open_message(recipient_transport, link, code=code)
    assert opened.body == "Please find the report attached."
    assert hashlib.sha256(opened.files["report.pdf"]).digest() == hashlib.sha256(data).digest()
    assert opened.opens_left == 0
    assert mail.outbox == [m for m in mail.outbox if "client@example.org" not in m.to]


def test_send_by_email_delivers_link_and_separate_opening_code(send, recipient_transport, sender):
    sent = send(delivery="email", subject="Contract")
    emails = emails_to("client@example.org")
    assert len(emails) == 2  # the link, and the opening code in a separate email
    link = link_in(emails[0])
    assert link == sent.links["client@example.org"]
    assert "Sam Sender" in emails[0].body and "Contract" in emails[0].subject
    assert "Tremblay Avocats" in emails[0].body
    assert emails[0].alternatives and link in emails[0].alternatives[0][0]
    assert opening_code_in(emails[1:]) and opening_code_in(emails[1:]) not in emails[0].body
    assert sent.opening_codes == {}
    opened = client.open_message(recipient_transport, link, code=opening_code_in(emails))
    assert opened.body == "Please find the report attached."
    # Audited as queued by the send, and as sent by the outbox once the server took each
    # email (the link and the opening code), in the organisation's chain, on the message.
    assert Event.objects.filter(action="notification.queued").count() == 1
    assert not Event.objects.filter(action="notification.sent").exists()
    message = Message.objects.get(public_id=sent.id)
    grant = message.grants.get(email="client@example.org")
    delivered = Event.objects.filter(
        action="email.sent", target_type="message", target_id=str(message.pk)
    )
    to_client = [e for e in delivered if e.details["to"] == "client@example.org"]
    assert [e.details["reference"] for e in to_client] == [f"grant:{grant.pk}"] * 2
    assert {e.organisation_id for e in delivered} == {sender.organisation_id}
    # The third: the notice to the sender that the recipient opened it.
    assert [e.details["to"] for e in delivered if e not in to_client] == [sender.email]


def test_opening_code_in_the_same_email_by_organisation_setting(send, sender):
    organisation = sender.organisation
    organisation.opening_code_in_separate_email = False
    organisation.save()
    send(delivery="email")
    emails = emails_to("client@example.org")
    assert len(emails) == 1
    assert opening_code_in(emails)


def test_subject_hidden_from_the_email_when_asked(send):
    send(delivery="email", subject="Divorce papers", show_subject=False)
    email = emails_to("client@example.org")[0]
    assert "Divorce papers" not in email.subject and "Divorce papers" not in email.body


def test_french_recipient_email(send):
    send(delivery="email", language="fr")
    email = emails_to("client@example.org")[0]
    assert "vous a envoyé un message sécurisé" in email.body


def test_upload_must_follow_the_stored_offset(sender_transport, sender):
    created = create_draft(sender_transport, size=1000)
    blob = created["blobs"][1]
    path = f"/api/v1/messages/{created['id']}/blobs/{blob['id']}"
    status, data = sender_transport.request("PUT", path + "?offset=100", body=b"x" * 10)
    assert status == 409 and data["error"] == "offset"
    status, data = sender_transport.request("PUT", path + "?offset=0", body=b"x" * 600)
    assert (status, data) == (200, {"stored": 600, "size": 1000})
    # Resuming: the server tells what it has.
    status, state = sender_transport.request("GET", f"/api/v1/messages/{created['id']}")
    assert state["blobs"][1]["stored"] == 600
    status, data = sender_transport.request("PUT", path + "?offset=600", body=b"x" * 401)
    assert status == 413 and "past the announced size" in data["message"]
    assert Blob.objects.get(public_id=blob["id"]).stored == 600
    assert BlobChunk.objects.filter(blob__public_id=blob["id"]).count() == 1


def test_finalise_refuses_incomplete_uploads(sender_transport):
    created = create_draft(sender_transport, size=1000)
    status, data = sender_transport.request(
        "POST", f"/api/v1/messages/{created['id']}/finalise", json_body={"links": None}
    )
    assert status == 409 and data["error"] == "incomplete"
    assert "not completely uploaded" in data["message"]
    assert Message.objects.get(public_id=created["id"]).state == MessageState.DRAFT


def test_an_unfinished_message_is_invisible_to_recipients(sender_transport, recipient_transport):
    created = create_draft(sender_transport, size=1000)
    token = created["grants"][0]["token"]
    status, data = recipient_transport.request("GET", f"/api/v1/open/{token}")
    assert status == 404
    assert recipient_transport.client.get(f"/o/{token}").status_code == 404


def create_draft(transport, *, size: int, delivery="links", **overrides):
    from sealbox.crypto import grants, links
    from sealbox.crypto._b64 import b64url_encode

    key = grants.new_content_key()
    token = links.new_grant_token()
    grant = grants.create_grant(key, token)
    payload = {
        "subject": "Draft",
        "delivery": delivery,
        "expires_at": (clock.now() + timedelta(days=1)).isoformat(),
        "recipients": [
            {
                "email": "client@example.org",
                "verification": "opening_code",
                "grant_token": token,
                "server_secret": b64url_encode(grant.server_secret),
                "wrapped_key": b64url_encode(grant.wrapped_key),
            }
        ],
        "blobs": [
            {"kind": "manifest", "size": 100},
            {"kind": "file", "size": size, "file_ref": "f1"},
        ],
    } | overrides
    status, data = transport.request("POST", "/api/v1/messages", json_body=payload)
    assert status == 201, data
    return data


@pytest.mark.parametrize(
    "overrides, status, field",
    [
        ({"subject": "  "}, 400, "subject"),
        ({"recipients": []}, 400, "recipients"),
        ({"max_opens": 100}, 422, "max_opens"),
        ({"max_opens": 0}, 422, "max_opens"),
        ({"language": "de"}, 400, "language"),
        ({"blobs": [{"kind": "file", "size": 100, "file_ref": "a"}]}, 400, ""),
    ],
)
def test_bad_requests_get_a_json_message_and_store_nothing(
    sender_transport, overrides, status, field
):
    from sealbox.crypto import grants, links
    from sealbox.crypto._b64 import b64url_encode

    key = grants.new_content_key()
    token = links.new_grant_token()
    grant = grants.create_grant(key, token)
    payload = {
        "subject": "Hello",
        "expires_at": (clock.now() + timedelta(days=1)).isoformat(),
        "recipients": [
            {
                "email": "client@example.org",
                "grant_token": token,
                "server_secret": b64url_encode(grant.server_secret),
                "wrapped_key": b64url_encode(grant.wrapped_key),
            }
        ],
        "blobs": [{"kind": "manifest", "size": 100}],
    } | overrides
    got, data = sender_transport.request("POST", "/api/v1/messages", json_body=payload)
    assert got == status, data
    assert data["message"]
    if field:
        assert field in (data.get("field") or data["message"])
    assert not Message.objects.exists() and not Grant.objects.exists()


def test_expiry_is_capped_by_the_plan(send):
    with pytest.raises(client.ClientError) as error:
        send(days=31)  # Advanced keeps messages 30 days
    assert error.value.status == 400
    assert "at most 30 days" in error.value.data["message"]
    assert not Message.objects.exists()


def test_attachment_total_is_capped_by_the_plan(send, sender):
    plan = sender.organisation.plan
    plan.max_send_bytes = 150_000
    plan.save()
    files = [
        client.Attachment("a.bin", data=b"a" * 100_000),
        client.Attachment("b.bin", data=b"b" * 60_000),
    ]
    with pytest.raises(client.ClientError) as error:
        send(attachments=files)
    assert error.value.status == 413
    assert "your plan allows 150\xa0kB per message" in error.value.data["message"]
    assert not Message.objects.exists()
    send(attachments=files[:1])  # 100 kB fits


def test_eco_plan_sends_text_only(send, sender):
    from sealbox.accounts.models import Plan

    sender.organisation.plan = Plan.objects.get(name="Eco")
    sender.organisation.save()
    with pytest.raises(client.ClientError) as error:
        send(days=3, attachments=[client.Attachment("a.txt", data=b"hello")])
    assert "does not allow attachments" in error.value.data["message"]
    send(days=3)


def test_monthly_quota(send, sender):
    plan = sender.organisation.plan
    plan.messages_per_month = 2
    plan.save()
    send()
    send()
    with pytest.raises(client.ClientError) as error:
        send()
    assert error.value.status == 403
    assert "sent its 2 messages for this month" in error.value.data["message"]


def test_sent_message_counts_in_the_licence(send, sender, client):
    from tests.conftest import PASSWORD

    send()
    client.post("/login/", {"email": sender.email, "password": PASSWORD})
    page = client.get("/account/").content.decode()
    assert "<dt>Messages remaining this month</dt>\n    <dd>999</dd>" in page


def test_stale_drafts_are_removed_after_24_hours(sender_transport, clock):
    created = create_draft(sender_transport, size=50)
    blob = created["blobs"][1]
    sender_transport.request(
        "PUT", f"/api/v1/messages/{created['id']}/blobs/{blob['id']}?offset=0", body=b"z" * 20
    )
    name = BlobChunk.objects.get().storage_name
    from django.core.files.storage import default_storage

    assert default_storage.exists(name)
    clock.advance(hours=23)
    assert services.purge().drafts_removed == 0
    clock.advance(hours=1, seconds=1)
    assert services.purge().drafts_removed == 1
    assert not Message.objects.exists()
    assert not default_storage.exists(name)


def test_recipient_phone_is_read_with_the_senders_country(send):
    send(recipients=[client.Recipient("client@example.org", "sms_code", phone="514 555 0199")])
    assert Grant.objects.get().phone == "+15145550199"
    with pytest.raises(client.ClientError) as error:
        send(recipients=[client.Recipient("client@example.org", "sms_code", phone="555 0199")])
    assert "area code" in error.value.data["message"]
    assert error.value.data["field"] == "recipients[0].phone"


def test_keep_a_copy_for_me(send, sender, sender_transport, recipient_transport):
    from django.test import Client

    from tests.conftest import PASSWORD

    sent = send(
        delivery="email",
        keep_copy=True,
        recipients=[
            client.Recipient("client@example.org"),
            client.Recipient(sender.email, "account"),
        ],
    )
    copy_email = emails_to(sender.email)
    assert len(copy_email) == 1 and "Your copy" in copy_email[0].subject
    link = link_in(copy_email[0])
    copy_grant = Grant.objects.get(verification="account")
    assert copy_grant.user == sender and copy_grant.max_opens == 99
    # Anyone else, even with the link, is refused; the sender, logged in, opens it.
    with pytest.raises(client.ClientError) as error:
        client.open_message(recipient_transport, link)
    assert error.value.status == 403
    colleague = Client()
    from sealbox.accounts import services as accounts

    accounts.create_user("colleague@example.com", PASSWORD, sender.organisation)
    colleague.post("/login/", {"email": "colleague@example.com", "password": PASSWORD})
    from tests.exchange.conftest import DjangoTransport

    with pytest.raises(client.ClientError):
        client.open_message(DjangoTransport(colleague), link)
    opened = client.open_message(sender_transport, link)
    assert opened.body == "Please find the report attached."
    assert sent.links[sender.email] == link


def test_keep_copy_needs_exactly_one_copy(send, sender):
    with pytest.raises(client.ClientError) as error:
        send(keep_copy=True)
    assert error.value.data["field"] == "keep_copy"
    with pytest.raises(client.ClientError):
        send(
            recipients=[
                client.Recipient("x@example.org"),
                client.Recipient(sender.email, "account"),
            ]
        )
    assert not Message.objects.exists()


def test_senders_account_is_not_a_recipient_choice(sender):
    from django.test import Client

    from tests.conftest import PASSWORD

    browser = Client()
    browser.post("/login/", {"email": sender.email, "password": PASSWORD})
    page = browser.get("/send/").content.decode()
    assert 'value="opening_code"' in page and 'value="account"' not in page


class LosingTransport:
    """Loses the answer to the first PUT of each chunk after the server stored it (a
    connection that drops on the way back), then lets the retry through."""

    def __init__(self, inner):
        self.inner = inner
        self.lost: list[str] = []

    def request(self, method, path, **kwargs):
        answer = self.inner.request(method, path, **kwargs)
        if method == "PUT" and path not in self.lost:
            self.lost.append(path)
            raise ConnectionResetError("the answer was lost")
        return answer

    def stream(self, path):
        return self.inner.stream(path)


def test_the_client_recognises_a_chunk_stored_while_its_answer_was_lost(
    sender_transport, recipient_transport, monkeypatch
):
    monkeypatch.setattr(client, "UPLOAD_RETRY_DELAYS_SECONDS", (0, 0))
    monkeypatch.setattr(client, "CHUNK_BYTES", 64 * 1024)
    transport = LosingTransport(sender_transport)
    data = os.urandom(150_000)
    sent = client.send_message(
        transport,
        base_url="http://testserver",
        subject="Scans",
        body="",
        recipients=[client.Recipient("client@example.org")],
        expires_at=clock.now() + timedelta(days=1),
        attachments=[client.Attachment("scan.pdf", data=data)],
        delivery="links",
    )
    assert len(transport.lost) == 1 + 3  # the manifest, and three chunks of the file
    assert BlobChunk.objects.count() == 4  # each stored once
    opened = client.open_message(
        recipient_transport,
        sent.links["client@example.org"],
        code=sent.opening_codes["client@example.org"],
    )
    assert opened.files["scan.pdf"] == data


def test_the_client_retries_a_chunk_whose_body_was_cut_short(sender_transport, monkeypatch):
    monkeypatch.setattr(client, "UPLOAD_RETRY_DELAYS_SECONDS", (0, 0))
    created = create_draft(sender_transport, size=300)
    blob = created["blobs"][1]
    calls = []

    class CutOnce:
        def request(self, method, path, **kwargs):
            calls.append(method)
            if method == "PUT" and len(calls) == 1:
                return 400, {"error": "short_body", "message": "interrupted"}
            return sender_transport.request(method, path, **kwargs)

    client.put_chunk(CutOnce(), created["id"], blob["id"], 0, b"q" * 300)
    assert calls == ["PUT", "PUT"]
    assert Blob.objects.get(public_id=blob["id"]).stored == 300


def recipient_specs(count: int) -> list[services.RecipientSpec]:
    from sealbox.crypto import grants, links

    content_key = grants.new_content_key()
    specs = []
    for i in range(count):
        token = links.new_grant_token()
        grant = grants.create_grant(content_key, token)
        specs.append(
            services.RecipientSpec(
                email=f"client{i}@example.org",
                verification="opening_code",
                grant_token=token,
                server_secret=grant.server_secret,
                wrapped_key=grant.wrapped_key,
            )
        )
    return specs


@pytest.mark.parametrize(("count", "refused"), [(50, False), (51, True)])
def test_the_service_takes_at_most_50_recipients(sender, count, refused):
    """The API's schema caps the list too; the rule is the service's, for every caller."""
    spec = services.MessageSpec(
        subject="To everyone",
        expires_at=clock.now() + timedelta(days=7),
        recipients=recipient_specs(count),
        blobs=[services.BlobSpec(kind="manifest", size=100)],
        delivery="links",
    )
    if not refused:
        created = services.create_message(sender, spec)
        assert created.message.grants.count() == 50
        return
    with pytest.raises(services.ExchangeError) as error:
        services.create_message(sender, spec)
    assert error.value.field == "recipients" and "at most 50" in error.value.message
    assert not Message.objects.exists() and not Grant.objects.exists()


def test_an_expiry_without_a_time_zone_is_read_as_utc(sender_transport):
    """It was a server error (a naive time compared with an aware one)."""
    from datetime import UTC, datetime

    from sealbox.crypto import grants

    entry, _token, _secret = client._grant_payload(
        client.Recipient("client@example.org"), grants.new_content_key()
    )
    naive = (datetime.now(UTC) + timedelta(days=2)).replace(tzinfo=None, microsecond=0)
    status, data = sender_transport.request(
        "POST",
        "/api/v1/messages",
        json_body={
            "subject": "No zone",
            "expires_at": naive.isoformat(),
            "delivery": "links",
            "recipients": [entry],
            "blobs": [{"kind": "manifest", "size": 100}],
        },
    )
    assert status == 201, data
    assert Message.objects.get().expires_at == naive.replace(tzinfo=UTC)
