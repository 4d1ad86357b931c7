"""History in the browser: every activity with its IP address, delete before expiry."""

import re

import pytest
from playwright.sync_api import expect

from tests.e2e.test_messages import LINK, compose

pytestmark = pytest.mark.django_db(transaction=True)


def send_message(page, mail_folder, *, email, subject, files=()):
    compose(
        page, email=email, verification="Opening code", subject=subject, files=files, max_opens="1"
    )
    page.get_by_role("button", name="Send", exact=True).click()
    expect(page.get_by_role("heading", name="Your message is sent")).to_be_visible(timeout=60000)
    texts = mail_folder.texts_to(email)
    link = LINK.search(texts[0]).group(0)
    code = re.search(r"\b([A-Z2-9]{4}-[A-Z2-9]{4})\b", "\n".join(texts)).group(1)
    return link, code


def test_history_shows_activity_and_deletes(
    member_page,
    new_context,
    mail_folder,
    attachments,
    tmp_path,
):
    page = member_page
    link, code = send_message(
        page, mail_folder, email="client@example.org", subject="Opened one", files=attachments[:1]
    )
    other_link, _ = send_message(
        page, mail_folder, email="other@example.org", subject="Deleted one"
    )

    recipient = new_context(accept_downloads=True).new_page()
    recipient.goto(link)
    recipient.get_by_label("Opening code").fill(code)
    recipient.get_by_role("button", name="Open").click()
    with recipient.expect_download() as download:
        recipient.get_by_role("button", name="Download notes.txt").click()
    download.value.save_as(tmp_path / "notes.txt")

    page.get_by_role("link", name="History").click()
    table = page.get_by_role("region", name="Messages")
    opened_row = table.get_by_role("row").filter(has_text="Opened one")
    expect(opened_row).to_contain_text("Opened")
    expect(opened_row.get_by_role("cell").nth(10)).to_have_text("1")  # Openings
    deleted_row = table.get_by_role("row").filter(has_text="Deleted one")
    expect(deleted_row).to_contain_text("Not opened")

    # The message's timeline shows every event with its IP address.
    opened_row.get_by_role("link").first.click()
    timeline = page.get_by_role("region", name="Timeline")
    expect(timeline).to_contain_text("Opened")
    expect(timeline).to_contain_text("File downloaded")
    expect(timeline).to_contain_text("127.0.0.1")

    # Delete the other message from the History, with a confirmation.
    page.get_by_role("link", name="Back to the history").click()
    deleted_row = (
        page.get_by_role("region", name="Messages")
        .get_by_role("row")
        .filter(has_text="Deleted one")
    )
    deleted_row.get_by_role("link", name=re.compile("^Delete")).click()
    page.get_by_role("button", name="Delete now").click()
    page.get_by_role("link", name="Back to the history").click()
    deleted_row = (
        page.get_by_role("region", name="Messages")
        .get_by_role("row")
        .filter(has_text="Deleted one")
    )
    expect(deleted_row).to_contain_text("Deleted")
    dead = new_context().new_page()
    dead.goto(other_link)
    expect(dead.get_by_text("This message is no longer available.")).to_be_visible()

    # Search and date filters.
    page.get_by_label("Search").fill("Opened one")
    page.get_by_role("button", name="Search").click()
    expect(page.get_by_role("region", name="Messages")).not_to_contain_text("Deleted one")


def test_exports_download_from_the_history(member_page, mail_folder, user, tmp_path):
    import csv
    import io

    from openpyxl import load_workbook

    from sealbox.accounts.models import Role
    from sealbox.audit import exports, sealing
    from tests.audit.test_sealing import validate

    user.role = Role.ADMIN  # the JSON Lines audit export is for administrators
    user.save()
    page = member_page
    send_message(page, mail_folder, email="client@example.org", subject="Exported one")
    page.get_by_role("link", name="History").click()
    exports_nav = page.get_by_role("navigation", name="Export")
    saved = {}
    for label in ("CSV", "Excel", "PDF", "Audit log (JSON Lines)"):
        with page.expect_download() as download:
            exports_nav.get_by_role("link", name=label, exact=True).click()
        target = tmp_path / download.value.suggested_filename
        download.value.save_as(target)
        saved[label] = target.read_bytes()

    rows = list(csv.reader(io.StringIO(saved["CSV"].decode("utf-8-sig"))))
    assert any("Exported one" in row and "client@example.org" in row for row in rows)
    sheet = load_workbook(io.BytesIO(saved["Excel"]), read_only=True).active
    assert any("Exported one" in (row or ()) for row in sheet.iter_rows(values_only=True))
    certificate = sealing.certificate_pem(user.organisation)
    _, status = validate(saved["PDF"], certificate)  # outside Playwright's event loop
    assert status.intact and status.valid and status.trusted
    result = exports.verify_jsonl(saved["Audit log (JSON Lines)"].splitlines())
    assert result.ok, result.message


def test_the_sender_sees_a_locked_link_and_unlocks_it(member_page, new_context, mail_folder):
    from sealbox.exchange.models import Grant

    page = member_page
    link, code = send_message(page, mail_folder, email="client@example.org", subject="Locked one")
    # 99 wrong proofs in a row already (they take hours under the hourly limits).
    Grant.objects.filter(email="client@example.org").update(failed_attempts=99)

    recipient = new_context().new_page()
    recipient.goto(link)
    recipient.get_by_label("Opening code").fill("AAAA-BBBB")
    recipient.get_by_role("button", name="Open").click()
    locked = "Too many wrong attempts: this link is locked. Ask the sender to unlock it."
    expect(recipient.get_by_role("alert")).to_have_text(locked)
    recipient.reload()
    expect(recipient.get_by_role("heading", name="This link is locked")).to_be_visible()

    page.get_by_role("link", name="History").click()
    page.get_by_role("region", name="Messages").get_by_role("row").filter(
        has_text="Locked one"
    ).get_by_role("link").first.click()
    recipients = page.get_by_role("region", name="Recipients")
    expect(recipients).to_contain_text("Locked after too many wrong attempts")
    expect(recipients.get_by_role("cell", name="100", exact=True)).to_be_visible()
    unlock = recipients.get_by_role("button", name="Unlock the link of client@example.org")
    unlock.focus()
    page.keyboard.press("Enter")
    expect(page.get_by_text("The link of client@example.org is unlocked")).to_be_visible()
    expect(recipients).to_contain_text("Available")
    expect(page.get_by_role("region", name="Timeline")).to_contain_text("Link unlocked")

    recipient.reload()
    recipient.get_by_label("Opening code").fill(code)
    recipient.get_by_role("button", name="Open").click()
    expect(recipient.get_by_role("heading", name="Locked one")).to_be_visible()
