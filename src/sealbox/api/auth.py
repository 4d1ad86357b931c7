"""API authentication: the portal's session (with CSRF), for the pages, or a personal
API token. Either way, a user who must have a second factor and has none is refused."""

from __future__ import annotations

from django.conf import settings
from ninja.errors import HttpError
from ninja.security import APIKeyCookie, HttpBearer

from sealbox import csrf
from sealbox.accounts.services import user_for_token
from sealbox.csrf import SAFE_METHODS
from sealbox.lib.errors import SealboxError
from sealbox.twofactor import services as twofactor


class SecondFactorRequired(SealboxError):
    """The caller is known, but must set up a second factor first."""

    status = 403
    code = "second_factor_required"


def _refuse_held(user) -> None:
    if twofactor.held_for_second_factor(user):
        raise SecondFactorRequired(twofactor.api_held_message())


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
        # The policy middleware already stops such sessions; the API does not rely on it.
        _refuse_held(user)
        return user


class TokenAuth(HttpBearer):
    """A personal API token (Authorization: Bearer sbx_…); no cookie, so no CSRF."""

    def authenticate(self, request, token):
        user = user_for_token(token)
        if user is None:
            return None
        # A token carries no session, so no middleware sees it: the policy is checked
        # here, on every call, and the token works again once a factor is set up.
        _refuse_held(user)
        request.user = user
        return user


session_auth = SessionAuth()
token_auth = TokenAuth()
