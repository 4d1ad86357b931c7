"""Issue 11, item 11: five wrong codes used to lock a recipient's link for good, and anyone
with the link's path could do it.

Now a code dies after 5 wrong tries and a new one can be asked for after the cooldown; 100
consecutive wrong proofs across codes lock the grant until its sender unlocks it, and the
sender sees the failed attempts and the lock on the message's page. Envelope submitters
share the code engine and the rule.
"""

import json
import re

import pytest
from django.test import Client

from sealbox.audit.models import Event
from sealbox.client import messages as client
from sealbox.crypto import links
from sealbox.envelopes import services as envelopes
from sealbox.envelopes.models import EnvelopeLink, EnvelopeVerification
from sealbox.exchange import services as exchange
from sealbox.exchange.models import Grant
from tests.conftest import PASSWORD
from tests.envelopes.conftest import api, submit
from tests.exchange.conftest import SIX_DIGITS, emails_to

pytestmark = pytest.mark.django_db

RECIPIENT = "client@example.org"
DEAD_CODE = "This code is no longer valid: it was mistyped too many times. Ask for a new code."
DEAD_CODE_FR = (
    "Ce code n’est plus valable : il a été mal saisi trop de fois. Demandez un nouveau code."
)
LOCKED = "Too many wrong attempts: this link is locked. Ask the sender to unlock it."
LOCKED_FR = (
    "Trop d’essais erronés : ce lien est verrouillé. Demandez à l’expéditeur de le déverrouiller."
)


def token_of(link: str) -> str:
    return links.parse_link(link).grant_token


def ask_code(transport, link):
    return transport.request("POST", f"/api/v1/open/{token_of(link)}/code")


def try_code(transport, link, code):
    return transport.request(
        "POST", f"/api/v1/open/{token_of(link)}/unlock", json_body={"code": code}
    )


def wrong(code: str) -> str:
    return f"{(int(code) + 1) % 1_000_000:06d}"


def latest_email_code() -> str:
    return SIX_DIGITS.search(emails_to(RECIPIENT)[-1].subject).group(1)


def logged_in(user) -> Client:
    browser = Client()
    assert browser.post("/login/", {"email": user.email, "password": PASSWORD}).status_code == 302
    return browser


def kill_one_code(transport, link, read_code) -> tuple[int, dict]:
    """Ask for a code and mistype it five times; the last answer."""
    status, data = ask_code(transport, link)
    assert status == 200, data
    code = read_code()
    for _ in range(5):
        status, data = try_code(transport, link, wrong(code))
    return status, data


@pytest.mark.parametrize("method", ["email_code", "sms_code"])
def test_five_wrong_tries_kill_the_code_and_a_new_one_after_the_cooldown_opens_it(
    send, recipient_transport, sms_outbox, clock, method
):
    phone = "+15145550199" if method == "sms_code" else ""
    sent = send(recipients=[client.Recipient(RECIPIENT, method, phone=phone)])
    link = sent.links[RECIPIENT]
    read_code = sms_outbox.last_code if method == "sms_code" else latest_email_code

    assert ask_code(recipient_transport, link)[0] == 200
    code = read_code()
    for _ in range(4):
        status, data = try_code(recipient_transport, link, wrong(code))
        assert (status, data["error"]) == (403, "verification_failed")
    status, data = try_code(recipient_transport, link, wrong(code))
    assert status == 403 and data["message"] == DEAD_CODE
    # The code is dead: even the right one no longer opens.
    status, data = try_code(recipient_transport, link, code)
    assert status == 403 and data["message"] == DEAD_CODE

    status, data = ask_code(recipient_transport, link)
    assert (status, data["error"]) == (429, "cooldown")  # 60 s between codes still holds
    clock.advance(seconds=61)
    status, data = ask_code(recipient_transport, link)
    assert status == 200, data  # before: 403 "exhausted", for good
    opened = client.open_message(recipient_transport, link, code=read_code())
    assert opened.body == "Please find the report attached."
    grant = Grant.objects.get()
    assert grant.locked_at is None
    assert grant.failed_attempts == 0  # the right code ends the run of failures


def test_a_hundred_failures_across_codes_lock_the_grant_until_the_sender_unlocks_it(
    send, recipient_transport, sender, clock
):
    sent = send(recipients=[client.Recipient(RECIPIENT, "email_code")])
    link = sent.links[RECIPIENT]
    for round_ in range(20):
        clock.advance(minutes=61)  # past the hourly limits on sends and failures
        status, data = kill_one_code(recipient_transport, link, latest_email_code)
        if round_ < 19:
            assert data["message"] == DEAD_CODE
    assert (status, data["error"], data["message"]) == (403, "locked", LOCKED)
    grant = Grant.objects.get()
    assert grant.failed_attempts == 100 and grant.locked_at is not None
    locked = Event.objects.get(action="grant.locked")
    assert locked.details["failures"] == 100 and locked.actor_type == "recipient"

    # Locked: no code is sent, no proof is checked, and the page says what to do.
    clock.advance(minutes=61)
    mail_count = len(emails_to(RECIPIENT))
    status, data = ask_code(recipient_transport, link)
    assert (status, data["error"]) == (403, "locked")
    assert len(emails_to(RECIPIENT)) == mail_count
    assert try_code(recipient_transport, link, "123456")[1]["error"] == "locked"
    page = Client().get(f"/o/{token_of(link)}")
    assert page.status_code == 403
    assert "This link is locked" in page.content.decode() and LOCKED in page.content.decode()

    # The sender is told on the message's page, and unlocks it there.
    sender_browser = logged_in(sender)
    message_page = sender_browser.get(f"/messages/{grant.message.public_id}/").content.decode()
    assert "Failed attempts" in message_page and "<td>100</td>" in message_page
    assert "Locked after too many wrong attempts" in message_page
    unlock_url = f"/messages/{grant.message.public_id}/recipients/{grant.pk}/unlock/"
    assert unlock_url in message_page
    assert Client().post(unlock_url).status_code == 302  # to the login page: nothing changed
    assert Grant.objects.get().locked_at is not None
    response = sender_browser.post(unlock_url)
    assert response.status_code == 302
    grant.refresh_from_db()
    assert grant.locked_at is None and grant.failed_attempts == 0
    unlocked = Event.objects.get(action="grant.unlocked")
    assert unlocked.actor_id == str(sender.pk) and unlocked.details["recipient"] == RECIPIENT

    assert ask_code(recipient_transport, link)[0] == 200
    opened = client.open_message(recipient_transport, link, code=latest_email_code())
    assert opened.body == "Please find the report attached."


def test_the_lock_counts_consecutive_wrong_proofs_of_every_kind(send, recipient_transport):
    sent = send(max_opens=2)  # an opening code
    link, code = sent.links[RECIPIENT], sent.opening_codes[RECIPIENT]
    Grant.objects.update(failed_attempts=99)
    assert client.open_message(recipient_transport, link, code=code).opens_left == 1
    assert Grant.objects.get().failed_attempts == 0  # a success ends the run
    Grant.objects.update(failed_attempts=99)
    status, data = try_code(recipient_transport, link, "AAAA-BBBB")
    assert (status, data["error"]) == (403, "locked")
    assert exchange.grant_state(Grant.objects.get()) == exchange.GrantState.LOCKED
    status, data = try_code(recipient_transport, link, code)  # the right code is refused too
    assert (status, data["error"]) == (403, "locked")
    assert Grant.objects.get().opens == 1


def test_another_organisations_user_cannot_unlock(
    send, recipient_transport, make_user, other_organisation
):
    sent = send(recipients=[client.Recipient(RECIPIENT, "email_code")])
    Grant.objects.update(failed_attempts=100, locked_at="2026-11-02T09:00:00Z")
    grant = Grant.objects.get()
    outsider = make_user("outsider@example.net", org=other_organisation)
    url = f"/messages/{grant.message.public_id}/recipients/{grant.pk}/unlock/"
    assert logged_in(outsider).post(url).status_code == 404
    assert Grant.objects.get().locked_at is not None
    assert sent.links[RECIPIENT]


def test_the_recipient_page_says_it_in_french(send, clock):
    sent = send(recipients=[client.Recipient(RECIPIENT, "email_code")], language="fr")
    token = token_of(sent.links[RECIPIENT])
    browser = Client(HTTP_ACCEPT_LANGUAGE="fr", REMOTE_ADDR="203.0.113.50")

    def post(path, body=None):
        response = browser.post(path, data=json.dumps(body or {}), content_type="application/json")
        return response.status_code, response.json()

    assert post(f"/api/v1/open/{token}/code")[0] == 200
    code = latest_email_code()
    for _ in range(5):
        status, data = post(f"/api/v1/open/{token}/unlock", {"code": wrong(code)})
    assert status == 403 and data["message"] == DEAD_CODE_FR
    Grant.objects.update(failed_attempts=99)
    clock.advance(seconds=61)
    assert post(f"/api/v1/open/{token}/code")[0] == 200
    status, data = post(f"/api/v1/open/{token}/unlock", {"code": wrong(latest_email_code())})
    assert (status, data["message"]) == (403, LOCKED_FR)
    page = Client().get(f"/o/{token}").content.decode()  # the sender chose French
    assert "Ce lien est verrouillé" in page and LOCKED_FR in page
    assert LOCKED in Client().get(f"/o/{token}?lang=en").content.decode()


# --- envelope submitters: the same code engine, the same rule -------------------------------


def envelope_code() -> str:
    return re.search(r"\b(\d{6})\b", emails_to(RECIPIENT)[-1].body).group(1)


def test_envelope_submitters_get_a_new_code_and_a_lock_their_owner_lifts(
    make_envelope, sender, clock
):
    envelope = make_envelope(
        recipients=[
            envelopes.EnvelopeRecipient(RECIPIENT, verification=EnvelopeVerification.EMAIL_CODE)
        ]
    )
    link = envelope.links.get()
    code_path = f"/api/v1/envelope-links/{link.token}/code"

    assert api(Client(), "POST", code_path)[0] == 200
    code = envelope_code()
    for _ in range(5):
        refused = submit(envelope, code=wrong(code))
    assert refused.status == 403 and refused.data["message"] == DEAD_CODE
    clock.advance(seconds=61)
    status, data = api(Client(), "POST", code_path)
    assert status == 200, data  # before: 403 "exhausted", for good

    EnvelopeLink.objects.update(failed_attempts=99)
    refused = submit(envelope, code=wrong(envelope_code()))
    assert (refused.status, refused.data["error"]) == (403, "locked")
    assert "Ask the envelope’s owner to unlock it" in refused.data["message"]
    assert Event.objects.filter(action="envelope.link_locked").count() == 1
    clock.advance(seconds=61)
    assert api(Client(), "POST", code_path)[1]["error"] == "locked"
    assert Client().get(f"/e/{link.token}").status_code == 403

    owner = logged_in(sender)
    detail = owner.get(f"/envelopes/{envelope.public_id}/").content.decode()
    assert "Locked after too many wrong attempts" in detail and "100 failed attempts" in detail
    response = owner.post(f"/envelopes/{envelope.public_id}/links/{link.pk}/unlock/")
    assert response.status_code == 302
    link.refresh_from_db()
    assert link.locked_at is None and link.failed_attempts == 0
    assert Event.objects.filter(action="envelope.link_unlocked", actor_id=str(sender.pk)).exists()
    assert api(Client(), "POST", code_path)[0] == 200
    assert submit(envelope, code=envelope_code()).status == 200
