"""Request helpers shared by views, services and the audit log."""

from __future__ import annotations

import ipaddress

from django.conf import settings
from django.http import HttpRequest


def normalise_ip(value: str | None) -> str | None:
    """One spelling per address, or None when `value` is not an address.

    The audit hash, the stored row and the rate-limit keys must agree on how an address is
    written, whatever the listening socket or the database does with it. An IPv4-mapped
    IPv6 address (a dual-stack socket: `serve --host ::`) is the IPv4 client it stands
    for; a zone index (fe80::1%eth0) names one of the server's interfaces, not the client,
    and PostgreSQL's inet refuses it.
    """
    text = (value or "").strip()
    if text.startswith("[") and text.endswith("]"):
        text = text[1:-1]
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        if address.scope_id is not None:
            address = ipaddress.IPv6Address(int(address))
    return str(address)


def client_ip(request: HttpRequest) -> str | None:
    """The client's address; behind N trusted proxies, the Nth address from the right."""
    proxies = getattr(settings, "SEALBOX_TRUSTED_PROXY_COUNT", 0)
    candidate = request.META.get("REMOTE_ADDR", "")
    if proxies:
        forwarded = [p.strip() for p in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",")]
        forwarded = [p for p in forwarded if p]
        if len(forwarded) >= proxies:
            candidate = forwarded[-proxies]
    return normalise_ip(candidate)


def user_agent(request: HttpRequest) -> str:
    return request.META.get("HTTP_USER_AGENT", "")[:512]
