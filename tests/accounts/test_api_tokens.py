"""Personal API tokens: Bearer on /api/v1/, shown once, stored hashed, revoke, expiry."""

from __future__ import annotations

import hashlib
import re
from datetime import timedelta

import pytest
from django.core import mail
from django.test import Client

from sealbox.accounts import services
from sealbox.accounts.models import ApiToken
from sealbox.audit.models import Event
from sealbox.client import messages as client
from sealbox.lib import clock
from tests.exchange.conftest import DjangoTransport

pytestmark = pytest.mark.django_db

TOKEN = re.compile(r"sbx_[A-Za-z0-9_-]{43}")


def bearer(secret: str) -> Client:
    # CSRF checks on: a Bearer call carries no cookie and needs no CSRF token.
    return Client(enforce_csrf_checks=True, headers={"Authorization": f"Bearer {secret}"})


def send_with(transport, **options):
    return client.send_message(
        transport,
        base_url="http://testserver",
        subject="Quarterly report",
        body="Numbers",
        recipients=[client.Recipient("client@example.org")],
        expires_at=clock.now() + timedelta(days=7),
        attachments=[],
        delivery="links",
        **options,
    )


def test_create_token_on_the_account_page_shows_it_once_and_stores_only_its_hash(
    logged_in_client, user
):
    response = logged_in_client.post(
        "/account/tokens/", {"token-name": "Backup script", "token-days": "30"}
    )
    assert response.status_code == 200
    assert "no-store" in response["Cache-Control"]
    secret = TOKEN.search(response.content.decode()).group(0)
    token = ApiToken.objects.get(user=user)
    assert token.token_hash == hashlib.sha256(secret.encode()).hexdigest()
    # Never stored in clear: not in the token row, not in any audit event, not in the session.
    assert secret not in str(list(ApiToken.objects.values_list()))
    assert secret not in str(list(Event.objects.values_list("details", flat=True)))
    assert secret not in str(dict(logged_in_client.session))
    page = logged_in_client.get("/account/").content.decode()
    assert secret not in page
    assert token.prefix in page and "Backup script" in page
    assert Event.objects.filter(action="api_token.created", actor_id=str(user.pk)).exists()
    assert "Backup script" in mail.outbox[-1].body  # security change: the user is told


def test_token_creation_needs_recent_reauthentication(clock, logged_in_client, user):
    clock.advance(minutes=31)
    response = logged_in_client.post("/account/tokens/", {"token-name": "x", "token-days": "30"})
    assert response.status_code == 302
    assert response["Location"].startswith("/account/security/confirm-password/")
    assert not ApiToken.objects.exists()


def test_bearer_token_gets_a_message_and_creates_one_with_the_python_client(user, clock):
    _, secret = services.create_api_token(None, user, "CLI", 30)
    sent = send_with(DjangoTransport(bearer(secret)))
    response = bearer(secret).get(f"/api/v1/messages/{sent.id}")
    assert response.status_code == 200, response.content
    assert response.json()["subject"] == "Quarterly report"
    token = ApiToken.objects.get()
    assert token.last_used_at == clock()


def test_bearer_calls_create_no_session_and_set_no_cookie(user):
    # A token is the whole authentication of a call: no session row is written for it and
    # nothing is put in a cookie jar (no session, CSRF or language cookie to carry along).
    from django.contrib.sessions.models import Session

    _, secret = services.create_api_token(None, user, "CLI", 30)
    sessions = Session.objects.count()
    caller = bearer(secret)
    sent = send_with(DjangoTransport(caller))
    assert caller.get(f"/api/v1/messages/{sent.id}").status_code == 200
    assert Session.objects.count() == sessions
    assert not caller.cookies, dict(caller.cookies)


def test_revoked_token_stops_working(user):
    token, secret = services.create_api_token(None, user, "CLI", 30)
    assert bearer(secret).get("/api/v1/users").status_code == 403  # authenticated, not admin
    services.revoke_api_token(None, user, token.pk)
    assert bearer(secret).get("/api/v1/users").status_code == 401
    assert Event.objects.filter(action="api_token.revoked").exists()


def test_revoke_from_the_account_page(logged_in_client, user):
    token, secret = services.create_api_token(None, user, "CLI", 30)
    response = logged_in_client.post(f"/account/tokens/{token.pk}/revoke/")
    assert response.status_code == 302
    token.refresh_from_db()
    assert token.revoked_at is not None
    assert bearer(secret).get("/api/v1/users").status_code == 401


def test_expired_token_stops_working(user, clock):
    _, secret = services.create_api_token(None, user, "CLI", 7)
    assert bearer(secret).get("/api/v1/users").status_code == 403
    clock.advance(days=7, seconds=1)
    assert bearer(secret).get("/api/v1/users").status_code == 401


def test_disabled_users_tokens_stop_at_once(user, admin_user):
    from sealbox.users import services as users

    _, secret = services.create_api_token(None, user, "CLI", 30)
    users.set_active(None, admin_user, user, False)
    assert bearer(secret).get("/api/v1/users").status_code == 401


def test_unknown_or_malformed_tokens_are_refused(user):
    assert bearer("sbx_" + "A" * 43).get("/api/v1/users").status_code == 401
    assert bearer("not-a-token").get("/api/v1/users").status_code == 401


def test_token_rules(user):
    with pytest.raises(services.AccountError):
        services.create_api_token(None, user, "  ", 30)
    with pytest.raises(services.AccountError):
        services.create_api_token(None, user, "x", 3)
    for n in range(services.MAX_TOKENS_PER_USER):
        services.create_api_token(None, user, f"t{n}", 7)
    with pytest.raises(services.AccountError):
        services.create_api_token(None, user, "one too many", 7)


def test_other_users_token_cannot_be_revoked(user, make_user):
    other = make_user("bob@example.com")
    token, _ = services.create_api_token(None, other, "CLI", 30)
    with pytest.raises(services.AccountError):
        services.revoke_api_token(None, user, token.pk)


def test_another_users_token_is_404_on_the_account_page(logged_in_client, user, make_user):
    other = make_user("bob@example.com")
    token, secret = services.create_api_token(None, other, "CLI", 30)
    response = logged_in_client.post(f"/account/tokens/{token.pk}/revoke/")
    assert response.status_code == 404
    token.refresh_from_db()
    assert token.revoked_at is None
    # One's own token, already revoked, is told as before.
    mine, _ = services.create_api_token(None, user, "mine", 30)
    logged_in_client.post(f"/account/tokens/{mine.pk}/revoke/")
    again = logged_in_client.post(f"/account/tokens/{mine.pk}/revoke/", follow=True)
    assert again.status_code == 200 and "No such token." in again.content.decode()
