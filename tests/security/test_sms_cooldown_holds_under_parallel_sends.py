"""Issue 11, item 4: parallel requests for a recipient's code send one SMS, not one each
(60 s between codes for one link).

Before the fix the cooldown was read from the latest code, then the new code written:
4 SMS went to one link in the same second.
"""

import pytest
from django.test import Client

from sealbox.audit.models import Event
from sealbox.client import messages as client
from sealbox.crypto import links
from tests.exchange.conftest import send, sender, sender_transport  # noqa: F401 - fixtures
from tests.security.in_parallel import in_parallel
from tests.twofactor.conftest import sms_outbox  # noqa: F401 - fixture

pytestmark = pytest.mark.django_db(transaction=True)


def test_eight_parallel_code_requests_send_one_sms(send, sms_outbox, clock):  # noqa: F811
    sent = send(
        recipients=[client.Recipient("client@example.org", "sms_code", phone="+15145550199")]
    )
    token = links.parse_link(sent.links["client@example.org"]).grant_token

    def ask(n: int):
        response = Client(REMOTE_ADDR=f"203.0.113.{n}").post(
            f"/api/v1/open/{token}/code", content_type="application/json"
        )
        return response.status_code, response.json()

    answers = in_parallel(8, ask)
    assert sorted(status for status, _ in answers) == [200] + [429] * 7
    refusals = [body for status, body in answers if status == 429]
    assert {body["error"] for body in refusals} == {"cooldown"}
    assert all(body["retry_after"] == 60 for body in refusals)
    assert len(sms_outbox) == 1
    assert Event.objects.filter(action="twofactor.code_queued").count() == 1
    # The one code sent is the one that opens the message.
    response = Client().post(
        f"/api/v1/open/{token}/unlock",
        data={"code": sms_outbox.last_code()},
        content_type="application/json",
    )
    assert response.status_code == 200
