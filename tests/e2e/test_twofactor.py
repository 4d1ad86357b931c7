"""Two-factor authentication in real Chromium: the seed's journey word for word, then
logging in with an SMS code, an authenticator app, a recovery code and a passkey."""

from __future__ import annotations

import os
import re
import time

import pytest
from django_otp.oath import TOTP
from django_otp.plugins.otp_totp.models import TOTPDevice
from playwright.sync_api import expect

from sealbox.notify import sms_tasks
from tests.conftest import PASSWORD
from tests.twofactor.conftest import SMSOutbox

# Playwright's sync API runs an event loop in this thread; the test's own ORM calls are
# still plain synchronous code.
os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def open_page(browser, live_server):
    """Fresh browser contexts on the suite's shared Chromium (tests/e2e/conftest.py: one
    Playwright per process, as its sync API allows)."""
    contexts = []

    def make():
        context = browser.new_context(base_url=live_server.url, locale="en-GB")
        context.set_default_timeout(15000)
        contexts.append(context)
        return context.new_page()

    yield make
    for context in contexts:
        context.close()


@pytest.fixture
def outbox(tmp_path, settings, monkeypatch) -> SMSOutbox:
    path = tmp_path / "sms.jsonl"
    settings.SEALBOX_SMS_URL = f"file://{path}"
    monkeypatch.setattr(sms_tasks, "RETRY_DELAYS_SECONDS", (0.0, 0.0))
    return SMSOutbox(path)


def log_in(page, user) -> None:
    page.goto("/login/")
    page.get_by_label("Email").fill(user.email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()


def log_out(page) -> None:
    page.get_by_role("button", name="Log out", exact=True).click()
    expect(page).to_have_url(re.compile(r"/login/$"))


def current_totp(device: TOTPDevice, offset_steps: int = 0) -> str:
    totp = TOTP(device.bin_key, device.step, device.t0, device.digits, 0)
    totp.time = time.time() + offset_steps * device.step
    return f"{totp.token():06d}"


def test_the_seed_journey_then_logging_in_with_the_sms_code(open_page, live_server, user, outbox):
    page = open_page()
    # 1. Log in to the online portal.
    log_in(page, user)
    expect(page).to_have_url(re.compile(r"/account/$"))

    # 2. In "Details about your license", tick "Enable 2FA authentication" and enter the
    #    mobile phone; the page warns to enter it with its area code.
    section = page.get_by_role("region", name="Details about your license")
    expect(
        section.get_by_text(
            "Make sure your mobile phone number is entered correctly with the area code"
        )
    ).to_be_visible()
    checkbox = section.get_by_label("Enable 2FA authentication")
    checkbox.focus()
    page.keyboard.press("Space")  # keyboard-usable
    expect(checkbox).to_be_checked()
    phone = section.get_by_label("Mobile phone")
    expect(phone).to_have_accessible_description(re.compile("area code"))

    # A number without its area code is refused, and what was typed stays.
    phone.fill("555 0100")
    section.get_by_role("button", name="Save").click()
    section = page.get_by_role("region", name="Details about your license")
    expect(section.get_by_text("Enter the number with its area code")).to_be_visible()
    expect(section.get_by_label("Mobile phone")).to_have_value("555 0100")
    assert len(outbox) == 0

    # 3. Save: a code is sent at once, and the page asks for it.
    section.get_by_label("Enable 2FA authentication").check()
    section.get_by_label("Mobile phone").fill("514 555 0100")
    section.get_by_role("button", name="Save").click()
    section = page.get_by_role("region", name="Details about your license")
    expect(section.get_by_text("We sent a 6-digit code by SMS to •••• 0100.")).to_be_visible()
    assert outbox.last()["to"] == "+15145550100"
    section.get_by_label("Code").fill(outbox.last_code())
    section.get_by_role("button", name="Verify").click()
    expect(page.get_by_role("status")).to_contain_text("Two-factor authentication is on.")
    expect(
        page.get_by_role("region", name="Details about your license").get_by_label(
            "Enable 2FA authentication"
        )
    ).to_be_checked()

    # 4. From then on, logging in asks for the code sent by SMS (number masked).
    log_out(page)
    log_in(page, user)
    expect(page).to_have_url(re.compile(r"/login/verify/$"))
    expect(page.get_by_text("Enter the 6-digit code we sent by SMS to •••• 0100.")).to_be_visible()
    expect(page.get_by_role("button", name="Send a new code")).to_be_visible()
    expect(
        page.get_by_text(re.compile(r"You can ask for a new code in \d+ seconds\."))
    ).to_be_visible()
    expect(page.get_by_role("link", name="Use another method")).to_be_visible()
    assert len(outbox) == 2
    page.get_by_label("Code").fill(outbox.last_code())
    page.keyboard.press("Enter")
    expect(page).to_have_url(re.compile(r"/account/$"))
    expect(page.get_by_role("heading", name="Details about your license")).to_be_visible()


def test_setting_up_and_logging_in_with_an_authenticator_app(open_page, live_server, user):
    page = open_page()
    log_in(page, user)
    page.get_by_role("link", name="Security settings").click()
    page.get_by_role("link", name="Set up an authenticator app").click()
    expect(
        page.get_by_role("img", name="QR code to add Sealbox to your authenticator app")
    ).to_be_visible()
    key = page.get_by_label("Key").inner_text().replace(" ", "")
    device = TOTPDevice.objects.get(user=user, confirmed=False)
    assert len(key) == 32  # 160 bits in base32
    page.get_by_label("Code").fill(current_totp(device))
    page.get_by_role("button", name="Verify").click()
    expect(page.get_by_role("status")).to_contain_text("Your authenticator app is set up.")

    log_out(page)
    log_in(page, user)
    expect(
        page.get_by_text("Enter the 6-digit code shown in your authenticator app.")
    ).to_be_visible()
    device.refresh_from_db()
    page.get_by_label("Code").fill(current_totp(device, offset_steps=1))
    page.get_by_role("button", name="Verify").click()
    expect(page).to_have_url(re.compile(r"/account/$"))


def test_recovery_codes_shown_once_downloaded_and_used_to_log_in(
    open_page, live_server, user, tmp_path
):
    TOTPDevice.objects.create(user=user, name="app", confirmed=True)
    page = open_page()
    log_in(page, user)
    device = TOTPDevice.objects.get(user=user)
    page.get_by_label("Code").fill(current_totp(device))
    page.get_by_role("button", name="Verify").click()
    page.goto("/account/security/")
    page.get_by_role("button", name="Create recovery codes").click()
    expect(page.get_by_role("heading", name="Your recovery codes")).to_be_visible()
    codes = (
        page.get_by_role("list", name="Recovery codes").get_by_role("listitem").all_inner_texts()
    )
    assert len(codes) == 10
    with page.expect_download() as download_info:
        page.get_by_role("button", name="Download as a text file").click()
    download = download_info.value
    assert download.suggested_filename == "sealbox-recovery-codes.txt"
    saved = tmp_path / "codes.txt"
    download.save_as(saved)
    assert all(code in saved.read_text() for code in codes)
    page.get_by_role("link", name="I have saved my recovery codes").click()
    expect(page.get_by_text("10 unused recovery codes left.")).to_be_visible()

    log_out(page)
    log_in(page, user)
    page.get_by_role("link", name="Use another method").click()
    page.get_by_role("button", name="Recovery code").click()
    page.get_by_label("Recovery code").fill(codes[0])
    page.get_by_role("button", name="Verify").click()
    expect(page).to_have_url(re.compile(r"/account/$"))


def test_adding_a_passkey_and_logging_in_with_it(open_page, live_server, user):
    assert live_server.url.startswith("http://localhost:")  # WebAuthn needs a host name
    page = open_page()
    cdp = page.context.new_cdp_session(page)
    cdp.send("WebAuthn.enable")
    cdp.send(
        "WebAuthn.addVirtualAuthenticator",
        {
            "options": {
                "protocol": "ctap2",
                "transport": "internal",
                "hasResidentKey": True,
                "hasUserVerification": True,
                "isUserVerified": True,
                "automaticPresenceSimulation": True,
            }
        },
    )
    log_in(page, user)
    page.goto("/account/security/")
    passkeys = page.get_by_role("region", name="Passkeys and security keys")
    passkeys.get_by_label("Name").fill("Test laptop")
    passkeys.get_by_role("button", name="Add a passkey").click()
    expect(page.get_by_role("status")).to_contain_text("The passkey “Test laptop” was added.")
    expect(
        page.get_by_role("region", name="Passkeys and security keys").get_by_role(
            "cell", name="Test laptop", exact=True
        )
    ).to_be_visible()

    log_out(page)
    log_in(page, user)
    expect(
        page.get_by_text("Use your passkey or security key to finish logging in.")
    ).to_be_visible()
    page.get_by_role("button", name="Use a passkey").click()
    expect(page).to_have_url(re.compile(r"/account/$"))
    expect(page.get_by_role("heading", name="Details about your license")).to_be_visible()
