"""One error type, one handler: every app's refusal reaches the API as
`{"error": code, "message": …}` with the status and Retry-After it carries."""

from __future__ import annotations

import json

import pytest
from django.test import Client

from sealbox.accounts.services import AccountError
from sealbox.exchange.errors import ExchangeError
from sealbox.lib.errors import SealboxError, StorageUnavailable
from sealbox.twofactor.services import TwoFactorError
from tests.accounts.test_users_admin import login

pytestmark = pytest.mark.django_db


def call(client: Client, method: str, path: str, body: dict | None = None):
    return client.generic(
        method.upper(), path, json.dumps(body or {}), content_type="application/json"
    )


@pytest.mark.parametrize("kind", [AccountError, ExchangeError, TwoFactorError, StorageUnavailable])
def test_every_app_error_is_a_sealbox_error(kind):
    assert issubclass(kind, SealboxError)


def test_a_raise_site_overrides_the_class_defaults_and_only_for_itself():
    assert (AccountError("x").status, AccountError("x").code) == (409, "refused")
    assert (TwoFactorError("x").status, TwoFactorError("x").code) == (403, "refused")
    error = AccountError("x", status=403, code="forbidden", field="email", retry_after=5)
    assert (error.status, error.code, error.field, error.retry_after, error.message) == (
        403,
        "forbidden",
        "email",
        5,
        "x",
    )
    assert AccountError("y").status == 409


def test_users_api_refusals_carry_their_code(admin_user, user, organisation):
    client = login(admin_user)
    created = call(client, "post", "/api/v1/users", {"email": "api@example.com"})
    assert created.status_code == 201, created.content
    again = call(client, "post", "/api/v1/users", {"email": "api@example.com"})
    assert again.status_code == 409
    assert again.json()["error"] == "email_taken"
    assert "already exists" in again.json()["message"]

    mine = call(client, "post", f"/api/v1/users/{admin_user.pk}/disable")
    assert mine.status_code == 409
    assert mine.json()["error"] in ("last_admin", "own_account")

    organisation.seats = 2
    organisation.save()
    full = call(client, "post", "/api/v1/users", {"email": "third@example.com"})
    assert (full.status_code, full.json()["error"]) == (409, "no_free_seat")


def test_users_api_answers_a_member_with_forbidden(user):
    response = call(login(user), "get", "/api/v1/users")
    assert response.status_code == 403
    assert response.json() == {
        "error": "forbidden",
        "message": "Only administrators of the organisation can do this.",
    }


def test_a_field_at_fault_still_answers_as_a_validation_error(admin_user, user):
    response = call(login(admin_user), "patch", f"/api/v1/users/{user.pk}", {"sms_country": "ZZ"})
    assert response.status_code == 422
    body = response.json()
    assert body["error"] == "invalid" and body["details"][0]["field"] == "sms_country"
