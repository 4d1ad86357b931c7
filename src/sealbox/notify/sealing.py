"""Encrypt task payloads that carry secrets (reset links, message links).

Queued tasks live in the database until a worker runs them; a copy of the database
alone must not reveal the secrets they carry, so such payloads are sealed with a key
derived from the server's secret key (which is not in the database).
"""

from __future__ import annotations

import base64
import json
import os

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from django.conf import settings

INFO = b"sealbox task payload v1"


def _key() -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=INFO).derive(
        settings.SECRET_KEY.encode()
    )


def seal(payload: dict) -> str:
    nonce = os.urandom(12)
    sealed = AESGCM(_key()).encrypt(nonce, json.dumps(payload).encode(), INFO)
    return base64.urlsafe_b64encode(nonce + sealed).decode()


def unseal(token: str) -> dict:
    raw = base64.urlsafe_b64decode(token.encode())
    return json.loads(AESGCM(_key()).decrypt(raw[:12], raw[12:], INFO))
