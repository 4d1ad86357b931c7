"""The language cookie: the one place that writes it, so every page that chooses the
language (the switch, the login, the account page) writes it the same way."""

from __future__ import annotations

from django.conf import settings
from django.http import HttpResponse


def set_language_cookie(
    response: HttpResponse, language: str, *, max_age: int | None = None
) -> HttpResponse:
    """Remember `language` in the browser (for the browser session unless `max_age`
    seconds are given); return the response."""
    response.set_cookie(
        settings.LANGUAGE_COOKIE_NAME,
        language,
        max_age=max_age,
        samesite=settings.LANGUAGE_COOKIE_SAMESITE,
        secure=settings.LANGUAGE_COOKIE_SECURE,
        httponly=settings.LANGUAGE_COOKIE_HTTPONLY,
    )
    return response
