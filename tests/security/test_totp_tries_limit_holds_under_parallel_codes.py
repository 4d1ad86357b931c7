"""Issue 11, item 4: parallel second-step requests cannot check more authenticator-app
codes than one login attempt allows (5), nor more than the factor's lock (100
consecutive failures) allows.

Before the fix the attempt's failures were read, the code checked, and the count written
back as "read + 1": 22 codes were checked in one login against 5.
"""

import pytest
from django.test import Client

from sealbox.audit.models import Event
from sealbox.twofactor import services
from sealbox.twofactor.models import FactorLock, PendingLogin
from tests.security.drafts import browser_with_cookies, cookies_of
from tests.security.in_parallel import in_parallel
from tests.twofactor.conftest import enable_totp, password_step, totp_code

pytestmark = pytest.mark.django_db(transaction=True)


def pending_session(user) -> dict:
    """The cookies of a browser that has passed the password step."""
    browser = Client()
    response = password_step(browser, user)
    assert response["Location"] == "/login/verify/"
    return cookies_of(browser)


def post_code(cookies: dict, code: str) -> str:
    response = browser_with_cookies(cookies).post("/login/verify/", {"code": code})
    if response.status_code == 302:
        return "logged in" if response["Location"] != "/login/" else "expired"
    page = response.content.decode()
    if "mistyped too many times" in page:
        return "exhausted"
    if "This method is locked" in page:
        return "locked"
    return "wrong"


def wrong_codes(device, clock, count: int) -> list[str]:
    right = {totp_code(device, clock.current, steps) for steps in (-1, 0, 1)}
    codes = [f"{n:06d}" for n in range(100000, 100000 + count + 3)]
    return [code for code in codes if code not in right][:count]


def test_twenty_two_parallel_codes_check_exactly_five(user, clock):
    device = enable_totp(user)
    cookies = pending_session(user)
    codes = wrong_codes(device, clock, 22)
    outcomes = in_parallel(22, lambda i: post_code(cookies, codes[i]))
    assert outcomes.count("logged in") == 0
    assert outcomes.count("exhausted") >= 17  # refused without a check, or the fifth
    failed = Event.objects.filter(action="twofactor.failed")
    assert failed.count() == services.MAX_CODE_FAILURES
    assert PendingLogin.objects.get().failures == services.MAX_CODE_FAILURES
    assert FactorLock.objects.get(user=user, factor="totp").failures == services.MAX_CODE_FAILURES
    # The right code is refused now in this attempt: its five tries are used up.
    assert post_code(cookies, totp_code(device, clock.current)) == "exhausted"
    assert not Event.objects.filter(action="login.succeeded").exists()


def test_parallel_codes_across_attempts_stop_at_the_factor_lock(user, clock, mailoutbox):
    device = enable_totp(user)
    FactorLock.objects.create(user=user, factor="totp", failures=services.LOCK_AFTER_FAILURES - 3)
    # Three login attempts, five codes each, all at once: only three tries were left.
    sessions = [pending_session(user) for _ in range(3)]
    codes = wrong_codes(device, clock, 15)
    outcomes = in_parallel(15, lambda i: post_code(sessions[i % 3], codes[i]))
    assert Event.objects.filter(action="twofactor.failed").count() == 3
    lock = FactorLock.objects.get(user=user, factor="totp")
    assert lock.failures == services.LOCK_AFTER_FAILURES
    assert lock.locked_at is not None
    assert outcomes.count("locked") >= 15 - 3  # every try that found no slot left
    assert Event.objects.filter(action="twofactor.locked").count() == 1
    locked_mails = [m for m in mailoutbox if "is locked" in m.subject]
    assert len(locked_mails) == 1
    assert post_code(sessions[0], totp_code(device, clock.current)) == "locked"
