"""The seed's journey on the Account page: tick "Enable 2FA authentication", enter the
mobile phone, Save, then confirm the code that was sent."""

import re

import pytest

from sealbox.audit.models import Event
from sealbox.twofactor import services
from sealbox.twofactor.models import SMSDevice
from tests.twofactor.conftest import enable_sms, logged_in, password_step

pytestmark = pytest.mark.django_db

SAVE = {"twofactor-enabled": "on", "twofactor_action": "save"}


def licence_section(page: str) -> str:
    start = page.index('aria-labelledby="licence-heading"')
    return page[start : page.index("</section>", start)]


def test_the_licence_section_has_the_checkbox_the_phone_field_and_the_warning(
    logged_in_client,
):
    section = licence_section(logged_in_client.get("/account/").content.decode())
    assert "Details about your license" in section
    assert re.search(
        r'<label class="checkbox"><input type="checkbox" name="twofactor-enabled"'
        r"[^>]*> Enable 2FA authentication</label>",
        section,
    )
    assert '<label for="id_twofactor-mobile_phone">Mobile phone</label>' in section
    assert (
        "Make sure your mobile phone number is entered correctly with the area code, as the "
        "authentication code will be sent to you by SMS." in section
    )
    assert 'aria-describedby="twofactor-phone-alert"' in section
    assert 'name="twofactor_action" value="save"' in section and ">Save</button>" in section


def test_save_sends_a_code_and_changes_nothing_until_it_is_confirmed(
    logged_in_client, user, sms_outbox, clock
):
    response = logged_in_client.post(
        "/account/", {**SAVE, "twofactor-mobile_phone": "514 555 0100"}, follow=True
    )
    page = response.content.decode()
    assert sms_outbox.last()["to"] == "+15145550100"
    assert "We sent a code by SMS to •••• 0100." in page
    assert '<label for="id_twofactor-code">Code</label>' in page
    assert 'value="verify"' in page and ">Verify</button>" in page
    user.refresh_from_db()
    assert not user.mobile_phone
    assert services.sms_device(user) is None
    assert not services.needs_second_step(user)


def test_the_code_turns_protection_on_at_once(logged_in_client, user, sms_outbox, clock):
    logged_in_client.post("/account/", {**SAVE, "twofactor-mobile_phone": "514 555 0100"})
    response = logged_in_client.post(
        "/account/",
        {"twofactor-code": sms_outbox.last_code(), "twofactor_action": "verify"},
        follow=True,
    )
    page = response.content.decode()
    assert "Two-factor authentication is on." in page
    assert "•••• 0100" in page
    user.refresh_from_db()
    assert str(user.mobile_phone) == "+15145550100"
    assert services.sms_device(user).number == "+15145550100"
    assert 'name="twofactor-enabled" checked' in page or "checked" in licence_section(page)
    event = Event.objects.get(action="twofactor.enabled")
    assert event.details == {"method": "sms", "phone": "•••• 0100"}
    # From then on, logging in asks for a code sent by SMS.
    logged_in_client.post("/logout/")
    clock.advance(minutes=2)
    response = password_step(logged_in_client, user)
    assert response["Location"] == "/login/verify/"
    assert sms_outbox.last()["to"] == "+15145550100"


def test_the_users_default_sms_country_reads_the_number(logged_in_client, user, sms_outbox):
    user.sms_country = "FR"
    user.save()
    logged_in_client.post("/account/", {**SAVE, "twofactor-mobile_phone": "06 12 34 56 78"})
    assert sms_outbox.last()["to"] == "+33612345678"


def test_an_international_number_is_accepted_as_is(logged_in_client, sms_outbox):
    logged_in_client.post("/account/", {**SAVE, "twofactor-mobile_phone": "+33 6 12 34 56 78"})
    assert sms_outbox.last()["to"] == "+33612345678"


def test_a_number_without_area_code_is_refused_and_kept(logged_in_client, user, sms_outbox):
    response = logged_in_client.post("/account/", {**SAVE, "twofactor-mobile_phone": "555 0100"})
    page = response.content.decode()
    assert response.status_code == 200
    assert "Enter the number with its area code, for example 514 555 0100." in page
    assert 'value="555 0100"' in page
    assert len(sms_outbox) == 0
    assert not SMSDevice.objects.exists()


def test_letters_are_refused(logged_in_client, sms_outbox):
    response = logged_in_client.post(
        "/account/", {**SAVE, "twofactor-mobile_phone": "514 555 ABCD"}
    )
    assert "A phone number contains only digits" in response.content.decode()
    assert len(sms_outbox) == 0


def test_ticking_the_box_needs_a_number(logged_in_client, sms_outbox):
    response = logged_in_client.post("/account/", {**SAVE, "twofactor-mobile_phone": ""})
    assert "Enter your mobile phone number with its area code" in response.content.decode()


def test_a_mistyped_number_never_locks_the_user_out(logged_in_client, user, sms_outbox, clock):
    from django.test import Client

    enable_sms(user, "+15145550100")
    logged_in_client.post("/account/", {**SAVE, "twofactor-mobile_phone": "514 555 0199"})
    assert sms_outbox.last()["to"] == "+15145550199"
    logged_in_client.post("/account/", {"twofactor-code": "000000", "twofactor_action": "verify"})
    # The wrong number was never confirmed: logging in still uses the old phone.
    clock.advance(minutes=1)
    password_step(Client(), user)
    assert sms_outbox.last()["to"] == "+15145550100"
    user.refresh_from_db()
    assert str(user.mobile_phone) == "+15145550100"


def test_a_wrong_confirmation_code_says_so(logged_in_client, user, sms_outbox):
    logged_in_client.post("/account/", {**SAVE, "twofactor-mobile_phone": "514 555 0100"})
    wrong = "000000" if sms_outbox.last_code() != "000000" else "111111"
    response = logged_in_client.post(
        "/account/", {"twofactor-code": wrong, "twofactor_action": "verify"}
    )
    page = response.content.decode()
    assert "This code is not correct." in page
    assert services.sms_device(user) is None


def test_five_wrong_confirmation_codes_need_the_number_again(logged_in_client, user, sms_outbox):
    logged_in_client.post("/account/", {**SAVE, "twofactor-mobile_phone": "514 555 0100"})
    code = sms_outbox.last_code()
    wrong = "000000" if code != "000000" else "111111"
    for _ in range(5):
        response = logged_in_client.post(
            "/account/", {"twofactor-code": wrong, "twofactor_action": "verify"}
        )
    assert "Enter your number again" in response.content.decode()
    response = logged_in_client.post(
        "/account/", {"twofactor-code": code, "twofactor_action": "verify"}
    )
    assert services.sms_device(user) is None


def test_the_confirmation_can_be_resent_after_a_minute_or_cancelled(
    logged_in_client, user, sms_outbox, clock
):
    logged_in_client.post("/account/", {**SAVE, "twofactor-mobile_phone": "514 555 0100"})
    response = logged_in_client.post("/account/", {"twofactor_action": "resend"}, follow=True)
    assert "You can ask for a new code in 60 seconds." in response.content.decode()
    clock.advance(seconds=60)
    response = logged_in_client.post("/account/", {"twofactor_action": "resend"}, follow=True)
    assert "We sent a new code to •••• 0100." in response.content.decode()
    assert len(sms_outbox) == 2
    response = logged_in_client.post("/account/", {"twofactor_action": "cancel"}, follow=True)
    assert "Nothing was changed." in response.content.decode()
    assert not SMSDevice.objects.filter(user=user).exists()


def test_a_gateway_failure_says_try_again_records_it_and_leaves_the_account(
    logged_in_client, user, settings, monkeypatch, clock
):
    from sealbox.notify import sms_tasks

    monkeypatch.setattr(sms_tasks, "RETRY_DELAYS_SECONDS", (0.0, 0.0))
    settings.SEALBOX_SMS_URL = "http://127.0.0.1:9/unreachable"
    response = logged_in_client.post(
        "/account/", {**SAVE, "twofactor-mobile_phone": "514 555 0100"}
    )
    page = response.content.decode()
    assert response.status_code == 200
    assert "We could not send the SMS. Please try again." in page
    assert 'value="514 555 0100"' in page
    assert Event.objects.filter(action="twofactor.sms_failed").count() == 1
    assert not SMSDevice.objects.filter(user=user).exists()
    user.refresh_from_db()
    assert not user.mobile_phone


def test_unticking_turns_sms_off(client, user, sms_outbox, clock, mailoutbox):
    enable_sms(user)
    logged_in(client, user, sms_outbox)
    response = client.post(
        "/account/",
        {"twofactor_action": "save", "twofactor-mobile_phone": "+1 514-555-0100"},
        follow=True,
    )
    assert "Two-factor authentication by SMS is off." in response.content.decode()
    assert services.sms_device(user) is None
    assert Event.objects.filter(action="twofactor.disabled").get().details == {"method": "sms"}
    user.refresh_from_db()
    assert str(user.mobile_phone) == "+15145550100"  # the number stays on file


def test_unticking_is_refused_when_the_organisation_requires_2fa(client, user, sms_outbox, clock):
    enable_sms(user)
    logged_in(client, user, sms_outbox)
    user.organisation.require_2fa = True
    user.organisation.save()
    response = client.post(
        "/account/", {"twofactor_action": "save", "twofactor-mobile_phone": "+15145550100"}
    )
    assert "Your organisation requires two-factor authentication" in response.content.decode()
    assert services.sms_device(user) is not None


def test_with_sms_off_the_number_on_file_can_change(logged_in_client, user, mailoutbox):
    response = logged_in_client.post(
        "/account/",
        {"twofactor_action": "save", "twofactor-mobile_phone": "514 555 0123"},
        follow=True,
    )
    assert "Your mobile phone number is saved." in response.content.decode()
    user.refresh_from_db()
    assert str(user.mobile_phone) == "+15145550123"
    assert services.sms_device(user) is None


def test_saving_without_change_says_so(client, user, sms_outbox, clock):
    enable_sms(user)
    logged_in(client, user, sms_outbox)
    response = client.post(
        "/account/", {**SAVE, "twofactor-mobile_phone": "514 555 0100"}, follow=True
    )
    assert "Nothing to save" in response.content.decode()
    assert len(sms_outbox) == 1  # only the login code


def test_the_profile_form_still_saves_on_its_own(logged_in_client, user):
    response = logged_in_client.post(
        "/account/",
        {
            "profile-first_name": "Alicia",
            "profile-last_name": "Martin",
            "profile-time_zone": "America/Toronto",
            "profile-language": "en",
            "profile-date_format": "Y-m-d",
        },
        follow=True,
    )
    assert "Your profile is saved." in response.content.decode()
    user.refresh_from_db()
    assert user.first_name == "Alicia"
    assert not SMSDevice.objects.exists()


def test_the_account_page_links_to_security_settings(logged_in_client):
    page = logged_in_client.get("/account/").content.decode()
    assert 'href="/account/security/"' in page


def test_a_failure_reported_later_by_the_worker_is_shown(logged_in_client, user, sms_outbox):
    from sealbox.twofactor.models import CodeDelivery, SMSCode

    logged_in_client.post("/account/", {**SAVE, "twofactor-mobile_phone": "514 555 0100"})
    # With a queued task backend the worker reports the failure after the page was shown.
    SMSCode.objects.update(delivery=CodeDelivery.FAILED)
    page = logged_in_client.get("/account/").content.decode()
    assert "We could not send the SMS. Please try again." in page
    assert ">Send a new code</button>" in page
    assert services.sms_device(user) is None
