"""Issue 11, item 4: parallel login attempts cannot check more passwords than the limits
(10 failures per account and per IP address in 5 minutes) and the growing delays allow.

Before the fix the limit was read, the password checked, and only then the failure
counted: 30 attempts sent at once all read "under the limit" and 17–18 passwords were
checked; the right password was accepted after 18 failures.
"""

import threading

import pytest
from django.test import Client

from sealbox.accounts import login, services
from sealbox.audit.models import Event
from tests.conftest import PASSWORD
from tests.hashers import FastArgon2PasswordHasher
from tests.security.in_parallel import in_parallel

pytestmark = pytest.mark.django_db(transaction=True)

WRONG = "not the right password"


@pytest.fixture
def password_checks(monkeypatch) -> list:
    """Every Argon2 verification (a password really checked), from any thread."""
    checked: list = []
    lock = threading.Lock()
    verify = FastArgon2PasswordHasher.verify

    def counting(self, password, encoded):
        with lock:
            checked.append(password)
        return verify(self, password, encoded)

    monkeypatch.setattr(FastArgon2PasswordHasher, "verify", counting)
    return checked


@pytest.fixture
def no_delays(monkeypatch):
    """Only the hard limit: the growing delays (tested below) would stop a burst sooner."""
    monkeypatch.setattr(login, "LOGIN_DELAY_AFTER", 1000)


def attempt(email: str, password: str, ip: str) -> str:
    response = Client().post("/login/", {"email": email, "password": password}, REMOTE_ADDR=ip)
    if response.status_code == 302:
        return "logged in"
    page = response.content.decode()
    return "throttled" if "Too many attempts" in page else "refused"


def test_thirty_parallel_wrong_passwords_check_exactly_ten(user, clock, password_checks, no_delays):
    outcomes = in_parallel(30, lambda i: attempt(user.email, WRONG, f"198.51.100.{i}"))
    assert sorted(outcomes) == ["refused"] * 10 + ["throttled"] * 20
    assert len(password_checks) == 10
    assert Event.objects.filter(action="login.failed").count() == 10
    # The right password is refused while the account is held, from any address.
    assert attempt(user.email, PASSWORD, "203.0.113.99") == "throttled"
    assert len(password_checks) == 10
    assert not Event.objects.filter(action="login.succeeded").exists()


def test_thirty_parallel_attempts_from_one_address_check_exactly_ten(clock, make_user, no_delays):
    victim = make_user("bob@example.com")
    outcomes = in_parallel(30, lambda i: attempt(f"user{i}@example.com", WRONG, "192.0.2.60"))
    assert sorted(outcomes) == ["refused"] * 10 + ["throttled"] * 20
    assert Event.objects.filter(action="login.failed").count() == 10
    assert attempt(victim.email, PASSWORD, "192.0.2.60") == "throttled"
    assert attempt(victim.email, PASSWORD, "192.0.2.61") == "logged in"


def test_the_growing_delays_hold_under_parallel_attempts(user, clock, password_checks):
    # Three failures are free; the fourth makes the next attempt wait 2 seconds. Twenty
    # attempts at once: exactly four are checked.
    outcomes = in_parallel(20, lambda i: attempt(user.email, WRONG, f"198.51.100.{i}"))
    assert outcomes.count("refused") == services.LOGIN_DELAY_AFTER + 1
    assert len(password_checks) == services.LOGIN_DELAY_AFTER + 1
    # Once the delay is over, the next burst gets exactly one more check.
    clock.advance(seconds=2)
    outcomes = in_parallel(20, lambda i: attempt(user.email, WRONG, f"198.51.100.{i}"))
    assert outcomes.count("refused") == 1
    assert len(password_checks) == services.LOGIN_DELAY_AFTER + 2
    assert Event.objects.filter(action="login.failed").count() == services.LOGIN_DELAY_AFTER + 2
