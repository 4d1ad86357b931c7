"""Issue 11, item 4: the other limits in front of a password or an email hold under
parallel requests too: re-authentication (10 wrong passwords per account in 5 minutes)
and password-reset emails (5 per address per hour).

Before the fix both read the count, did the work, then counted.
"""

import pytest
from django.core import mail
from django.test import Client

from sealbox.audit.models import Event
from tests.conftest import PASSWORD
from tests.security.drafts import browser_with_cookies, cookies_of
from tests.security.in_parallel import in_parallel

pytestmark = pytest.mark.django_db(transaction=True)

REAUTH = "/account/security/confirm-password/"


def test_thirty_parallel_reauthentications_check_exactly_ten_passwords(user, clock):
    browser = Client()
    assert browser.post("/login/", {"email": user.email, "password": PASSWORD}).status_code == 302
    clock.advance(minutes=31)  # the login no longer counts as a recent password
    cookies = cookies_of(browser)

    def guess(n: int) -> str:
        response = browser_with_cookies(cookies).post(REAUTH, {"password": f"wrong guess {n}"})
        return "throttled" if "Too many attempts" in response.content.decode() else "wrong"

    outcomes = in_parallel(30, guess)
    assert sorted(outcomes) == ["throttled"] * 20 + ["wrong"] * 10
    assert Event.objects.filter(action="twofactor.reauth_failed").count() == 10
    response = browser_with_cookies(cookies).post(REAUTH, {"password": PASSWORD})
    assert "Too many attempts" in response.content.decode()


def test_twelve_parallel_reset_requests_send_five_emails(user, clock):
    in_parallel(12, lambda n: Client().post("/password-reset/", {"email": user.email}))
    assert len(mail.outbox) == 5
    assert Event.objects.filter(action="password.reset_requested").count() == 5
