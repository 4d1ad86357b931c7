"""Another organisation sees nothing (404); members see only their own; CSRF everywhere."""

import pytest
from django.test import Client

from sealbox.client import messages as client
from sealbox.exchange.models import Message, MessageState
from tests.conftest import PASSWORD

pytestmark = pytest.mark.django_db


def logged_in(user, **kwargs) -> Client:
    c = Client(**kwargs)
    data = {"email": user.email, "password": PASSWORD}
    if kwargs.get("enforce_csrf_checks"):
        # Only the login page opens a session (one from force_login is ended): give the
        # strict client the token the form carries.
        c.get("/login/")
        data["csrfmiddlewaretoken"] = c.cookies["csrftoken"].value
    assert c.post("/login/", data).status_code == 302
    return c


@pytest.fixture
def outsider(make_user, other_organisation):
    from sealbox.accounts.models import Role

    return make_user("admin@other.example", org=other_organisation, role=Role.ADMIN)


@pytest.fixture
def colleague(make_user):
    return make_user("colleague@example.com")


def message_urls(sent) -> list[tuple[str, str]]:
    blob = Message.objects.get(public_id=sent.id).blobs.first()
    return [
        ("GET", f"/messages/{sent.id}/"),
        ("GET", f"/messages/{sent.id}/delete/"),
        ("POST", f"/messages/{sent.id}/delete/"),
        ("GET", f"/api/v1/messages/{sent.id}"),
        ("DELETE", f"/api/v1/messages/{sent.id}"),
        ("POST", f"/api/v1/messages/{sent.id}/finalise"),
        ("PUT", f"/api/v1/messages/{sent.id}/blobs/{blob.public_id}?offset=0"),
    ]


@pytest.mark.parametrize("who", ["outsider", "colleague"])
def test_every_message_url_is_404_for_others(send, request, who):
    sent = send()
    other = logged_in(request.getfixturevalue(who))
    for method, url in message_urls(sent):
        response = other.generic(method, url, data=b"{}", content_type="application/json")
        assert response.status_code == 404, (method, url, response.status_code)
    assert Message.objects.get().state == MessageState.SENT


def test_api_requires_login(send):
    sent = send()
    anonymous = Client()
    response = anonymous.get(f"/api/v1/messages/{sent.id}")
    assert response.status_code == 401
    assert response.json()["message"] == "Log in to use this part of the API."
    assert anonymous.get("/send/").status_code == 302


def test_csrf_is_enforced_on_state_changing_endpoints(send, sender, recipient_transport):
    sent = send(max_opens=3)
    strict = logged_in(sender, enforce_csrf_checks=True)
    token = sent.links["client@example.org"].split("/o/")[1].split("#")[0]
    blob = Message.objects.get(public_id=sent.id).blobs.first()
    calls = [
        ("POST", "/api/v1/messages"),
        ("PUT", f"/api/v1/messages/{sent.id}/blobs/{blob.public_id}?offset=0"),
        ("POST", f"/api/v1/messages/{sent.id}/finalise"),
        ("DELETE", f"/api/v1/messages/{sent.id}"),
        ("POST", f"/messages/{sent.id}/delete/"),
        ("POST", f"/api/v1/open/{token}/unlock"),
        ("POST", f"/api/v1/open/{token}/code"),
    ]
    for method, url in calls:
        response = strict.generic(method, url, data=b"{}", content_type="application/json")
        assert response.status_code == 403, (method, url)
    assert Message.objects.get().state == MessageState.SENT


def test_api_works_with_the_csrf_header(sender):
    strict = logged_in(sender, enforce_csrf_checks=True)
    strict.get("/send/")
    token = strict.cookies["csrftoken"].value
    response = strict.post(
        "/api/v1/messages", data=b"{}", content_type="application/json", HTTP_X_CSRFTOKEN=token
    )
    assert response.status_code == 422  # past CSRF, refused for its content


def test_malformed_and_oversized_uploads(send, sender_transport):
    from tests.exchange.test_send import create_draft

    created = create_draft(sender_transport, size=100)
    blob = created["blobs"][1]
    base = f"/api/v1/messages/{created['id']}/blobs/{blob['id']}"
    status, data = sender_transport.request("PUT", base + "?offset=0", body=b"x" * 101)
    assert status == 413 and data["message"]
    status, data = sender_transport.request("PUT", base + "?offset=zero", body=b"x")
    assert status == 422 and data["message"]
    status, data = sender_transport.request("PUT", base + "?offset=0", body=b"")
    assert status == 413 and data["message"]
    status, data = sender_transport.request("POST", "/api/v1/messages", json_body=None)
    assert status == 422
    assert Message.objects.get(public_id=created["id"]).blobs.get(public_id=blob["id"]).stored == 0


def test_interrupted_chunk_leaves_nothing(sender, sender_transport):
    """A body shorter than its Content-Length stores no partial chunk."""
    import io as _io

    from sealbox.exchange import services
    from sealbox.exchange.models import Blob
    from tests.exchange.test_send import create_draft

    created = create_draft(sender_transport, size=100)
    blob = Blob.objects.get(public_id=created["blobs"][1]["id"])
    with pytest.raises(services.ExchangeError) as error:
        services.store_chunk(blob, 0, 50, _io.BytesIO(b"x" * 20))
    assert error.value.code == "short_body"
    blob.refresh_from_db()
    assert blob.stored == 0 and blob.chunk_count == 0
    from sealbox.exchange import storage

    assert storage.names_under(storage.blob_folder(blob.message.public_id, blob.public_id)) == []


def test_openapi_schema_is_published(client):
    schema = client.get("/api/v1/openapi.json").json()
    assert schema["info"]["title"] == "Sealbox API"
    assert "/api/v1/messages" in schema["paths"]
    assert "/api/v1/open/{token}/unlock" in schema["paths"]


def test_members_see_only_their_own_messages_in_the_api(send, colleague):
    sent = send()
    other = logged_in(colleague)
    assert other.get(f"/api/v1/messages/{sent.id}").status_code == 404


def test_recipient_endpoints_reveal_nothing_for_unknown_tokens(recipient_transport):
    status, data = recipient_transport.request("GET", "/api/v1/open/" + "a" * 22)
    assert status == 404 and "not valid" in data["message"]
    status, data = recipient_transport.request(
        "POST", "/api/v1/open/" + "a" * 22 + "/unlock", json_body={"code": "1"}
    )
    assert status == 404


__all__ = ["client"]


def test_an_administrator_cannot_finalise_or_upload_to_a_colleagues_draft(
    sender, sender_transport, admin_of_org
):
    """An administrator sees the organisation's messages, but sending one is its sender's
    act alone: a colleague's draft cannot be finalised (sent) or written to."""
    from sealbox.crypto import ece, grants

    content_key = grants.new_content_key()
    manifest = ece.encrypt(b'{"v":1,"body":"draft","files":[]}', content_key)
    entry, _token, _secret = client._grant_payload(
        client.Recipient("client@example.org"), content_key
    )
    status, draft = sender_transport.request(
        "POST",
        "/api/v1/messages",
        json_body={
            "subject": "Not yet",
            "expires_at": _in_a_week(),
            "delivery": "links",
            "recipients": [entry],
            "blobs": [{"kind": "manifest", "size": len(manifest)}],
        },
    )
    assert status == 201, draft
    blob = draft["blobs"][0]["id"]
    client.upload_blob(sender_transport, draft["id"], blob, [manifest])

    admin = logged_in(admin_of_org)
    assert admin.get(f"/api/v1/messages/{draft['id']}").status_code == 200  # metadata: yes
    for method, url in (
        ("POST", f"/api/v1/messages/{draft['id']}/finalise"),
        ("PUT", f"/api/v1/messages/{draft['id']}/blobs/{blob}?offset=0"),
    ):
        response = admin.generic(method, url, data=b"{}", content_type="application/json")
        assert response.status_code == 404, (method, url, response.content)
    # The rule is the service's, whoever calls it (the API, the CLI, a later page).
    from sealbox.exchange import services

    with pytest.raises(services.ExchangeError) as refused:
        services.finalise(admin_of_org, Message.objects.get(), None)
    assert refused.value.status == 404
    assert Message.objects.get().state == MessageState.DRAFT
    # The draft was ready: its sender sends it.
    status, sent = sender_transport.request(
        "POST", f"/api/v1/messages/{draft['id']}/finalise", json_body={"links": None}
    )
    assert status == 200 and sent["state"] == MessageState.SENT


def _in_a_week() -> str:
    from datetime import timedelta

    from sealbox.lib import clock

    return (clock.now() + timedelta(days=7)).isoformat()
