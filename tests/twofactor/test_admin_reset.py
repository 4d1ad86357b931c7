"""An administrator resets another user's second factors (same organisation only)."""

import pytest
from django.test import Client
from django_otp.plugins.otp_totp.models import TOTPDevice

from sealbox.accounts.models import Role
from sealbox.audit.models import Event
from sealbox.twofactor import services
from sealbox.twofactor.models import FactorLock, RecoveryCodeDevice, SMSDevice
from tests.twofactor.conftest import enable_sms, enable_totp, password_step, totp_code

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_client(admin_user, clock):
    client = Client()
    password_step(client, admin_user)
    return client


@pytest.fixture
def member_with_factors(user, rf, clock):
    enable_sms(user)
    enable_totp(user)
    request = rf.post("/")
    services.generate_recovery_codes(request, user)
    FactorLock.objects.create(user=user, factor="sms", failures=100, locked_at=clock.current)
    return user


def test_the_security_page_lists_users_with_a_reset_link(admin_client, member_with_factors):
    page = admin_client.get("/account/security/").content.decode()
    assert "alice@example.com" in page
    assert f'href="/account/security/users/{member_with_factors.pk}/reset/"' in page
    assert "locked" in page


def test_an_administrator_resets_a_members_factors(admin_client, member_with_factors, mailoutbox):
    user = member_with_factors
    url = f"/account/security/users/{user.pk}/reset/"
    page = admin_client.get(url).content.decode()
    assert "Reset second factors" in page
    mailoutbox.clear()
    response = admin_client.post(url, follow=True)
    assert "were reset" in response.content.decode()
    assert not SMSDevice.objects.filter(user=user).exists()
    assert not TOTPDevice.objects.filter(user=user).exists()
    assert not RecoveryCodeDevice.objects.filter(user=user).exists()
    assert not FactorLock.objects.filter(user=user).exists()
    event = Event.objects.get(action="twofactor.reset")
    assert event.target_id == str(user.pk)
    assert event.details == {"methods": ["sms", "totp", "recovery"]}
    assert [mail.subject for mail in mailoutbox] == [
        "Sealbox: your two-factor authentication was reset"
    ]
    assert mailoutbox[0].to == [user.email]
    # The user logs in with the password alone, and can set up a new factor.
    client = Client()
    assert password_step(client, user)["Location"] == "/account/"


def test_another_organisations_administrator_gets_404(
    other_organisation, make_user, member_with_factors, clock
):
    outsider = make_user("boss@other.example", org=other_organisation, role=Role.ADMIN)
    client = Client()
    password_step(client, outsider)
    url = f"/account/security/users/{member_with_factors.pk}/reset/"
    assert client.get(url).status_code == 404
    assert client.post(url).status_code == 404
    assert SMSDevice.objects.filter(user=member_with_factors).exists()
    assert not Event.objects.filter(action="twofactor.reset").exists()


def test_members_cannot_reset_anyone(make_user, member_with_factors, clock):
    other = make_user("bob@example.com")
    client = Client()
    password_step(client, other)
    url = f"/account/security/users/{member_with_factors.pk}/reset/"
    assert client.get(url).status_code == 403
    assert client.post(url).status_code == 403
    assert SMSDevice.objects.filter(user=member_with_factors).exists()


def test_administrators_use_their_own_page_for_themselves(admin_client, admin_user, clock):
    device = enable_totp(admin_user)
    response = admin_client.post(f"/account/security/users/{admin_user.pk}/reset/", follow=True)
    assert "Use your own security settings" in response.content.decode()
    assert TOTPDevice.objects.filter(pk=device.pk).exists()


def test_a_reset_ends_pending_logins(admin_client, member_with_factors, clock):
    user = member_with_factors
    FactorLock.objects.all().delete()
    pending_client = Client()
    password_step(pending_client, user)
    admin_client.post(f"/account/security/users/{user.pk}/reset/")
    device = enable_totp(user)
    response = pending_client.post("/login/verify/", {"code": totp_code(device, clock.current)})
    assert response["Location"] == "/login/"
    assert "_auth_user_id" not in pending_client.session
