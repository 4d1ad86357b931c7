"""Secure replies in Chromium: the recipient replies with a file from the open page; the
original sender opens the reply logged in and gets the same bytes."""

import pytest
from playwright.sync_api import expect

from tests.e2e.test_messages import LINK, OPENING_CODE, compose, download_all, open_as_recipient

pytestmark = pytest.mark.django_db(transaction=True)


def test_reply_with_a_file_opened_by_the_original_sender(
    member_page, new_context, mail_folder, attachments, tmp_path, user
):
    page = member_page
    compose(page, email="client@example.org", verification="Opening code", subject="Contract")
    page.get_by_label("Replies").select_option(label="Allowed with files")
    page.get_by_role("button", name="Send", exact=True).click()
    expect(page.get_by_role("heading", name="Your message is sent")).to_be_visible(timeout=60000)
    text = "\n".join(mail_folder.texts_to("client@example.org"))
    link = LINK.search(text).group(0)
    code = OPENING_CODE.search(text).group(1)

    recipient = open_as_recipient(new_context, link)
    recipient.get_by_label("Opening code").fill(code)
    recipient.get_by_role("button", name="Open").click()
    expect(recipient.get_by_text("Here are the documents.")).to_be_visible(timeout=30000)
    reply = recipient.get_by_role("form", name="Reply")
    reply.get_by_label("Your reply").fill("Signed, see attached.")
    reply.get_by_label("Files").set_input_files([str(attachments[0])])
    reply.get_by_role("button", name="Send reply").click()
    expect(recipient.get_by_role("heading", name="Your reply is sent")).to_be_visible(timeout=30000)

    replies = [t for t in mail_folder.texts_to(user.email) if "replied" in t]
    assert len(replies) == 1
    reply_link = LINK.search(replies[0]).group(0)
    page.goto(reply_link)
    expect(page.get_by_text("client@example.org replied to your secure message")).to_be_visible()
    page.get_by_role("button", name="Open").click()
    expect(page.get_by_text("Signed, see attached.")).to_be_visible(timeout=30000)
    download_all(page, attachments[:1], tmp_path)
    # The reply belongs to the original message's thread.
    page.get_by_role("link", name="See the original message and its thread").click()
    expect(page.get_by_role("cell", name="Reply sent")).to_be_visible()


def test_no_reply_form_when_replies_are_not_allowed(member_page, new_context, mail_folder):
    page = member_page
    compose(page, email="client@example.org", verification="Opening code", subject="No reply")
    page.get_by_role("button", name="Send", exact=True).click()
    expect(page.get_by_role("heading", name="Your message is sent")).to_be_visible(timeout=60000)
    text = "\n".join(mail_folder.texts_to("client@example.org"))
    recipient = open_as_recipient(new_context, LINK.search(text).group(0))
    recipient.get_by_label("Opening code").fill(OPENING_CODE.search(text).group(1))
    recipient.get_by_role("button", name="Open").click()
    expect(recipient.get_by_text("Here are the documents.")).to_be_visible(timeout=30000)
    expect(recipient.get_by_role("button", name="Send reply")).to_be_hidden()
