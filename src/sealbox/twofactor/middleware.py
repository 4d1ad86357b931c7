"""Organisation policy: with "Require 2FA for all users", a user without a second factor
can only reach the pages that set one up (and log out)."""

from __future__ import annotations

from django.contrib import messages
from django.shortcuts import redirect
from django.urls import Resolver404, resolve
from django.utils.translation import gettext as _

from sealbox.twofactor import services

ALLOWED_NAMESPACES = {"twofactor"}
ALLOWED_VIEWS = {"accounts:logout", "set_language", "healthz", "readyz", "metrics"}


def _allowed(path: str) -> bool:
    try:
        match = resolve(path)
    except Resolver404:
        return False
    return match.namespace in ALLOWED_NAMESPACES or match.view_name in ALLOWED_VIEWS


class TwoFactorPolicyMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        user = request.user
        if (
            user.is_authenticated
            and user.organisation.require_2fa
            and not _allowed(request.path_info)
            and not services.has_second_factor(user)
        ):
            messages.warning(
                request,
                _(
                    "Your organisation requires two-factor authentication. Set up a second "
                    "factor to continue."
                ),
            )
            return redirect("twofactor:security")
        return self.get_response(request)
