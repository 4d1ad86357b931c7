"""Sessions: their clocks, the record of each device logged in, logging out."""

from __future__ import annotations

from datetime import timedelta

from django.contrib.auth import logout
from django.db import transaction
from django.http import HttpRequest
from django.utils.translation import gettext as _

from sealbox.accounts.models import SessionRecord, User
from sealbox.audit import services as audit
from sealbox.audit.actions import Action
from sealbox.lib import clock
from sealbox.lib.http import client_ip

SESSION_LOGIN_AT = "sealbox_login_at"
SESSION_SEEN_AT = "sealbox_seen_at"
# When this session last proved the password or a second factor: the only clock
# re-authentication trusts. Set where a proof was checked, never defaulted.
SESSION_AUTHENTICATED_AT = "sealbox_reauth_at"


SESSION_TOUCH_SECONDS = 30


def _session_store():
    from importlib import import_module

    from django.conf import settings

    return import_module(settings.SESSION_ENGINE).SessionStore


def record_session(request: HttpRequest, user: User) -> None:
    """Note the device and address of a newly opened session (called at login)."""
    from sealbox.lib.http import user_agent

    key = request.session.session_key
    if not key:
        request.session.save()
        key = request.session.session_key
    now = clock.now()
    SessionRecord.objects.update_or_create(
        session_key=key,
        defaults={
            "user": user,
            "ip": client_ip(request),
            "user_agent": user_agent(request),
            "created_at": now,
            "last_seen_at": now,
        },
    )


def touch_session(request: HttpRequest) -> None:
    """Refresh last seen and address (the timeout middleware calls this every 30 s)."""
    from sealbox.lib.http import user_agent

    key = request.session.session_key
    if not key or not request.user.is_authenticated:
        return
    now = clock.now()
    updated = SessionRecord.objects.filter(session_key=key, user=request.user).update(
        last_seen_at=now, ip=client_ip(request)
    )
    if not updated:
        SessionRecord.objects.create(
            session_key=key,
            user=request.user,
            ip=client_ip(request),
            user_agent=user_agent(request),
            created_at=now,
            last_seen_at=now,
        )


def forget_session(session_key: str | None) -> None:

    if session_key:
        SessionRecord.objects.filter(session_key=session_key).delete()


def active_sessions(user: User):
    """The user's sessions still alive, most recent first (stale records are dropped)."""
    from django.conf import settings

    cutoff = clock.now() - timedelta(seconds=settings.SEALBOX_SESSION_IDLE_SECONDS)
    SessionRecord.objects.filter(user=user, last_seen_at__lt=cutoff).delete()
    return SessionRecord.objects.filter(user=user).order_by("-last_seen_at")


def end_sessions(user: User, *, keep: str | None = None) -> int:
    """End every session of the user (but `keep`): the session rows are deleted."""

    store = _session_store()
    records = SessionRecord.objects.filter(user=user)
    if keep:
        records = records.exclude(session_key=keep)
    keys = list(records.values_list("session_key", flat=True))
    for key in keys:
        store(session_key=key).delete()
    records.delete()
    return len(keys)


def log_out_other_sessions(request: HttpRequest, user: User) -> int:
    with transaction.atomic():
        count = end_sessions(user, keep=request.session.session_key)
        audit.record(
            Action.SESSIONS_LOGGED_OUT_OTHERS,
            actor=user,
            target=user,
            request=request,
            details={"sessions": count},
        )
    return count


def describe_device(agent: str) -> str:
    """ "Firefox on Windows": enough to recognise a session, from the user agent."""
    agent = agent or ""
    browser = next(
        (
            name
            for token, name in (
                ("Edg/", "Edge"),
                ("OPR/", "Opera"),
                ("Firefox/", "Firefox"),
                ("Chrome/", "Chrome"),
                ("Chromium/", "Chromium"),
                ("Safari/", "Safari"),
                ("python-requests", "Python"),
                ("python-httpx", "Python"),
                ("curl/", "curl"),
            )
            if token in agent
        ),
        "",
    )
    system = next(
        (
            name
            for token, name in (
                ("Android", "Android"),
                ("iPhone", "iPhone"),
                ("iPad", "iPad"),
                ("Windows", "Windows"),
                ("Mac OS X", "macOS"),
                ("CrOS", "ChromeOS"),
                ("Linux", "Linux"),
            )
            if token in agent
        ),
        "",
    )
    if browser and system:
        return _("%(browser)s on %(system)s") % {"browser": browser, "system": system}
    return browser or system or _("Unknown device")


def log_out(request: HttpRequest, *, reason: str = "") -> None:
    user = request.user
    if user.is_authenticated:
        audit.record(
            Action.LOGOUT,
            actor=user,
            target=user,
            request=request,
            details={"reason": reason} if reason else None,
        )
        forget_session(request.session.session_key)
    logout(request)
