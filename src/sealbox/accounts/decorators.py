"""View decorators: recent re-authentication for security-sensitive changes."""

from __future__ import annotations

from functools import wraps
from urllib.parse import urlencode

from django.contrib import messages
from django.http import JsonResponse
from django.shortcuts import redirect
from django.urls import reverse
from django.utils.translation import gettext as _

from sealbox.accounts import reauth


def reauth_url(request, next_url: str | None = None) -> str:
    target = next_url or request.get_full_path()
    return f"{reverse('accounts:reauth')}?{urlencode({'next': target})}"


def reauth_required(view):
    """Changing the phone, a second factor or the password needs the password (or a
    second factor) entered within the last 30 minutes; otherwise ask for it first."""

    @wraps(view)
    def wrapped(request, *args, **kwargs):
        if request.user.is_authenticated and not reauth.reauthenticated_recently(request):
            if request.headers.get("Accept", "").startswith("application/json"):
                return JsonResponse(
                    {
                        "detail": _("Confirm your password to continue."),
                        "reauth_url": reauth_url(request),
                    },
                    status=403,
                )
            # A form's data cannot survive the detour: after a POST, come back to the page.
            next_url = request.path if request.method == "POST" else request.get_full_path()
            messages.info(request, _("For your security, confirm your password to continue."))
            return redirect(reauth_url(request, next_url))
        return view(request, *args, **kwargs)

    return wrapped
