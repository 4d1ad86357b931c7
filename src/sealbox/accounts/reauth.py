"""Re-authentication: the window in which a session counts as freshly authenticated.

It belongs to the account's session (the login, the second step of twofactor and the
"confirm your password" page all set the same clock), so every app that protects a
sensitive change asks accounts, and none needs another's help to do so.
"""

from __future__ import annotations

from datetime import timedelta

from django.db import transaction
from django.http import HttpRequest
from django.utils.translation import gettext as _

from sealbox.accounts.services import SESSION_AUTHENTICATED_AT, AccountError
from sealbox.audit import services as audit
from sealbox.audit.actions import Action
from sealbox.lib import clock, throttle
from sealbox.ratelimit import services as ratelimit
from sealbox.ratelimit.services import Rule

REAUTH_WINDOW = timedelta(minutes=30)
REAUTH_FAILURES = Rule("reauth-account", 10, timedelta(minutes=5))


class ReauthRequired(AccountError):
    """The change needs the password (or a second factor) entered within the window."""

    def __init__(self) -> None:
        super().__init__(_("For your security, confirm your password to continue."))


def last_authenticated_at(request: HttpRequest) -> float | None:
    """When this session last proved the password or a second factor (Unix time).

    Only the proof's own key counts (set by the login, the second step and the
    re-authentication page): not the session's age, not its login time, which a
    session opened some other way would not have earned.
    """
    when = request.session.get(SESSION_AUTHENTICATED_AT)
    return when if isinstance(when, int | float) else None


def reauthenticated_recently(request: HttpRequest) -> bool:
    when = last_authenticated_at(request)
    if when is None:
        return False
    return clock.now().timestamp() - when <= REAUTH_WINDOW.total_seconds()


def require_recent_authentication(request: HttpRequest) -> None:
    """For services that change a factor, the phone or the password: refuse (and let the
    page send the person to confirm their password) outside the window."""
    if not reauthenticated_recently(request):
        raise ReauthRequired()


def mark_authenticated(request: HttpRequest, when: float | None = None) -> None:
    """A proof was just checked (a password, a second factor): the window starts now."""
    request.session[SESSION_AUTHENTICATED_AT] = clock.now().timestamp() if when is None else when


def reauthenticate(request: HttpRequest, password: str) -> None:
    """The "confirm your password" page: check the password of the logged-in user."""
    user = request.user
    key = f"user:{user.pk}"
    # Reserved before the password is checked: parallel guesses cannot exceed the limit.
    decision = ratelimit.reserve([(REAUTH_FAILURES, key)])
    if not decision.allowed:
        error = throttle.too_many_attempts(decision.retry_after, kind=AccountError)
        error.field = "password"
        raise error
    # The actions keep their first names ("twofactor.…"): the log already holds them and
    # History reads them; only their home moved.
    if not user.check_password(password):
        audit.record(Action.TWOFACTOR_REAUTH_FAILED, actor=user, target=user, request=request)
        raise AccountError(_("Your password is not correct."), field="password")
    with transaction.atomic():
        ratelimit.clear(REAUTH_FAILURES, key)
        audit.record(Action.TWOFACTOR_REAUTHENTICATED, actor=user, target=user, request=request)
    mark_authenticated(request)
