"""The user is emailed when a factor is added or removed, the phone changes, a recovery
code is used (and when a factor locks or an administrator resets them)."""

import pytest

from sealbox.twofactor import services
from tests.twofactor.conftest import enable_sms, enable_totp, totp_code

pytestmark = pytest.mark.django_db

ADDED = "Sealbox: a second factor was added to your account"
REMOVED = "Sealbox: a second factor was removed from your account"
PHONE = "Sealbox: your mobile phone number was changed"


def subjects(mailoutbox):
    return [mail.subject for mail in mailoutbox]


def confirm_phone(client, sms_outbox, number):
    client.post(
        "/account/",
        {"twofactor-enabled": "on", "twofactor-mobile_phone": number, "twofactor_action": "save"},
    )
    client.post(
        "/account/", {"twofactor-code": sms_outbox.last_code(), "twofactor_action": "verify"}
    )


def test_turning_on_sms_emails_the_user(clock, logged_in_client, user, sms_outbox, mailoutbox):
    confirm_phone(logged_in_client, sms_outbox, "514 555 0100")
    assert subjects(mailoutbox) == [ADDED]
    assert mailoutbox[0].to == [user.email]
    assert "Text message (SMS)" in mailoutbox[0].body


def test_changing_the_sms_phone_emails_the_user(
    clock, logged_in_client, user, sms_outbox, mailoutbox
):
    enable_sms(user, "+15145550100")
    confirm_phone(logged_in_client, sms_outbox, "514 555 0177")
    assert subjects(mailoutbox) == [PHONE]
    assert "•••• 0100" in mailoutbox[0].body and "•••• 0177" in mailoutbox[0].body
    assert "+15145550177" not in mailoutbox[0].body


def test_changing_the_number_on_file_emails_the_user(clock, logged_in_client, mailoutbox):
    logged_in_client.post(
        "/account/", {"twofactor-mobile_phone": "514 555 0100", "twofactor_action": "save"}
    )
    assert subjects(mailoutbox) == [PHONE]


def test_removing_sms_emails_the_user(clock, logged_in_client, user, mailoutbox):
    enable_sms(user)
    logged_in_client.post(
        "/account/", {"twofactor-mobile_phone": "+15145550100", "twofactor_action": "save"}
    )
    assert subjects(mailoutbox) == [REMOVED]


def test_authenticator_app_added_and_removed(clock, logged_in_client, user, mailoutbox):
    device = services.start_totp_setup(user)
    logged_in_client.post(
        "/account/security/authenticator/", {"code": totp_code(device, clock.current)}
    )
    logged_in_client.post("/account/security/authenticator/remove/")
    assert subjects(mailoutbox) == [ADDED, REMOVED]
    assert "Authenticator app" in mailoutbox[0].body


def test_new_recovery_codes_email_the_user(clock, logged_in_client, user, mailoutbox):
    enable_totp(user)
    logged_in_client.post("/account/security/recovery-codes/")
    assert subjects(mailoutbox) == [ADDED]
    assert "Recovery codes" in mailoutbox[0].body


def test_emails_are_in_the_users_language(clock, logged_in_client, user, mailoutbox):
    user.language = "fr"
    user.save()
    device = services.start_totp_setup(user)
    logged_in_client.post(
        "/account/security/authenticator/", {"code": totp_code(device, clock.current)}
    )
    assert subjects(mailoutbox) == ["Sealbox : un second facteur a été ajouté à votre compte"]
    assert "Application d’authentification" in mailoutbox[0].body
