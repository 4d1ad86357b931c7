"""Issue 11, item 4: parallel wrong proofs on a recipient's link or an envelope's link
cannot be checked more often than the failure limits allow (10 per link, 20 per IP
address, per hour).

Before the fix the limits were read, the proof checked, and only then the failure
counted, so a burst of parallel guesses was checked in full.
"""

import pytest
from django.test import Client

from sealbox.audit.models import Event
from sealbox.client import messages as client
from sealbox.crypto import links
from sealbox.envelopes.models import EnvelopeVerification
from sealbox.envelopes.services import EnvelopeRecipient
from sealbox.exchange import services as exchange
from sealbox.ratelimit import services as ratelimit
from tests.envelopes.conftest import (  # noqa: F401 - fixtures
    api,
    make_envelope,
    send,
    sender,
    sender_transport,
)
from tests.security.in_parallel import in_parallel

pytestmark = pytest.mark.django_db(transaction=True)


def test_thirty_parallel_wrong_opening_codes_check_exactly_ten(send, clock):  # noqa: F811
    sent = send()
    token = links.parse_link(sent.links["client@example.org"]).grant_token

    def guess(n: int) -> int:
        status, _data = api(
            Client(),
            "POST",
            f"/api/v1/open/{token}/unlock",
            {"code": f"WRNG-{n:04d}"},  # 0 and 1 are never in a real opening code
            ip=f"198.51.100.{n}",
        )
        return status

    statuses = in_parallel(30, guess)
    limit = exchange.UNLOCK_FAILURES_PER_GRANT.limit
    assert sorted(statuses) == [403] * limit + [429] * (30 - limit)
    assert Event.objects.filter(action="grant.verification_failed").count() == limit
    # The right code waits for the hour to pass like any other try.
    right = sent.opening_codes["client@example.org"]
    status, data = api(Client(), "POST", f"/api/v1/open/{token}/unlock", {"code": right})
    assert status == 429 and data["error"] == "throttled"
    assert not Event.objects.filter(action="message.opened").exists()


def test_thirty_parallel_wrong_passwords_on_an_envelope_check_exactly_ten(
    make_envelope,  # noqa: F811
    clock,
):
    envelope = make_envelope(
        recipients=[
            EnvelopeRecipient(
                "client@example.org",
                verification=EnvelopeVerification.PASSWORD,
                password="horse staple 42",
            )
        ],
        delivery="links",
    )
    link = envelope.links.get()

    def guess(n: int) -> int:
        status, _data = api(
            Client(),
            "POST",
            f"/api/v1/envelope-links/{link.token}/start",
            {"password": f"wrong guess {n}"},
            ip=f"198.51.100.{n}",
        )
        return status

    statuses = in_parallel(30, guess)
    assert sorted(statuses) == [403] * 10 + [429] * 20
    assert Event.objects.filter(action="envelope.verification_failed").count() == 10
    status, _data = api(
        Client(),
        "POST",
        f"/api/v1/envelope-links/{link.token}/start",
        {"password": "horse staple 42"},
    )
    assert status == 429


def test_a_right_proof_gives_its_slot_back(send, clock):  # noqa: F811
    sent = send(recipients=[client.Recipient("client@example.org")], max_opens=5)
    token = links.parse_link(sent.links["client@example.org"]).grant_token
    right = sent.opening_codes["client@example.org"]
    # Right proofs at once from one address: none counts against it.
    statuses = in_parallel(
        5,
        lambda n: api(
            Client(), "POST", f"/api/v1/open/{token}/unlock", {"code": right}, ip="192.0.2.9"
        )[0],
    )
    assert statuses == [200] * 5
    assert ratelimit.count(exchange.UNLOCK_FAILURES_PER_IP, "192.0.2.9") == 0
    assert ratelimit.count(exchange.UNLOCK_FAILURES_PER_GRANT, token) == 0
