"""Sealbox end-to-end encryption core (pure Python, no Django).

- :mod:`sealbox.crypto.ece`: RFC 8188 "aes128gcm" payloads, one-shot and streaming.
- :mod:`sealbox.crypto.grants`: per-recipient grants (key wrapping) and password keys.
- :mod:`sealbox.crypto.links`: ``{BASE_URL}/o/{grant_token}#{link_secret}`` links.

Every failure is reported as :class:`CryptoError`. Its message says what is wrong and
never contains key material. The formats are specified in ``docs/crypto.md``; the
browser modules under ``static/sealbox/js/`` implement the same formats byte for byte.
"""

from __future__ import annotations


class CryptoError(ValueError):
    """Invalid, corrupted, truncated or unauthenticated encrypted data, or a bad argument.

    The message describes the problem (for example "authentication failed") and never
    contains key material, secrets or plaintext.
    """


from sealbox.crypto import ece, grants, links  # noqa: E402

__all__ = ["CryptoError", "ece", "grants", "links"]
