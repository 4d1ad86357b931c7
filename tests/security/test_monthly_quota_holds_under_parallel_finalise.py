"""Issue 11, item 5: parallel finalises cannot send more messages than the plan's monthly
quota allows.

Before the fix the quota was counted before the message was marked sent: 5 messages went
out in parallel on a 3-a-month plan. It is now counted in the finalise transaction,
under the organisation's lock, with this message included.
"""

from datetime import timedelta

import pytest
from django.conf import settings

from sealbox.audit.models import Event
from sealbox.client import messages as client
from sealbox.exchange import services as exchange
from sealbox.exchange.models import Message, MessageState
from sealbox.lib import clock
from tests.envelopes.conftest import api
from tests.exchange.conftest import sender, sender_transport  # noqa: F401 - fixtures
from tests.security.drafts import HoldFinalise, browser_with_cookies, cookies_of
from tests.security.in_parallel import in_parallel

pytestmark = pytest.mark.django_db(transaction=True)


def test_six_parallel_finalises_on_a_three_a_month_plan_send_three(
    sender,  # noqa: F811
    sender_transport,  # noqa: F811
):
    plan = sender.organisation.plan
    plan.messages_per_month = 3
    plan.save()
    finalises = []
    for n in range(6):
        held = HoldFinalise(sender_transport)
        client.send_message(
            held,
            base_url=settings.SEALBOX_BASE_URL,
            subject=f"Invoice {n}",
            body="Attached.",
            recipients=[client.Recipient(f"client{n}@example.org")],
            expires_at=clock.now() + timedelta(days=3),
            delivery="links",
        )
        finalises.append(held.held)
    cookies = cookies_of(sender_transport.client)

    def finalise(n: int):
        path, body = finalises[n]
        return api(browser_with_cookies(cookies), "POST", path, body)

    answers = in_parallel(6, finalise)

    assert sorted(status for status, _ in answers) == [200] * 3 + [403] * 3
    refusals = [data for status, data in answers if status == 403]
    assert {data["error"] for data in refusals} == {"quota"}
    assert all("sent its 3 messages for this month" in data["message"] for data in refusals)
    month = exchange.month_start(clock.now())
    assert exchange.count_sent_since(sender.organisation, month) == 3
    assert Event.objects.filter(action="message.sent").count() == 3
    # The refused drafts are untouched: still drafts, nothing delivered for them.
    assert Message.objects.filter(state=MessageState.DRAFT).count() == 3
