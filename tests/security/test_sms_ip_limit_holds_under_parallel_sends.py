"""Issue 11, item 4: parallel requests cannot send more SMS than the hourly limits allow
(20 per IP address, 5 per account).

Before the fix each request read the count, sent, then counted: 24 SMS left one address
against 20 per hour.
"""

import pytest
from django.test import Client

from sealbox.client import messages as client
from sealbox.crypto import links
from sealbox.twofactor import services
from sealbox.twofactor.services import TwoFactorError
from tests.exchange.conftest import send, sender, sender_transport  # noqa: F401 - fixtures
from tests.security.in_parallel import in_parallel
from tests.twofactor.conftest import sms_outbox  # noqa: F401 - fixture

pytestmark = pytest.mark.django_db(transaction=True)


def test_thirty_parallel_codes_from_one_address_send_exactly_twenty(
    send,  # noqa: F811
    sms_outbox,  # noqa: F811
    clock,
):
    recipients = [
        client.Recipient(f"client{i}@example.org", "sms_code", phone=f"+1514555{i:04d}")
        for i in range(100, 130)
    ]
    sent = send(recipients=recipients)
    tokens = [links.parse_link(link).grant_token for link in sent.links.values()]

    def ask(n: int):
        response = Client(REMOTE_ADDR="192.0.2.80").post(
            f"/api/v1/open/{tokens[n]}/code", content_type="application/json"
        )
        return response.status_code, response.json()

    answers = in_parallel(30, ask)
    assert sorted(status for status, _ in answers) == [200] * 20 + [429] * 10
    assert {body["error"] for status, body in answers if status == 429} == {"sms_limit"}
    assert len(sms_outbox) == services.SMS_PER_IP.limit
    # A refused recipient gets their code from another address: only this one is held.
    refused = next(n for n, (status, _) in enumerate(answers) if status == 429)
    response = Client(REMOTE_ADDR="192.0.2.81").post(
        f"/api/v1/open/{tokens[refused]}/code", content_type="application/json"
    )
    assert response.status_code == 200
    assert len(sms_outbox) == services.SMS_PER_IP.limit + 1


def test_ten_parallel_codes_for_one_account_send_exactly_five(sms_outbox, clock):  # noqa: F811
    def ask(n: int) -> str:
        try:
            services.send_code(
                binding=f"login:{n}",
                phone="+15145550100",
                language="en",
                account_key="user:1",
                ip=f"198.51.100.{n}",
                purpose="login",
            )
        except TwoFactorError as error:
            return error.code
        return "sent"

    outcomes = in_parallel(10, ask)
    assert sorted(outcomes) == ["sent"] * 5 + ["sms_limit"] * 5
    assert len(sms_outbox) == services.SMS_PER_ACCOUNT.limit
