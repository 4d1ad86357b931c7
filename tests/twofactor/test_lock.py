"""After 100 consecutive failures a factor is locked until an administrator resets it."""

import pytest
from django.test import Client

from sealbox.audit.models import Event
from sealbox.twofactor import services
from sealbox.twofactor.models import FactorLock
from tests.twofactor.conftest import enable_sms, enable_totp, password_step, totp_code

pytestmark = pytest.mark.django_db


def wrong_totp(device, clock):
    return totp_code(device, clock.current, steps=4)


def test_one_hundred_wrong_app_codes_in_a_row_lock_the_factor(user, clock, mailoutbox):
    device = enable_totp(user)
    client = Client()
    for attempt in range(20):  # 5 wrong tries per login attempt, then the password again
        password_step(client, user)
        for _ in range(5):
            response = client.post("/login/verify/", {"code": wrong_totp(device, clock)})
        clock.advance(seconds=31)
        if attempt < 19:
            assert not services.is_locked(user, "totp")
    assert "This method is locked after too many wrong codes." in response.content.decode()
    assert FactorLock.objects.get(user=user, factor="totp").failures == 100
    assert Event.objects.filter(action="twofactor.locked").get().details == {
        "method": "totp",
        "failures": 100,
    }
    assert "Sealbox: a second factor of your account is locked" in [m.subject for m in mailoutbox]
    # Even the right code is refused now, in a new attempt too.
    password_step(client, user)
    response = client.post("/login/verify/", {"code": totp_code(device, clock.current)})
    assert "This method is locked" in response.content.decode()
    assert "_auth_user_id" not in client.session


def test_ninety_nine_failures_then_a_success_start_the_count_again(user, clock):
    device = enable_totp(user)
    FactorLock.objects.create(user=user, factor="totp", failures=99)
    client = Client()
    password_step(client, user)
    assert (
        client.post("/login/verify/", {"code": totp_code(device, clock.current)}).status_code == 302
    )
    lock = FactorLock.objects.get(user=user, factor="totp")
    assert (lock.failures, lock.locked_at) == (0, None)


def test_sms_failures_count_towards_the_lock(user, sms_outbox, clock):
    enable_sms(user)
    FactorLock.objects.create(user=user, factor="sms", failures=95)
    client = Client()
    password_step(client, user)
    code = sms_outbox.last_code()
    wrong = "000000" if code != "000000" else "111111"
    for _ in range(4):
        client.post("/login/verify/", {"code": wrong})
    assert not services.is_locked(user, "sms")
    response = client.post("/login/verify/", {"code": wrong})
    assert services.is_locked(user, "sms")
    assert "This method is locked" in response.content.decode()
    # A locked SMS factor sends no more codes.
    clock.advance(minutes=1)
    password_step(client, user)
    assert len(sms_outbox) == 1


def test_expired_codes_do_not_count_as_guesses(user, sms_outbox, clock):
    enable_sms(user)
    client = Client()
    password_step(client, user)
    code = sms_outbox.last_code()
    clock.advance(minutes=10)
    client.post("/login/verify/", {"code": code})
    assert not FactorLock.objects.filter(user=user, factor="sms", failures__gt=0).exists()


def test_another_method_still_works_while_one_is_locked(user, sms_outbox, clock):
    enable_sms(user)
    device = enable_totp(user)
    FactorLock.objects.create(user=user, factor="sms", failures=100, locked_at=clock.current)
    client = Client()
    password_step(client, user)
    # The default method skips the locked factor, and no SMS is sent.
    assert len(sms_outbox) == 0
    assert (
        client.post("/login/verify/", {"code": totp_code(device, clock.current)}).status_code == 302
    )


def test_an_administrator_reset_lifts_the_lock(user, admin_user, clock, rf):
    enable_totp(user)
    FactorLock.objects.create(user=user, factor="totp", failures=100, locked_at=clock.current)
    request = rf.post("/")
    services.reset_factors(request, admin_user, user)
    assert not FactorLock.objects.filter(user=user).exists()
    assert not services.is_locked(user, "totp")
