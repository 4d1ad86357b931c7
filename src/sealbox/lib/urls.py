"""Where a page may send the person next."""

from __future__ import annotations

from django.http import HttpRequest
from django.utils.http import url_has_allowed_host_and_scheme


def safe_next(request: HttpRequest, target: str | None, fallback: str) -> str:
    """`target` when it is a page of this site (same host, HTTPS kept), else `fallback`:
    a `next` parameter must never send someone to another site after they log in."""
    if target and url_has_allowed_host_and_scheme(
        target, {request.get_host()}, require_https=request.is_secure()
    ):
        return target
    return fallback
