"""Keys derived from the server's secret key, and how they survive its rotation.

`SEALBOX_SECRET_KEY` is the current key; `SEALBOX_SECRET_KEY_FALLBACKS` lists former
ones, newest first, still accepted while a rotation completes (Django uses the same two
settings for sessions and signed tokens). Everything Sealbox derives from them comes
from here, one way:

- `derive(info)`: the key for one purpose (`info` names it) under the current secret
  key: HMAC-SHA256(secret key, info), 32 bytes. New artefacts use it.
- `derive_all(info)`: the same key under every accepted secret key, current first.
  Checking an old artefact (a code's HMAC, an encrypted private key) tries each of
  them, so what was made before a rotation keeps working while its key is a fallback.
- `matching(stored, digest, info)`: which of those keys made `stored`.

Once a fallback is removed, what only it could open fails as a wrong code or an
unreadable key does: docs/operations.md says how long to keep it.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable

from django.conf import settings

CURRENT = 0  # index of the current secret key in secret_keys() and derive_all()


def secret_keys() -> list[str]:
    """The current secret key, then its fallbacks (newest first)."""
    return [settings.SECRET_KEY, *getattr(settings, "SECRET_KEY_FALLBACKS", [])]


def derive(info: bytes, secret_key: str | None = None) -> bytes:
    """The 32-byte key for the purpose `info`, under `secret_key` (default: current)."""
    secret = settings.SECRET_KEY if secret_key is None else secret_key
    return hmac.new(secret.encode(), info, hashlib.sha256).digest()


def derive_all(info: bytes) -> list[bytes]:
    """`derive(info)` under each accepted secret key, current first."""
    return [derive(info, secret) for secret in secret_keys()]


def matching(stored: str, digest: Callable[[bytes], str], info: bytes) -> int | None:
    """The index (CURRENT for the current key) of the key `k` of `derive_all(info)` for
    which `digest(k)` is `stored`, or None. Every key is tried, matched or not, so the
    time taken does not say which one matched."""
    found = None
    for index, key in enumerate(derive_all(info)):
        if hmac.compare_digest(stored.encode(), digest(key).encode()) and found is None:
            found = index
    return found
