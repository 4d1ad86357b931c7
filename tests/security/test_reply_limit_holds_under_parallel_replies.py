"""Issue 11, item 4: parallel replies from one recipient cannot go past the hourly limit
(5 replies per recipient link).

Before the fix each reply read the count, then created its draft and counted.
"""

import pytest
from django.test import Client

from sealbox.crypto import links
from sealbox.exchange import services as exchange
from sealbox.exchange.models import Message, MessageKind
from tests.envelopes.conftest import (  # noqa: F401 - fixtures
    api,
    seal_for_owner,
    send,
    sender,
    sender_transport,
)
from tests.security.in_parallel import in_parallel

pytestmark = pytest.mark.django_db(transaction=True)


def test_ten_parallel_replies_create_five(send):  # noqa: F811
    sent = send(reply_mode="text")
    token = links.parse_link(sent.links["client@example.org"]).grant_token
    code = sent.opening_codes["client@example.org"]
    status, unlocked = api(Client(), "POST", f"/api/v1/open/{token}/unlock", {"code": code})
    assert status == 200, unlocked

    def reply(n: int) -> int:
        return seal_for_owner(
            Client(),
            "/api/v1/replies",
            {"authorisation": unlocked["reply"]["authorisation"]},
            "/api/v1/replies/{id}/finalise",
            body=f"Reply {n}",
            finalise=False,
        ).status

    statuses = in_parallel(10, reply)
    limit = exchange.REPLIES_PER_GRANT.limit
    assert sorted(statuses) == [201] * limit + [429] * (10 - limit)
    assert Message.objects.filter(kind=MessageKind.REPLY).count() == limit
