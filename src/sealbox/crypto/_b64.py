"""Strict base64url (RFC 4648 section 5) without padding."""

from __future__ import annotations

import base64
import re

from sealbox.crypto import CryptoError

_B64URL_RE = re.compile(r"[A-Za-z0-9_-]*")


def b64url_encode(data: bytes) -> str:
    """Encode ``data`` as base64url without ``=`` padding."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_decode(text: str, *, length: int | None = None, what: str = "value") -> bytes:
    """Decode canonical unpadded base64url; raise CryptoError on anything else.

    Rejects padding, whitespace, characters outside ``A-Z a-z 0-9 - _``, impossible
    lengths and non-canonical encodings (unused low bits set), so that each byte string
    has exactly one accepted text form. ``length``, when given, is the required number
    of decoded bytes. ``what`` names the value in error messages.
    """
    if not isinstance(text, str):
        raise CryptoError(f"bad {what}: expected a base64url string")
    if not _B64URL_RE.fullmatch(text) or len(text) % 4 == 1:
        raise CryptoError(f"bad {what}: not unpadded base64url")
    data = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    if b64url_encode(data) != text:
        raise CryptoError(f"bad {what}: non-canonical base64url")
    if length is not None and len(data) != length:
        raise CryptoError(f"bad {what}: expected {length} bytes, got {len(data)}")
    return data
