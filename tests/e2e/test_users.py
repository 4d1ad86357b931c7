"""An administrator runs a user's whole life in real Chromium: add → invitation email →
password → phone and 2FA set by the administrator → SMS login → disabled, logged out."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from sealbox.accounts.models import User
from tests.conftest import PASSWORD

pytestmark = pytest.mark.django_db(transaction=True)

INVITE = re.compile(r"http://\S+/invitation/[A-Za-z0-9_-]+/")
NEW_PASSWORD = "plum orchard under snow"


def log_in(page, email: str, password: str) -> None:
    page.goto("/login/")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Log in").click()


def test_administrator_adds_invites_sets_2fa_and_disables_a_user(
    new_context,
    live_server,
    settings,
    admin_user,
    mail_folder,
    sms_folder,
):
    settings.SEALBOX_BASE_URL = live_server.url
    admin = new_context().new_page()
    log_in(admin, admin_user.email, PASSWORD)
    expect(admin).to_have_url(re.compile(r"/account/$"))

    # Add a user from the Users page.
    admin.get_by_role("navigation", name="Main").get_by_role("link", name="Users").click()
    expect(admin.get_by_role("heading", name="Users", level=1)).to_be_visible()
    expect(admin.get_by_text("Seats used: 1 of 5")).to_be_visible()
    admin.get_by_role("link", name="Add a user").click()
    admin.get_by_label("Email").fill("nora@example.com")
    admin.get_by_label("First name").fill("Nora")
    admin.get_by_label("Last name").fill("Girard")
    admin.get_by_label("Role").select_option(label="Standard user")
    admin.get_by_role("button", name="Add and invite").click()
    expect(admin.get_by_text("nora@example.com was added and invited")).to_be_visible()
    expect(admin.get_by_role("link", name="nora@example.com")).to_be_visible()

    # The invitation email leads to setting a password.
    texts = mail_folder.texts_to("nora@example.com")
    assert len(texts) == 1
    link = INVITE.search(texts[0]).group(0)
    nora = new_context().new_page()
    nora.goto(link)
    expect(nora.get_by_role("heading", name="Set your password")).to_be_visible()
    nora.get_by_label("New password", exact=True).fill(NEW_PASSWORD)
    nora.get_by_label("Confirm the new password").fill(NEW_PASSWORD)
    nora.get_by_role("button", name="Set my password").click()
    expect(nora.get_by_text("Your password is set. You can log in now.")).to_be_visible()

    # The administrator sets the mobile phone and ticks Enable 2FA authentication.
    admin.get_by_role("link", name="nora@example.com").click()
    admin.get_by_label("Mobile phone").fill("514 555 0142")
    admin.get_by_label("Enable 2FA authentication").check()
    admin.get_by_role("button", name="Save").click()
    expect(admin.get_by_text("nora@example.com is saved.")).to_be_visible()
    expect(admin.get_by_label("Enable 2FA authentication")).to_be_checked()

    # Nora's next login goes through the SMS code.
    log_in(nora, "nora@example.com", NEW_PASSWORD)
    expect(nora).to_have_url(re.compile(r"/login/verify/$"))
    assert sms_folder.last()["to"] == "+15145550142"
    nora.get_by_label("Code").fill(sms_folder.last_code())
    nora.get_by_role("button", name="Verify").click()
    expect(nora).to_have_url(re.compile(r"/account/$"))
    expect(nora.get_by_role("heading", name="Account", level=1)).to_be_visible()
    # A standard user has no Users link.
    expect(
        nora.get_by_role("navigation", name="Main").get_by_role("link", name="Users")
    ).to_have_count(0)

    # The administrator disables Nora: her open session ends on the next request.
    admin.get_by_role("button", name="Disable").click()
    expect(admin.get_by_text("nora@example.com is disabled")).to_be_visible()
    nora.reload()
    expect(nora).to_have_url(re.compile(r"/login/"))
    expect(nora.get_by_role("button", name="Log in")).to_be_visible()
    assert not User.objects.get(email="nora@example.com").is_active
