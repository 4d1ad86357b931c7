"""Authenticator apps (TOTP): 160-bit secret, 30 s, 6 digits, ±1 step, no replay."""

import base64

import pytest
from django.test import Client
from django_otp.plugins.otp_totp.models import TOTPDevice

from sealbox.audit.models import Event
from sealbox.twofactor import services
from tests.twofactor.conftest import enable_totp, password_step, totp_code

pytestmark = pytest.mark.django_db


def test_a_new_authenticator_gets_a_160_bit_secret_30_s_6_digits_1_step(user):
    device = services.start_totp_setup(user)
    assert len(device.bin_key) == 20
    assert (device.step, device.digits, device.tolerance, device.confirmed) == (30, 6, 1, False)
    other = services.start_totp_setup(user)
    assert other.pk == device.pk  # the same set-up until it is confirmed
    assert services.start_totp_setup(user.__class__.objects.get(pk=user.pk)).key == device.key


def test_secrets_differ_between_users(user, make_user):
    other = make_user("bob@example.com")
    assert services.start_totp_setup(user).key != services.start_totp_setup(other).key


def test_the_setup_page_shows_a_qr_code_and_the_key(logged_in_client, user, clock):
    page = logged_in_client.get("/account/security/authenticator/").content.decode()
    device = TOTPDevice.objects.get(user=user)
    key = base64.b32encode(device.bin_key).decode()
    assert 'src="data:image/svg+xml' in page
    assert 'alt="QR code to add Sealbox to your authenticator app"' in page
    assert " ".join(key[i : i + 4] for i in range(0, len(key), 4)) in page
    assert '<label for="id_code">Code</label>' in page


def test_the_first_code_confirms_the_app(logged_in_client, user, clock, mailoutbox):
    logged_in_client.get("/account/security/authenticator/")
    device = TOTPDevice.objects.get(user=user)
    response = logged_in_client.post(
        "/account/security/authenticator/", {"code": totp_code(device, clock.current)}, follow=True
    )
    assert "Your authenticator app is set up." in response.content.decode()
    device.refresh_from_db()
    assert device.confirmed
    assert Event.objects.get(action="twofactor.enabled").details == {
        "method": "totp",
        "replaced": False,
    }
    assert services.needs_second_step(user)


def test_a_wrong_first_code_says_so(logged_in_client, user, clock):
    logged_in_client.get("/account/security/authenticator/")
    device = TOTPDevice.objects.get(user=user)
    wrong = totp_code(device, clock.current, steps=5)
    response = logged_in_client.post("/account/security/authenticator/", {"code": wrong})
    assert "This code is not correct." in response.content.decode()
    device.refresh_from_db()
    assert not device.confirmed


def test_a_new_app_replaces_the_old_one_once_confirmed(logged_in_client, user, clock):
    old = enable_totp(user)
    logged_in_client.get("/account/security/authenticator/")
    new = TOTPDevice.objects.get(user=user, confirmed=False)
    assert TOTPDevice.objects.filter(pk=old.pk).exists()  # not before confirmation
    logged_in_client.post(
        "/account/security/authenticator/", {"code": totp_code(new, clock.current)}
    )
    assert list(TOTPDevice.objects.filter(user=user)) == [new]


@pytest.mark.parametrize(
    ("steps", "accepted"), [(-2, False), (-1, True), (0, True), (1, True), (2, False)]
)
def test_codes_one_step_before_or_after_are_accepted_not_two(user, clock, steps, accepted):
    device = enable_totp(user)
    assert services.totp_matches(device, totp_code(device, clock.current, steps)) is accepted


@pytest.mark.parametrize(
    ("steps", "accepted"), [(-2, False), (-1, True), (0, True), (1, True), (2, False)]
)
def test_an_app_set_up_on_the_page_logs_in_one_step_either_side_not_two(
    logged_in_client, user, clock, steps, accepted
):
    """The whole journey: the set-up page makes the device, its first code confirms it;
    later, at the login, a code one step early or late still works, two steps does not."""
    logged_in_client.get("/account/security/authenticator/")
    device = TOTPDevice.objects.get(user=user)
    confirmed = logged_in_client.post(
        "/account/security/authenticator/", {"code": totp_code(device, clock.current)}
    )
    assert confirmed.status_code == 302
    clock.advance(seconds=10 * device.step)  # well past the confirming code (no replay)
    login = Client()
    assert password_step(login, user)["Location"] == "/login/verify/"
    response = login.post("/login/verify/", {"code": totp_code(device, clock.current, steps)})
    assert ("_auth_user_id" in login.session) is accepted
    assert (response.status_code == 302) is accepted


def test_a_used_code_is_refused_if_replayed(user, clock):
    device = enable_totp(user)
    code = totp_code(device, clock.current)
    first, second = Client(), Client()
    password_step(first, user)
    assert first.post("/login/verify/", {"code": code}).status_code == 302
    password_step(second, user)
    response = second.post("/login/verify/", {"code": code})
    assert "This code is not correct." in response.content.decode()
    assert "_auth_user_id" not in second.session
    # An older code (still inside the ±1 window) is refused too: time only moves forward.
    older = totp_code(device, clock.current, steps=-1)
    assert (
        "This code is not correct."
        in second.post("/login/verify/", {"code": older}).content.decode()
    )
    clock.advance(seconds=30)
    assert (
        second.post("/login/verify/", {"code": totp_code(device, clock.current)}).status_code == 302
    )


def test_login_with_an_authenticator_app(client, user, clock):
    device = enable_totp(user)
    response = password_step(client, user)
    assert response["Location"] == "/login/verify/"
    assert "authenticator app" in client.get("/login/verify/").content.decode()
    response = client.post("/login/verify/", {"code": totp_code(device, clock.current)})
    assert response.status_code == 302 and response["Location"] == "/account/"
    assert Event.objects.filter(action="twofactor.verified").get().details == {"method": "totp"}


def test_five_wrong_app_codes_end_the_attempt(client, user, clock):
    device = enable_totp(user)
    password_step(client, user)
    wrong = totp_code(device, clock.current, steps=3)
    for _ in range(5):
        response = client.post("/login/verify/", {"code": wrong})
    assert "mistyped too many times" in response.content.decode()
    response = client.post("/login/verify/", {"code": totp_code(device, clock.current)})
    assert "mistyped too many times" in response.content.decode()
    assert "_auth_user_id" not in client.session


def test_removing_the_app(client, user, clock, mailoutbox):
    device = enable_totp(user)
    password_step(client, user)
    client.post("/login/verify/", {"code": totp_code(device, clock.current)})
    response = client.post("/account/security/authenticator/remove/", follow=True)
    assert "The authenticator app was removed." in response.content.decode()
    assert not TOTPDevice.objects.filter(user=user).exists()
    assert Event.objects.filter(action="twofactor.disabled").get().details == {"method": "totp"}
