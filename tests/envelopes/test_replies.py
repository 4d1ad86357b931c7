"""Secure replies: sealed in the recipient's browser for the original sender, who opens
them logged in; same expiry, opens and destruction rules as messages; a thread."""

import pytest
from django.test import Client

from sealbox.audit.models import Event
from sealbox.client import messages as client
from sealbox.exchange import services as exchange
from sealbox.exchange.models import Grant, Message, MessageKind, MessageState, Verification
from tests.conftest import PASSWORD
from tests.envelopes.conftest import api, emails_to, link_in, seal_for_owner
from tests.exchange.conftest import DjangoTransport

pytestmark = pytest.mark.django_db

RECIPIENT_IP = "203.0.113.50"


def unlock(sent, email="client@example.org"):
    link = sent.links[email]
    token = link.split("/o/")[1].split("#")[0]
    status, data = api(
        Client(),
        "POST",
        f"/api/v1/open/{token}/unlock",
        {"code": sent.opening_codes.get(email, "")},
        ip=RECIPIENT_IP,
    )
    assert status == 200, data
    return data


def reply(authorisation: str, **options):
    return seal_for_owner(
        Client(),
        "/api/v1/replies",
        {"authorisation": authorisation},
        "/api/v1/replies/{id}/finalise",
        ip=RECIPIENT_IP,
        **options,
    )


def logged_in(user) -> DjangoTransport:
    c = Client()
    assert c.post("/login/", {"email": user.email, "password": PASSWORD}).status_code == 302
    return DjangoTransport(c)


def test_reply_with_a_file_opened_by_the_original_sender(send, sender):
    sent = send(reply_mode="files", max_opens=2)
    unlocked = unlock(sent)
    assert unlocked["reply"]["files"] is True
    files = {"signed.pdf": b"%PDF signed contract " * 500}
    sealed = reply(unlocked["reply"]["authorisation"], body="Signed, see attached.", files=files)
    assert sealed.status == 200, sealed.data

    parent = Message.objects.get(public_id=sent.id)
    answer = Message.objects.get(kind=MessageKind.REPLY)
    assert answer.parent == parent and answer.sender == sender
    assert answer.replied_by.email == "client@example.org"
    assert answer.state == MessageState.SENT and answer.reference.startswith("R-")
    grant = answer.grants.get()
    assert grant.verification == Verification.ACCOUNT and grant.user == sender

    email = emails_to(sender.email)[-1]
    assert "client@example.org replied" in email.body
    opened = client.open_message(logged_in(sender), link_in(email))
    assert opened.body == "Signed, see attached."
    assert opened.files == files
    # The thread: the original message's timeline shows the reply.
    assert Event.objects.filter(
        action="reply.sent", target_type="message", target_id=str(parent.pk)
    ).exists()
    assert Event.objects.filter(action="reply.opened", target_id=str(answer.pk)).exists()
    page = logged_in(sender).client.get(f"/messages/{parent.public_id}/")
    assert page.status_code == 200


def test_no_reply_when_the_sender_did_not_allow_it(send):
    sent = send()
    assert unlock(sent)["reply"] is None


def test_text_replies_refuse_files(send):
    sent = send(reply_mode="text")
    unlocked = unlock(sent)
    assert unlocked["reply"]["files"] is False
    refused = reply(unlocked["reply"]["authorisation"], files={"a.pdf": b"x"})
    assert refused.status == 413
    assert reply(unlocked["reply"]["authorisation"], body="Thanks!").status == 200


def test_a_forged_or_stale_authorisation_is_refused(send, clock):
    sent = send(reply_mode="text")
    unlocked = unlock(sent)
    assert reply("forged").status == 403
    clock.advance(hours=5)
    assert reply(unlocked["reply"]["authorisation"]).status == 403


def test_deleted_message_takes_replies_away(send, sender):
    sent = send(reply_mode="text", max_opens=2)
    unlocked = unlock(sent)
    exchange.delete_message(sender, Message.objects.get(public_id=sent.id))
    assert reply(unlocked["reply"]["authorisation"]).status == 410


def test_reply_expires_and_is_wiped_like_a_message(send, sender, clock):
    sent = send(reply_mode="text", days=1)
    sealed = reply(unlock(sent)["reply"]["authorisation"], body="ok")
    assert sealed.status == 200
    answer = Message.objects.get(kind=MessageKind.REPLY)
    assert abs((answer.expires_at - answer.created_at).total_seconds() - 86400) < 5
    clock.advance(days=1, minutes=1)
    exchange.purge()
    grant = Grant.objects.get(message=answer)
    assert grant.server_secret is None and grant.wiped_at is not None


def test_reply_opens_are_limited(send, sender):
    sent = send(reply_mode="text")
    reply(unlock(sent)["reply"]["authorisation"], body="ok")
    link = link_in(emails_to(sender.email)[-1])
    owner = logged_in(sender)
    for _ in range(exchange.REPLY_MAX_OPENS):
        client.open_message(owner, link)
    with pytest.raises(client.ClientError) as refused:
        client.open_message(owner, link)
    assert refused.value.status == 410


def test_replies_do_not_count_in_the_monthly_quota(send, sender):
    sent = send(reply_mode="text")
    reply(unlock(sent)["reply"]["authorisation"], body="ok")
    from sealbox.lib import clock as clk

    assert exchange.count_sent_since(sender.organisation, exchange.month_start(clk.now())) == 1


def test_history_shows_the_reply_with_kind_reply(send, sender):
    from sealbox.history import services as history

    sent = send(reply_mode="text")
    reply(unlock(sent)["reply"]["authorisation"], body="ok")
    kinds = sorted(row.kind for row in history.rows(sender, history.Filters()))
    assert kinds == ["message", "reply"]


def test_the_sixth_reply_in_an_hour_is_refused(send, sender, clock):
    sent = send(reply_mode="text")
    authorisation = unlock(sent)["reply"]["authorisation"]
    for n in range(5):
        assert reply(authorisation, body=f"reply {n}").status == 200
    refused = reply(authorisation, body="one more")
    assert refused.status == 429
    assert refused.data["error"] == "throttled" and refused.data["retry_after"] == 3600
    assert Message.objects.filter(kind=MessageKind.REPLY).count() == 5
    clock.advance(hours=1, seconds=1)
    assert reply(authorisation, body="an hour later").status == 200


def test_finalise_reply_refuses_an_envelope_submission(make_envelope):
    """The reply-kind rule is the service's: an envelope's draft is no reply to send."""
    from tests.envelopes.conftest import submit

    envelope = make_envelope()
    assert submit(envelope).status == 200
    submission = Message.objects.get(kind=MessageKind.ENVELOPE)
    with pytest.raises(exchange.ExchangeError) as refused:
        exchange.finalise_reply(submission, [])
    assert (refused.value.status, refused.value.code) == (404, "not_found")
