"""sealbox.crypto.grants, checked against an independent hashlib/hmac implementation."""

from __future__ import annotations

import hashlib
import hmac
import os
import unicodedata

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from sealbox.crypto import CryptoError, ece, grants

GRANT_ID = "3f9c2d1e-7b4a-4c1e-9d2f-0a1b2c3d4e5f"


def hkdf_sha256(ikm: bytes, salt: bytes, info: bytes, length: int) -> bytes:
    """RFC 5869 written out with hmac, independent of `cryptography`."""
    prk = hmac.new(salt, ikm, hashlib.sha256).digest()
    out, block, counter = b"", b"", 1
    while len(out) < length:
        block = hmac.new(prk, block + info + bytes([counter]), hashlib.sha256).digest()
        out += block
        counter += 1
    return out[:length]


@pytest.fixture(scope="module")
def password_key() -> bytes:
    return grants.derive_password_key("correct horse battery staple", GRANT_ID)


def test_password_key_is_pbkdf2_sha256_600000(password_key):
    expected = hashlib.pbkdf2_hmac(
        "sha256", b"correct horse battery staple", GRANT_ID.encode(), 600_000, 32
    )
    assert password_key == expected
    assert grants.PBKDF2_ITERATIONS == 600_000


def test_verifier_is_hkdf_of_the_password_key(password_key):
    verifier = grants.password_verifier(password_key, GRANT_ID)
    assert verifier == hkdf_sha256(
        password_key, GRANT_ID.encode(), b"sealbox password verifier", 32
    )
    assert verifier != password_key
    assert grants.password_verifier(password_key, GRANT_ID + "x") != verifier


def test_kek_definition():
    link, server, pkey = os.urandom(16), os.urandom(16), os.urandom(32)
    salt = GRANT_ID.encode()
    assert grants.derive_kek(link, server, GRANT_ID) == hkdf_sha256(
        link + server, salt, b"sealbox grant v1", 32
    )
    assert grants.derive_kek(link, server, GRANT_ID, pkey) == hkdf_sha256(
        link + server + pkey, salt, b"sealbox grant v1", 32
    )


def test_grant_id_is_used_as_utf8():
    grant_id = "subvention-été-✓"
    link, server = os.urandom(16), os.urandom(16)
    assert grants.derive_kek(link, server, grant_id) == hkdf_sha256(
        link + server, grant_id.encode("utf-8"), b"sealbox grant v1", 32
    )


def test_wrapped_key_format():
    kek, content_key, nonce = os.urandom(32), os.urandom(32), os.urandom(12)
    wrapped = grants.wrap_key(kek, content_key, nonce=nonce)
    assert len(wrapped) == grants.WRAPPED_KEY_LENGTH == 60
    assert wrapped[:12] == nonce
    assert wrapped[12:] == AESGCM(kek).encrypt(nonce, content_key, None)
    assert grants.unwrap_key(kek, wrapped) == content_key
    assert grants.wrap_key(kek, content_key)[:12] != grants.wrap_key(kek, content_key)[:12]


def test_create_and_unwrap_grant_without_password():
    content_key = grants.new_content_key()
    grant = grants.create_grant(content_key, GRANT_ID)
    assert len(grant.link_secret) == 16
    assert len(grant.server_secret) == 16
    assert len(grant.wrapped_key) == 60
    assert grant.password_verifier is None
    assert (
        grants.unwrap_grant(GRANT_ID, grant.link_secret, grant.server_secret, grant.wrapped_key)
        == content_key
    )
    kek = hkdf_sha256(
        grant.link_secret + grant.server_secret, GRANT_ID.encode(), b"sealbox grant v1", 32
    )
    nonce, sealed = grant.wrapped_key[:12], grant.wrapped_key[12:]
    assert AESGCM(kek).decrypt(nonce, sealed, None) == content_key


def test_create_and_unwrap_grant_with_password(password_key):
    content_key = grants.new_content_key()
    grant = grants.create_grant(content_key, GRANT_ID, password="correct horse battery staple")
    assert grant.password_verifier == grants.password_verifier(password_key, GRANT_ID)
    args = (GRANT_ID, grant.link_secret, grant.server_secret, grant.wrapped_key)
    assert grants.unwrap_grant(*args, password_key=password_key) == content_key
    assert grants.unwrap_grant(*args, password="correct horse battery staple") == content_key
    kek = hkdf_sha256(
        grant.link_secret + grant.server_secret + password_key,
        GRANT_ID.encode(),
        b"sealbox grant v1",
        32,
    )
    assert grants.unwrap_key(kek, grant.wrapped_key) == content_key


def test_grant_unlocks_a_payload():
    content_key = grants.new_content_key()
    body = ece.encrypt(b'{"v":1,"body":"hello"}', content_key)
    grant = grants.create_grant(content_key, GRANT_ID)
    key = grants.unwrap_grant(GRANT_ID, grant.link_secret, grant.server_secret, grant.wrapped_key)
    assert ece.decrypt(body, key) == b'{"v":1,"body":"hello"}'


def test_every_grant_is_fresh():
    content_key = grants.new_content_key()
    a = grants.create_grant(content_key, GRANT_ID)
    b = grants.create_grant(content_key, GRANT_ID)
    assert a.link_secret != b.link_secret
    assert a.server_secret != b.server_secret
    assert a.wrapped_key != b.wrapped_key
    assert grants.new_content_key() != grants.new_content_key()


def test_passwords_are_nfc_normalised():
    composed = unicodedata.normalize("NFC", "café")
    decomposed = unicodedata.normalize("NFD", "café")
    assert composed != decomposed
    a = grants.derive_password_key(composed, GRANT_ID, iterations=1000)
    b = grants.derive_password_key(decomposed, GRANT_ID, iterations=1000)
    assert a == b == hashlib.pbkdf2_hmac("sha256", composed.encode(), GRANT_ID.encode(), 1000)


def test_secrets_are_not_in_the_repr():
    grant = grants.create_grant(grants.new_content_key(), GRANT_ID)
    text = repr(grant)
    assert grant.link_secret.hex() not in text
    assert repr(grant.link_secret) not in text
    assert repr(grant.server_secret) not in text
    assert repr(grant.wrapped_key) not in text


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda: grants.create_grant(os.urandom(16), GRANT_ID), "content key"),
        (lambda: grants.create_grant(os.urandom(32), ""), "grant id"),
        (lambda: grants.derive_password_key("", GRANT_ID), "password"),
        (lambda: grants.derive_password_key("pw", GRANT_ID, iterations=0), "iterations"),
        (lambda: grants.derive_kek(os.urandom(15), os.urandom(16), GRANT_ID), "link secret"),
        (lambda: grants.derive_kek(os.urandom(16), os.urandom(17), GRANT_ID), "server secret"),
        (
            lambda: grants.derive_kek(os.urandom(16), os.urandom(16), GRANT_ID, b"short"),
            "password key",
        ),
        (lambda: grants.password_verifier(os.urandom(31), GRANT_ID), "password key"),
        (lambda: grants.wrap_key(os.urandom(32), os.urandom(32), nonce=b"x"), "nonce"),
        (lambda: grants.unwrap_key(os.urandom(32), os.urandom(59)), "wrapped key"),
        (
            lambda: grants.create_grant(
                os.urandom(32), GRANT_ID, password="a", password_key=os.urandom(32)
            ),
            "either",
        ),
    ],
)
def test_bad_arguments(call, message):
    with pytest.raises(CryptoError, match=message):
        call()
