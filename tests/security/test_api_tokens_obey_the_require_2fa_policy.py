"""Issue 11, finding 9: "Require 2FA for all users" did not apply to API tokens. A token
carries no session, so the policy middleware never saw it: a user without a second
factor kept full API access through a token made before the policy was turned on.

Now every Bearer call checks the policy: such a token answers 403 with a JSON message
saying to set up a second factor, and works again once the user has one.
"""

from __future__ import annotations

import pytest
from django.test import Client

from sealbox.accounts import services as accounts
from sealbox.accounts.models import Role
from tests.twofactor.conftest import enable_totp

pytestmark = pytest.mark.django_db


def bearer(secret: str) -> Client:
    return Client(enforce_csrf_checks=True, headers={"Authorization": f"Bearer {secret}"})


@pytest.fixture
def token_of(rf):
    def make(user) -> str:
        _token, secret = accounts.create_api_token(rf.post("/"), user, "script", 30)
        return secret

    return make


def require_2fa(organisation, on: bool = True) -> None:
    organisation.require_2fa = on
    organisation.save(update_fields=["require_2fa"])


def test_a_token_stops_when_the_policy_is_on_and_works_again_with_a_factor(
    make_user, organisation, token_of
):
    admin = make_user("admin@example.com", role=Role.ADMIN)
    api = bearer(token_of(admin))
    assert api.get("/api/v1/users").status_code == 200

    require_2fa(organisation)
    for method, url in (("get", "/api/v1/users"), ("get", "/api/v1/envelopes")):
        response = getattr(api, method)(url)
        assert response.status_code == 403, url
        assert response["Content-Type"].startswith("application/json")
        body = response.json()
        assert body["error"] == "second_factor_required"
        assert "set up a second factor" in body["message"]
    response = api.post(
        "/api/v1/users", {"email": "new@example.com"}, content_type="application/json"
    )
    assert response.status_code == 403
    assert not organisation.users.filter(email="new@example.com").exists()

    enable_totp(admin)
    assert api.get("/api/v1/users").status_code == 200


def test_the_policy_off_again_lets_the_token_work(user, organisation, token_of):
    api = bearer(token_of(user))
    require_2fa(organisation)
    assert api.get("/api/v1/envelopes").status_code == 403
    require_2fa(organisation, False)
    assert api.get("/api/v1/envelopes").status_code == 200


def test_tokens_of_other_organisations_are_not_affected(
    make_user, organisation, other_organisation, token_of
):
    outsider = make_user("carol@other.example", org=other_organisation)
    api = bearer(token_of(outsider))
    require_2fa(organisation)
    assert api.get("/api/v1/envelopes").status_code == 200


def test_users_with_a_factor_keep_their_token(user, organisation, token_of):
    enable_totp(user)
    api = bearer(token_of(user))
    require_2fa(organisation)
    assert api.get("/api/v1/envelopes").status_code == 200


def test_the_message_speaks_the_callers_language(user, organisation, token_of):
    api = bearer(token_of(user))
    require_2fa(organisation)
    response = api.get("/api/v1/envelopes", headers={"Accept-Language": "fr"})
    assert response.status_code == 403
    assert "second facteur" in response.json()["message"]
