"""A member sends secure messages from the portal; recipients open them in other browsers."""

import hashlib
import re
from pathlib import Path

import pytest
from playwright.sync_api import expect

from sealbox.exchange.models import Grant
from tests.e2e.conftest import MailFolder  # noqa: F401 - other journeys import it from here

pytestmark = pytest.mark.django_db(transaction=True)

LINK = re.compile(r"http://\S+/o/[A-Za-z0-9_-]+#[A-Za-z0-9_-]+")
OPENING_CODE = re.compile(r"\b([A-Z2-9]{4}-[A-Z2-9]{4})\b")


def sha256(path_or_bytes) -> str:
    data = path_or_bytes.read_bytes() if isinstance(path_or_bytes, Path) else path_or_bytes
    return hashlib.sha256(data).hexdigest()


def compose(
    page,
    *,
    email,
    verification,
    subject,
    body="Here are the documents.",
    phone="",
    password="",
    files=(),
    max_opens="1",
):
    page.get_by_role("link", name="Send a secure email").click()
    page.wait_for_load_state()  # the page's script is running before files are picked
    recipient = page.get_by_role("group", name="Recipient 1")
    recipient.get_by_label("Email").fill(email)
    if phone:
        recipient.get_by_label("Mobile phone").fill(phone)
    recipient.get_by_label("Verification").select_option(label=verification)
    if password:
        recipient.get_by_label("Password for this recipient").fill(password)
    page.get_by_label("Subject", exact=True).fill(subject)
    page.get_by_label("Message", exact=True).fill(body)
    if files:
        page.get_by_label("Attachments").set_input_files([str(f) for f in files])
    page.get_by_label("Maximum opens").fill(max_opens)


def open_as_recipient(new_context, link: str):
    page = new_context(accept_downloads=True).new_page()
    page.goto(link)
    expect(page.get_by_text("sent you a secure message")).to_be_visible()
    return page


def download_all(page, files, tmp_path):
    for original in files:
        with page.expect_download() as info:
            page.get_by_role("button", name=f"Download {original.name}").click()
        target = tmp_path / f"received-{original.name}"
        info.value.save_as(target)
        assert sha256(target) == sha256(original)


def test_sms_verified_message_with_two_attachments(
    member_page, new_context, mail_folder, sms_folder, attachments, tmp_path
):
    page = member_page
    compose(
        page,
        email="client@example.org",
        verification="SMS code",
        phone="514 555 0199",
        subject="Signed lease",
        files=attachments,
    )
    expect(page.get_by_role("button", name="Remove scan.pdf")).to_be_visible()
    page.get_by_role("button", name="Send", exact=True).click()
    expect(page.get_by_role("heading", name="Your message is sent")).to_be_visible(timeout=60000)

    texts = mail_folder.texts_to("client@example.org")
    assert len(texts) == 1 and "Signed lease" in texts[0]
    link = LINK.search(texts[0]).group(0)

    recipient = open_as_recipient(new_context, link)
    recipient.get_by_role("button", name="Send me a code").click()
    expect(recipient.get_by_text("A code was sent to")).to_be_visible()
    assert sms_folder.last()["to"] == "+15145550199"
    recipient.get_by_label("Code").fill(sms_folder.last_code())
    recipient.get_by_role("button", name="Open").click()
    expect(recipient.get_by_text("Here are the documents.")).to_be_visible(timeout=30000)
    download_all(recipient, attachments, tmp_path)

    # Maximum opens is 1: a second open (another browser) is refused.
    again = new_context().new_page()
    again.goto(link)
    expect(
        again.get_by_text("This message is no longer available. Ask the sender to send it again.")
    ).to_be_visible()


def test_password_and_delete(member_page, new_context, mail_folder, attachments, tmp_path):
    page = member_page
    compose(
        page,
        email="client@example.org",
        verification="Password",
        password="tulip harbour 1987",
        subject="Payslips",
        files=attachments[:1],
    )
    page.get_by_role("button", name="Send", exact=True).click()
    expect(page.get_by_role("heading", name="Your message is sent")).to_be_visible(timeout=60000)
    link = LINK.search(mail_folder.texts_to("client@example.org")[0]).group(0)

    recipient = open_as_recipient(new_context, link)
    recipient.get_by_label("Password").fill("wrong password")
    recipient.get_by_role("button", name="Open").click()
    expect(recipient.get_by_role("alert")).to_contain_text("This password is not correct.")
    recipient.get_by_label("Password").fill("tulip harbour 1987")
    recipient.get_by_role("button", name="Open").click()
    expect(recipient.get_by_text("Here are the documents.")).to_be_visible(timeout=30000)
    download_all(recipient, attachments[:1], tmp_path)

    # The sender deletes another message: its link dies at once.
    compose(
        page,
        email="other@example.org",
        verification="Opening code",
        subject="To delete",
        max_opens="3",
    )
    page.get_by_role("button", name="Send", exact=True).click()
    expect(page.get_by_role("heading", name="Your message is sent")).to_be_visible()
    other_link = LINK.search(mail_folder.texts_to("other@example.org")[0]).group(0)
    page.get_by_role("link", name="See the message and its activity").click()
    page.get_by_role("link", name="Delete").click()
    page.get_by_role("button", name="Delete now").click()
    expect(page.get_by_role("status")).to_contain_text("its links no longer work")
    dead = new_context().new_page()
    dead.goto(other_link)
    expect(dead.get_by_text("This message is no longer available.")).to_be_visible()


def test_opening_code_with_created_links(member_page, new_context, mail_folder):
    page = member_page
    compose(
        page,
        email="client@example.org",
        verification="Opening code",
        subject="Tax return",
        max_opens="2",
    )
    page.get_by_role("button", name="Create links").click()
    expect(page.get_by_role("heading", name="Your links are ready")).to_be_visible()
    link = page.get_by_label("client@example.org").input_value()
    code = page.locator(".opening-code").inner_text()
    assert OPENING_CODE.fullmatch(code)
    assert mail_folder.texts_to("client@example.org") == []  # nothing was emailed
    # The server never saw the link secret.
    secret = link.split("#", 1)[1]
    assert not Grant.objects.filter(token__contains=secret).exists()

    recipient = open_as_recipient(new_context, link)
    recipient.get_by_label("Opening code").fill(code)
    recipient.get_by_role("button", name="Open").click()
    expect(recipient.get_by_text("Here are the documents.")).to_be_visible(timeout=30000)
    expect(recipient.get_by_text("Opens left after this one: 1")).to_be_visible()


def test_link_without_its_secret(member_page, new_context, mail_folder):
    page = member_page
    compose(page, email="client@example.org", verification="Opening code", subject="Partial")
    page.get_by_role("button", name="Send", exact=True).click()
    expect(page.get_by_role("heading", name="Your message is sent")).to_be_visible()
    link = LINK.search(mail_folder.texts_to("client@example.org")[0]).group(0)
    recipient = new_context().new_page()
    recipient.goto(link.split("#")[0])
    expect(recipient.get_by_text("This link is incomplete")).to_be_visible()


def test_send_form_keeps_everything_after_an_error(member_page, attachments):
    page = member_page
    compose(
        page,
        email="client@example.org",
        verification="SMS code",
        subject="Missing phone",
        body="Keep me",
        files=attachments[:1],
    )
    page.get_by_role("button", name="Send", exact=True).click()
    expect(page.get_by_role("alert")).to_contain_text("needs the recipient’s mobile phone")
    expect(page.get_by_label("Subject", exact=True)).to_have_value("Missing phone")
    expect(page.get_by_label("Message", exact=True)).to_have_value("Keep me")
    expect(page.get_by_role("button", name="Remove notes.txt")).to_be_visible()


def test_a_message_too_long_for_its_manifest_is_refused_before_upload(member_page):
    from sealbox.exchange.models import Message

    page = member_page
    body = "A file pasted as text. " * 12000  # 276 kB: over the manifest's 256 kB
    compose(page, email="client@example.org", verification="Opening code", subject="Big", body=body)
    page.get_by_role("button", name="Send", exact=True).click()
    expect(page.get_by_role("alert")).to_contain_text(
        re.compile(r"The message is too long: .* at most 256\skB once encrypted")
    )
    assert not Message.objects.exists()  # nothing was created or uploaded
    page.get_by_label("Message", exact=True).fill("Just the words.")
    page.get_by_role("button", name="Create links").click()
    expect(page.get_by_role("heading", name="Your links are ready")).to_be_visible()


def test_keep_a_copy_with_created_links(member_page, new_context, user):
    page = member_page
    compose(page, email="client@example.org", verification="Opening code", subject="Copy me")
    page.get_by_label("Keep a copy for me").check()
    page.get_by_role("button", name="Create links").click()
    expect(page.get_by_role("heading", name="Your links are ready")).to_be_visible()
    copy_link = page.get_by_label("Your copy (opens only while you are logged in)").input_value()
    # The sender, logged in, opens their copy in the same browser.
    page.goto(copy_link)
    expect(page.get_by_text("This is your own copy of the message.")).to_be_visible()
    page.get_by_role("button", name="Open").click()
    expect(page.get_by_text("Here are the documents.")).to_be_visible(timeout=30000)
    # Someone else with the same link is told to log in as the sender.
    other = new_context().new_page()
    other.goto(copy_link)
    expect(other.get_by_text("This is the sender's own copy.")).to_be_visible()


def test_large_files_stream_to_disk_through_the_service_worker(
    member_page, new_context, attachments, tmp_path, settings
):
    """Above the in-memory limit the file is decrypted while it streams to disk."""
    settings.SEALBOX_IN_MEMORY_DOWNLOAD_LIMIT = 1024 * 1024  # the 5 MB file streams
    page = member_page
    compose(
        page,
        email="client@example.org",
        verification="Opening code",
        subject="Big scan",
        files=attachments[1:],
    )
    page.get_by_role("button", name="Create links").click()
    expect(page.get_by_role("heading", name="Your links are ready")).to_be_visible(timeout=60000)
    link = page.get_by_label("client@example.org").input_value()
    code = page.locator(".opening-code").inner_text()
    recipient = open_as_recipient(new_context, link)
    recipient.get_by_label("Opening code").fill(code)
    recipient.get_by_role("button", name="Open").click()
    expect(recipient.get_by_text("Here are the documents.")).to_be_visible(timeout=30000)
    download_all(recipient, attachments[1:], tmp_path)
    workers = recipient.evaluate(
        "navigator.serviceWorker.getRegistrations().then(r => r.map(x => x.scope))"
    )
    assert any(scope.endswith("/static/sealbox/js/download/") for scope in workers)


def test_recipient_page_in_the_chosen_language_and_switch_keeps_the_link(member_page, new_context):
    page = member_page
    compose(page, email="client@example.org", verification="Opening code", subject="Bail")
    page.get_by_label("Recipient language").select_option("fr")
    page.get_by_role("button", name="Create links").click()
    expect(page.get_by_role("heading", name="Your links are ready")).to_be_visible()
    link = page.get_by_label("client@example.org").input_value()
    code = page.locator(".opening-code").inner_text()
    recipient = new_context().new_page()
    recipient.goto(link)
    expect(recipient.get_by_role("heading", name="Message sécurisé")).to_be_visible()
    recipient.get_by_label("Code d’ouverture").fill("AAAA-BBBB")
    recipient.get_by_role("button", name="Ouvrir").click()
    expect(recipient.get_by_role("alert")).to_contain_text("Ce code d’ouverture n’est pas correct.")
    recipient.get_by_role("button", name="English").click()
    expect(recipient.get_by_role("heading", name="Secure message")).to_be_visible()
    assert recipient.url.endswith(link.split("#", 1)[1])  # the fragment is still there
    recipient.get_by_label("Opening code").fill(code)
    recipient.get_by_role("button", name="Open").click()
    expect(recipient.get_by_text("Here are the documents.")).to_be_visible(timeout=30000)
