"""A user who must have a second factor and has none (an operator, or anyone once their
organisation turns on "Require 2FA for all users") can only reach the pages that set one
up, and log out: not the rest of the portal, not the operator area, not the API."""

from __future__ import annotations

from django.contrib import messages
from django.http import JsonResponse
from django.shortcuts import redirect
from django.urls import Resolver404, resolve

from sealbox.twofactor import services

# Setting up a factor needs these, and nothing else: administrators' pages of this app
# (the organisation policy, resetting someone's factors) wait until a factor exists.
ALLOWED_VIEWS = {
    "accounts:logout",
    "accounts:reauth",
    "set_language",
    "healthz",
    "readyz",
    "metrics",
    "twofactor:login_verify",
    "twofactor:login_send",
    "twofactor:login_methods",
    "twofactor:login_passkey_begin",
    "twofactor:login_passkey_complete",
    "twofactor:security",
    "twofactor:totp_setup",
    "twofactor:passkey_register_begin",
    "twofactor:passkey_register_complete",
    "twofactor:recovery_codes",
    "twofactor:recovery_codes_download",
}


def _resolve(path: str):
    try:
        return resolve(path)
    except Resolver404:
        return None


class TwoFactorPolicyMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        user = request.user
        if not user.is_authenticated or not services.held_for_second_factor(user):
            return self.get_response(request)
        match = _resolve(request.path_info)
        if match is not None and match.view_name in ALLOWED_VIEWS:
            return self.get_response(request)
        if match is not None and match.namespace == "api":
            return JsonResponse(
                {"error": "second_factor_required", "message": services.api_held_message()},
                status=403,
            )
        messages.warning(request, services.held_message(user))
        return redirect("twofactor:security")
