"""Organisation policy "Require 2FA for all users" (administrators only)."""

import pytest
from django.test import Client

from sealbox.audit.models import Event
from sealbox.twofactor import services
from tests.twofactor.conftest import enable_totp, password_step, totp_code

pytestmark = pytest.mark.django_db


def test_administrators_see_the_policy_checkbox(client, admin_user, clock):
    password_step(client, admin_user)
    page = client.get("/account/security/").content.decode()
    assert "Require 2FA for all users" in page


def test_members_do_not_see_it_and_cannot_post_it(logged_in_client, user):
    page = logged_in_client.get("/account/security/").content.decode()
    assert "Require 2FA for all users" not in page
    response = logged_in_client.post("/account/security/organisation/", {"require_2fa": "on"})
    assert response.status_code == 403
    user.organisation.refresh_from_db()
    assert not user.organisation.require_2fa


def test_an_administrator_turns_it_on_and_it_is_audited(client, admin_user, clock):
    password_step(client, admin_user)
    response = client.post("/account/security/organisation/", {"require_2fa": "on"}, follow=True)
    assert "Two-factor authentication is now required for all users." in response.content.decode()
    admin_user.organisation.refresh_from_db()
    assert admin_user.organisation.require_2fa
    event = Event.objects.get(action="twofactor.policy_changed")
    assert event.details == {"require_2fa": True}
    assert event.actor_id == str(admin_user.pk)


def test_another_organisations_admin_cannot_change_it(
    rf, organisation, other_organisation, make_user
):
    from django.core.exceptions import PermissionDenied

    from sealbox.accounts.models import Role

    outsider = make_user("boss@other.example", org=other_organisation, role=Role.ADMIN)
    with pytest.raises(PermissionDenied):
        services.set_require_2fa(rf.post("/"), outsider, organisation, True)


@pytest.fixture
def required(organisation):
    organisation.require_2fa = True
    organisation.save()
    return organisation


def test_a_user_without_a_factor_is_sent_to_set_one_up_and_can_do_nothing_else(
    required, client, user, clock
):
    response = password_step(client, user)
    assert response["Location"] == "/account/"
    response = client.get("/account/")
    assert response.status_code == 302 and response["Location"] == "/account/security/"
    for url in ("/account/password/", "/"):
        assert client.get(url)["Location"] == "/account/security/", url
    page = client.get("/account/security/").content.decode()
    assert "Your organisation requires two-factor authentication." in page
    assert client.get("/account/security/authenticator/").status_code == 200
    # Once a factor is set up, the rest of the portal opens.
    device = services.start_totp_setup(user)
    client.post("/account/security/authenticator/", {"code": totp_code(device, clock.current)})
    assert client.get("/account/").status_code == 200


def test_logging_out_stays_possible(required, client, user, clock):
    password_step(client, user)
    response = client.post("/logout/")
    assert response["Location"] == "/login/"
    assert "_auth_user_id" not in client.session


def test_users_with_a_factor_are_not_held(required, client, user, clock):
    device = enable_totp(user)
    password_step(client, user)
    client.post("/login/verify/", {"code": totp_code(device, clock.current)})
    assert client.get("/account/").status_code == 200


def test_the_last_factor_cannot_be_removed(required, client, user, clock):
    device = enable_totp(user)
    password_step(client, user)
    client.post("/login/verify/", {"code": totp_code(device, clock.current)})
    response = client.post("/account/security/authenticator/remove/", follow=True)
    assert "Your organisation requires two-factor authentication" in response.content.decode()
    assert services.totp_device(user) is not None


def test_other_organisations_are_not_affected(required, other_organisation, make_user, clock):
    outsider = make_user("carol@other.example", org=other_organisation)
    client = Client()
    password_step(client, outsider)
    assert client.get("/account/").status_code == 200


def test_a_required_user_can_set_up_sms_on_the_security_page(
    required, client, user, sms_outbox, clock
):
    password_step(client, user)
    page = client.get("/account/security/").content.decode()
    assert "Enable 2FA authentication" in page and "Mobile phone" in page
    client.post(
        "/account/security/",
        {
            "twofactor-enabled": "on",
            "twofactor-mobile_phone": "514 555 0100",
            "twofactor_action": "save",
        },
    )
    response = client.post(
        "/account/security/",
        {"twofactor-code": sms_outbox.last_code(), "twofactor_action": "verify"},
    )
    assert response["Location"] == "/account/security/"
    assert client.get("/account/").status_code == 200
