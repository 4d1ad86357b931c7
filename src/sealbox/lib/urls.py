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


def requested_next(request: HttpRequest, fallback: str) -> str:
    """The `next` the request asks for (the form's field, else the query string), made
    safe by `safe_next`."""
    return safe_next(request, request.POST.get("next") or request.GET.get("next"), fallback)
