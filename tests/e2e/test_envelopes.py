"""Secure envelopes in Chromium: a member creates an envelope, people without an account
fill it in other browsers, and the owner opens what was sent, logged in."""

import re

import pytest
from playwright.sync_api import expect

from sealbox.exchange.models import Message, MessageKind
from tests.e2e.test_messages import LINK, download_all

pytestmark = pytest.mark.django_db(transaction=True)

ENVELOPE_LINK = re.compile(r"http://\S+/e/[A-Za-z0-9_-]+")


def new_envelope(page, *, subject, email="", public=False, files="Optional", **options):
    page.get_by_role("link", name="Secure envelopes").click()
    page.get_by_role("link", name="New envelope").click()
    page.get_by_label("Subject", exact=True).fill(subject)
    if public:
        page.get_by_label("Anyone with the link").check()
    else:
        page.get_by_role("group", name="Recipient 1").get_by_label("Email").fill(email)
    page.get_by_label("Instructions").fill("Please send the documents we discussed.")
    page.get_by_label("Files", exact=True).select_option(label=files)
    for label, value in options.items():
        page.get_by_label(label).fill(value)


def fill_envelope(page, *, name, email="", message="", files=(), files_label="Files"):
    expect(page.get_by_text("asks you to send documents securely")).to_be_visible()
    page.get_by_label("Your name").fill(name)
    if email:
        page.get_by_label("Your email").fill(email)
    if message:
        page.get_by_label("Message").fill(message)
    if files:
        page.get_by_label(files_label).set_input_files([str(f) for f in files])
    page.get_by_role("button", name="Send securely").click()


def owner_links(mail_folder, address) -> list[str]:
    return [LINK.search(t).group(0) for t in mail_folder.texts_to(address) if LINK.search(t)]


def test_addressed_envelope_with_mandatory_files(
    member_page, new_context, mail_folder, attachments, tmp_path, user
):
    page = member_page
    new_envelope(page, subject="Your tax documents", email="client@example.org", files="Mandatory")
    page.get_by_role("button", name="Send", exact=True).click()
    expect(page.get_by_role("status")).to_contain_text("Your envelope is sent")
    texts = mail_folder.texts_to("client@example.org")
    assert len(texts) == 1 and "Your tax documents" in texts[0]
    link = ENVELOPE_LINK.search(texts[0]).group(0)

    submitter = new_context().new_page()
    submitter.goto(link)
    expect(submitter.get_by_text("Please send the documents we discussed.")).to_be_visible()
    expect(submitter.get_by_label("Your email")).to_have_value("client@example.org")
    # Files are mandatory: the page says so before anything is uploaded.
    fill_envelope(submitter, name="Carla Client", message="Both documents.")
    expect(submitter.get_by_role("alert")).to_contain_text("Add at least one file.")
    fill_envelope(submitter, name="Carla Client", files=attachments, files_label="Files (required)")
    expect(submitter.get_by_role("heading", name="Sent securely")).to_be_visible(timeout=60000)

    # The owner opens it from the email, logged in, and gets the very same files.
    [owner_link] = owner_links(mail_folder, user.email)
    page.goto(owner_link)
    expect(page.get_by_text("Carla Client (client@example.org) sent you documents")).to_be_visible()
    page.get_by_role("button", name="Open").click()
    expect(page.get_by_text("Both documents.")).to_be_visible(timeout=30000)
    download_all(page, attachments, tmp_path)

    # A second submission on the same envelope is refused.
    again = new_context().new_page()
    again.goto(link)
    expect(again.get_by_text("This envelope was already used.")).to_be_visible()

    # Someone else with the owner's link (logged out) cannot open it.
    stranger = new_context().new_page()
    stranger.goto(owner_link)
    expect(stranger.get_by_text("Log in to open it")).to_be_visible()


def test_public_link_two_submitters_and_the_per_ip_limit(
    member_page, new_context, mail_folder, user
):
    page = member_page
    new_envelope(
        page,
        subject="Send us your documents",
        public=True,
        **{"Submissions per hour from one address (public link)": "2"},
    )
    page.get_by_role("button", name="Create link").click()
    expect(page.get_by_role("status")).to_contain_text("Your envelope link is ready")
    link = page.get_by_role("textbox", name="Public link").input_value()

    for name in ("Ann Applicant", "Bob Builder"):
        submitter = new_context().new_page()
        submitter.goto(link)
        fill_envelope(
            submitter,
            name=name,
            email=f"{name.split()[0].lower()}@example.org",
            message=f"Hello from {name}",
        )
        expect(submitter.get_by_role("heading", name="Sent securely")).to_be_visible(timeout=30000)
    # A third submission from the same address within the hour is refused.
    third = new_context().new_page()
    third.goto(link)
    fill_envelope(third, name="Cy Third", email="cy@example.org", message="Me too")
    expect(third.get_by_role("alert")).to_contain_text("Too many attempts.")

    # Both arrived: the owner opens each.
    links = owner_links(mail_folder, user.email)
    assert len(links) == 2
    seen = set()
    for owner_link in links:
        page.goto(owner_link)
        page.get_by_role("button", name="Open").click()
        body = page.locator("#message-body")
        expect(body).to_contain_text("Hello from", timeout=30000)
        seen.add(body.inner_text())
    assert seen == {"Hello from Ann Applicant", "Hello from Bob Builder"}
    page.goto("/envelopes/")
    expect(page.get_by_role("cell", name="2", exact=True)).to_be_visible()


def test_disallowed_type_and_size_are_refused_before_upload(member_page, new_context, attachments):
    page = member_page
    new_envelope(
        page,
        subject="Scans only",
        email="client@example.org",
        **{"Allowed file types": "pdf", "Largest total size (MB)": "1"},
    )
    page.get_by_role("button", name="Create link").click()
    link = page.get_by_label("client@example.org").input_value()

    submitter = new_context().new_page()
    submitter.goto(link)
    notes, scan = attachments  # notes.txt (small), scan.pdf (5 MB)
    # Each file is refused the moment it is picked, with the envelope's rule named.
    expect(submitter.get_by_text("asks you to send documents securely")).to_be_visible()
    submitter.get_by_label("Your name").fill("Carla")
    submitter.get_by_label("Files").set_input_files([str(notes)])
    expect(submitter.get_by_role("alert")).to_contain_text(
        "notes.txt was not added: this envelope accepts only pdf."
    )
    expect(submitter.get_by_role("button", name="Remove notes.txt")).to_have_count(0)
    submitter.get_by_label("Files").set_input_files([str(scan)])
    expect(submitter.get_by_role("alert")).to_contain_text(
        re.compile(
            r"scan\.pdf \(5\.3 MB\) was not added: this envelope accepts at most 1\sMB in total\."
        )
    )
    expect(submitter.get_by_role("button", name="Remove scan.pdf")).to_have_count(0)
    expect(submitter.get_by_label("Your name")).to_have_value("Carla")  # input kept
    assert not Message.objects.filter(kind=MessageKind.ENVELOPE).exists()  # nothing uploaded


def test_a_message_too_long_for_its_manifest_is_refused_before_upload(member_page, new_context):
    page = member_page
    new_envelope(page, subject="Words only", email="client@example.org", files="Not allowed")
    page.get_by_role("button", name="Create link").click()
    link = page.get_by_label("client@example.org").input_value()
    submitter = new_context().new_page()
    submitter.goto(link)
    fill_envelope(submitter, name="Carla", message="A file pasted as text. " * 12000)
    expect(submitter.get_by_role("alert")).to_contain_text(
        re.compile(r"The message is too long: .* at most 256\skB once encrypted")
    )
    assert not Message.objects.filter(kind=MessageKind.ENVELOPE).exists()  # nothing uploaded


def test_closed_envelope_link_dies_at_once(member_page, new_context):
    page = member_page
    new_envelope(page, subject="Close me", email="client@example.org")
    page.get_by_role("button", name="Create link").click()
    link = page.get_by_label("client@example.org").input_value()
    page.get_by_role("link", name="Close the envelope").click()
    page.get_by_role("button", name="Close now").click()
    expect(page.get_by_role("status")).to_contain_text("its links no longer work")
    submitter = new_context().new_page()
    submitter.goto(link)
    expect(submitter.get_by_text("This envelope is no longer available.")).to_be_visible()
