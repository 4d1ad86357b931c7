"""Another member of the same organisation, an administrator, and a member of another
organisation get 404 on every envelope and submission URL and API object."""

import pytest
from django.test import Client

from sealbox.accounts.models import Role
from sealbox.envelopes.models import Envelope, EnvelopeState
from sealbox.exchange.models import Message, MessageKind
from tests.conftest import PASSWORD
from tests.envelopes.conftest import emails_to, link_in, submit

pytestmark = pytest.mark.django_db


def logged_in(user) -> Client:
    c = Client()
    assert c.post("/login/", {"email": user.email, "password": PASSWORD}).status_code == 302
    return c


@pytest.fixture
def others(make_user, other_organisation):
    return {
        "colleague": make_user("colleague@example.com"),
        "administrator": make_user("boss@example.com", role=Role.ADMIN),
        "outsider": make_user("admin@other.example", org=other_organisation, role=Role.ADMIN),
    }


def envelope_urls(envelope: Envelope) -> list[tuple[str, str]]:
    e = envelope.public_id
    return [
        ("GET", f"/envelopes/{e}/"),
        ("GET", f"/envelopes/{e}/close/"),
        ("POST", f"/envelopes/{e}/close/"),
        ("GET", f"/api/v1/envelopes/{e}"),
        ("POST", f"/api/v1/envelopes/{e}/close"),
    ]


@pytest.mark.parametrize("who", ["colleague", "administrator", "outsider"])
def test_every_envelope_url_is_404_for_others(make_envelope, sender, others, who):
    envelope = make_envelope()
    assert submit(envelope).status == 200
    submission = Message.objects.get(kind=MessageKind.ENVELOPE)
    owner_link = link_in(emails_to(sender.email)[-1])
    token = owner_link.split("/o/")[1].split("#")[0]
    other = logged_in(others[who])
    for method, url in envelope_urls(envelope):
        response = other.generic(method, url, data=b"{}", content_type="application/json")
        assert response.status_code == 404, (method, url, response.status_code)
    # The submission: its open page and its unlock are 404 for anyone but the owner.
    assert other.get(f"/o/{token}").status_code == 404
    assert other.get(f"/api/v1/open/{token}").status_code == 404
    if who != "administrator":  # an administrator sees the metadata (next test)
        for url in (
            f"/messages/{submission.public_id}/",
            f"/api/v1/messages/{submission.public_id}",
        ):
            assert other.get(url).status_code == 404, url
    response = other.post(
        f"/api/v1/open/{token}/unlock", data=b"{}", content_type="application/json"
    )
    assert response.status_code == 404
    # Uploads need the submitter's token, whoever asks.
    blob = submission.blobs.first()
    for method, url in [
        ("GET", f"/api/v1/uploads/{submission.public_id}"),
        ("PUT", f"/api/v1/uploads/{submission.public_id}/blobs/{blob.public_id}?offset=0"),
        ("POST", f"/api/v1/envelope-submissions/{submission.public_id}/finalise"),
    ]:
        response = other.generic(method, url, data=b"{}", content_type="application/json")
        assert response.status_code in (404, 422), (method, url, response.status_code)
    listing = other.get("/api/v1/envelopes").json()
    assert listing == []
    assert envelope.subject.encode() not in other.get("/envelopes/").content
    assert Envelope.objects.get().state == EnvelopeState.OPEN


def test_administrator_sees_the_submission_metadata_not_its_content(make_envelope, sender, others):
    envelope = make_envelope()
    submit(envelope)
    submission = Message.objects.get(kind=MessageKind.ENVELOPE)
    admin = logged_in(others["administrator"])
    page = admin.get(f"/messages/{submission.public_id}/")
    assert page.status_code == 200 and submission.reference.encode() in page.content
    history = admin.get("/history/")
    assert submission.reference.encode() in history.content


def test_anonymous_owner_link_asks_to_log_in(make_envelope, sender):
    envelope = make_envelope()
    submit(envelope)
    owner_link = link_in(emails_to(sender.email)[-1])
    token = owner_link.split("/o/")[1].split("#")[0]
    page = Client().get(f"/o/{token}")
    assert page.status_code == 200 and b"Log in to open it" in page.content
    response = Client().post(
        f"/api/v1/open/{token}/unlock", data=b"{}", content_type="application/json"
    )
    assert response.status_code == 403


def test_upload_token_of_one_draft_does_not_open_another(make_envelope):
    envelope = make_envelope(public=True)
    first = submit(envelope, finalise=False, ip="198.51.100.1")
    second = submit(envelope, finalise=False, ip="198.51.100.2")
    blob = second.data["blobs"][0]["id"]
    response = Client().put(
        f"/api/v1/uploads/{second.data['id']}/blobs/{blob}?offset=0",
        data=b"x",
        content_type="application/octet-stream",
        HTTP_X_UPLOAD_TOKEN=first.data["upload_token"],
    )
    assert response.status_code == 404
