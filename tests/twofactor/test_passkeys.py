"""Passkeys and security keys: add, name, remove, and use at login."""

import json

import pytest
from django.test import Client
from django_otp_webauthn.models import WebAuthnCredential

from sealbox.audit.models import Event
from sealbox.twofactor import services
from tests.twofactor.conftest import password_step
from tests.twofactor.softauthn import SoftAuthenticator, b64url

pytestmark = pytest.mark.django_db

JSON = {"content_type": "application/json", "HTTP_ACCEPT": "application/json"}


def register(client, authenticator, name="Laptop", **create_options):
    options = client.post("/account/security/passkeys/begin/", **JSON).json()
    credential = authenticator.create(options, **create_options)
    return client.post(
        "/account/security/passkeys/complete/",
        json.dumps({"name": name, "credential": credential}),
        **JSON,
    )


@pytest.fixture
def passkey_user(clock, logged_in_client, user):
    authenticator = SoftAuthenticator()
    response = register(logged_in_client, authenticator)
    assert response.status_code == 200, response.content
    logged_in_client.post("/logout/")
    user.authenticator = authenticator
    return user


def test_adding_a_passkey(clock, logged_in_client, user, mailoutbox):
    authenticator = SoftAuthenticator()
    options = logged_in_client.post("/account/security/passkeys/begin/", **JSON).json()
    assert options["rp"] == {"name": "Sealbox", "id": "testserver"}
    assert options["user"]["name"] == user.email
    credential = authenticator.create(options)
    response = logged_in_client.post(
        "/account/security/passkeys/complete/",
        json.dumps({"name": "Laptop", "credential": credential}),
        **JSON,
    )
    assert response.status_code == 200
    assert response.json()["redirect_url"] == "/account/security/"
    device = WebAuthnCredential.objects.get(user=user)
    assert device.name == "Laptop" and device.confirmed
    assert Event.objects.get(action="twofactor.enabled").details == {
        "method": "passkey",
        "name": "Laptop",
    }
    assert [m.subject for m in mailoutbox] == ["Sealbox: a second factor was added to your account"]
    page = logged_in_client.get("/account/security/").content.decode()
    assert "Laptop" in page and "Remove Laptop" in page


def test_a_passkey_for_another_site_is_refused(clock, logged_in_client, user):
    response = register(logged_in_client, SoftAuthenticator(), origin="https://evil.example")
    assert response.status_code == 400
    assert "The passkey could not be added" in response.json()["detail"]
    assert not WebAuthnCredential.objects.exists()


def test_completing_without_beginning_is_refused(clock, logged_in_client):
    credential = SoftAuthenticator().create(
        {"user": {"id": b64url(b"x")}, "challenge": b64url(b"made up")}
    )
    response = logged_in_client.post(
        "/account/security/passkeys/complete/", json.dumps({"credential": credential}), **JSON
    )
    assert response.status_code == 400
    assert not WebAuthnCredential.objects.exists()


def test_logging_in_with_a_passkey(passkey_user, client, clock):
    response = password_step(client, passkey_user)
    assert response["Location"] == "/login/verify/"
    page = client.get("/login/verify/").content.decode()
    assert "Use a passkey" in page
    assert "sealbox/js/passkeys.js" in page
    options = client.post("/login/verify/passkey/begin/", **JSON).json()
    assert options["rpId"] == "testserver"
    assert [c["id"] for c in options["allowCredentials"]] == [
        b64url(passkey_user.authenticator.credential_id)
    ]
    assertion = passkey_user.authenticator.get(options)
    response = client.post("/login/verify/passkey/complete/", json.dumps(assertion), **JSON)
    assert response.status_code == 200
    assert response.json() == {"redirect_url": "/account/"}
    assert client.session["_auth_user_id"] == str(passkey_user.pk)
    assert Event.objects.filter(action="twofactor.verified").get().details == {"method": "passkey"}


def test_a_tampered_assertion_is_refused_and_audited(passkey_user, client, clock):
    password_step(client, passkey_user)
    options = client.post("/login/verify/passkey/begin/", **JSON).json()
    assertion = passkey_user.authenticator.get(options, tamper=True)
    response = client.post("/login/verify/passkey/complete/", json.dumps(assertion), **JSON)
    assert response.status_code == 400
    assert "could not be verified" in response.json()["detail"]
    assert "_auth_user_id" not in client.session
    assert Event.objects.filter(action="twofactor.failed").get().details["method"] == "passkey"


def test_a_challenge_is_used_once(passkey_user, client, clock):
    password_step(client, passkey_user)
    options = client.post("/login/verify/passkey/begin/", **JSON).json()
    assertion = passkey_user.authenticator.get(options, origin="https://evil.example")
    client.post("/login/verify/passkey/complete/", json.dumps(assertion), **JSON)
    good = passkey_user.authenticator.get(options)
    response = client.post("/login/verify/passkey/complete/", json.dumps(good), **JSON)
    assert response.status_code == 400
    assert "_auth_user_id" not in client.session


def test_another_users_passkey_does_not_log_this_user_in(passkey_user, make_user, clock):
    other = make_user("bob@example.com")
    bob_client = Client()
    password_step(bob_client, other)
    register(bob_client, SoftAuthenticator(), name="Bob's key")
    bob_client.post("/logout/")
    password_step(bob_client, other)
    options = bob_client.post("/login/verify/passkey/begin/", **JSON).json()
    # Alice's authenticator answers Bob's challenge: the credential is not Bob's.
    assertion = passkey_user.authenticator.get(options)
    response = bob_client.post("/login/verify/passkey/complete/", json.dumps(assertion), **JSON)
    assert response.status_code == 400
    assert "_auth_user_id" not in bob_client.session


def test_passkey_login_expires_with_the_pending_login(passkey_user, client, clock):
    password_step(client, passkey_user)
    options = client.post("/login/verify/passkey/begin/", **JSON).json()
    clock.advance(minutes=10)
    assertion = passkey_user.authenticator.get(options)
    response = client.post("/login/verify/passkey/complete/", json.dumps(assertion), **JSON)
    assert response.status_code == 400
    assert response.json()["redirect_url"] == "/login/"


def test_renaming_and_removing_a_passkey(clock, logged_in_client, user, mailoutbox):
    register(logged_in_client, SoftAuthenticator(), name="Laptop")
    device = WebAuthnCredential.objects.get(user=user)
    logged_in_client.post(
        f"/account/security/passkeys/{device.pk}/rename/", {"name": "Work laptop"}
    )
    device.refresh_from_db()
    assert device.name == "Work laptop"
    mailoutbox.clear()
    response = logged_in_client.post(f"/account/security/passkeys/{device.pk}/remove/", follow=True)
    assert "The passkey was removed." in response.content.decode()
    assert not WebAuthnCredential.objects.exists()
    assert Event.objects.filter(action="twofactor.disabled").get().details == {
        "method": "passkey",
        "name": "Work laptop",
    }
    assert [m.subject for m in mailoutbox] == [
        "Sealbox: a second factor was removed from your account"
    ]


def test_another_users_passkey_is_404(clock, logged_in_client, make_user):
    other = make_user("bob@example.com")
    other_client = Client()
    password_step(other_client, other)
    register(other_client, SoftAuthenticator(), name="Bob's key")
    device = WebAuthnCredential.objects.get(user=other)
    assert (
        logged_in_client.post(f"/account/security/passkeys/{device.pk}/remove/").status_code == 404
    )
    assert (
        logged_in_client.post(
            f"/account/security/passkeys/{device.pk}/rename/", {"name": "x"}
        ).status_code
        == 404
    )
    assert WebAuthnCredential.objects.filter(pk=device.pk, name="Bob's key").exists()


def test_the_last_passkey_stays_when_2fa_is_required(clock, logged_in_client, user):
    register(logged_in_client, SoftAuthenticator())
    user.organisation.require_2fa = True
    user.organisation.save()
    device = WebAuthnCredential.objects.get(user=user)
    response = logged_in_client.post(f"/account/security/passkeys/{device.pk}/remove/", follow=True)
    assert "Your organisation requires two-factor authentication" in response.content.decode()
    assert services.passkeys(user).count() == 1
