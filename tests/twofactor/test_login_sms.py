"""Logging in with a password and an SMS code (the seed's step 4)."""

import pytest

from sealbox.audit.models import Event
from sealbox.twofactor import services
from sealbox.twofactor.models import PendingLogin
from tests.twofactor.conftest import audit_actions, password_step

pytestmark = pytest.mark.django_db


def test_the_password_step_sends_a_code_and_asks_for_it(client, sms_user, sms_outbox, clock):
    response = password_step(client, sms_user)
    assert response.status_code == 302
    assert response["Location"] == "/login/verify/"
    assert sms_outbox.last()["to"] == "+15145550100"
    page = client.get("/login/verify/").content.decode()
    assert "6-digit code" in page
    assert "•••• 0100" in page
    assert "+15145550100" not in page and "555 0100" not in page
    assert ">Code</label>" in page
    assert "Verify" in page
    assert "Send a new code" in page
    assert "You can ask for a new code in 60 seconds." in page
    assert "Use another method" in page
    assert 'class="error"' not in page and "form-errors" not in page  # nothing typed yet


def test_the_right_code_opens_the_session(client, sms_user, sms_outbox, clock):
    password_step(client, sms_user)
    session_before = client.session.session_key
    response = client.post("/login/verify/", {"code": sms_outbox.last_code()})
    assert response.status_code == 302
    assert response["Location"] == "/account/"
    assert client.session["_auth_user_id"] == str(sms_user.pk)
    assert client.session.session_key != session_before
    assert client.get("/account/").status_code == 200
    actions = audit_actions(sms_user)
    assert actions.index("twofactor.required") < actions.index("twofactor.verified")
    assert actions.index("twofactor.verified") < actions.index("login.succeeded")
    assert Event.objects.get(action="twofactor.verified").details == {"method": "sms"}


def test_spaces_in_the_code_are_fine(client, sms_user, sms_outbox, clock):
    password_step(client, sms_user)
    code = sms_outbox.last_code()
    response = client.post("/login/verify/", {"code": f" {code[:3]} {code[3:]} "})
    assert response.status_code == 302


def test_the_next_page_is_kept_across_both_steps(client, sms_user, sms_outbox, clock):
    response = password_step(client, sms_user, next="/account/security/")
    response = client.post("/login/verify/", {"code": sms_outbox.last_code()})
    assert response["Location"] == "/account/security/"


def test_a_wrong_code_says_so_keeps_what_was_typed_and_is_audited(
    client, sms_user, sms_outbox, clock
):
    password_step(client, sms_user)
    wrong = "000000" if sms_outbox.last_code() != "000000" else "111111"
    response = client.post("/login/verify/", {"code": wrong})
    assert response.status_code == 200
    page = response.content.decode()
    assert "This code is not correct." in page
    assert f'value="{wrong}"' in page
    assert "_auth_user_id" not in client.session
    event = Event.objects.filter(action="twofactor.failed").get()
    assert event.details == {"method": "sms", "purpose": "login", "reason": "wrong"}


def test_a_malformed_code_is_refused_without_counting(client, sms_user, sms_outbox, clock):
    password_step(client, sms_user)
    response = client.post("/login/verify/", {"code": "12ab"})
    assert "Enter the 6-digit code." in response.content.decode()
    assert services.binding_failures(PendingLogin.objects.get().binding) == 0


def test_the_half_logged_in_state_grants_access_to_nothing(client, sms_user, sms_outbox, clock):
    password_step(client, sms_user)
    assert "_auth_user_id" not in client.session
    for url in (
        "/account/",
        "/account/security/",
        "/account/password/",
        "/account/security/authenticator/",
        "/account/security/confirm-password/",
    ):
        response = client.get(url)
        assert response.status_code == 302, url
        assert response["Location"].startswith("/login/"), url
    for url in ("/account/security/passkeys/begin/", "/account/security/recovery-codes/"):
        response = client.post(url)
        assert response.status_code == 302, url
        assert response["Location"].startswith("/login/"), url


def test_the_half_logged_in_state_expires_after_ten_minutes(client, sms_user, sms_outbox, clock):
    password_step(client, sms_user)
    code = sms_outbox.last_code()
    clock.advance(minutes=9, seconds=59)
    assert client.get("/login/verify/").status_code == 200
    clock.advance(seconds=1)
    response = client.post("/login/verify/", {"code": code}, follow=True)
    assert response.redirect_chain[0] == ("/login/", 302)
    assert "Your login attempt has expired. Please log in again." in response.content.decode()
    assert "_auth_user_id" not in client.session
    assert client.get("/account/").status_code == 302


def test_a_code_sent_for_another_login_attempt_is_refused(sms_user, sms_outbox, clock, monkeypatch):
    from django.test import Client

    codes = iter([111111, 222222])
    monkeypatch.setattr(services.secrets, "randbelow", lambda n: next(codes))
    first, second = Client(), Client()
    password_step(first, sms_user)
    password_step(second, sms_user)
    response = second.post("/login/verify/", {"code": "111111"})
    assert "This code is not correct." in response.content.decode()
    assert "_auth_user_id" not in second.session
    assert first.post("/login/verify/", {"code": "111111"}).status_code == 302


def test_a_code_works_once(sms_user, sms_outbox, clock):
    from django.test import Client

    first = Client()
    password_step(first, sms_user)
    code = sms_outbox.last_code()
    first.post("/login/verify/", {"code": code})
    # The same session id cannot replay it: the pending login is gone.
    replay = Client()
    replay.cookies = first.cookies
    first.post("/logout/")
    response = replay.post("/login/verify/", {"code": code})
    assert response.status_code == 302 and response["Location"] == "/login/"


def test_send_a_new_code_waits_sixty_seconds_then_replaces_the_code(
    client, sms_user, sms_outbox, clock
):
    password_step(client, sms_user)
    first_code = sms_outbox.last_code()
    response = client.post("/login/verify/send/", follow=True)
    assert "You can ask for a new code in 60 seconds." in response.content.decode()
    assert len(sms_outbox) == 1
    clock.advance(seconds=60)
    response = client.post("/login/verify/send/", follow=True)
    assert "We sent a new code to •••• 0100." in response.content.decode()
    assert len(sms_outbox) == 2
    new_code = sms_outbox.last_code()
    if new_code != first_code:
        response = client.post("/login/verify/", {"code": first_code})
        assert "This code is not correct." in response.content.decode()
    assert client.post("/login/verify/", {"code": new_code}).status_code == 302


def test_five_wrong_codes_end_the_attempt_even_with_a_new_code(client, sms_user, sms_outbox, clock):
    password_step(client, sms_user)
    code = sms_outbox.last_code()
    wrong = "000000" if code != "000000" else "111111"
    for _ in range(4):
        client.post("/login/verify/", {"code": wrong})
    clock.advance(seconds=60)
    client.post("/login/verify/send/")
    new_code = sms_outbox.last_code()
    wrong = "000000" if new_code != "000000" else "111111"
    response = client.post("/login/verify/", {"code": wrong})
    assert "mistyped too many times. Log in again" in response.content.decode()
    response = client.post("/login/verify/", {"code": new_code})
    assert "mistyped too many times. Log in again" in response.content.decode()
    assert "_auth_user_id" not in client.session
    # A new login attempt (password again) gets a fresh code.
    clock.advance(seconds=60)
    password_step(client, sms_user)
    assert client.post("/login/verify/", {"code": sms_outbox.last_code()}).status_code == 302


def test_the_sixth_sms_of_the_hour_is_refused_on_the_page(client, sms_user, sms_outbox, clock):
    for _ in range(5):
        password_step(client, sms_user)
        clock.advance(minutes=1)
    password_step(client, sms_user)
    page = client.get("/login/verify/").content.decode()
    assert "Too many codes were sent." in page
    assert len(sms_outbox) == 5


def test_users_without_a_second_factor_log_in_with_their_password(client, user, clock):
    response = password_step(client, user)
    assert response["Location"] == "/account/"
    assert client.session["_auth_user_id"] == str(user.pk)
    assert not PendingLogin.objects.exists()


def test_an_unconfirmed_phone_is_not_a_second_factor(client, user, sms_outbox, clock):
    from sealbox.twofactor.models import SMSDevice

    SMSDevice.objects.create(user=user, name="phone", number="+15145550199", confirmed=False)
    response = password_step(client, user)
    assert response["Location"] == "/account/"
    assert len(sms_outbox) == 0


def test_verify_page_without_a_pending_login_goes_to_the_login_page(client, db):
    response = client.get("/login/verify/")
    assert response.status_code == 302 and response["Location"] == "/login/"


def test_another_method_can_be_chosen(client, sms_user, sms_outbox, clock):
    from tests.twofactor.conftest import enable_totp, totp_code

    device = enable_totp(sms_user)
    password_step(client, sms_user)
    page = client.get("/login/verify/methods/").content.decode()
    assert "Text message to •••• 0100" in page
    assert "Code from your authenticator app" in page
    response = client.post("/login/verify/methods/", {"method": "totp"})
    assert response["Location"] == "/login/verify/"
    assert "authenticator app" in client.get("/login/verify/").content.decode()
    response = client.post("/login/verify/", {"code": totp_code(device, clock.current)})
    assert response.status_code == 302 and response["Location"] == "/account/"


def test_an_unavailable_method_cannot_be_chosen(client, sms_user, sms_outbox, clock):
    password_step(client, sms_user)
    response = client.post("/login/verify/methods/", {"method": "totp"}, follow=True)
    assert "This method is not available." in response.content.decode()
    assert PendingLogin.objects.get().method == "sms"
