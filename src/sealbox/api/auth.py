"""API authentication: the portal's session (with CSRF), for the pages."""

from __future__ import annotations

from django.conf import settings
from ninja.errors import HttpError
from ninja.security import APIKeyCookie, HttpBearer

from sealbox import csrf

SAFE_METHODS = ("GET", "HEAD", "OPTIONS")


class SessionAuth(APIKeyCookie):
    """The logged-in user of the portal; state-changing calls need the CSRF token."""

    param_name = settings.SESSION_COOKIE_NAME

    def __init__(self) -> None:
        super().__init__(csrf=False)

    def authenticate(self, request, key):
        user = getattr(request, "user", None)
        if user is None or not user.is_authenticated:
            return None
        if request.method not in SAFE_METHODS and csrf.rejected(request):
            raise HttpError(403, "CSRF check failed: reload the page and try again.")
        return user


def public_csrf(request) -> bool:
    """Public (recipient) calls still carry the page's CSRF token."""
    if request.method not in SAFE_METHODS and csrf.rejected(request):
        raise HttpError(403, "CSRF check failed: reload the page and try again.")
    return True


class TokenAuth(HttpBearer):
    """A personal API token (Authorization: Bearer sbx_…); no cookie, so no CSRF."""

    def authenticate(self, request, token):
        from sealbox.accounts.services import user_for_token

        user = user_for_token(token)
        if user is None:
            return None
        request.user = user
        return user


session_auth = SessionAuth()
token_auth = TokenAuth()
