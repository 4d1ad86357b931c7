"""The operator area (/operator/): Django's admin, entered only through the portal.

Operators are superusers and see every organisation, so the admin's own login form (a
password alone, no rate limit, no audit, no second factor) is gone: /operator/login/ is
the portal's login page, and every admin page needs a session verified with a second
factor (django-otp's OTPAdminSite). Logging out and changing the password go through
the portal's pages too, which record them and ask for what they ask for.
"""

from __future__ import annotations

from urllib.parse import urlencode

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.urls import reverse
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django_otp.admin import OTPAdminSite

from sealbox.accounts import views as accounts_views
from sealbox.lib.urls import safe_next


class OperatorAdminSite(OTPAdminSite):
    """has_permission (OTPAdminSite's): active, staff, and a session verified by a
    second factor. Whoever lacks it is sent to login() below, which serves no admin
    page."""

    site_header = gettext_lazy("Sealbox operator")
    site_title = gettext_lazy("Sealbox operator")
    index_title = gettext_lazy("Operator area")

    def __init__(self, name: str = "admin"):
        super().__init__(name)

    def login(self, request: HttpRequest, extra_context=None) -> HttpResponse:
        """The portal's login (password step, limits, audit, then the second factor)."""
        user = request.user
        if not user.is_authenticated:
            if request.method == "POST":
                # Scripts post here: the password is checked by the portal's rules.
                return accounts_views.login_view(request, default_next=reverse("admin:index"))
            return redirect(
                f"{reverse('accounts:login')}?{urlencode({'next': self._next(request)})}"
            )
        if self.has_permission(request):
            return redirect(self._next(request))
        if not (user.is_active and user.is_staff):
            raise PermissionDenied
        # A staff session that never proved a second factor: it was opened with the
        # password only (before the factor existed). Nothing here is served to it.
        messages.error(
            request,
            _(
                "The operator area needs a session opened with your second factor. Log "
                "out, then log in again."
            ),
        )
        return redirect("accounts:account")

    def _next(self, request: HttpRequest) -> str:
        return safe_next(request, request.GET.get("next"), reverse("admin:index"))

    def logout(self, request: HttpRequest, extra_context=None) -> HttpResponse:
        return accounts_views.logout_view(request)

    def password_change(self, request: HttpRequest, extra_context=None) -> HttpResponse:
        # The portal's page asks for a recent password, records it and emails the user.
        return redirect("accounts:password_change")

    def password_change_done(self, request: HttpRequest, extra_context=None) -> HttpResponse:
        return redirect("accounts:account")
