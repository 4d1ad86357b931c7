"""Changing the phone, a factor or the password needs the password within 30 minutes."""

import pytest

from sealbox.audit.models import Event
from sealbox.twofactor.models import SMSDevice
from tests.conftest import PASSWORD
from tests.twofactor.conftest import enable_totp

pytestmark = pytest.mark.django_db

REAUTH = "/account/security/confirm-password/"


@pytest.fixture
def stale_client(clock, logged_in_client):
    """Logged in 31 minutes ago (the session itself is still alive)."""
    logged_in_client.get("/account/")
    clock.advance(minutes=31)
    return logged_in_client


def test_within_thirty_minutes_of_login_no_password_is_asked(clock, logged_in_client):
    clock.advance(minutes=30)
    response = logged_in_client.get("/account/security/authenticator/")
    assert response.status_code == 200


@pytest.mark.parametrize(
    "url",
    ["/account/password/", "/account/security/authenticator/"],
)
def test_pages_that_change_factors_or_password_ask_for_the_password(stale_client, url):
    response = stale_client.get(url)
    assert response.status_code == 302
    assert response["Location"] == f"{REAUTH}?next={url.replace('/', '%2F')}"


@pytest.mark.parametrize(
    "url",
    [
        "/account/security/recovery-codes/",
        "/account/security/authenticator/remove/",
        "/account/security/passkeys/1/remove/",
    ],
)
def test_posts_that_change_factors_ask_for_the_password(stale_client, url):
    response = stale_client.post(url)
    assert response.status_code == 302
    assert response["Location"].startswith(f"{REAUTH}?next=")


def test_json_endpoints_answer_403_with_where_to_confirm(stale_client):
    response = stale_client.post(
        "/account/security/passkeys/begin/", HTTP_ACCEPT="application/json"
    )
    assert response.status_code == 403
    assert response.json()["reauth_url"].startswith(REAUTH)


def test_changing_the_phone_asks_for_the_password_first(stale_client, user, sms_outbox):
    response = stale_client.post(
        "/account/",
        {
            "twofactor-enabled": "on",
            "twofactor-mobile_phone": "514 555 0100",
            "twofactor_action": "save",
        },
    )
    assert response["Location"] == f"{REAUTH}?next=%2Faccount%2F"
    assert len(sms_outbox) == 0
    assert not SMSDevice.objects.exists()


def test_the_password_opens_a_new_thirty_minute_window(stale_client, user, clock):
    page = stale_client.get(f"{REAUTH}?next=/account/security/authenticator/").content.decode()
    assert '<label for="id_password">Password</label>' in page
    response = stale_client.post(
        REAUTH, {"password": PASSWORD, "next": "/account/security/authenticator/"}
    )
    assert response["Location"] == "/account/security/authenticator/"
    assert stale_client.get("/account/security/authenticator/").status_code == 200
    assert Event.objects.filter(action="twofactor.reauthenticated").count() == 1
    clock.advance(minutes=31)
    assert stale_client.get("/account/security/authenticator/").status_code == 302


def test_a_wrong_password_is_refused_and_counted(stale_client, user):
    response = stale_client.post(REAUTH, {"password": "not the password", "next": "/account/"})
    assert "Your password is not correct." in response.content.decode()
    assert Event.objects.filter(action="twofactor.reauth_failed").count() == 1
    assert stale_client.get("/account/security/authenticator/").status_code == 302


def test_ten_wrong_passwords_in_five_minutes_are_throttled(stale_client):
    for _ in range(10):
        stale_client.post(REAUTH, {"password": "wrong", "next": "/account/"})
    response = stale_client.post(REAUTH, {"password": PASSWORD, "next": "/account/"})
    assert "Too many attempts." in response.content.decode()


def test_reauth_does_not_follow_links_to_other_sites(stale_client):
    response = stale_client.post(REAUTH, {"password": PASSWORD, "next": "https://evil.example/"})
    assert response["Location"] == "/account/security/"


def test_the_second_factor_at_login_counts_as_recent(client, user, clock):
    from tests.twofactor.conftest import password_step, totp_code

    device = enable_totp(user)
    password_step(client, user)
    clock.advance(minutes=9)
    client.post("/login/verify/", {"code": totp_code(device, clock.current)})
    clock.advance(minutes=29)
    assert client.get("/account/security/authenticator/").status_code == 200
