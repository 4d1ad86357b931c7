"""The password step of the login (its limits and delays) and opening the session."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from django.contrib.auth import authenticate, login
from django.db import transaction
from django.http import HttpRequest

from sealbox.accounts.models import User, normalise_email
from sealbox.accounts.sessions import (
    SESSION_AUTHENTICATED_AT,
    SESSION_LOGIN_AT,
    SESSION_SEEN_AT,
    record_session,
)
from sealbox.audit import services as audit
from sealbox.audit.actions import Action
from sealbox.lib import clock
from sealbox.lib.http import client_ip
from sealbox.ratelimit import services as ratelimit
from sealbox.ratelimit.services import Decision, Rule

LOGIN_FAILURES_PER_ACCOUNT = Rule("login-account", 10, timedelta(minutes=5))
LOGIN_FAILURES_PER_IP = Rule("login-ip", 10, timedelta(minutes=5))


# Before the hard limit, each further failure makes the next attempt wait twice as long.
LOGIN_DELAY_AFTER = 3


def login_delay(failures: list) -> int:
    """Seconds the next attempt must wait after the failures still in the window."""
    if len(failures) <= LOGIN_DELAY_AFTER:
        return 0
    wait = 2 ** (len(failures) - LOGIN_DELAY_AFTER)
    elapsed = (clock.now() - failures[-1]).total_seconds()
    return max(0, int(wait - elapsed + 0.999))


def _login_limits(email: str, ip: str | None) -> list[tuple[Rule, str]]:
    checks = [(LOGIN_FAILURES_PER_ACCOUNT, normalise_email(email))]
    if ip:
        checks.append((LOGIN_FAILURES_PER_IP, ip))
    return checks


def _login_wait(rule: Rule, failures: list) -> int:
    return login_delay(failures)


def login_throttle(email: str, ip: str | None) -> Decision:
    """Whether an attempt would be checked now: limits by account and by address.

    Only a preview: `check_password` reserves the attempt, which is the check that
    counts. Unknown addresses are throttled exactly like real accounts, so the answers
    never tell which accounts exist.
    """
    retry_after = 0
    for rule, key in _login_limits(email, ip):
        decision = ratelimit.check(rule, key)
        if not decision.allowed:
            retry_after = max(retry_after, decision.retry_after)
            continue
        retry_after = max(retry_after, login_delay(ratelimit.recent(rule, key)))
    return Decision(retry_after == 0, retry_after)


@dataclass(frozen=True)
class LoginResult:
    user: User | None
    throttled: Decision | None = None


def check_password(request: HttpRequest, email: str, password: str) -> LoginResult:
    """The password step: rate limits, then the password; every failure is recorded.

    The attempt is counted as a failure before the password is checked (and given back
    if it was right), so parallel attempts can never check more passwords than the
    limits and delays allow.
    """
    ip = client_ip(request)
    email = normalise_email(email)
    reservation = ratelimit.reserve(_login_limits(email, ip), wait=_login_wait)
    if not reservation.allowed:
        return LoginResult(None, reservation)
    user = authenticate(request, username=email, password=password)
    if user is None:
        with transaction.atomic():
            known = User.objects.filter(email=email).first()
            if known is not None:
                audit.record(
                    Action.LOGIN_FAILED,
                    actor=known,
                    target=known,
                    request=request,
                    details={"reason": "password"},
                )
            else:
                audit.record(
                    Action.LOGIN_FAILED,
                    request=request,
                    actor_type="anonymous",
                    actor_label=email,
                    details={"reason": "unknown account"},
                )
        return LoginResult(None)
    reservation.release()
    return LoginResult(user)


def complete_login(request: HttpRequest, user: User) -> None:
    """Open the session: a new session id, timeout clocks, the user's language.

    Only for a user whose password (and second factor, when they have one) was just
    checked: the session counts as freshly authenticated from now on. A session opened
    any other way has no login time, and the timeout middleware ends it.
    """
    with transaction.atomic():
        ratelimit.clear(LOGIN_FAILURES_PER_ACCOUNT, user.email)
        login(request, user, backend="django.contrib.auth.backends.ModelBackend")
        now = clock.now().timestamp()
        request.session[SESSION_LOGIN_AT] = now
        request.session[SESSION_SEEN_AT] = now
        request.session[SESSION_AUTHENTICATED_AT] = now
        audit.record(Action.LOGIN_SUCCEEDED, actor=user, target=user, request=request)
        record_session(request, user)
