"""Recipient links: ``{BASE_URL}/o/{grant_token}#{link_secret}``.

- ``BASE_URL``: ``http://`` or ``https://`` (lowercase), a host name (letters, digits,
  dots, hyphens) or a bracketed IPv6 address, an optional port, and an optional path
  made of segments of ``A-Z a-z 0-9 . _ ~ -``; no query, no fragment, no user info. A
  trailing slash is dropped. The host compares case-insensitively, the path exactly.
- ``grant_token``: 16 to 128 characters of ``A-Z a-z 0-9 _ -``.
- ``link_secret``: the grant's 16-byte link secret as canonical base64url without
  padding (exactly 22 characters).

Parsing is strict: anything else (query strings, extra path segments, a missing or
malformed fragment, a different base URL) raises CryptoError. The fragment is never sent
to the server by a browser. ``static/sealbox/js/links.js`` implements the same rules.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass, field

from sealbox.crypto import CryptoError
from sealbox.crypto._b64 import b64url_decode, b64url_encode
from sealbox.crypto.grants import LINK_SECRET_LENGTH

__all__ = [
    "GRANT_TOKEN_RE",
    "Link",
    "build_link",
    "decode_link_secret",
    "encode_link_secret",
    "new_grant_token",
    "normalise_base_url",
    "parse_link",
]

_BASE = (
    r"(?P<origin>https?://(?:[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?|\[[0-9A-Fa-f:.]+\])"
    r"(?::[0-9]{1,5})?)(?P<path>(?:/[A-Za-z0-9._~-]+)*)"
)
_TOKEN = r"[A-Za-z0-9_-]{16,128}"
_SECRET = r"[A-Za-z0-9_-]{22}"
BASE_URL_RE = re.compile(_BASE + r"/?", re.ASCII)
GRANT_TOKEN_RE = re.compile(_TOKEN, re.ASCII)
LINK_RE = re.compile(
    _BASE + r"/o/(?P<token>" + _TOKEN + r")#(?P<secret>" + _SECRET + r")", re.ASCII
)


@dataclass(frozen=True)
class Link:
    """A parsed recipient link."""

    base_url: str
    grant_token: str
    link_secret: bytes = field(repr=False)


def normalise_base_url(base_url: str) -> str:
    """Validate a base URL; return it without trailing slash and with the host lowercased."""
    match = BASE_URL_RE.fullmatch(base_url) if isinstance(base_url, str) else None
    if match is None:
        raise CryptoError("bad base URL: expected http(s)://host[:port][/path]")
    return match["origin"].lower() + match["path"]


def encode_link_secret(link_secret: bytes) -> str:
    """The link secret as it appears in the URL fragment (22 characters)."""
    if len(link_secret) != LINK_SECRET_LENGTH:
        raise CryptoError(f"bad link secret: expected {LINK_SECRET_LENGTH} bytes")
    return b64url_encode(bytes(link_secret))


def decode_link_secret(text: str) -> bytes:
    """Decode a URL fragment (with or without its leading ``#``) into the link secret."""
    if isinstance(text, str) and text.startswith("#"):
        text = text[1:]
    return b64url_decode(text, length=LINK_SECRET_LENGTH, what="link secret")


def new_grant_token() -> str:
    """A fresh random grant token (22 characters, 128 bits)."""
    return secrets.token_urlsafe(16)


def build_link(base_url: str, grant_token: str, link_secret: bytes) -> str:
    """Build ``{base_url}/o/{grant_token}#{link_secret}``."""
    base = normalise_base_url(base_url)
    if not isinstance(grant_token, str) or not GRANT_TOKEN_RE.fullmatch(grant_token):
        raise CryptoError("bad grant token: expected 16-128 characters of A-Z a-z 0-9 _ -")
    return f"{base}/o/{grant_token}#{encode_link_secret(link_secret)}"


def parse_link(link: str, base_url: str | None = None) -> Link:
    """Parse a recipient link; with ``base_url``, also require that it belongs there."""
    match = LINK_RE.fullmatch(link) if isinstance(link, str) else None
    if match is None:
        raise CryptoError("bad link: expected {BASE_URL}/o/{grant_token}#{link_secret}")
    found = match["origin"].lower() + match["path"]
    if base_url is not None and found != normalise_base_url(base_url):
        raise CryptoError("bad link: it does not belong to this server")
    return Link(
        base_url=found,
        grant_token=match["token"],
        link_secret=decode_link_secret(match["secret"]),
    )
