"""Every kind of email a recipient or a sender receives, through a real SMTP server
(aiosmtpd): who it says it is from, who answers it, its MIME (text and HTML alternatives,
the logo as a CID part), its size, an email-client lint of its HTML, and the facts the
recipient needs, in both alternatives."""

from __future__ import annotations

import base64
import re
from email.headerregistry import Address

import pytest
from django.conf import settings
from django.test import Client

from sealbox.client import messages as client
from sealbox.envelopes import notifications as envelope_emails
from sealbox.envelopes.services import EnvelopeRecipient
from sealbox.exchange import notifications as exchange_emails
from sealbox.exchange.models import Grant, Message, MessageKind
from sealbox.users import services as users
from tests.envelopes.conftest import api, make_envelope, seal_for_owner, submit  # noqa: F401
from tests.notify.email_checks import MAX_EMAIL_BYTES, lint, parse, parts
from tests.notify.test_email_smtp import smtp_server  # noqa: F401 - fixture

pytestmark = pytest.mark.django_db

# A real PNG (1×1), as an administrator uploads it.
PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="
)
FROM_ADDRESS = "notifications@sealbox.example"
PERSONAL = "Sam Sender (Tremblay Avocats) via Sealbox"
LINK = re.compile(r"http://\S+/o/[A-Za-z0-9_-]+#[A-Za-z0-9_-]+")
CODE = re.compile(r"\b([A-Z2-9]{4}-[A-Z2-9]{4})\b")


class Received:
    def __init__(self, inbox):
        self.inbox = inbox

    def raw(self):
        return [(rcpts, raw) for rcpts, raw in self.inbox.raw]

    def to(self, address: str) -> list:
        return [parse(raw) for rcpts, raw in self.inbox.raw if address in rcpts]


@pytest.fixture
def smtp(smtp_server, settings):  # noqa: F811
    controller, inbox = smtp_server
    inbox.raw = []
    original = inbox.handle_DATA

    async def keep_raw(server, session, envelope):
        inbox.raw.append((list(envelope.rcpt_tos), envelope.content))
        return await original(server, session, envelope)

    inbox.handle_DATA = keep_raw
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", controller.port
    settings.EMAIL_USE_TLS = settings.EMAIL_USE_SSL = False
    settings.EMAIL_HOST_USER = settings.EMAIL_HOST_PASSWORD = ""
    settings.DEFAULT_FROM_EMAIL = f"Sealbox <{FROM_ADDRESS}>"
    return Received(inbox)


@pytest.fixture
def organisation_brand(sender):
    organisation = sender.organisation
    organisation.logo, organisation.logo_type = PNG, "image/png"
    organisation.accent_colour = "#7a1f5c"
    organisation.postal_address = "12 rue de la Paix\n75002 Paris"
    organisation.phone = "+33 1 23 45 67 89"
    organisation.save()
    sender.time_zone = "Europe/Paris"
    sender.save()
    return organisation


def from_of(message) -> Address:
    [address] = message["From"].addresses
    return address


def reply_to_of(message) -> list[Address]:
    return list(message["Reply-To"].addresses) if message["Reply-To"] else []


def check_layout(message, raw_size: int, *, personal: str | None, reply_to: str | None):
    """What every email of the layout holds, whatever its kind."""
    address = from_of(message)
    assert address.addr_spec == FROM_ADDRESS
    assert address.display_name == (personal or "Sealbox")
    assert [a.addr_spec for a in reply_to_of(message)] == ([reply_to] if reply_to else [])
    assert raw_size <= MAX_EMAIL_BYTES
    found = parts(message)
    checked = lint(found.html)
    assert checked.problems == [], checked.problems
    # The logo is in the email, referenced by its Content-ID, and is the uploaded file.
    assert checked.cids == ["logo@sealbox"]
    assert found.images == {"logo@sealbox": ("image/png", PNG)}
    assert 'alt="Tremblay Avocats"' in found.html
    assert "border-top:4px solid #7a1f5c" in found.html
    # The organisation's address and phone, and how to check the email, in both.
    for body in (found.text, found.html):
        assert "75002 Paris" in body and "+33 1 23 45 67 89" in body
        assert "Is this email genuine?" in body
        assert f"{settings.SEALBOX_BASE_URL}/" in body
    return found


def size_of(received: Received, message) -> int:
    for _rcpts, raw in received.raw():
        if parse(raw)["Message-ID"] == message["Message-ID"]:
            return len(raw)
    raise AssertionError("not received")


def test_a_message_with_an_sms_code_and_the_senders_copy(smtp, organisation_brand, send, sender):
    send(
        delivery="email",
        recipients=[
            client.Recipient("client@example.org", verification="sms_code", phone="+15145550199"),
            client.Recipient(sender.email, "account"),
        ],
        keep_copy=True,
    )
    [notification] = smtp.to("client@example.org")
    found = check_layout(
        notification,
        size_of(smtp, notification),
        personal=PERSONAL,
        reply_to="sender@example.com",
    )
    assert reply_to_of(notification)[0].display_name == "Sam Sender"
    assert notification["Subject"] == "Secure message from Sam Sender: Quarterly report"
    grant = Grant.objects.get(email="client@example.org")
    expiry = grant.expires_at.astimezone(__import__("zoneinfo").ZoneInfo("Europe/Paris"))
    when = f"{expiry.day} {expiry:%B %Y}, {expiry:%H:%M} (Europe/Paris)"
    link = LINK.search(found.text).group(0)
    for body in (found.text, found.html):
        assert "Sam Sender" in body and "sender@example.com" in body
        assert "Quarterly report" in body
        assert "a code sent by SMS to •••• 0199" in body
        assert when in body
        assert link in body
    assert f'href="{link}"' in found.html  # the button, in the accent colour
    assert "background-color:#7a1f5c" in found.html

    [copy] = [m for m in smtp.to(sender.email) if "copy" in m["Subject"]]
    found = check_layout(copy, size_of(smtp, copy), personal=None, reply_to=None)
    assert "You kept a copy" in found.text and "Open my copy" in found.html


def test_a_hidden_subject_stays_out_of_the_email(smtp, organisation_brand, send):
    send(delivery="email", show_subject=False, subject="Divorce settlement")
    for message in smtp.to("client@example.org"):
        found = parts(message)
        assert "Divorce settlement" not in message["Subject"]
        assert "Divorce settlement" not in found.text + found.html


def test_opening_code_email_open_notice_and_reply(smtp, organisation_brand, send, sender):
    send(delivery="email", reply_mode="text")
    notification, code_email = smtp.to("client@example.org")
    for message in (notification, code_email):
        check_layout(
            message, size_of(smtp, message), personal=PERSONAL, reply_to="sender@example.com"
        )
    assert "an opening code, in a second email" in parts(notification).text
    assert "Your opening code" in parts(code_email).html
    link = LINK.search(parts(notification).text).group(0)
    code = CODE.search(parts(code_email).text).group(1)
    assert code in parts(code_email).html

    # The recipient opens it: the sender is told, from Sealbox.
    token = link.split("/o/")[1].split("#")[0]
    status, unlocked = api(
        Client(), "POST", f"/api/v1/open/{token}/unlock", {"code": code}, ip="203.0.113.50"
    )
    assert status == 200, unlocked
    [opened] = [m for m in smtp.to(sender.email) if "opened" in m["Subject"]]
    found = check_layout(opened, size_of(smtp, opened), personal=None, reply_to=None)
    assert "client@example.org opened your secure message" in found.text
    assert "(Europe/Paris)" in found.html

    # They reply: the sender's email comes from the replier, answering reaches them.
    sealed = seal_for_owner(
        Client(),
        "/api/v1/replies",
        {"authorisation": unlocked["reply"]["authorisation"]},
        "/api/v1/replies/{id}/finalise",
        ip="203.0.113.50",
    )
    assert sealed.status == 200, sealed.data
    assert Message.objects.filter(kind=MessageKind.REPLY).exists()
    [reply] = [m for m in smtp.to(sender.email) if "reply" in m["Subject"].lower()]
    found = check_layout(
        reply,
        size_of(smtp, reply),
        personal="client@example.org via Sealbox",
        reply_to="client@example.org",
    )
    assert "Open the reply" in found.html and "client@example.org replied" in found.text


def test_an_email_code(smtp, organisation_brand, send):
    send(delivery="links", recipients=[client.Recipient("client@example.org", "email_code")])
    grant = Grant.objects.get(email="client@example.org")
    exchange_emails.send_recipient_code(grant, "480213")
    [message] = smtp.to("client@example.org")
    found = check_layout(
        message, size_of(smtp, message), personal=PERSONAL, reply_to="sender@example.com"
    )
    assert message["Subject"] == "Your Sealbox code is 480213"
    assert "480213" in found.text and "480213" in found.html
    assert "10 minutes" in found.text and "10 minutes" in found.html


def test_envelope_invitation_code_use_and_submission(
    smtp,
    organisation_brand,
    make_envelope,  # noqa: F811 - fixture
    sender,
):
    envelope = make_envelope(
        recipients=[
            EnvelopeRecipient("client@example.org", phone="+15145550199", verification="sms_code")
        ]
    )
    [invitation] = smtp.to("client@example.org")
    found = check_layout(
        invitation, size_of(smtp, invitation), personal=PERSONAL, reply_to="sender@example.com"
    )
    assert "a code sent by SMS to •••• 0199" in found.text
    assert "a code sent by SMS to •••• 0199" in found.html
    assert "Your tax documents" in found.html and "Send my documents" in found.html
    assert "(Europe/Paris)" in found.text

    envelope_emails.send_code(envelope.links.get(), "715302")
    code = smtp.to("client@example.org")[-1]
    found = check_layout(
        code, size_of(smtp, code), personal=PERSONAL, reply_to="sender@example.com"
    )
    assert "715302" in found.html

    # An envelope anyone may fill: the owner's notices come from Sealbox.
    open_envelope = make_envelope(
        recipients=[EnvelopeRecipient("carla@example.org")], subject="Payslips"
    )
    smtp.inbox.raw.clear()
    assert submit(open_envelope).status == 200
    owner_mail = smtp.to(sender.email)
    assert {m["Subject"] for m in owner_mail} == {
        'Your secure envelope "Payslips" was opened',
        "New submission: Payslips",
    }
    for message in owner_mail:
        check_layout(message, size_of(smtp, message), personal=None, reply_to=None)
    [submission] = [m for m in owner_mail if "submission" in m["Subject"]]
    assert "Carla Client (carla@example.org) sent you documents" in parts(submission).text


def test_user_invitation_stays_from_sealbox(smtp, organisation_brand, make_user):
    admin = make_user("boss@example.com", role="admin", first_name="Bea", last_name="Boss")
    users.invite_user(None, admin, users.NewUser("new@example.com", first_name="Nina"))
    [invitation] = smtp.to("new@example.com")
    found = check_layout(invitation, size_of(smtp, invitation), personal=None, reply_to=None)
    assert re.search(r"http://\S+/invitation/[A-Za-z0-9_-]+/", found.text)
    assert "Choose my password" in found.html


def test_french_recipient(smtp, organisation_brand, send):
    send(delivery="email", language="fr")
    notification = smtp.to("client@example.org")[0]
    found = parts(notification)
    grant = Grant.objects.get(email="client@example.org")
    months = ["janvier", "février", "mars", "avril", "mai", "juin", "juillet", "août"]
    months += ["septembre", "octobre", "novembre", "décembre"]
    expiry = grant.expires_at.astimezone(__import__("zoneinfo").ZoneInfo("Europe/Paris"))
    when = f"{expiry.day} {months[expiry.month - 1]} {expiry.year} à {expiry:%H:%M} (Europe/Paris)"
    for body in (found.text, found.html):
        assert "Vous avez un message sécurisé" in body
        assert when in body
        assert "Ce courriel est-il authentique" in body


@pytest.mark.parametrize(
    "first_name",
    [
        "Eve\r\nBcc: victim@example.net",
        "Eve\nReply-To: thief@example.net",
        "Eve\u2028Bcc: victim@example.net",
        'Eve" <thief@example.net>, "x',
    ],
)
def test_a_name_cannot_add_headers_or_addresses(smtp, send, sender, first_name):
    sender.first_name = first_name
    sender.save()
    send(delivery="email")
    received = smtp.raw()
    assert received and all(rcpts == ["client@example.org"] for rcpts, _ in received)
    for _rcpts, raw in received:
        message = parse(raw)
        assert message["Bcc"] is None
        assert [a.addr_spec for a in message["From"].addresses] == [FROM_ADDRESS]
        assert [a.addr_spec for a in message["Reply-To"].addresses] == ["sender@example.com"]
        name = from_of(message).display_name
        assert "\n" not in name and "\r" not in name and name.endswith("via Sealbox")


def test_a_non_ascii_name_is_encoded(smtp, send, sender):
    sender.first_name, sender.last_name = "Zoë", "Lefèvre-Ünal"
    sender.save()
    send(delivery="email")
    raw = smtp.raw()[0][1]
    head = raw.split(b"\r\n\r\n")[0].replace(b"\r\n ", b" ").replace(b"\r\n\t", b" ")
    header = next(line for line in head.split(b"\r\n") if line.startswith(b"From:"))
    assert head.isascii() and b"=?utf-8?" in header.lower()
    assert from_of(parse(raw)).display_name == "Zoë Lefèvre-Ünal (Tremblay Avocats) via Sealbox"


def test_a_logo_too_large_for_an_email_is_left_out(smtp, send, sender):
    organisation = sender.organisation
    organisation.logo = PNG + b"\0" * (60 * 1024)
    organisation.logo_type = "image/png"
    organisation.save()
    send(delivery="email")
    rcpts, raw = smtp.raw()[0]
    assert len(raw) <= MAX_EMAIL_BYTES
    found = parts(parse(raw))
    assert found.images == {} and "<img" not in found.html
    assert "Tremblay Avocats" in found.html
    assert lint(found.html).problems == []


def test_the_link_is_sealed_in_the_queue_with_the_html(send, organisation_brand, settings):
    """While queued, neither the text nor the HTML (nor the logo) is readable from the
    database: the row holds only the sealed payload, which opens to both."""
    from sealbox.notify import keystore, sealing
    from sealbox.notify.models import OutboxMessage

    settings.TASKS = {"default": {"BACKEND": "django_tasks_db.DatabaseBackend"}}
    sent = send(delivery="email")
    secret = sent.links["client@example.org"].split("#")[1]
    rows = list(OutboxMessage.objects.filter(recipients=["client@example.org"]))
    payloads = []
    for row in rows:
        sealed = bytes(row.sealed)
        for clear in (secret.encode(), b"<table", b"Quarterly report", b"Sam Sender", PNG[:16]):
            assert clear not in sealed
        payloads.append(sealing.unseal(sealed, keystore.load(row.pk), row.pk))
    [payload] = [p for p in payloads if secret in p["text"]]
    assert secret in payload["html"]
    assert payload["inline"][0]["cid"] == "logo@sealbox"
    for queued in OutboxMessage.objects.filter(status="queued"):
        keystore.destroy(queued.pk)
