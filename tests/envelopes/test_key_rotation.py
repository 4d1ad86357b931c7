"""Envelope links survive a rotation of the secret key while the former key is a
fallback: their opening codes (hashed again under the new key when used) and the submit
tokens given at the start; without the fallback, old ones are refused cleanly."""

import re

import pytest
from django.test import Client

from sealbox import keys
from sealbox.envelopes import services
from sealbox.envelopes.models import EnvelopeVerification
from sealbox.exchange import services as exchange
from tests.envelopes.conftest import api, emails_to, seal_for_owner, submit

pytestmark = pytest.mark.django_db


def code_envelope(make_envelope, email="client@example.org"):
    envelope = make_envelope(
        recipients=[
            services.EnvelopeRecipient(email, verification=EnvelopeVerification.OPENING_CODE)
        ]
    )
    code_email = emails_to(email)[-1]
    code = re.search(r"\b([A-Z2-9]{4}-[A-Z2-9]{4})\b", code_email.body).group(1)
    return envelope, code


def test_an_opening_code_sent_before_the_rotation_still_opens_the_link(make_envelope, secret_key):
    envelope, code = code_envelope(make_envelope)
    link = envelope.links.get()
    start = f"/api/v1/envelope-links/{link.token}/start"
    secret_key.rotate()
    status, data = api(Client(), "POST", start, {"code": code})
    assert status == 200, data
    link.refresh_from_db()
    stored = link.opening_code_hash
    index = keys.matching(
        stored,
        lambda key: exchange.proof_hash(link.token, "opening", code, key),
        exchange.PROOF_INFO,
    )
    assert index == keys.CURRENT  # hashed again under the new key on that use
    secret_key.drop_fallback()
    assert submit(envelope, code=code).status == 200


def test_without_the_fallback_an_unused_old_code_is_refused_cleanly(make_envelope, secret_key):
    envelope, code = code_envelope(make_envelope)
    secret_key.drop_fallback()
    refused = submit(envelope, code=code)
    assert refused.status == 403
    assert refused.data["message"] == "This opening code is not correct."


def test_a_submit_token_survives_the_rotation_and_not_the_removal(make_envelope, secret_key):
    envelope = make_envelope(public=True, per_ip_hourly=10)
    link = envelope.links.get()
    tokens = []
    for _ in range(2):
        status, data = api(Client(), "POST", f"/api/v1/envelope-links/{link.token}/start", {})
        assert status == 200, data
        tokens.append(data["submit_token"])

    def create(token):
        return seal_for_owner(
            Client(),
            "/api/v1/envelope-submissions",
            {"submit_token": token, "name": "Carla", "email": "carla@example.org"},
            "/api/v1/envelope-submissions/{id}/finalise",
            finalise=False,
        )

    secret_key.rotate()
    assert create(tokens[0]).status == 201
    secret_key.drop_fallback()
    refused = create(tokens[1])
    assert refused.status == 403, refused.data
    assert refused.data == {
        "error": "expired",
        "message": "This page has been open too long. Reload it and start again.",
    }
