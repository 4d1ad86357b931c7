"""Issue 11, item 5: finalising one draft several times at once sends it once.

Before the fix each finalise read "draft", then wrote "sent": 8 parallel finalises of one
message sent it 8 times (8 `message.sent`, 8 emails, 8 opening codes of which 7 were
already wrong). Draft → sent is now one conditional update that exactly one request
wins; the others answer 409. The same holds for envelope submissions and replies.
"""

from datetime import timedelta

import pytest
from django.conf import settings
from django.core import mail
from django.test import Client

from sealbox.audit.models import Event
from sealbox.client import messages as client
from sealbox.crypto import links
from sealbox.envelopes.models import EnvelopeLink, Submission
from sealbox.exchange import services as exchange
from sealbox.exchange.models import Grant, Message, MessageKind, MessageState
from sealbox.lib import clock
from tests.envelopes.conftest import (  # noqa: F401 - fixtures
    SUBMITTER_IP,
    api,
    make_envelope,
    seal_for_owner,
    send,
    sender,
    sender_transport,
)
from tests.exchange.conftest import OPENING_CODE, emails_to
from tests.security.drafts import HoldFinalise, browser_with_cookies, cookies_of
from tests.security.in_parallel import in_parallel

pytestmark = pytest.mark.django_db(transaction=True)

PARALLEL = 8


def post_in_parallel(path: str, body: dict, *, cookies=None, headers=None) -> list:
    def post(_n: int):
        return api(browser_with_cookies(cookies), "POST", path, body, **(headers or {}))

    return in_parallel(PARALLEL, post)


def assert_one_winner(answers: list) -> None:
    assert sorted(status for status, _ in answers) == [200] + [409] * (PARALLEL - 1)
    assert {data["error"] for status, data in answers if status == 409} == {"sent"}
    assert all(data["message"] for status, data in answers if status == 409)


def test_eight_parallel_finalises_of_a_message_send_it_once(sender_transport):  # noqa: F811
    held = HoldFinalise(sender_transport)
    draft = client.send_message(
        held,
        base_url=settings.SEALBOX_BASE_URL,
        subject="Contract",
        body="Please sign.",
        recipients=[client.Recipient("client@example.org")],
        expires_at=clock.now() + timedelta(days=3),
        delivery="email",
    )
    path, body = held.held
    cookies = cookies_of(sender_transport.client)

    answers = post_in_parallel(path, body, cookies=cookies)

    assert_one_winner(answers)
    message = Message.objects.get(public_id=draft.id)
    assert message.state == MessageState.SENT
    assert Event.objects.filter(action="message.sent").count() == 1
    assert Event.objects.filter(action="notification.queued").count() == 1
    # One set of emails, and the one opening code in them is the one that works.
    codes = {
        m for email in emails_to("client@example.org") for m in OPENING_CODE.findall(email.body)
    }
    assert len(codes) == 1
    grant = Grant.objects.get(message=message)
    (code,) = codes
    assert grant.opening_code_hash == exchange.proof_hash(grant.token, "opening", code)
    token = links.parse_link(draft.links["client@example.org"]).grant_token
    status, _data = api(Client(), "POST", f"/api/v1/open/{token}/unlock", {"code": code})
    assert status == 200


def test_eight_parallel_finalises_of_a_submission_count_it_once(make_envelope, sender):  # noqa: F811
    envelope = make_envelope(public=True, max_submissions=100)
    link = envelope.links.get()
    status, started = api(Client(), "POST", f"/api/v1/envelope-links/{link.token}/start", {})
    assert status == 200
    draft = seal_for_owner(
        Client(),
        "/api/v1/envelope-submissions",
        {"submit_token": started["submit_token"], "name": "Carla", "email": "carla@example.org"},
        "/api/v1/envelope-submissions/{id}/finalise",
        finalise=False,
    )
    grant_token = links.parse_link(draft.link).grant_token
    before = len(emails_to(sender.email))

    answers = post_in_parallel(
        f"/api/v1/envelope-submissions/{draft.data['id']}/finalise",
        {"links": [{"grant_token": grant_token, "link": draft.link}]},
        headers={"token": draft.data["upload_token"], "ip": SUBMITTER_IP},
    )

    assert_one_winner(answers)
    assert EnvelopeLink.objects.get(pk=link.pk).submissions == 1
    assert Submission.objects.filter(submitted_at__isnull=False).count() == 1
    # One event on the submission and one on the envelope, as for a single finalise.
    assert Event.objects.filter(action="envelope.submitted").count() == 2
    assert len(emails_to(sender.email)) == before + 1


def test_eight_parallel_finalises_of_a_reply_send_it_once(send, sender):  # noqa: F811
    sent = send(reply_mode="text")
    token = links.parse_link(sent.links["client@example.org"]).grant_token
    status, unlocked = api(
        Client(),
        "POST",
        f"/api/v1/open/{token}/unlock",
        {"code": sent.opening_codes["client@example.org"]},
    )
    assert status == 200, unlocked
    draft = seal_for_owner(
        Client(),
        "/api/v1/replies",
        {"authorisation": unlocked["reply"]["authorisation"]},
        "/api/v1/replies/{id}/finalise",
        finalise=False,
    )
    grant_token = links.parse_link(draft.link).grant_token
    mail.outbox.clear()

    answers = post_in_parallel(
        f"/api/v1/replies/{draft.data['id']}/finalise",
        {"links": [{"grant_token": grant_token, "link": draft.link}]},
        headers={"token": draft.data["upload_token"]},
    )

    assert_one_winner(answers)
    assert Message.objects.get(kind=MessageKind.REPLY).state == MessageState.SENT
    # One event on the reply and one on the message it answers, as for a single finalise.
    assert Event.objects.filter(action="reply.sent").count() == 2
    assert len(emails_to(sender.email)) == 1
