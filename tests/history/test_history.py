"""The History page: rows, status, filters, search, date edges, pagination, isolation."""

from datetime import UTC, datetime, timedelta

import pytest
from django.test import Client

from sealbox.accounts.models import Role, User
from sealbox.client import messages as client
from sealbox.exchange.models import Message
from sealbox.history import services
from sealbox.history.services import Filters
from tests.conftest import PASSWORD

pytestmark = pytest.mark.django_db


def browser_for(user) -> Client:
    c = Client()
    assert c.post("/login/", {"email": user.email, "password": PASSWORD}).status_code == 302
    return c


def statuses(user, **filters) -> dict[str, str]:
    return {row.grant.email: row.status for row in services.rows(user, Filters(**filters))}


def test_history_row_per_recipient_with_status(send, sender, recipient_transport, clock):
    sent = send(
        recipients=[
            client.Recipient("opened@example.org"),
            client.Recipient("waiting@example.org"),
        ],
        attachments=[client.Attachment("a.txt", data=b"hi")],
    )
    client.open_message(
        recipient_transport,
        sent.links["opened@example.org"],
        code=sent.opening_codes["opened@example.org"],
    )
    assert statuses(sender) == {"opened@example.org": "opened", "waiting@example.org": "not_opened"}
    rows = list(services.rows(sender, Filters()))
    opened = next(r for r in rows if r.grant.email == "opened@example.org")
    assert opened.grant.opens == 1 and opened.message.file_count == 1
    assert opened.activities >= 4  # created, sent, opened, downloaded
    assert opened.latest_activity == clock()
    clock.advance(days=8)
    assert statuses(sender)["waiting@example.org"] == "expired"


def test_deleted_status_and_page(send, sender, sender_transport):
    sent = send()
    sender_transport.request("DELETE", f"/api/v1/messages/{sent.id}")
    assert statuses(sender) == {"client@example.org": "deleted"}
    page = browser_for(sender).get("/history/").content.decode()
    assert "Deleted" in page
    assert f"/messages/{sent.id}/delete/" not in page  # no delete action on dead rows


def test_history_page_columns_and_delete_action(send, sender):
    sent = send(subject="Lease renewal")
    page = browser_for(sender).get("/history/").content.decode()
    for heading in (
        "Reference",
        "Date",
        "Latest activity",
        "Expires",
        "Status",
        "Subject",
        "Sender",
        "Recipient",
        "Code",
        "Files",
        "Openings",
        "Activities",
        "Kind",
    ):
        assert f'<th scope="col">{heading}</th>' in page
    assert "Lease renewal" in page and "Not opened" in page and "Opening code" in page
    assert Message.objects.get().reference in page
    assert f"/messages/{sent.id}/delete/" in page


def test_search_matches_subject_recipient_and_sender(send, sender):
    send(subject="Tax return 2025", recipients=[client.Recipient("ann@example.org")])
    send(subject="Lease", recipients=[client.Recipient("bob@example.org")])
    assert set(statuses(sender, search="tax")) == {"ann@example.org"}
    assert set(statuses(sender, search="BOB@")) == {"bob@example.org"}
    assert len(statuses(sender, search="Sender")) == 2
    assert statuses(sender, search="nothing like this") == {}


def test_date_range_edges_in_the_users_time_zone(send, sender, clock):
    # The sender lives in Toronto (UTC-5 in November).
    sender.time_zone = "America/Toronto"
    sender.save()
    clock.current = datetime(2026, 11, 10, 5, 0, tzinfo=UTC)  # 00:00 on the 10th in Toronto
    send(subject="at midnight", recipients=[client.Recipient("a@example.org")])
    clock.current = datetime(2026, 11, 11, 4, 59, 59, tzinfo=UTC)  # 23:59:59 on the 10th
    send(subject="last second", recipients=[client.Recipient("b@example.org")])
    clock.current = datetime(2026, 11, 11, 5, 0, tzinfo=UTC)  # 00:00 on the 11th
    send(subject="next day", recipients=[client.Recipient("c@example.org")])
    day = datetime(2026, 11, 10).date()
    assert set(statuses(sender, start=day, end=day)) == {"a@example.org", "b@example.org"}
    assert set(statuses(sender, start=day + timedelta(days=1))) == {"c@example.org"}
    assert set(statuses(sender, end=day - timedelta(days=1))) == set()


def test_keyset_pagination(send, sender, monkeypatch, clock):
    monkeypatch.setattr(services, "PAGE_SIZE", 3)
    for n in range(7):
        send(subject=f"m{n}", recipients=[client.Recipient(f"r{n}@example.org")])
        clock.advance(minutes=1)
    seen, cursor = [], ""
    while True:
        page = services.page(sender, Filters(), after=cursor)
        seen += [row.message.subject for row in page.rows]
        if not page.next_cursor:
            break
        cursor = page.next_cursor
    assert seen == [f"m{n}" for n in reversed(range(7))]
    browser = browser_for(sender)
    first = browser.get("/history/").content.decode()
    assert "Older messages" in first
    assert "<td>m6</td>" in first and "<td>m3</td>" not in first


def test_members_see_only_their_own_and_admins_see_everyone(send, sender, make_user):
    send(subject="from sam")
    colleague = make_user("colleague@example.com")
    admin = make_user("boss@example.com", role=Role.ADMIN)
    assert statuses(colleague) == {}
    assert "from sam" not in browser_for(colleague).get("/history/").content.decode()
    assert statuses(admin) == {"client@example.org": "not_opened"}
    assert statuses(admin, user_id=colleague.pk) == {}
    assert statuses(admin, user_id=sender.pk) == {"client@example.org": "not_opened"}
    page = browser_for(admin).get("/history/").content.decode()
    assert "All users" in page and "from sam" in page


def test_another_organisation_sees_nothing(send, make_user, other_organisation):
    sent = send(subject="confidential")
    outsider = make_user("admin@other.example", org=other_organisation, role=Role.ADMIN)
    browser = browser_for(outsider)
    assert "confidential" not in browser.get("/history/").content.decode()
    assert browser.get(f"/messages/{sent.id}/").status_code == 404
    sender_pk = User.objects.get(email="sender@example.com").pk
    page = browser.get(f"/history/?user={sender_pk}")
    assert page.status_code == 200 and "confidential" not in page.content.decode()
    assert statuses(outsider) == {}
    assert "confidential" not in browser.get("/history/statistics/").content.decode()


def test_bad_filters_say_what_to_correct(send, sender):
    page = browser_for(sender).get("/history/?start=2026-12-10&end=2026-12-01")
    assert "The end date must be on or after the start date." in page.content.decode()
    page = browser_for(sender).get("/history/?start=tomorrow")
    assert "Enter a valid date." in page.content.decode()


def test_empty_history_helps(sender):
    page = browser_for(sender).get("/history/").content.decode()
    assert "Nothing here yet." in page


def test_message_page_timeline_with_ip_and_user_agent(send, sender, recipient_transport):
    sent = send(
        attachments=[
            client.Attachment("a.txt", data=b"hi"),
            client.Attachment("b.txt", data=b"there"),
        ]
    )
    client.open_message(
        recipient_transport,
        sent.links["client@example.org"],
        code=sent.opening_codes["client@example.org"],
    )
    page = browser_for(sender).get(f"/messages/{sent.id}/").content.decode()
    assert "Timeline" in page and "Opened" in page and "File downloaded" in page
    assert "203.0.113.50" in page and "sealbox-tests" in page
    assert "File 1" in page and "File 2" in page


def test_statistics_for_administrators_only(send, sender, make_user, recipient_transport):
    sent = send(
        recipients=[client.Recipient("a@example.org"), client.Recipient("b@example.org")],
        attachments=[client.Attachment("a.txt", data=b"x" * 1000)],
    )
    client.open_message(
        recipient_transport, sent.links["a@example.org"], code=sent.opening_codes["a@example.org"]
    )
    admin = make_user("boss@example.com", role=Role.ADMIN)
    stats = {s.user.email: s for s in services.statistics(admin, Filters())}
    sam = stats["sender@example.com"]
    assert (sam.messages, sam.files, sam.total_bytes, sam.recipients, sam.opened) == (
        1,
        1,
        1000,
        2,
        1,
    )
    assert sam.open_ratio == 0.5
    assert stats["boss@example.com"].messages == 0
    assert browser_for(sender).get("/history/statistics/").status_code == 403
    page = browser_for(admin).get("/history/statistics/").content.decode()
    assert "50 %" in page and "1,000\xa0bytes" not in page


def test_replies_show_who_they_came_from(send, sender):
    """A reply's row names the replying recipient as its sender and the member as recipient;
    replies stay out of the member's statistics of messages sent."""
    from sealbox.accounts.models import Role
    from tests.envelopes.test_replies import reply, unlock

    sent = send(reply_mode="text", recipients=[client.Recipient("client@example.org")])
    assert reply(unlock(sent)["reply"]["authorisation"], body="Thanks!").status == 200
    reply = reply_row(sender)
    assert reply.sender_label == "client@example.org"
    assert reply.recipient_label == "Sam Sender"
    page = browser_for(sender).get(f"/messages/{sent.id}/").content.decode()
    assert "Replies" in page and reply_row(sender).message.reference in page
    sender.role = Role.ADMIN
    sender.save()
    stats = {s.user.email: s for s in services.statistics(sender, Filters())}
    assert stats["sender@example.com"].messages == 1


def reply_row(user):
    return next(r for r in services.rows(user, Filters()) if r.kind == "reply")


def test_a_link_that_was_never_delivered_is_told_apart(send, sender, monkeypatch, clock):
    """The email with a recipient's link failed for good: the row says so (in the
    sender's language), not "Not opened", until the link expires and after."""
    import smtplib

    from sealbox.notify import services as notify

    real = notify.SENDERS["email"]

    def refusing(message, payload):
        if message.recipients == ["gone@example.org"]:
            raise smtplib.SMTPRecipientsRefused({"gone@example.org": (550, b"no such user")})
        real(message, payload)

    monkeypatch.setitem(notify.SENDERS, "email", refusing)
    send(
        delivery="email",
        recipients=[client.Recipient("gone@example.org"), client.Recipient("here@example.org")],
    )
    assert statuses(sender) == {
        "gone@example.org": services.Status.NOT_DELIVERED,
        "here@example.org": services.Status.NOT_OPENED,
    }
    clock.advance(days=8)
    assert statuses(sender)["gone@example.org"] == services.Status.NOT_DELIVERED
    User.objects.filter(pk=sender.pk).update(language="fr")
    page = browser_for(sender).get("/history/").content.decode()
    assert "Courriel non remis" in page
    message = Message.objects.get()
    detail = browser_for(sender).get(f"/messages/{message.public_id}/").content.decode()
    assert "Courriel non remis (gone@example.org)" in detail
    assert "Courriel de notification mis en attente d’envoi (here@example.org)" in detail
