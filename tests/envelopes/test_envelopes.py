"""Secure envelopes: creation and delivery, the submitter's verification and sealed
submission, one submission per addressed link, public links (per-IP and total limits),
file rules enforced by the server, the owner's open, closing and expiry."""

import re
from datetime import timedelta

import pytest
from django.core import mail
from django.test import Client

from sealbox.audit.models import Event
from sealbox.envelopes import services
from sealbox.envelopes.models import Envelope, EnvelopeVerification, FilesMode, Submission
from sealbox.exchange import services as exchange
from sealbox.exchange.models import Grant, Message, MessageKind, MessageState, Verification
from tests.conftest import PASSWORD
from tests.envelopes.conftest import api, emails_to, link_in, submit

pytestmark = pytest.mark.django_db

ENVELOPE_LINK = re.compile(r"http://\S+/e/[A-Za-z0-9_-]+")


def logged_in(user) -> Client:
    client = Client()
    assert client.post("/login/", {"email": user.email, "password": PASSWORD}).status_code == 302
    return client


def owner_opens(user, link: str):
    from sealbox.client import messages as client
    from tests.exchange.conftest import DjangoTransport

    return client.open_message(DjangoTransport(logged_in(user)), link)


def test_addressed_envelope_is_emailed_and_accepts_one_submission(make_envelope, sender):
    envelope = make_envelope(files_mode=FilesMode.MANDATORY)
    invitation = emails_to("client@example.org")
    assert len(invitation) == 1
    assert ENVELOPE_LINK.search(invitation[0].body)
    assert "Your tax documents" in invitation[0].subject
    files = {"passport.pdf": b"%PDF passport" * 100, "payslip.pdf": b"%PDF payslip" * 300}

    sealed = submit(envelope, files=files, body="Both documents, as asked.")
    assert sealed.status == 200, sealed.data
    message = Message.objects.get(kind=MessageKind.ENVELOPE)
    assert message.sender == sender and message.state == MessageState.SENT
    assert message.expires_at == message.sent_at + timedelta(hours=24)  # reply expiry default
    grant = Grant.objects.get(message=message)
    assert grant.verification == Verification.ACCOUNT and grant.user == sender
    assert grant.max_opens == 3
    submission = Submission.objects.get()
    assert (submission.name, submission.email, submission.ip) == (
        "Carla Client",
        "carla@example.org",
        "203.0.113.77",
    )

    # The owner gets the link by email and opens it logged in.
    notice = emails_to(sender.email)[-1]
    assert "Carla Client" in notice.body
    opened = owner_opens(sender, link_in(notice))
    assert opened.body == "Both documents, as asked."
    assert opened.files == files

    # A second submission on the same addressed link is refused.
    again = submit(envelope)
    assert again.status == 410
    assert again.data["error"] == "used"
    assert Submission.objects.filter(submitted_at__isnull=False).count() == 1
    actions = set(Event.objects.values_list("action", flat=True))
    assert {
        "envelope.created",
        "envelope.link_queued",
        "envelope.opened",
        "envelope.submitted",
        "submission.opened",
    } <= actions


def test_submission_events_carry_ip_and_user_agent(make_envelope):
    envelope = make_envelope()
    assert submit(envelope).status == 200
    event = Event.objects.filter(action="envelope.submitted").first()
    assert event.ip == "203.0.113.77" and event.user_agent == "sealbox-tests"
    assert event.actor_type == "submitter" and event.actor_label == "carla@example.org"


def test_two_racing_drafts_only_one_submission_counts(make_envelope):
    envelope = make_envelope()
    first = submit(envelope, finalise=False)
    second = submit(envelope, finalise=False)
    assert first.status == second.status == 201
    finalise = "/api/v1/envelope-submissions/{}/finalise"
    results = []
    for sealed in (first, second):
        grant_token = sealed.link.split("/o/")[1].split("#")[0]
        status, _ = api(
            Client(),
            "POST",
            finalise.format(sealed.data["id"]),
            {"links": [{"grant_token": grant_token, "link": sealed.link}]},
            token=sealed.data["upload_token"],
        )
        results.append(status)
    assert sorted(results) == [200, 410]
    assert Message.objects.filter(kind=MessageKind.ENVELOPE, state=MessageState.SENT).count() == 1


def test_public_link_two_submitters_and_the_per_ip_limit(make_envelope, sender):
    envelope = make_envelope(public=True, per_ip_hourly=2, max_submissions=10)
    assert mail.outbox == []  # Create link: nothing emailed
    assert submit(envelope, name="Ann", email="ann@example.org", ip="198.51.100.1").status == 200
    assert submit(envelope, name="Bob", email="bob@example.org", ip="198.51.100.1").status == 200
    third = submit(envelope, name="Cy", email="cy@example.org", ip="198.51.100.1")
    assert third.status == 429 and third.data["error"] == "throttled"
    # Another address is still welcome.
    assert submit(envelope, name="Di", email="di@example.org", ip="198.51.100.2").status == 200
    names = set(
        Submission.objects.filter(submitted_at__isnull=False).values_list("name", flat=True)
    )
    assert names == {"Ann", "Bob", "Di"}
    subjects = [m.subject for m in emails_to(sender.email)]
    assert subjects.count("New submission: Your tax documents") == 3  # one link each
    assert len(subjects) == 4  # and "Notify me when it is used", once


def test_public_link_total_cap(make_envelope):
    envelope = make_envelope(public=True, max_submissions=1, notify_on_use=False)
    assert submit(envelope, ip="198.51.100.1").status == 200
    assert submit(envelope, ip="198.51.100.2").status == 410


def test_public_link_cannot_be_emailed(sender):
    from sealbox.lib import clock

    spec = services.EnvelopeSpec(
        subject="Docs", expires_at=clock.now() + timedelta(days=1), public=True, delivery="email"
    )
    with pytest.raises(exchange.ExchangeError, match="Create link"):
        services.create_envelope(sender, spec)


@pytest.mark.parametrize(
    ("options", "files", "extensions", "status", "error"),
    [
        ({"allowed_extensions": ["pdf"]}, {"evil.exe": b"MZ" * 10}, None, 415, "file_type"),
        # The declared extension is what the server checks.
        ({"allowed_extensions": ["pdf"]}, {"a.pdf": b"x"}, {"a.pdf": "exe"}, 415, "file_type"),
        ({"max_total_bytes": 1000}, {"big.pdf": b"x" * 1001}, None, 413, "too_large"),
        ({"files_mode": FilesMode.NONE}, {"a.pdf": b"x"}, None, 400, "invalid"),
        ({"files_mode": FilesMode.MANDATORY}, {}, None, 400, "invalid"),
    ],
)
def test_the_server_refuses_files_the_envelope_does_not_accept(
    make_envelope, options, files, extensions, status, error
):
    envelope = make_envelope(**options)
    sealed = submit(envelope, files=files, extensions=extensions)
    assert (sealed.status, sealed.data["error"]) == (status, error)
    assert not Message.objects.filter(kind=MessageKind.ENVELOPE).exists()


def test_allowed_type_and_size_pass(make_envelope):
    envelope = make_envelope(allowed_extensions=["pdf", "jpg"], max_total_bytes=5000)
    assert submit(envelope, files={"Scan.PDF": b"x" * 4000}).status == 200


def test_envelope_size_is_capped_by_the_licence(sender, plans):
    from sealbox.lib import clock

    limit = sender.organisation.plan.max_send_bytes
    if limit is None:
        pytest.skip("this plan has no size limit")
    spec = services.EnvelopeSpec(
        subject="Docs",
        expires_at=clock.now() + timedelta(days=1),
        recipients=[services.EnvelopeRecipient("a@example.org")],
        max_total_bytes=limit + 1,
    )
    with pytest.raises(exchange.ExchangeError, match="plan allows"):
        services.create_envelope(sender, spec)


def test_password_verification(make_envelope):
    envelope = make_envelope(
        recipients=[
            services.EnvelopeRecipient(
                "client@example.org",
                verification=EnvelopeVerification.PASSWORD,
                password="tulip harbour 1987",
            )
        ]
    )
    wrong = submit(envelope, password="nope")
    assert wrong.status == 403 and wrong.data["error"] == "verification_failed"
    assert submit(envelope, password="tulip harbour 1987").status == 200
    assert "tulip" not in envelope.links.get().password_hash


def test_email_code_verification(make_envelope):
    envelope = make_envelope(
        recipients=[
            services.EnvelopeRecipient(
                "client@example.org", verification=EnvelopeVerification.EMAIL_CODE
            )
        ]
    )
    link = envelope.links.get()
    assert submit(envelope, code="000000").status == 403
    status, data = api(Client(), "POST", f"/api/v1/envelope-links/{link.token}/code")
    assert status == 200, data
    code = re.search(r"\b(\d{6})\b", emails_to("client@example.org")[-1].body).group(1)
    assert submit(envelope, code=code).status == 200


def test_retry_after_is_the_resend_cooldown(make_envelope, clock, resend_cooldown):
    envelope = make_envelope(
        recipients=[
            services.EnvelopeRecipient(
                "client@example.org", verification=EnvelopeVerification.EMAIL_CODE
            )
        ]
    )
    path = f"/api/v1/envelope-links/{envelope.links.get().token}/code"
    status, data = api(Client(), "POST", path)
    assert status == 200 and data["retry_after"] == resend_cooldown
    clock.advance(seconds=10)
    status, data = api(Client(), "POST", path)
    assert status == 429 and data["retry_after"] == resend_cooldown - 10
    clock.advance(seconds=resend_cooldown - 10)
    status, data = api(Client(), "POST", path)
    assert status == 200 and data["retry_after"] == resend_cooldown


def test_closing_kills_the_link_at_once(make_envelope, sender):
    envelope = make_envelope()
    client = logged_in(sender)
    response = client.post(f"/envelopes/{envelope.public_id}/close/")
    assert response.status_code == 302
    assert Client().get(f"/e/{envelope.links.get().token}").status_code == 410
    assert submit(envelope).status == 410
    assert Event.objects.filter(action="envelope.closed").exists()


def test_expired_envelope_refuses_and_is_recorded_once(make_envelope, clock):
    envelope = make_envelope(days=1)
    clock.advance(days=1, minutes=1)
    assert submit(envelope).status == 410
    assert services.record_expired() == 1
    assert services.record_expired() == 0
    assert Event.objects.filter(action="envelope.expired").count() == 1


def test_submission_expires_and_is_destroyed_like_a_message(make_envelope, sender, clock):
    envelope = make_envelope(reply_expiry_hours=1)
    sealed = submit(envelope, files={"a.pdf": b"x" * 1000})
    assert sealed.status == 200
    clock.advance(hours=1, minutes=1)
    report = exchange.purge()
    assert report.grants_wiped == 1 and report.blobs_deleted == 1
    grant = Grant.objects.get(message__kind=MessageKind.ENVELOPE)
    assert grant.server_secret is None and grant.wrapped_key is None


def test_opens_are_counted_and_limited(make_envelope, sender):
    from sealbox.client.messages import ClientError

    envelope = make_envelope(reply_max_opens=1)
    submit(envelope)
    link = link_in(emails_to(sender.email)[-1])
    owner_opens(sender, link)
    with pytest.raises(ClientError) as refused:
        owner_opens(sender, link)
    assert refused.value.status == 410


def test_pages_new_list_detail(sender):
    client = logged_in(sender)
    page = client.get("/envelopes/new/")
    assert page.status_code == 200 and b"Largest total size" in page.content
    data = {
        "subject": "Payslips",
        "audience": "recipients",
        "instructions": "Send your last three payslips.",
        "files_mode": "mandatory",
        "allowed_extensions": "pdf, .JPG",
        "max_total_mb": "",
        "expires": "7",
        "reply_expiry_hours": "24",
        "reply_max_opens": "3",
        "notify_on_use": "on",
        "language": "en",
        "per_ip_hourly": "5",
        "max_submissions": "100",
        "form-TOTAL_FORMS": "1",
        "form-INITIAL_FORMS": "0",
        "form-0-email": "client@example.org",
        "form-0-phone": "",
        "form-0-verification": "sms_code",
        "form-0-password": "",
    }
    # An error keeps every input.
    response = client.post("/envelopes/new/", data | {"delivery": "email"})
    assert response.status_code == 200
    assert (
        b"mobile phone" in response.content
        and b"Send your last three payslips." in response.content
    )
    # Add a recipient row (no script needed).
    response = client.post("/envelopes/new/", data | {"add_recipient": "1"})
    assert b"Recipient 2" in response.content
    response = client.post(
        "/envelopes/new/", data | {"form-0-verification": "none", "delivery": "links"}
    )
    assert response.status_code == 302
    envelope = services.envelopes_of(sender).get()
    assert envelope.extensions == ["pdf", "jpg"] and envelope.files_mode == "mandatory"
    detail = client.get(response["Location"])
    assert envelope.links.get().token.encode() in detail.content
    listing = client.get("/envelopes/")
    assert b"Payslips" in listing.content and b"client@example.org" in listing.content
    submit_page = Client().get(f"/e/{envelope.links.get().token}")
    assert submit_page.status_code == 200
    assert b"Send securely" in submit_page.content and b"Your name" in submit_page.content
    assert b"<script>" not in submit_page.content  # no inline script (CSP)


def test_history_shows_submissions_with_kind_envelope(make_envelope, sender):
    from sealbox.history import services as history

    envelope = make_envelope()
    submit(envelope)
    rows = list(history.rows(sender, history.Filters()))
    assert [row.kind for row in rows] == ["envelope"]
    assert rows[0].kind_label == "Envelope"


def test_the_purge_records_expired_envelopes(make_envelope, clock):
    from sealbox.cli import run_purge

    make_envelope(days=1)
    clock.advance(days=2)
    run_purge()
    assert Event.objects.filter(action="envelope.expired").count() == 1


def test_opening_code_verification_by_email(make_envelope, sender):
    """As for messages: the code comes in a second email (organisation setting)."""
    envelope = make_envelope(
        recipients=[
            services.EnvelopeRecipient(
                "client@example.org", verification=EnvelopeVerification.OPENING_CODE
            )
        ]
    )
    invitation, code_email = emails_to("client@example.org")
    opening_code = re.search(r"\b([A-Z2-9]{4}-[A-Z2-9]{4})\b", code_email.body).group(1)
    assert opening_code not in invitation.body
    link = envelope.links.get()
    assert link.opening_code_hash and opening_code not in link.opening_code_hash
    refused = submit(envelope, code="AAAA-BBBB")
    assert refused.status == 403
    assert submit(envelope, code=opening_code.lower().replace("-", " ")).status == 200


def test_opening_code_in_the_same_email_when_the_organisation_says_so(make_envelope, sender):
    sender.organisation.opening_code_in_separate_email = False
    sender.organisation.save()
    make_envelope(
        recipients=[
            services.EnvelopeRecipient(
                "client@example.org", verification=EnvelopeVerification.OPENING_CODE
            )
        ]
    )
    [invitation] = emails_to("client@example.org")
    assert re.search(r"Opening code: [A-Z2-9]{4}-[A-Z2-9]{4}", invitation.body)


def test_opening_code_shown_once_with_create_link(sender):
    client = logged_in(sender)
    response = client.post(
        "/envelopes/new/",
        {
            "subject": "Documents",
            "audience": "recipients",
            "instructions": "",
            "files_mode": "optional",
            "allowed_extensions": "",
            "max_total_mb": "",
            "expires": "7",
            "reply_expiry_hours": "24",
            "reply_max_opens": "3",
            "notify_on_use": "on",
            "language": "en",
            "per_ip_hourly": "5",
            "max_submissions": "100",
            "delivery": "links",
            "form-TOTAL_FORMS": "1",
            "form-INITIAL_FORMS": "0",
            "form-0-email": "client@example.org",
            "form-0-phone": "",
            "form-0-verification": "opening_code",
            "form-0-password": "",
        },
        follow=True,
    )
    page = response.content.decode()
    assert re.search(r"Opening code for client@example.org: [A-Z2-9]{4}-[A-Z2-9]{4}", page)
    assert not emails_to("client@example.org")
    again = client.get(response.redirect_chain[-1][0]).content.decode()
    assert "Opening code for" not in again


def test_a_draft_counted_when_created_is_not_counted_again_when_sent(make_envelope, clock):
    """The hourly limit per address counts submissions when they start (drafts), so one
    that started within the limit is not refused at the end of its upload."""
    envelope = make_envelope(public=True, per_ip_hourly=2, notify_on_use=False)
    first, second = submit(envelope, finalise=False), submit(envelope, finalise=False)
    clock.advance(minutes=50)
    for sealed in (first, second):
        assert finalise_sealed(sealed) == 200
    clock.advance(minutes=11)  # the drafts started 61 minutes ago; they were sent 11 ago
    third = submit(envelope, finalise=False)
    assert third.status == 201
    assert finalise_sealed(third) == 200


def finalise_sealed(sealed) -> int:
    grant_token = sealed.link.split("/o/")[1].split("#")[0]
    status, _ = api(
        Client(),
        "POST",
        f"/api/v1/envelope-submissions/{sealed.data['id']}/finalise",
        {"links": [{"grant_token": grant_token, "link": sealed.link}]},
        token=sealed.data["upload_token"],
    )
    return status


@pytest.mark.parametrize(("count", "refused"), [(50, False), (51, True)])
def test_the_service_takes_at_most_50_recipients(sender, count, refused):
    from sealbox.lib import clock

    spec = services.EnvelopeSpec(
        subject="To everyone",
        expires_at=clock.now() + timedelta(days=7),
        recipients=[services.EnvelopeRecipient(f"c{i}@example.org") for i in range(count)],
        delivery="links",
    )
    if not refused:
        assert services.create_envelope(sender, spec).links.count() == 50
        return
    with pytest.raises(exchange.ExchangeError) as error:
        services.create_envelope(sender, spec)
    assert error.value.field == "recipients" and "at most 50" in error.value.message
    assert not Envelope.objects.exists()
