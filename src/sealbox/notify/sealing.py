"""Seal the content of queued emails and SMS (links with their secret, codes, reset links).

A queued message sits in the database until a worker delivers it. Whoever copies the
data folder — the SQLite file and its -wal, the blobs, and the generated secret key, all
in one place in the embedded default — must not be able to read what was queued, nor
what was delivered long ago. So each queued message gets its own random 32-byte
*payload key*, and its content is sealed with

    sealing key = HKDF-SHA256(ikm = SECRET_KEY ‖ payload key,
                              salt = outbox id, info = "sealbox outbox v2")

(AES-256-GCM, random 12-byte nonce, the outbox id in the associated data).

- The sealed bytes live in the database row (`OutboxMessage.sealed`).
- The payload key lives OUTSIDE the database, as one small object in the blob storage
  (`outbox/<id>`; local files by default, S3 when configured): see `keystore`.
- The secret key lives in neither (environment variable, or the `secret_key` file).

On delivery, or on the final failure, the row's sealed bytes are set to NULL and the
payload key object is destroyed. Deleted database bytes can linger (SQLite free pages and
old -wal frames, PostgreSQL dead tuples, backups), which is why the key is not kept in the
database: once the key object is gone, lingering ciphertext is noise. A copy of the
database alone, or of the storage alone, opens nothing even while a message is queued;
a copy of everything taken while a message is still queued (seconds, normally) can open
that message, and only that one.
"""

from __future__ import annotations

import json
import os
import uuid

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from django.conf import settings

from sealbox import keys

INFO = b"sealbox outbox v2"
KEY_BYTES = 32
NONCE_BYTES = 12


class SealError(Exception):
    """The sealed content cannot be opened (wrong or missing key, or altered bytes)."""


def new_payload_key() -> bytes:
    return os.urandom(KEY_BYTES)


def _sealing_key(secret_key: str, payload_key: bytes, outbox_id: uuid.UUID) -> bytes:
    if len(payload_key) != KEY_BYTES:
        raise SealError("the payload key has the wrong length")
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=outbox_id.bytes, info=INFO).derive(
        secret_key.encode() + payload_key
    )


def seal(payload: dict, payload_key: bytes, outbox_id: uuid.UUID) -> bytes:
    """nonce ‖ ciphertext of `payload` (JSON), bound to `outbox_id`."""
    nonce = os.urandom(NONCE_BYTES)
    key = _sealing_key(settings.SECRET_KEY, payload_key, outbox_id)
    return nonce + AESGCM(key).encrypt(nonce, json.dumps(payload).encode(), INFO + outbox_id.bytes)


def unseal(sealed: bytes, payload_key: bytes, outbox_id: uuid.UUID) -> dict:
    """The payload; raises SealError. Tries the secret key, then its fallbacks, so that a
    rotation of SEALBOX_SECRET_KEY does not lose what was queued before it."""
    nonce, ciphertext = sealed[:NONCE_BYTES], sealed[NONCE_BYTES:]
    for secret_key in keys.secret_keys():
        key = _sealing_key(secret_key, payload_key, outbox_id)
        try:
            plaintext = AESGCM(key).decrypt(nonce, ciphertext, INFO + outbox_id.bytes)
        except (InvalidTag, ValueError):
            continue
        return json.loads(plaintext)
    raise SealError("the sealed content cannot be opened")
