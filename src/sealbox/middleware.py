"""Session lifetime and per-user preferences (language, time zone)."""

from __future__ import annotations

import zoneinfo

from django.conf import settings
from django.contrib import messages
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from sealbox import clock
from sealbox.accounts import services as accounts

# Touching the session on every request would write it every time; a 30 s granularity
# keeps the idle timeout exact to within half a minute.
SEEN_AT_GRANULARITY = 30


class SessionTimeoutMiddleware:
    """End sessions idle for too long (1 h) or older than the absolute limit (12 h)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if request.user.is_authenticated:
            self._enforce(request)
        return self.get_response(request)

    def _enforce(self, request) -> None:
        session = request.session
        now = clock.now().timestamp()
        login_at = session.get(accounts.SESSION_LOGIN_AT)
        if not isinstance(login_at, int | float):
            # Only the portal's login (password, limits, audit, second factor) starts
            # the clocks. A session without them was opened some other way: it must
            # not be given a login time, nor the freshness that comes with one.
            accounts.log_out(request, reason="session not opened by the login page")
            messages.info(request, _("Your session has ended. Please log in again."))
            return
        seen_at = session.get(accounts.SESSION_SEEN_AT, now)
        idle = now - seen_at > settings.SEALBOX_SESSION_IDLE_SECONDS
        too_old = now - login_at > settings.SEALBOX_SESSION_MAX_SECONDS
        if idle or too_old:
            accounts.log_out(request, reason="idle timeout" if idle else "session lifetime")
            messages.info(request, _("Your session has ended. Please log in again."))
            return
        if now - seen_at >= SEEN_AT_GRANULARITY or accounts.SESSION_SEEN_AT not in session:
            session[accounts.SESSION_SEEN_AT] = now
            accounts.touch_session(request)  # the Active sessions list (last seen, address)


class UserPreferencesMiddleware:
    """Pages speak the logged-in user's language and show times in their time zone."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        user = request.user
        if user.is_authenticated:
            translation.activate(user.language)
            request.LANGUAGE_CODE = user.language
            try:
                timezone.activate(zoneinfo.ZoneInfo(user.time_zone))
            except (zoneinfo.ZoneInfoNotFoundError, ValueError):
                timezone.deactivate()
        try:
            return self.get_response(request)
        finally:
            timezone.deactivate()
