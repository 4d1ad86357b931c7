"""Personal API tokens: creating, revoking, and the user a Bearer token stands for."""

from __future__ import annotations

from datetime import timedelta

from django.db import transaction
from django.http import HttpRequest
from django.utils.translation import gettext as _
from django.utils.translation import gettext_noop

from sealbox.accounts.errors import AccountError, NotTheirs
from sealbox.accounts.models import ApiToken, User
from sealbox.accounts.notices import _lazy, email_security_notice, token_hash
from sealbox.audit import services as audit
from sealbox.audit.actions import Action
from sealbox.lib import clock

TOKEN_PREFIX = "sbx_"
TOKEN_EXPIRY_CHOICES_DAYS = (7, 30, 90, 365)
MAX_TOKENS_PER_USER = 20
TOKEN_TOUCH_SECONDS = 60


def live_tokens(user: User):

    return ApiToken.objects.filter(
        user=user, revoked_at__isnull=True, expires_at__gt=clock.now()
    ).order_by("-created_at")


def create_api_token(request: HttpRequest | None, user: User, name: str, days: int):
    """A new token: 256 random bits after a recognisable prefix. Returns (token, secret);
    the secret is shown once and only its SHA-256 is stored."""
    import secrets

    name = (name or "").strip()
    if not name:
        raise AccountError(_("Give the token a name, for example the tool that will use it."))
    if days not in TOKEN_EXPIRY_CHOICES_DAYS:
        raise AccountError(_("Choose an expiry from the list."))
    if live_tokens(user).count() >= MAX_TOKENS_PER_USER:
        raise AccountError(
            _("You have %(n)d active tokens, the most allowed. Revoke one first.")
            % {"n": MAX_TOKENS_PER_USER}
        )
    secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
    now = clock.now()
    with transaction.atomic():
        token = ApiToken.objects.create(
            user=user,
            name=name[:64],
            prefix=secret[: len(TOKEN_PREFIX) + 6],
            token_hash=token_hash(secret),
            created_at=now,
            expires_at=now + timedelta(days=days),
        )
        audit.record(
            Action.API_TOKEN_CREATED,
            actor=user,
            target=user,
            request=request,
            details={
                "token": token.pk,
                "name": token.name,
                "expires_at": token.expires_at.isoformat(),
            },
        )
        email_security_notice(
            user,
            _lazy(
                gettext_noop("A personal API token named “%(name)s” was created."), name=token.name
            ),
        )
    return token, secret


def revoke_api_token(request: HttpRequest | None, user: User, pk: int) -> None:

    token = ApiToken.objects.filter(user=user, pk=pk).first()
    if token is None:
        raise NotTheirs(_("No such token."))
    if token.revoked_at is not None:
        raise AccountError(_("No such token."))
    with transaction.atomic():
        token.revoked_at = clock.now()
        token.save(update_fields=["revoked_at"])
        audit.record(
            Action.API_TOKEN_REVOKED,
            actor=user,
            target=user,
            request=request,
            details={"token": token.pk, "name": token.name},
        )
        email_security_notice(
            user,
            _lazy(
                gettext_noop("The personal API token named “%(name)s” was revoked."),
                name=token.name,
            ),
        )


def user_for_token(secret: str) -> User | None:
    """The active user a Bearer token belongs to, or None (unknown, revoked, expired)."""

    if not secret or not secret.startswith(TOKEN_PREFIX) or len(secret) > 200:
        return None
    now = clock.now()
    # The organisation with the user: every call checks its 2FA policy, and the services
    # read it (plan, limits) — one query instead of two.
    token = (
        ApiToken.objects.select_related("user__organisation")
        .filter(token_hash=token_hash(secret), revoked_at__isnull=True, expires_at__gt=now)
        .first()
    )
    if token is None or not token.user.is_active or token.user.deleted_at is not None:
        return None
    if (
        token.last_used_at is None
        or (now - token.last_used_at).total_seconds() >= TOKEN_TOUCH_SECONDS
    ):
        ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
    return token.user
