"""The account page's sections: profile (email change), active sessions, preferences."""

from __future__ import annotations

import re

import pytest
from django.core import mail
from django.test import Client

from sealbox.accounts import services
from sealbox.accounts.models import EmailChange, MessagePreferences, SessionRecord, User
from sealbox.audit.models import Event
from tests.conftest import PASSWORD

pytestmark = pytest.mark.django_db

CONFIRM = re.compile(r"http://\S+/account/email/confirm/([A-Za-z0-9_-]+)/")
FIREFOX = "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:128.0) Gecko/20100101 Firefox/128.0"
IPHONE = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.0 Mobile/15E148 Safari/604.1"
)


def login(user, agent: str = FIREFOX, ip: str = "198.51.100.7") -> Client:
    client = Client(HTTP_USER_AGENT=agent, REMOTE_ADDR=ip)
    assert client.post("/login/", {"email": user.email, "password": PASSWORD}).status_code == 302
    return client


# --- Licence details -----------------------------------------------------------------


def test_licence_section_shows_last_message_sent(logged_in_client):
    page = logged_in_client.get("/account/").content.decode()
    assert "Last message sent" in page and "None yet" in page
    assert "Largest attachment total per send" in page and "Longest retention" in page


# --- Active sessions ----------------------------------------------------------------


def test_active_sessions_list_device_ip_and_last_seen(clock, user):
    laptop = login(user)
    login(user, agent=IPHONE, ip="203.0.113.9")
    page = laptop.get("/account/").content.decode()
    assert "Firefox on Windows" in page and "(this session)" in page
    assert "Safari on iPhone" in page and "203.0.113.9" in page
    assert SessionRecord.objects.filter(user=user).count() == 2


def test_last_seen_is_refreshed_at_most_every_30_seconds(clock, user):
    client = login(user)
    record = SessionRecord.objects.get(user=user)
    start = record.last_seen_at
    clock.advance(seconds=10)
    client.get("/account/")
    record.refresh_from_db()
    assert record.last_seen_at == start
    clock.advance(seconds=30)
    client.get("/account/")
    record.refresh_from_db()
    assert record.last_seen_at == clock()


def test_log_out_other_sessions(user):
    laptop = login(user)
    phone = login(user, agent=IPHONE)
    assert phone.get("/account/").status_code == 200
    response = laptop.post("/account/sessions/logout-others/")
    assert response.status_code == 302
    assert phone.get("/account/").status_code == 302  # logged out
    assert laptop.get("/account/").status_code == 200  # this one stays
    assert SessionRecord.objects.filter(user=user).count() == 1
    event = Event.objects.get(action="sessions.logged_out_others")
    assert event.details == {"sessions": 1}


def test_logging_out_forgets_the_session(user):
    client = login(user)
    client.post("/logout/")
    assert not SessionRecord.objects.filter(user=user).exists()


def test_describe_device():
    assert services.describe_device("") == "Unknown device"
    assert services.describe_device("curl/8.0") == "curl"


# --- Email change ----------------------------------------------------------------------


def test_email_change_needs_the_password_and_a_confirmation_link(clock, logged_in_client, user):
    response = logged_in_client.post(
        "/account/email/", {"email-new_email": "alice@new.example", "email-password": "wrong"}
    )
    assert response.status_code == 400
    assert "Your password is not correct." in response.content.decode()
    assert 'value="alice@new.example"' in response.content.decode()
    response = logged_in_client.post(
        "/account/email/", {"email-new_email": "Alice@New.example", "email-password": PASSWORD}
    )
    assert response.status_code == 302
    user.refresh_from_db()
    assert user.email == "alice@example.com"  # not before confirmation
    message = mail.outbox[-1]
    assert message.to == ["alice@new.example"]
    token = CONFIRM.search(message.body).group(1)
    assert token not in str(list(EmailChange.objects.values_list()))
    assert "Waiting for confirmation" in logged_in_client.get("/account/").content.decode()
    # A GET (a mail scanner) changes nothing.
    assert Client().get(f"/account/email/confirm/{token}/").status_code == 200
    user.refresh_from_db()
    assert user.email == "alice@example.com"
    response = Client().post(f"/account/email/confirm/{token}/")
    assert response.status_code == 302
    user.refresh_from_db()
    assert user.email == "alice@new.example"
    # The old address is told.
    assert mail.outbox[-1].to == ["alice@example.com"]
    assert "alice@new.example" in mail.outbox[-1].body
    assert Event.objects.filter(action="email.changed").exists()
    # Single use.
    assert Client().post(f"/account/email/confirm/{token}/").status_code == 404


def test_email_change_link_expires_after_24_hours(clock, user):
    services.request_email_change(None, user, "late@example.com", PASSWORD)
    token = CONFIRM.search(mail.outbox[-1].body).group(1)
    clock.advance(hours=24, seconds=1)
    with pytest.raises(services.AccountError):
        services.confirm_email_change(None, token)
    assert Client().get(f"/account/email/confirm/{token}/").status_code == 404


def test_email_change_refuses_taken_same_and_unapproved_addresses(user, make_user, organisation):
    make_user("bob@example.com")
    for address in ("bob@example.com", "alice@example.com", "nope"):
        with pytest.raises(services.AccountError):
            services.request_email_change(None, user, address, PASSWORD)
    organisation.approved_email_domains = "example.com"
    organisation.save()
    with pytest.raises(services.AccountError, match="approved email domains"):
        services.request_email_change(
            None, user.__class__.objects.get(pk=user.pk), "a@b.org", PASSWORD
        )


def test_email_change_needs_recent_reauthentication(clock, logged_in_client, user):
    clock.advance(minutes=31)
    response = logged_in_client.post(
        "/account/email/", {"email-new_email": "x@example.com", "email-password": PASSWORD}
    )
    assert response["Location"].startswith("/account/security/confirm-password/")
    assert not EmailChange.objects.exists()


def test_email_taken_meanwhile_is_refused_at_confirmation(user, make_user):
    services.request_email_change(None, user, "race@example.com", PASSWORD)
    token = CONFIRM.search(mail.outbox[-1].body).group(1)
    make_user("race@example.com")
    with pytest.raises(services.AccountError):
        services.confirm_email_change(None, token)
    assert User.objects.get(pk=user.pk).email == "alice@example.com"


# --- Profile: default SMS country ----------------------------------------------------


def test_profile_saves_the_default_sms_country(logged_in_client, user):
    data = {
        "profile-first_name": "Alice",
        "profile-last_name": "Martin",
        "profile-time_zone": "America/Toronto",
        "profile-language": "en",
        "profile-date_format": "Y-m-d",
        "profile-sms_country": "FR",
    }
    assert logged_in_client.post("/account/", data).status_code == 302
    user.refresh_from_db()
    assert user.sms_country == "FR"


# --- Preferences -----------------------------------------------------------------------


def prefs(**values):
    data = {
        "prefs-expiry_days": "30",
        "prefs-max_opens": "3",
        "prefs-verification": "sms_code",
        "prefs-notify_on_open": "",
        "prefs-show_subject": "on",
        "prefs-keep_copy": "on",
        "prefs-recipient_language": "fr",
    }
    data.update({f"prefs-{k}": v for k, v in values.items()})
    return {k: v for k, v in data.items() if v != ""}


def test_preferences_are_saved_audited_and_used_by_the_send_page(logged_in_client, user):
    response = logged_in_client.post("/account/preferences/", prefs())
    assert response.status_code == 302
    saved = MessagePreferences.objects.get(user=user)
    assert (
        saved.expiry_days,
        saved.max_opens,
        saved.verification,
        saved.notify_on_open,
        saved.show_subject,
        saved.keep_copy,
        saved.recipient_language,
    ) == (30, 3, "sms_code", False, True, True, "fr")
    assert Event.objects.filter(action="preferences.updated").exists()
    page = logged_in_client.get("/send/").content.decode()
    assert re.search(r'<option value="30" selected>', page)
    assert re.search(r'name="max_opens" value="3"', page)
    assert '<option value="sms_code" selected>' in page
    assert re.search(r'<option value="fr" selected>', page)
    assert re.search(r'name="keep_copy"[^>]*checked', page)
    assert not re.search(r'name="notify_on_open"[^>]*checked', page)


def test_send_page_defaults_without_preferences(logged_in_client):
    page = logged_in_client.get("/send/").content.decode()
    assert '<option value="7" selected>' in page
    assert '<option value="opening_code" selected>' in page
    assert re.search(r'name="notify_on_open"[^>]*checked', page)


def test_bad_preferences_keep_what_was_typed(logged_in_client, user):
    response = logged_in_client.post("/account/preferences/", prefs(max_opens="120"))
    assert response.status_code == 400
    assert 'value="120"' in response.content.decode()
    assert not MessagePreferences.objects.filter(user=user).exists()


# --- Security notices ------------------------------------------------------------------


def test_password_change_emails_the_user(logged_in_client, user):
    response = logged_in_client.post(
        "/account/password/",
        {"current_password": PASSWORD, "new_password": "a brand new passphrase"},
    )
    assert response.status_code == 302
    assert mail.outbox[-1].to == [user.email]
    assert "The password of your account was changed." in mail.outbox[-1].body
