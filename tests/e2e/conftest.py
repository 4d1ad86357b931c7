"""Browser tests: real Chromium (Debian's package) driven by Playwright against live_server."""

import os
import re
import shutil
from email import message_from_bytes
from email.policy import default as default_policy
from pathlib import Path

import pytest
from playwright.sync_api import expect

from tests.conftest import PASSWORD

# Playwright's sync API runs an event loop in this thread; Django's ORM calls made by
# the test itself (creating users, reading the outbox) are still plain synchronous code.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

CHROMIUM = os.environ.get("SEALBOX_TEST_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def pytest_collection_modifyitems(items):
    for item in items:
        if "tests/e2e/" in str(item.fspath):
            item.add_marker(pytest.mark.e2e)


@pytest.fixture(scope="session")
def playwright_instance():
    from playwright.sync_api import sync_playwright

    if not shutil.which(CHROMIUM) and not os.path.exists(CHROMIUM):
        pytest.fail(f"Chromium not found at {CHROMIUM}: apt-get install -y chromium")
    with sync_playwright() as playwright:
        yield playwright


@pytest.fixture(scope="session")
def browser(playwright_instance):
    browser = playwright_instance.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
    yield browser
    browser.close()


@pytest.fixture
def new_context(browser, live_server):
    """Open fresh, isolated browser sessions (one per person in a journey)."""
    contexts = []

    def make(**options):
        options.setdefault("base_url", live_server.url)
        options.setdefault("locale", "en-GB")
        context = browser.new_context(**options)
        context.set_default_timeout(15000)
        contexts.append(context)
        return context

    yield make
    for context in contexts:
        context.close()


@pytest.fixture
def page(new_context):
    return new_context().new_page()


# --- Shared journey fixtures: email and SMS folders, a logged-in member, files ----------


class MailFolder:
    """Emails written by Django's file backend (SEALBOX_EMAIL_URL=filemail://…)."""

    def __init__(self, path: Path):
        self.path = path

    def messages(self) -> list:
        found = []
        for file in sorted(self.path.glob("*.log"), key=lambda p: p.stat().st_mtime):
            for raw in file.read_bytes().split(b"-" * 79 + b"\n"):
                if raw.strip():
                    found.append(message_from_bytes(raw, policy=default_policy))
        return found

    def texts_to(self, address: str) -> list[str]:
        return [m.get_body(("plain",)).get_content() for m in self.messages() if address in m["To"]]


@pytest.fixture
def mail_folder(tmp_path, settings) -> MailFolder:
    folder = tmp_path / "mail"
    folder.mkdir()
    settings.EMAIL_BACKEND = "django.core.mail.backends.filebased.EmailBackend"
    settings.EMAIL_FILE_PATH = str(folder)
    return MailFolder(folder)


@pytest.fixture
def sms_folder(tmp_path, settings, monkeypatch):
    from sealbox.notify import sms_tasks
    from tests.twofactor.conftest import SMSOutbox

    path = tmp_path / "sms.jsonl"
    settings.SEALBOX_SMS_URL = f"file://{path}"
    monkeypatch.setattr(sms_tasks, "RETRY_DELAYS_SECONDS", (0.0, 0.0))
    return SMSOutbox(path)


@pytest.fixture
def member_page(new_context, live_server, user, settings):
    settings.SEALBOX_BASE_URL = live_server.url
    page = new_context(accept_downloads=True).new_page()
    page.goto("/login/")
    page.get_by_label("Email").fill(user.email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page).to_have_url(re.compile(r"/account/$"))
    return page


@pytest.fixture
def attachments(tmp_path):
    small = tmp_path / "notes.txt"
    small.write_bytes(b"Meeting notes\n" * 100)
    large = tmp_path / "scan.pdf"
    large.write_bytes(os.urandom(5 * 1024 * 1024 + 12345))  # several MB, many records
    return [small, large]
