"""Grants: per-recipient wrapping of a message's content key, and password keys.

A message has one 32-byte random *content key* (the RFC 8188 IKM of all its payloads).
Each recipient gets a *grant*:

- ``link_secret``: 16 random bytes, travels only in the link's URL fragment
  (base64url, no padding) and is never stored by the server;
- ``server_secret``: 16 random bytes, stored by the server and released on unlock;
- ``wrapped_key``: the content key wrapped under the grant's key-encryption key (KEK).

Definitions (``grant_id`` is a non-empty string; wherever it is used, its UTF-8 bytes
are used)::

    password_key = PBKDF2-HMAC-SHA256(password = UTF-8(NFC(password)),
                                      salt = UTF-8(grant_id), iterations = 600000,
                                      length = 32)
    verifier     = HKDF-SHA256(ikm = password_key, salt = UTF-8(grant_id),
                               info = "sealbox password verifier", length = 32)
    KEK          = HKDF-SHA256(ikm = link_secret || server_secret [|| password_key],
                               salt = UTF-8(grant_id), info = "sealbox grant v1",
                               length = 32)
    wrapped_key  = nonce (12 random bytes) || AES-256-GCM(KEK, nonce, content_key,
                                                          associated data = empty)
                   (12 + 32 + 16 = 60 bytes: nonce, encrypted key, tag)

The password (optional) is an encryption factor: without it the KEK cannot be derived.
Passwords are normalised to Unicode NFC before encoding, so the same password typed
with composed or decomposed accents gives the same key in every browser and in Python.
The server stores only ``server_secret``, ``wrapped_key`` and (hashed, by the server)
the verifier, which lets it count and throttle wrong passwords; the verifier is a
separate HKDF output and reveals nothing about the KEK.

The browser module ``static/sealbox/js/grants.js`` implements the same functions.
"""

from __future__ import annotations

import os
import unicodedata
from dataclasses import dataclass, field

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.hazmat.primitives.kdf.pbkdf2 import PBKDF2HMAC

from sealbox.crypto import CryptoError

__all__ = [
    "CONTENT_KEY_LENGTH",
    "LINK_SECRET_LENGTH",
    "PBKDF2_ITERATIONS",
    "SERVER_SECRET_LENGTH",
    "WRAPPED_KEY_LENGTH",
    "Grant",
    "create_grant",
    "derive_kek",
    "derive_password_key",
    "new_content_key",
    "password_verifier",
    "unwrap_grant",
    "unwrap_key",
    "wrap_key",
]

CONTENT_KEY_LENGTH = 32
LINK_SECRET_LENGTH = 16
SERVER_SECRET_LENGTH = 16
PASSWORD_KEY_LENGTH = 32
VERIFIER_LENGTH = 32
KEK_LENGTH = 32
WRAP_NONCE_LENGTH = 12
WRAPPED_KEY_LENGTH = WRAP_NONCE_LENGTH + CONTENT_KEY_LENGTH + 16
PBKDF2_ITERATIONS = 600_000

GRANT_INFO = b"sealbox grant v1"
VERIFIER_INFO = b"sealbox password verifier"


@dataclass(frozen=True)
class Grant:
    """A freshly created grant. ``link_secret`` goes into the link, never to storage."""

    link_secret: bytes = field(repr=False)
    server_secret: bytes = field(repr=False)
    wrapped_key: bytes = field(repr=False)
    #: Present when the grant has a password: what the server stores (hashed).
    password_verifier: bytes | None = field(default=None, repr=False)


def new_content_key() -> bytes:
    """A fresh random 32-byte content key (the RFC 8188 IKM of a message)."""
    return os.urandom(CONTENT_KEY_LENGTH)


def derive_password_key(
    password: str, grant_id: str, *, iterations: int = PBKDF2_ITERATIONS
) -> bytes:
    """PBKDF2-HMAC-SHA256 of the NFC-normalised password, salted with the grant id.

    Slow on purpose (600000 iterations). ``iterations`` exists for tests only.
    """
    if not isinstance(password, str) or not password:
        raise CryptoError("the password must be a non-empty string")
    if iterations < 1:
        raise CryptoError("iterations must be positive")
    secret = unicodedata.normalize("NFC", password).encode("utf-8")
    kdf = PBKDF2HMAC(
        algorithm=hashes.SHA256(),
        length=PASSWORD_KEY_LENGTH,
        salt=_grant_salt(grant_id),
        iterations=iterations,
    )
    return kdf.derive(secret)


def password_verifier(password_key: bytes, grant_id: str) -> bytes:
    """The 32-byte value the server stores (hashed) to check a password."""
    _check_len(password_key, PASSWORD_KEY_LENGTH, "password key")
    return _hkdf(bytes(password_key), _grant_salt(grant_id), VERIFIER_INFO, VERIFIER_LENGTH)


def derive_kek(
    link_secret: bytes,
    server_secret: bytes,
    grant_id: str,
    password_key: bytes | None = None,
) -> bytes:
    """The grant's 32-byte key-encryption key."""
    _check_len(link_secret, LINK_SECRET_LENGTH, "link secret")
    _check_len(server_secret, SERVER_SECRET_LENGTH, "server secret")
    ikm = bytes(link_secret) + bytes(server_secret)
    if password_key is not None:
        _check_len(password_key, PASSWORD_KEY_LENGTH, "password key")
        ikm += bytes(password_key)
    return _hkdf(ikm, _grant_salt(grant_id), GRANT_INFO, KEK_LENGTH)


def wrap_key(kek: bytes, content_key: bytes, *, nonce: bytes | None = None) -> bytes:
    """Wrap a 32-byte content key: nonce || AES-256-GCM ciphertext || tag (60 bytes).

    ``nonce`` defaults to 12 fresh random bytes; pass one only to reproduce test output.
    """
    _check_len(kek, KEK_LENGTH, "key-encryption key")
    _check_len(content_key, CONTENT_KEY_LENGTH, "content key")
    if nonce is None:
        nonce = os.urandom(WRAP_NONCE_LENGTH)
    _check_len(nonce, WRAP_NONCE_LENGTH, "nonce")
    return bytes(nonce) + AESGCM(bytes(kek)).encrypt(bytes(nonce), bytes(content_key), None)


def unwrap_key(kek: bytes, wrapped_key: bytes) -> bytes:
    """Recover the content key from :func:`wrap_key` output, or raise CryptoError."""
    _check_len(kek, KEK_LENGTH, "key-encryption key")
    _check_len(wrapped_key, WRAPPED_KEY_LENGTH, "wrapped key")
    wrapped_key = bytes(wrapped_key)
    try:
        return AESGCM(bytes(kek)).decrypt(
            wrapped_key[:WRAP_NONCE_LENGTH], wrapped_key[WRAP_NONCE_LENGTH:], None
        )
    except InvalidTag:
        raise CryptoError(
            "authentication failed: wrong link secret, server secret or password, or a "
            "modified wrapped key"
        ) from None


def create_grant(
    content_key: bytes,
    grant_id: str,
    *,
    password: str | None = None,
    password_key: bytes | None = None,
) -> Grant:
    """Create a grant for one recipient of the message whose key is ``content_key``.

    With ``password`` (or an already derived ``password_key``) the password becomes an
    encryption factor and the grant carries its verifier.
    """
    _check_len(content_key, CONTENT_KEY_LENGTH, "content key")
    password_key = _resolve_password_key(grant_id, password, password_key)
    link_secret = os.urandom(LINK_SECRET_LENGTH)
    server_secret = os.urandom(SERVER_SECRET_LENGTH)
    kek = derive_kek(link_secret, server_secret, grant_id, password_key)
    return Grant(
        link_secret=link_secret,
        server_secret=server_secret,
        wrapped_key=wrap_key(kek, content_key),
        password_verifier=(
            None if password_key is None else password_verifier(password_key, grant_id)
        ),
    )


def unwrap_grant(
    grant_id: str,
    link_secret: bytes,
    server_secret: bytes,
    wrapped_key: bytes,
    *,
    password: str | None = None,
    password_key: bytes | None = None,
) -> bytes:
    """Recover the content key of a grant, or raise CryptoError."""
    password_key = _resolve_password_key(grant_id, password, password_key)
    kek = derive_kek(link_secret, server_secret, grant_id, password_key)
    return unwrap_key(kek, wrapped_key)


# --- internals ---------------------------------------------------------------------


def _grant_salt(grant_id: str) -> bytes:
    if not isinstance(grant_id, str) or not grant_id:
        raise CryptoError("the grant id must be a non-empty string")
    return grant_id.encode("utf-8")


def _check_len(value: bytes, length: int, what: str) -> None:
    if not isinstance(value, bytes | bytearray | memoryview):
        raise TypeError(f"the {what} must be bytes")
    if len(value) != length:
        raise CryptoError(f"bad {what}: expected {length} bytes, got {len(value)}")


def _hkdf(ikm: bytes, salt: bytes, info: bytes, length: int) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=length, salt=salt, info=info).derive(ikm)


def _resolve_password_key(
    grant_id: str, password: str | None, password_key: bytes | None
) -> bytes | None:
    if password is not None and password_key is not None:
        raise CryptoError("pass either a password or a password key, not both")
    if password is not None:
        return derive_password_key(password, grant_id)
    return password_key
