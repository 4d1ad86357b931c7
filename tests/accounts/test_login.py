"""Logging in: the password step, rate limits, no account enumeration, new session id."""

import pytest

from sealbox.accounts import services
from sealbox.audit.models import Event
from sealbox.ratelimit import services as ratelimit
from tests.conftest import PASSWORD

pytestmark = pytest.mark.django_db

WRONG = "not the right password"


def post_login(client, email, password, ip="203.0.113.7"):
    return client.post("/login/", {"email": email, "password": password}, REMOTE_ADDR=ip)


def test_login_page_has_labelled_fields(client):
    page = client.get("/login/").content.decode()
    assert '<label for="id_email">Email</label>' in page
    assert '<label for="id_password">Password</label>' in page
    assert ">Log in</button>" in page
    assert "Forgot your password?" in page


def test_successful_login_opens_the_account_page(client, user):
    response = post_login(client, "ALICE@example.com", PASSWORD)
    assert response.status_code == 302
    assert response["Location"] == "/account/"
    event = Event.objects.get(action="login.succeeded")
    assert event.actor_id == str(user.pk)
    assert event.ip == "203.0.113.7"


def test_login_issues_a_new_session_id(client, user):
    client.get("/login/")
    session = client.session
    session["before"] = "anonymous"
    session.save()
    before = session.session_key
    post_login(client, user.email, PASSWORD)
    assert client.session.session_key != before


def test_wrong_password_and_unknown_account_look_the_same(client, user):
    wrong = post_login(client, user.email, WRONG)
    unknown = post_login(client, "nobody@example.com", WRONG)
    assert wrong.status_code == unknown.status_code == 200
    message = "The email or password is not correct."
    assert message in wrong.content.decode()
    assert message in unknown.content.decode()
    assert Event.objects.filter(action="login.failed").count() == 2


def test_failed_login_keeps_the_email_typed(client, user):
    page = post_login(client, user.email, WRONG).content.decode()
    assert 'value="alice@example.com"' in page
    assert WRONG not in page


def test_inactive_user_cannot_log_in(client, user):
    user.is_active = False
    user.save()
    assert post_login(client, user.email, PASSWORD).status_code == 200
    assert "_auth_user_id" not in client.session


def wait_out_delay(clock, failures):
    """Advance exactly past the growing delay that `failures` failures impose."""
    if failures > services.LOGIN_DELAY_AFTER:
        clock.advance(seconds=2 ** (failures - services.LOGIN_DELAY_AFTER))


def test_account_limit_is_10_failures_in_5_minutes(client, user, clock):
    # Spread over different addresses so only the per-account rule applies; wait out the
    # growing delays between attempts (126 s in all: every failure stays in the window).
    for i in range(10):
        page = post_login(client, user.email, WRONG, ip=f"198.51.100.{i}").content.decode()
        assert "Too many attempts" not in page
        wait_out_delay(clock, i + 1)
    response = post_login(client, user.email, PASSWORD, ip="198.51.100.99")
    assert "Too many attempts" in response.content.decode()
    assert "_auth_user_id" not in client.session


def test_account_limit_counts_only_the_last_5_minutes(client, user, clock):
    for i in range(9):
        post_login(client, user.email, WRONG, ip=f"198.51.100.{i}")
    clock.advance(minutes=5, seconds=1)
    response = post_login(client, user.email, PASSWORD, ip="198.51.100.50")
    assert response.status_code == 302


def test_tenth_failure_blocks_then_window_frees(client, user, clock):
    for i in range(10):
        ratelimit.hit(services.LOGIN_FAILURES_PER_ACCOUNT, user.email)
    blocked = post_login(client, user.email, PASSWORD, ip="198.51.100.1")
    assert "Too many attempts. Try again in 5 minutes." in blocked.content.decode()
    clock.advance(minutes=4, seconds=59)
    assert (
        "Too many attempts"
        in post_login(client, user.email, PASSWORD, ip="198.51.100.2").content.decode()
    )
    clock.advance(seconds=2)
    assert post_login(client, user.email, PASSWORD, ip="198.51.100.3").status_code == 302


def test_unknown_accounts_are_throttled_the_same_way(client, clock):
    for i in range(10):
        ratelimit.hit(services.LOGIN_FAILURES_PER_ACCOUNT, "ghost@example.com")
    response = post_login(client, "ghost@example.com", WRONG, ip="198.51.100.9")
    assert "Too many attempts. Try again in 5 minutes." in response.content.decode()


def test_ip_limit_is_10_failures_in_5_minutes(client, make_user, clock):
    for i in range(10):
        ratelimit.hit(services.LOGIN_FAILURES_PER_IP, "192.0.2.44")
    victim = make_user("bob@example.com")
    response = post_login(client, victim.email, PASSWORD, ip="192.0.2.44")
    assert "Too many attempts" in response.content.decode()
    # Another address is not affected.
    assert post_login(client, victim.email, PASSWORD, ip="192.0.2.45").status_code == 302


def test_ip_limit_window_frees_after_5_minutes(client, make_user, clock):
    for _ in range(10):
        ratelimit.hit(services.LOGIN_FAILURES_PER_IP, "192.0.2.44")
    victim = make_user("bob@example.com")
    blocked = post_login(client, victim.email, PASSWORD, ip="192.0.2.44")
    assert "Too many attempts. Try again in 5 minutes." in blocked.content.decode()
    clock.advance(minutes=4, seconds=59)
    assert (
        "Too many attempts"
        in post_login(client, victim.email, PASSWORD, ip="192.0.2.44").content.decode()
    )
    clock.advance(seconds=2)
    assert post_login(client, victim.email, PASSWORD, ip="192.0.2.44").status_code == 302


def test_ip_limit_counts_failures_across_accounts(client, make_user, clock):
    for i in range(10):
        page = post_login(client, f"user{i}@example.com", WRONG, ip="192.0.2.60")
        assert "Too many attempts" not in page.content.decode()
        wait_out_delay(clock, i + 1)
    bob = make_user("bob@example.com")
    assert (
        "Too many attempts"
        in post_login(client, bob.email, PASSWORD, ip="192.0.2.60").content.decode()
    )


def test_delays_grow_after_the_third_failure(client, user, clock):
    for _ in range(3):
        post_login(client, user.email, WRONG)
    # Three failures: no delay yet.
    assert "Too many attempts" not in post_login(client, user.email, WRONG).content.decode()
    # Four failures: the next attempt must wait 2 seconds, then 4, then 8.
    assert "Wait 2 seconds" in post_login(client, user.email, PASSWORD).content.decode()
    clock.advance(seconds=2)
    assert "Too many attempts" not in post_login(client, user.email, WRONG).content.decode()
    assert "Wait 4 seconds" in post_login(client, user.email, PASSWORD).content.decode()
    clock.advance(seconds=4)
    post_login(client, user.email, WRONG)
    assert "Wait 8 seconds" in post_login(client, user.email, PASSWORD).content.decode()
    clock.advance(seconds=8)
    assert post_login(client, user.email, PASSWORD).status_code == 302


def test_success_resets_the_account_failures(client, user, clock):
    for _ in range(3):
        post_login(client, user.email, WRONG)
    assert post_login(client, user.email, PASSWORD).status_code == 302
    assert ratelimit.count(services.LOGIN_FAILURES_PER_ACCOUNT, user.email) == 0


def test_throttled_attempts_do_not_check_the_password(client, user, clock):
    for _ in range(10):
        ratelimit.hit(services.LOGIN_FAILURES_PER_ACCOUNT, user.email)
    before = Event.objects.filter(action="login.failed").count()
    post_login(client, user.email, WRONG)
    assert Event.objects.filter(action="login.failed").count() == before


def test_next_parameter_is_followed_only_to_this_site(client, user):
    response = client.post(
        "/login/?next=https://evil.example/", {"email": user.email, "password": PASSWORD}
    )
    assert response["Location"] == "/account/"
    client.post("/logout/")
    response = client.post(
        "/login/?next=/account/password/", {"email": user.email, "password": PASSWORD}
    )
    assert response["Location"] == "/account/password/"


def test_logout_is_post_only_and_recorded(logged_in_client, user):
    assert logged_in_client.get("/logout/").status_code == 405
    response = logged_in_client.post("/logout/")
    assert response.status_code == 302
    assert "_auth_user_id" not in logged_in_client.session
    assert Event.objects.filter(action="logout", actor_id=str(user.pk)).exists()


def test_login_form_requires_csrf(user):
    from django.test import Client

    strict = Client(enforce_csrf_checks=True)
    response = strict.post("/login/", {"email": user.email, "password": PASSWORD})
    assert response.status_code == 403
