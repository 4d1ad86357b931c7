"""Everything a recipient holds survives a rotation of the secret key while the former key
is a fallback (opening codes, password verifiers, download and reply authorisations, upload
tokens); new ones are made under the new key; without the fallback, old ones fail with
the usual clear answer, never a server error."""

from __future__ import annotations

import pytest
from django.test import Client

from sealbox import keys
from sealbox.client import messages as client
from sealbox.crypto import links
from sealbox.exchange import services
from sealbox.exchange.models import Grant
from tests.envelopes.conftest import api, seal_for_owner

pytestmark = pytest.mark.django_db


def token_of(link: str) -> str:
    return links.parse_link(link).grant_token


def made_under(grant: Grant, field: str, kind: str, value) -> int | None:
    """Which accepted key made the grant's stored proof hash (keys.CURRENT: the new)."""
    stored = getattr(grant, field)
    return keys.matching(
        stored, lambda key: services.proof_hash(grant.token, kind, value, key), services.PROOF_INFO
    )


def unlock(transport, link: str, code: str):
    return transport.request(
        "POST", f"/api/v1/open/{token_of(link)}/unlock", json_body={"code": code}
    )


# --- opening codes ---------------------------------------------------------------------


def test_an_opening_code_given_before_the_rotation_still_opens_and_moves_to_the_new_key(
    send, recipient_transport, secret_key
):
    sent = send(max_opens=2)
    link, code = sent.links["client@example.org"], sent.opening_codes["client@example.org"]
    secret_key.rotate()
    status, _data = unlock(recipient_transport, link, code)
    assert status == 200
    grant = Grant.objects.get()
    assert made_under(grant, "opening_code_hash", "opening", code) == keys.CURRENT
    # Hashed again under the new key: it survives the removal of the old one.
    secret_key.drop_fallback()
    opened = client.open_message(recipient_transport, link, code=code)
    assert opened.body == "Please find the report attached."


def test_new_opening_codes_are_made_under_the_new_key(send, secret_key):
    secret_key.rotate()
    sent = send()
    code = sent.opening_codes["client@example.org"]
    grant = Grant.objects.get()
    assert made_under(grant, "opening_code_hash", "opening", code) == keys.CURRENT
    old = services.proof_hash(
        grant.token, "opening", code, keys.derive(services.PROOF_INFO, secret_key.old)
    )
    assert grant.opening_code_hash != old


def test_without_the_fallback_an_unused_old_code_is_refused_cleanly(
    send, recipient_transport, secret_key
):
    sent = send()
    link, code = sent.links["client@example.org"], sent.opening_codes["client@example.org"]
    secret_key.drop_fallback()
    status, data = unlock(recipient_transport, link, code)
    assert status == 403
    assert data["error"] == "verification_failed"
    assert data["message"] == "This opening code is not correct."


# --- password verifiers ---------------------------------------------------------------


def test_a_password_set_before_the_rotation_still_opens(send, recipient_transport, secret_key):
    sent = send(
        recipients=[client.Recipient("client@example.org", "password", password="tulip-garden-42")],
        max_opens=2,
    )
    link = sent.links["client@example.org"]
    secret_key.rotate()
    opened = client.open_message(recipient_transport, link, password="tulip-garden-42")
    assert opened.body == "Please find the report attached."
    secret_key.drop_fallback()  # the verifier's HMAC moved to the new key on that open
    opened = client.open_message(recipient_transport, link, password="tulip-garden-42")
    assert opened.opens_left == 0


def test_without_the_fallback_an_old_password_is_refused_cleanly(
    send, recipient_transport, secret_key
):
    sent = send(
        recipients=[client.Recipient("client@example.org", "password", password="tulip-garden-42")]
    )
    secret_key.drop_fallback()
    with pytest.raises(client.ClientError) as refused:
        client.open_message(
            recipient_transport, sent.links["client@example.org"], password="tulip-garden-42"
        )
    assert refused.value.status == 403
    assert str(refused.value) == "This password is not correct."


# --- signed authorisations (Django's signing: it tries the fallbacks itself) ----------


def test_a_download_authorisation_survives_the_rotation_and_not_the_removal(
    send, recipient_transport, secret_key
):
    sent = send(attachments=[client.Attachment("a.pdf", data=b"a" * 3000)])
    link, code = sent.links["client@example.org"], sent.opening_codes["client@example.org"]
    status, unlocked = unlock(recipient_transport, link, code)
    url = next(d["url"] for d in unlocked["downloads"] if d["kind"] == "file")
    secret_key.rotate()
    assert recipient_transport.client.get(url).status_code == 200
    secret_key.drop_fallback()
    response = recipient_transport.client.get(url)
    assert response.status_code == 403
    assert response.json() == {
        "error": "expired",
        "message": "This download link has expired. Open the message again.",
    }


def reply(authorisation: str):
    return seal_for_owner(
        Client(),
        "/api/v1/replies",
        {"authorisation": authorisation},
        "/api/v1/replies/{id}/finalise",
        body="Thanks.",
    )


def test_a_reply_authorisation_survives_the_rotation_and_not_the_removal(
    send, recipient_transport, secret_key
):
    sent = send(reply_mode="text", max_opens=3)
    link, code = sent.links["client@example.org"], sent.opening_codes["client@example.org"]
    _status, first = unlock(recipient_transport, link, code)
    _status, second = unlock(recipient_transport, link, code)
    secret_key.rotate()
    assert reply(first["reply"]["authorisation"]).status == 200
    secret_key.drop_fallback()
    refused = reply(second["reply"]["authorisation"])
    assert refused.status == 403 and refused.data["error"] == "expired"


def test_an_upload_token_survives_the_rotation_and_not_the_removal(
    send, recipient_transport, secret_key
):
    sent = send(reply_mode="text")
    link, code = sent.links["client@example.org"], sent.opening_codes["client@example.org"]
    _status, unlocked = unlock(recipient_transport, link, code)
    draft = seal_for_owner(
        Client(),
        "/api/v1/replies",
        {"authorisation": unlocked["reply"]["authorisation"]},
        "/api/v1/replies/{id}/finalise",
        finalise=False,
    )
    upload = draft.data["upload_token"]
    path = f"/api/v1/uploads/{draft.data['id']}"
    secret_key.rotate()
    status, state = api(Client(), "GET", path, token=upload)
    assert status == 200, state
    secret_key.drop_fallback()
    status, refused = api(Client(), "GET", path, token=upload)
    assert status == 404 and refused["error"] == "not_found"
