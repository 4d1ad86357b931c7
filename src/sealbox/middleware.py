"""Request ids and access lines, session lifetime, per-user preferences (language, time zone)."""

from __future__ import annotations

import logging
import re
import time
import uuid
import zoneinfo

from django.conf import settings
from django.contrib import messages
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from sealbox import logs
from sealbox.accounts import services as accounts
from sealbox.lib import clock
from sealbox.lib.http import client_ip
from sealbox.ops import metrics

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


_REQUEST_ID_SHAPE = re.compile(r"^[A-Za-z0-9._-]{8,64}$")
request_logger = logging.getLogger("sealbox.request")


class RequestLogMiddleware:
    """Give each request an id (X-Request-ID), and log one access line when it ends.

    The line carries the resolved client address (behind trusted proxies, the client's,
    not the proxy's), the user id, the URL pattern — never the path, which may hold a
    grant token — the status and the duration."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        request_id = self._request_id(request)
        context = {"request_id": request_id, "client_ip": client_ip(request)}
        token = logs.request_context.set(context)
        started = time.perf_counter()
        try:
            response = self.get_response(request)
            response["X-Request-ID"] = request_id
            self._log(request, response.status_code, started, context)
            return response
        except Exception:
            self._log(request, 500, started, context)
            raise
        finally:
            logs.request_context.reset(token)

    @staticmethod
    def _request_id(request) -> str:
        # A proxy's id is kept only when proxies are trusted, and only in a safe shape.
        forwarded = request.META.get("HTTP_X_REQUEST_ID", "")
        if settings.SEALBOX_TRUSTED_PROXY_COUNT and _REQUEST_ID_SHAPE.match(forwarded):
            return forwarded
        return uuid.uuid4().hex

    @staticmethod
    def _log(request, status: int, started: float, context: dict) -> None:
        match = getattr(request, "resolver_match", None)
        route = match.route if match else "(unmatched)"
        user = getattr(request, "_cached_user", None)  # never loads a user just to log it
        context.update(
            route=route,
            method=request.method,
            status=status,
            duration_ms=round((time.perf_counter() - started) * 1000, 1),
            user_id=user.pk if user is not None and user.is_authenticated else None,
        )
        request_logger.info("%s %s %s", request.method, route, status)
        metrics.observe_request(request.method, route, status, context["duration_ms"] / 1000)


class StorageUnavailableMiddleware:
    """A page whose work needed the blob store while it did not answer gets the 503 page
    with the message that says so (the API answers the same error as JSON itself)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        return self.get_response(request)

    def process_exception(self, request, exception):
        from django.shortcuts import render

        from sealbox.lib.errors import StorageUnavailable

        if not isinstance(exception, StorageUnavailable):
            return None
        response = render(
            request, "storage_unavailable.html", {"error": exception.message}, status=503
        )
        response["Retry-After"] = str(exception.retry_after)
        return response
