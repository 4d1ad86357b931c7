"""Session lifetime: 1 hour idle, 12 hours absolute; disabled users are logged out."""

import pytest

from sealbox.audit.models import Event

pytestmark = pytest.mark.django_db


def is_logged_in(client) -> bool:
    return client.get("/account/").status_code == 200


def test_idle_session_ends_after_one_hour(clock, logged_in_client):
    clock.advance(minutes=59)
    assert is_logged_in(logged_in_client)
    clock.advance(minutes=59)  # active again 59 minutes after the last request
    assert is_logged_in(logged_in_client)
    clock.advance(minutes=60, seconds=1)
    response = logged_in_client.get("/account/")
    assert response.status_code == 302
    assert response["Location"].startswith("/login/")
    assert Event.objects.filter(action="logout", details__reason="idle timeout").exists()


def test_session_ends_after_twelve_hours_even_when_active(clock, logged_in_client):
    for _ in range(23):
        clock.advance(minutes=30)
        assert is_logged_in(logged_in_client)
    clock.advance(minutes=29)  # 11 h 59 min
    assert is_logged_in(logged_in_client)
    clock.advance(minutes=1, seconds=1)
    assert not is_logged_in(logged_in_client)
    assert Event.objects.filter(action="logout", details__reason="session lifetime").exists()


def test_cookie_lifetime_matches_the_absolute_limit(client, user):
    from tests.conftest import PASSWORD

    response = client.post("/login/", {"email": user.email, "password": PASSWORD})
    cookie = response.cookies["sealbox_session"]
    assert int(cookie["max-age"]) == 12 * 3600
    assert cookie["httponly"]
    assert cookie["samesite"] == "Lax"


def test_disabled_user_is_logged_out_on_next_request(logged_in_client, user):
    assert is_logged_in(logged_in_client)
    user.is_active = False
    user.save()
    assert not is_logged_in(logged_in_client)


def test_password_change_ends_other_sessions(client, user):
    from django.test import Client

    from tests.conftest import PASSWORD

    other = Client()
    other.post("/login/", {"email": user.email, "password": PASSWORD})
    client.post("/login/", {"email": user.email, "password": PASSWORD})
    response = client.post(
        "/account/password/",
        {"current_password": PASSWORD, "new_password": "a brand new passphrase 7"},
    )
    assert response.status_code == 302
    assert is_logged_in(client)
    assert not is_logged_in(other)


def test_sessions_survive_a_secret_key_rotation_and_end_cleanly_without_the_fallback(
    client, user, secret_key
):
    from tests.conftest import PASSWORD

    assert client.post("/login/", {"email": user.email, "password": PASSWORD}).status_code == 302
    secret_key.rotate()
    assert is_logged_in(client)  # Django tried the fallback and moved the session on
    secret_key.drop_fallback()
    assert is_logged_in(client)  # moved to the new key on that request
    other = type(client)()
    secret_key.rotate()
    assert other.post("/login/", {"email": user.email, "password": PASSWORD}).status_code == 302
    secret_key.settings.SECRET_KEY = "a-third-secret-key-a-third-secret-key-0123456789"
    secret_key.settings.SECRET_KEY_FALLBACKS = []
    response = other.get("/account/")  # signed under a key no longer accepted
    assert response.status_code == 302 and response["Location"].startswith("/login/")
