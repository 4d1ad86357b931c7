"""Passwords: changing one, and the reset links sent by email."""

from __future__ import annotations

from datetime import timedelta

from django.db import transaction
from django.http import HttpRequest
from django.utils.translation import gettext_noop

from sealbox.accounts.models import PasswordReset, User, normalise_email
from sealbox.accounts.notices import _lazy, email_security_notice, token_hash
from sealbox.audit import services as audit
from sealbox.audit.actions import Action
from sealbox.lib import clock
from sealbox.lib.http import client_ip
from sealbox.ratelimit import services as ratelimit
from sealbox.ratelimit.services import Rule

RESET_REQUESTS_PER_EMAIL = Rule("reset-email", 5, timedelta(hours=1))
RESET_REQUESTS_PER_IP = Rule("reset-ip", 20, timedelta(hours=1))


def change_password(request: HttpRequest, user: User, new_password: str) -> None:
    from django.contrib.auth import update_session_auth_hash

    with transaction.atomic():
        user.set_password(new_password)
        user.save(update_fields=["password"])
        audit.record(Action.PASSWORD_CHANGED, actor=user, target=user, request=request)
        email_security_notice(
            user, _lazy(gettext_noop("The password of your account was changed."))
        )
    # Keep this session; every other session of the user ends with the old hash.
    update_session_auth_hash(request, user)


def request_password_reset(request: HttpRequest, email: str) -> bool:
    """A reset link was asked for: count it by address and by IP, and record it; False
    at the limit (no email may be sent, and nothing is recorded).

    Reserved before the email is sent, so parallel requests cannot send more.
    """
    email = normalise_email(email)
    ip = client_ip(request) or "unknown"
    allowed = ratelimit.reserve(
        [(RESET_REQUESTS_PER_EMAIL, email), (RESET_REQUESTS_PER_IP, ip)]
    ).allowed
    if not allowed:
        return False
    user = User.objects.filter(email=email, is_active=True).first()
    if user is None:
        audit.record(
            Action.PASSWORD_RESET_REQUESTED,
            request=request,
            actor_type="anonymous",
            details={"email": email, "known": False},
        )
    else:
        audit.record(Action.PASSWORD_RESET_REQUESTED, actor=user, target=user, request=request)
    return True


class PasswordResetTokens:
    """Reset links that a copy of the data folder cannot mint.

    It has the interface of Django's token generator (`make_token`, `check_token`), so
    Django's reset views and form use it, but the token is 32 random bytes whose SHA-256
    alone is stored (`PasswordReset`), instead of an HMAC of the user's row under the
    secret key, which anyone holding the secret key and the database could compute.
    """

    @staticmethod
    def state_of(user: User) -> str:
        """What ends a link when it changes: the password, the last login, the address."""
        import hashlib

        last_login = user.last_login.isoformat() if user.last_login else ""
        state = "\0".join((str(user.pk), user.password or "", last_login, user.email))
        return hashlib.sha256(state.encode()).hexdigest()

    def make_token(self, user: User) -> str:
        import secrets

        from django.conf import settings

        secret = secrets.token_urlsafe(32)
        now = clock.now()
        with transaction.atomic():
            PasswordReset.objects.filter(user=user, expires_at__lte=now).delete()
            PasswordReset.objects.create(
                user=user,
                token_hash=token_hash(secret),
                state_hash=self.state_of(user),
                created_at=now,
                expires_at=now + timedelta(seconds=settings.PASSWORD_RESET_TIMEOUT),
            )
        return secret

    def check_hash(self, user: User, hashed: str | None) -> bool:
        """Whether `hashed` (the SHA-256 of a token) is a live reset link of `user`."""

        if not hashed or user is None:
            return False
        return PasswordReset.objects.filter(
            user=user,
            token_hash=hashed,
            state_hash=self.state_of(user),
            used_at__isnull=True,
            expires_at__gt=clock.now(),
        ).exists()

    def check_token(self, user: User, token: str | None) -> bool:
        return bool(token) and self.check_hash(user, token_hash(token))


password_reset_tokens = PasswordResetTokens()


def record_password_reset(request: HttpRequest, user: User) -> None:
    """The new password is saved: every reset link of the account is used up."""

    with transaction.atomic():
        PasswordReset.objects.filter(user=user, used_at__isnull=True).update(used_at=clock.now())
        audit.record(Action.PASSWORD_RESET, actor=user, target=user, request=request)
    email_security_notice(
        user, _lazy(gettext_noop("The password of your account was reset with an email link."))
    )
