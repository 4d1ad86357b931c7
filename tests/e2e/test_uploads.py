"""The browser's upload in Chromium: a module worker encrypts and uploads, the page offers
Cancel (nothing left behind), a dropped network is retried and the upload resumes, and a
file the plan cannot take is refused the moment it is picked, with the limit named."""

import contextlib
import os
import re
import threading

import pytest
from playwright.sync_api import expect

from sealbox.audit.actions import Action
from sealbox.audit.models import Event
from sealbox.exchange.models import Message
from tests.e2e.test_messages import compose, download_all, open_as_recipient

pytestmark = pytest.mark.django_db(transaction=True)

CHUNK = 16 * 1024 * 1024
BLOB_PUT = re.compile(r"/api/v1/messages/[^/]+/blobs/[^/?]+\?offset=")
TO = {"email": "client@example.org", "verification": "Opening code"}


@pytest.fixture
def big_file(tmp_path):
    """Three chunks through the app server: the worker has some in flight."""
    path = tmp_path / "ledger.bin"
    path.write_bytes(os.urandom(2 * CHUNK + 1234567))
    return path


def test_send_from_the_worker_and_open_byte_for_byte(
    member_page, new_context, attachments, big_file, tmp_path
):
    page = member_page
    workers = []
    page.on("worker", lambda worker: workers.append(worker.url))
    files = [*attachments, big_file]
    compose(page, **TO, subject="Ledger", files=files)
    expect(page.get_by_role("progressbar", name="ledger.bin")).to_have_attribute("value", "0")
    page.get_by_role("button", name="Create links").click()
    expect(page.get_by_role("heading", name="Your links are ready")).to_be_visible(timeout=60000)
    assert any(url.endswith("/static/sealbox/js/upload-worker.js") for url in workers), workers
    link = page.get_by_label("client@example.org").input_value()
    code = page.locator(".opening-code").inner_text()
    recipient = open_as_recipient(new_context, link)
    recipient.get_by_label("Opening code").fill(code)
    recipient.get_by_role("button", name="Open").click()
    expect(recipient.get_by_text("Here are the documents.")).to_be_visible(timeout=30000)
    download_all(recipient, files, tmp_path)


def hold_uploads(page):
    """Hold every PUT after the first two (the manifest, the file's first chunk) until
    released: the upload is mid-way."""
    held, seen = [], []
    release = threading.Event()

    def handle(route):
        seen.append(route.request.url)
        if len(seen) <= 2 or release.is_set():
            route.continue_()
        else:
            held.append(route)

    page.route(BLOB_PUT, handle)
    return held, seen, release


def test_cancel_mid_upload_leaves_no_message(member_page, big_file, user):
    page = member_page
    held, seen, _release = hold_uploads(page)
    compose(page, **TO, subject="Cancelled one", files=[big_file])
    page.get_by_role("button", name="Send", exact=True).click()
    expect(page.get_by_role("button", name="Cancel upload")).to_be_visible()
    expect(page.locator("progress").first).not_to_have_attribute("value", "0", timeout=30000)
    assert Message.objects.filter(subject="Cancelled one").exists()  # the draft, mid-way
    page.get_by_role("button", name="Cancel upload").click()
    expect(page.get_by_role("status").filter(has_text="Upload cancelled")).to_have_text(
        "Upload cancelled: nothing was sent."
    )
    expect(page.get_by_role("button", name="Cancel upload")).to_be_hidden()
    assert not Message.objects.filter(subject="Cancelled one").exists()  # the draft is gone
    cancelled = Event.objects.filter(action=Action.UPLOAD_CANCELLED)
    assert cancelled.count() == 1 and cancelled.get().actor_id == str(user.pk)
    for route in held:
        with contextlib.suppress(Exception):  # the worker aborted it already
            route.abort()
    page.get_by_role("link", name="History").click()
    expect(page.get_by_role("heading", name="History")).to_be_visible()
    expect(page.get_by_text("Cancelled one")).to_have_count(0)
    # The form is as it was: the same message can be sent after all.
    page.unroute(BLOB_PUT)


def test_a_network_drop_mid_upload_is_retried_and_resumes(
    member_page, new_context, big_file, tmp_path
):
    page = member_page
    failures = []

    def handle(route):
        failures.append(route.request.url)
        route.abort("internetdisconnected")

    # The second chunk's first two attempts meet a network that is gone.
    page.route(re.compile(r"/blobs/[^/?]+\?offset=16777216$"), handle, times=2)
    compose(page, **TO, subject="Flaky", files=[big_file])
    page.get_by_role("button", name="Create links").click()
    expect(page.locator("#send-status")).to_contain_text(
        re.compile(r"The connection was interrupted\. Trying again in \d+ s…"), timeout=30000
    )
    expect(page.get_by_role("heading", name="Your links are ready")).to_be_visible(timeout=60000)
    assert len(failures) == 2
    link = page.get_by_label("client@example.org").input_value()
    code = page.locator(".opening-code").inner_text()
    recipient = open_as_recipient(new_context, link)
    recipient.get_by_label("Opening code").fill(code)
    recipient.get_by_role("button", name="Open").click()
    expect(recipient.get_by_text("Here are the documents.")).to_be_visible(timeout=30000)
    download_all(recipient, [big_file], tmp_path)


def test_offline_then_back_online_resumes(member_page, new_context, big_file, tmp_path):
    """The whole browser context goes offline mid-upload, then comes back."""
    page = member_page
    held, seen, release = hold_uploads(page)
    compose(page, **TO, subject="Offline", files=[big_file])
    page.get_by_role("button", name="Create links").click()
    expect(page.locator("progress").first).not_to_have_attribute("value", "0", timeout=30000)
    page.context.set_offline(True)
    for route in held:
        route.abort("internetdisconnected")
    held.clear()
    release.set()
    expect(page.locator("#send-status")).to_contain_text("Trying again", timeout=30000)
    page.wait_for_timeout(1500)
    page.context.set_offline(False)
    expect(page.get_by_role("heading", name="Your links are ready")).to_be_visible(timeout=90000)
    link = page.get_by_label("client@example.org").input_value()
    code = page.locator(".opening-code").inner_text()
    recipient = open_as_recipient(new_context, link)
    recipient.get_by_label("Opening code").fill(code)
    recipient.get_by_role("button", name="Open").click()
    expect(recipient.get_by_text("Here are the documents.")).to_be_visible(timeout=30000)
    download_all(recipient, [big_file], tmp_path)


def test_a_file_over_the_plan_limit_is_refused_when_picked(member_page, attachments, user):
    plan = user.organisation.plan
    plan.max_send_bytes = 1_000_000  # 1 MB; scan.pdf is 5.3 MB
    plan.save()
    page = member_page
    compose(page, **TO, subject="Too big", files=attachments)
    expect(page.get_by_role("alert")).to_have_text(
        re.compile(
            r"scan\.pdf \(5\.3 MB\) was not added: your plan allows 1\sMB of attachments per "
            r"message\."
        )
    )
    expect(page.get_by_role("button", name="Remove scan.pdf")).to_have_count(0)
    expect(page.get_by_role("button", name="Remove notes.txt")).to_be_visible()  # it fits
    assert not Message.objects.exists()


def test_refusal_and_cancel_in_french(
    new_context, live_server, user, attachments, big_file, settings
):
    from tests.conftest import PASSWORD

    settings.SEALBOX_BASE_URL = live_server.url
    user.language = "fr"
    user.save()
    plan = user.organisation.plan
    plan.max_send_bytes = 1_000_000
    plan.save()
    page = new_context().new_page()
    page.goto("/login/")
    page.get_by_label("Email").fill(user.email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page).to_have_url(re.compile(r"/account/$"))
    page.goto("/send/")  # in the member's language from here on
    expect(page.locator("html")).to_have_attribute("lang", "fr")
    page.wait_for_load_state()
    page.get_by_label("Pièces jointes").set_input_files([str(attachments[1])])
    expect(page.get_by_role("alert")).to_have_text(
        re.compile(
            r"scan\.pdf \(5\.3 MB\) n’a pas été ajouté : votre offre permet 1\s(MB|Mo) de pièces "
            r"jointes par message\."
        )
    )
    # Cancel, in French.
    plan.max_send_bytes = None
    plan.save()
    page.reload()
    page.wait_for_load_state()
    held, _seen, _release = hold_uploads(page)
    recipient = page.locator(".recipient").first
    recipient.locator("input[name=email]").fill("client@example.org")
    page.locator("#id_subject").fill("Annulé")
    page.get_by_label("Pièces jointes").set_input_files([str(big_file)])
    page.locator("#send-form button[value=links]").click()
    expect(page.locator("progress").first).not_to_have_attribute("value", "0", timeout=30000)
    page.get_by_role("button", name="Annuler l’envoi").click()
    expect(page.locator("#send-notice")).to_have_text("Envoi annulé : rien n’a été envoyé.")
    assert not Message.objects.filter(subject="Annulé").exists()
    for route in held:
        with contextlib.suppress(Exception):
            route.abort()
