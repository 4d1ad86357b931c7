"""Relying party settings for passkeys, taken from the request.

ALLOWED_HOSTS already limits the host to the base URL's host or localhost, so the
request's host is a safe relying party ID, and the page's own origin the only origin a
ceremony may come from. WebAuthn refuses IP addresses: use the host name.
"""

from __future__ import annotations

from django.http import HttpRequest
from django_otp_webauthn.helpers import WebAuthnHelper


def rp_id(request: HttpRequest) -> str:
    return request.get_host().rsplit(":", 1)[0].strip("[]") if request else ""


class SealboxWebAuthnHelper(WebAuthnHelper):
    def get_allowed_origins(self) -> list[str]:
        return [f"{self.request.scheme}://{self.request.get_host()}"]
