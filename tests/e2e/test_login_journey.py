"""A member logs in, sees the account page, switches to French and logs out."""

import re

import pytest
from playwright.sync_api import expect

from tests.conftest import PASSWORD

pytestmark = pytest.mark.django_db(transaction=True)


def test_login_account_language_logout(page, live_server, user):
    page.goto("/")
    expect(page).to_have_url(re.compile(r"/login/$"))
    page.get_by_label("Email").fill(user.email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()

    expect(page).to_have_url(re.compile(r"/account/$"))
    expect(page.get_by_role("heading", name="Details about your license")).to_be_visible()
    expect(page.get_by_text("Advanced", exact=True)).to_be_visible()
    expect(
        page.get_by_role("navigation", name="Main").get_by_role("link", name="Account")
    ).to_be_visible()
    expect(page.get_by_text("Alice Martin")).to_be_visible()

    page.get_by_role("button", name="Français").click()
    expect(page.get_by_role("heading", name="Détails de votre licence")).to_be_visible()
    expect(page.locator("html")).to_have_attribute("lang", "fr")
    user.refresh_from_db()
    assert user.language == "fr"

    page.get_by_role("button", name="Se déconnecter").click()
    expect(page).to_have_url(re.compile(r"/login/$"))
    expect(page.get_by_role("heading", name="Se connecter")).to_be_visible()
    expect(page.get_by_text("Vous êtes déconnecté.")).to_be_visible()


def test_wrong_password_then_keyboard_only_login(page, live_server, user):
    page.goto("/login/")
    page.get_by_label("Email").fill(user.email)
    page.get_by_label("Password").fill("not my password at all")
    page.keyboard.press("Enter")
    expect(page.get_by_role("alert")).to_contain_text("The email or password is not correct.")
    expect(page.get_by_label("Email")).to_have_value(user.email)

    # Keyboard only: Tab from the email field to the password field, Enter submits.
    page.get_by_label("Email").focus()
    page.keyboard.press("Tab")
    page.keyboard.type(PASSWORD)
    page.keyboard.press("Enter")
    expect(page).to_have_url(re.compile(r"/account/$"))


def test_profile_form_saves_in_the_browser(page, live_server, user):
    page.goto("/login/")
    page.get_by_label("Email").fill(user.email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    profile = page.get_by_role("region", name="Profile")
    profile.get_by_label("First name").fill("Alicia")
    page.get_by_label("Time zone").select_option("Europe/Paris")
    page.get_by_label("Date format").select_option("d/m/Y")
    profile.get_by_role("button", name="Save").click()
    expect(page.get_by_role("status")).to_contain_text("Your profile is saved.")
    expect(page.get_by_label("First name")).to_have_value("Alicia")
    user.refresh_from_db()
    assert (user.first_name, user.time_zone) == ("Alicia", "Europe/Paris")
