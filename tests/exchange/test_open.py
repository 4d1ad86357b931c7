"""Opening: proofs (opening code, email code, SMS code, password), counted opens."""

import pytest
from django.core import mail

from sealbox.audit.models import Event
from sealbox.client import messages as client
from sealbox.crypto import links
from sealbox.exchange import services
from sealbox.exchange.models import Grant
from tests.exchange.conftest import SIX_DIGITS, emails_to

pytestmark = pytest.mark.django_db


def token_of(link: str) -> str:
    return links.parse_link(link).grant_token


def unlock(transport, link, **body):
    return transport.request("POST", f"/api/v1/open/{token_of(link)}/unlock", json_body=body)


def test_email_code(send, recipient_transport):
    sent = send(recipients=[client.Recipient("client@example.org", "email_code")])
    link = sent.links["client@example.org"]
    status, info = recipient_transport.request("GET", f"/api/v1/open/{token_of(link)}")
    assert info["verification"] == "email_code" and info["sender"] == "Sam Sender"
    assert client.request_code(recipient_transport, link)["sent_to"] == "client@example.org"
    email = emails_to("client@example.org")[-1]
    code = SIX_DIGITS.search(email.subject).group(1)
    opened = client.open_message(recipient_transport, link, code=code)
    assert opened.body == "Please find the report attached."
    # Single use: the same code cannot open again (and opens are used up anyway).
    assert Event.objects.filter(action="twofactor.code_queued", details__channel="email").exists()


def test_sms_code(send, recipient_transport, sms_outbox):
    sent = send(
        recipients=[client.Recipient("client@example.org", "sms_code", phone="+15145550199")],
        max_opens=2,
    )
    link = sent.links["client@example.org"]
    status, info = recipient_transport.request("GET", f"/api/v1/open/{token_of(link)}")
    assert info["sent_to"].endswith("0199") and "5145550199" not in info["sent_to"]
    client.request_code(recipient_transport, link)
    assert sms_outbox.last()["to"] == "+15145550199"
    code = sms_outbox.last_code()
    opened = client.open_message(recipient_transport, link, code=code)
    assert opened.opens_left == 1
    # The code was single use.
    with pytest.raises(client.ClientError) as error:
        client.open_message(recipient_transport, link, code=code)
    assert error.value.status == 403
    assert "already used" in error.value.data["message"]


def test_code_rules_apply_to_recipients(send, recipient_transport, sms_outbox, clock):
    sent = send(
        recipients=[client.Recipient("client@example.org", "sms_code", phone="+15145550199")]
    )
    link = sent.links["client@example.org"]
    client.request_code(recipient_transport, link)
    status, data = recipient_transport.request("POST", f"/api/v1/open/{token_of(link)}/code")
    assert status == 429 and data["error"] == "cooldown"  # 60 s between codes
    clock.advance(minutes=10, seconds=1)
    with pytest.raises(client.ClientError) as error:
        client.open_message(recipient_transport, link, code=sms_outbox.last_code())
    assert "expired" in error.value.data["message"]


def test_retry_after_is_the_resend_cooldown(send, recipient_transport, clock, resend_cooldown):
    sent = send(recipients=[client.Recipient("client@example.org", "email_code")])
    path = f"/api/v1/open/{token_of(sent.links['client@example.org'])}/code"
    status, data = recipient_transport.request("POST", path)
    assert status == 200 and data["retry_after"] == resend_cooldown
    clock.advance(seconds=10)
    status, data = recipient_transport.request("POST", path)
    assert status == 429 and data["retry_after"] == resend_cooldown - 10
    clock.advance(seconds=resend_cooldown - 10)
    status, data = recipient_transport.request("POST", path)
    assert status == 200 and data["retry_after"] == resend_cooldown


def test_password(send, recipient_transport):
    sent = send(
        recipients=[client.Recipient("client@example.org", "password", password="horse staple 42")]
    )
    link = sent.links["client@example.org"]
    with pytest.raises(client.ClientError) as error:
        client.open_message(recipient_transport, link, password="wrong guess")
    assert error.value.status == 403
    assert error.value.data["message"] == "This password is not correct."
    opened = client.open_message(recipient_transport, link, password="horse staple 42")
    assert opened.body == "Please find the report attached."


def test_password_is_an_encryption_factor(send, recipient_transport):
    """Even with the server's half and the link, the key needs the password."""
    from sealbox.crypto import CryptoError, grants
    from sealbox.crypto._b64 import b64url_decode

    sent = send(
        recipients=[client.Recipient("client@example.org", "password", password="horse staple 42")],
        max_opens=2,
    )
    link = sent.links["client@example.org"]
    parsed = links.parse_link(link)
    key = grants.derive_password_key("horse staple 42", parsed.grant_token)
    verifier = grants.password_verifier(key, parsed.grant_token)
    from sealbox.crypto._b64 import b64url_encode

    status, data = unlock(recipient_transport, link, password_verifier=b64url_encode(verifier))
    assert status == 200
    with pytest.raises(CryptoError):
        grants.unwrap_grant(
            parsed.grant_token,
            parsed.link_secret,
            b64url_decode(data["server_secret"]),
            b64url_decode(data["wrapped_key"]),
        )


def test_wrong_opening_code_is_refused_and_counted(send, recipient_transport):
    sent = send()
    link = sent.links["client@example.org"]
    status, data = unlock(recipient_transport, link, code="AAAA-BBBB")
    assert status == 403 and data["message"] == "This opening code is not correct."
    grant = Grant.objects.get()
    assert grant.opens == 0
    event = Event.objects.get(action="grant.verification_failed")
    assert event.ip == "203.0.113.50" and event.user_agent == "sealbox-tests"
    assert "AAAA" not in str(event.details)


def test_opening_code_is_not_case_or_dash_sensitive(send, recipient_transport):
    sent = send()
    code = sent.opening_codes["client@example.org"].lower().replace("-", " ")
    opened = client.open_message(recipient_transport, sent.links["client@example.org"], code=code)
    assert opened.body


def test_failures_per_grant_are_limited(send, recipient_transport):
    sent = send()
    link = sent.links["client@example.org"]
    for _ in range(10):
        assert unlock(recipient_transport, link, code="AAAA-BBBB")[0] == 403
    status, data = unlock(recipient_transport, link, code=sent.opening_codes["client@example.org"])
    assert status == 429 and "Too many attempts." in data["message"]


def test_failures_per_ip_are_limited(send, recipient_transport):
    sent_links = [send().links["client@example.org"] for _ in range(3)]
    for i in range(20):
        unlock(recipient_transport, sent_links[i % 2], code="AAAA-BBBB")
    status, data = unlock(recipient_transport, sent_links[2], code="AAAA-BBBB")
    assert status == 429


def test_maximum_opens(send, recipient_transport):
    sent = send(max_opens=2)
    link, code = sent.links["client@example.org"], sent.opening_codes["client@example.org"]
    assert client.open_message(recipient_transport, link, code=code).opens_left == 1
    assert client.open_message(recipient_transport, link, code=code).opens_left == 0
    status, data = unlock(recipient_transport, link, code=code)
    assert status == 410
    assert data["message"] == (
        "This message is no longer available. Ask the sender to send it again."
    )
    grant = Grant.objects.get()
    assert grant.server_secret is None and grant.wrapped_key is None  # wiped at last open
    assert Event.objects.filter(action="message.opened").count() == 2


def test_open_and_download_events_and_sender_notice(send, recipient_transport, sender):
    sent = send(attachments=[client.Attachment("a.txt", data=b"hello")])
    mail.outbox.clear()
    client.open_message(
        recipient_transport,
        sent.links["client@example.org"],
        code=sent.opening_codes["client@example.org"],
    )
    opened = Event.objects.get(action="message.opened")
    assert (opened.actor_type, opened.actor_label, opened.ip) == (
        "recipient",
        "client@example.org",
        "203.0.113.50",
    )
    downloaded = Event.objects.get(action="file.downloaded")
    assert downloaded.ip == "203.0.113.50"
    notice = emails_to(sender.email)
    assert len(notice) == 1 and "client@example.org opened" in notice[0].subject


def test_no_notice_when_the_sender_did_not_ask(send, recipient_transport, sender):
    sent = send(notify_on_open=False)
    mail.outbox.clear()
    client.open_message(
        recipient_transport,
        sent.links["client@example.org"],
        code=sent.opening_codes["client@example.org"],
    )
    assert emails_to(sender.email) == []


def test_download_authorisations_are_short_lived(send, recipient_transport, clock):
    sent = send(max_opens=1, attachments=[client.Attachment("a.txt", data=b"hello")])
    status, data = unlock(
        recipient_transport,
        sent.links["client@example.org"],
        code=sent.opening_codes["client@example.org"],
    )
    url = data["downloads"][0]["url"]
    assert recipient_transport.client.get(url).status_code == 200
    clock.advance(minutes=61)
    response = recipient_transport.client.get(url)
    assert response.status_code in (403, 410)
    assert response.json()["message"]
    assert recipient_transport.client.get(url[:-3] + "abc").status_code == 403


def test_open_page_renders_without_secrets(send, recipient_transport):
    sent = send()
    link = sent.links["client@example.org"]
    path = "/o/" + token_of(link)
    page = recipient_transport.client.get(path).content.decode()
    assert "Sam Sender (Tremblay Avocats) sent you a secure message." in page
    assert "Opening code" in page and 'src="/static/sealbox/js/open.js"' in page
    assert links.parse_link(link).link_secret.hex() not in page


def test_gone_and_invalid_pages(send, recipient_transport, sender):
    sent = send()
    link = sent.links["client@example.org"]
    client.open_message(recipient_transport, link, code=sent.opening_codes["client@example.org"])
    response = recipient_transport.client.get("/o/" + token_of(link))
    assert response.status_code == 410
    assert "Ask the sender to send it again." in response.content.decode()
    response = recipient_transport.client.get("/o/" + "x" * 22)
    assert response.status_code == 404
    assert "This link is not valid" in response.content.decode()


def test_grant_states(send):
    sent = send()
    grant = Grant.objects.get(token=token_of(sent.links["client@example.org"]))
    assert services.grant_state(grant) == "open"
