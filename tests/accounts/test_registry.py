"""accounts works with what the apps above it hand over at ready(), and without it: the
login's second step, the account page's sections, the licence's message counts."""

from __future__ import annotations

import pytest
from django.test import Client

from sealbox.accounts import reauth, registry
from sealbox.accounts.registry import AccountSection, UsageCounter
from sealbox.twofactor import services as twofactor
from sealbox.twofactor.models import SMSDevice
from tests.conftest import PASSWORD
from tests.twofactor.conftest import enable_totp

pytestmark = pytest.mark.django_db


@pytest.fixture
def empty_registry(monkeypatch):
    """accounts as if no app above it were installed."""
    monkeypatch.setattr(registry, "_registry", registry._Registry())
    return registry._registry


def test_twofactor_and_exchange_hand_their_parts_over_at_ready():
    from sealbox.exchange import usage
    from sealbox.twofactor import views

    assert views.second_step in registry._registry.second_steps
    assert views.account_section in registry._registry.account_sections
    assert usage.COUNTER in registry._registry.usage_counters


def test_with_no_second_step_registered_the_password_opens_the_session(empty_registry, user):
    enable_totp(user)
    client = Client()
    response = client.post("/login/", {"email": user.email, "password": PASSWORD})
    assert response.status_code == 302
    assert response["Location"] != "/login/verify/"
    assert client.session["_auth_user_id"] == str(user.pk)


def test_the_first_step_that_applies_takes_over_the_login(empty_registry, user):
    from django.http import HttpResponse

    seen = []
    registry.register_second_step(lambda request, u, next_url: seen.append(u) and None)
    registry.register_second_step(lambda request, u, next_url: HttpResponse("step", status=299))
    client = Client()
    response = client.post("/login/", {"email": user.email, "password": PASSWORD})
    assert (response.status_code, seen) == (299, [user])
    assert "_auth_user_id" not in client.session


def test_the_account_page_draws_what_is_registered_and_only_that(empty_registry, user):
    client = Client()
    client.post("/login/", {"email": user.email, "password": PASSWORD})
    page = client.get("/account/").content.decode()
    assert "twofactor-phone" not in page  # twofactor's section is not registered here
    registry.register_account_section(
        lambda request: AccountSection(template="twofactor/includes/account_phone_section.html")
    )
    assert 'class="twofactor-phone"' in client.get("/account/").content.decode()


def test_a_section_that_answers_its_own_post_stops_the_profile_form(empty_registry, user):
    from django.shortcuts import redirect

    registry.register_account_section(
        lambda request: AccountSection(
            template="twofactor/includes/account_phone_section.html",
            handled=request.method == "POST",
            response=redirect("/elsewhere/") if request.method == "POST" else None,
        )
    )
    client = Client()
    client.post("/login/", {"email": user.email, "password": PASSWORD})
    response = client.post("/account/", {"profile-first_name": "Changed"})
    assert response["Location"] == "/elsewhere/"
    user.refresh_from_db()
    assert user.first_name == "Alice"


def test_the_licence_counts_what_the_registered_counters_count(empty_registry, organisation):
    from sealbox.accounts import services as accounts

    assert accounts.messages_sent_this_month(organisation) == 0
    registry.register_usage_counter(UsageCounter(lambda org, since: 3, lambda user: None))
    registry.register_usage_counter(UsageCounter(lambda org, since: 4, lambda user: None))
    assert accounts.messages_sent_this_month(organisation) == 7


def test_changing_the_phone_outside_the_window_is_refused_by_the_service(rf, user, clock):
    """The rule is twofactor's services', not the page's: any caller meets it."""
    request = rf.post("/account/")
    request.user = user
    request.session = {}
    with pytest.raises(reauth.ReauthRequired):
        twofactor.start_phone_confirmation(request, user, "+15145550100")
    with pytest.raises(reauth.ReauthRequired):
        twofactor.change_mobile_phone(request, user, "+15145550100")
    assert not SMSDevice.objects.exists()
    user.refresh_from_db()
    assert str(user.mobile_phone or "") == ""
    reauth.mark_authenticated(request)
    assert twofactor.change_mobile_phone(request, user, "+15145550100") is True
