"""Cross-checks with http_ece, an independent RFC 8188 implementation (tests only)."""

from __future__ import annotations

import os

import http_ece
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from sealbox.crypto import CryptoError, ece
from tests.crypto.conftest import RFC_VECTORS, reference_encrypt


def theirs_encrypt(plaintext: bytes, key: bytes, rs: int, salt: bytes | None = None) -> bytes:
    return http_ece.encrypt(plaintext, salt=salt, key=key, rs=rs, version="aes128gcm")


def theirs_decrypt(body: bytes, key: bytes) -> bytes:
    return http_ece.decrypt(body, key=key, version="aes128gcm")


@st.composite
def payload_cases(draw):
    """A record size and a plaintext size, biased towards record boundaries."""
    rs = draw(st.one_of(st.integers(18, 64), st.integers(65, 5000), st.just(65536)))
    capacity = rs - ece.RECORD_OVERHEAD
    records = draw(st.integers(0, 4 if rs > 5000 else 12))
    size = draw(
        st.one_of(
            st.integers(0, 3 * capacity + 5),
            st.builds(lambda d: max(0, records * capacity + d), st.integers(-1, 1)),
        )
    )
    return rs, size


@pytest.mark.parametrize("vector", RFC_VECTORS, ids=lambda v: v.name)
def test_http_ece_agrees_on_the_rfc_vectors(vector):
    assert theirs_decrypt(vector.body, vector.ikm) == vector.plaintext


@settings(max_examples=80, deadline=None)
@given(case=payload_cases(), key_size=st.sampled_from([16, 32]))
@example(case=(18, 0), key_size=16)
@example(case=(18, 1), key_size=16)
@example(case=(4096, 4079), key_size=32)  # exactly one full record
@example(case=(4096, 4080), key_size=32)  # one byte into a second record
@example(case=(65536, 65518), key_size=32)
@example(case=(65536, 65519), key_size=32)
@example(case=(65536, 65520), key_size=32)
def test_ours_decrypts_with_http_ece(case, key_size):
    rs, size = case
    key = os.urandom(key_size)
    plaintext = os.urandom(size)
    body = ece.encrypt(plaintext, key, rs=rs)
    assert theirs_decrypt(body, key) == plaintext


@settings(max_examples=80, deadline=None)
@given(case=payload_cases(), key_size=st.sampled_from([16, 32]))
@example(case=(18, 1), key_size=16)
@example(case=(4096, 4079), key_size=32)
@example(case=(4096, 4080), key_size=32)
@example(case=(65536, 65519), key_size=32)
@example(case=(65536, 2 * 65519), key_size=32)
def test_http_ece_output_decrypts_with_ours_and_matches_byte_for_byte(case, key_size):
    rs, size = case
    if size == 0:
        size = 1  # see test_empty_payload_from_http_ece_is_rejected_as_truncated
    key = os.urandom(key_size)
    salt = os.urandom(16)
    plaintext = os.urandom(size)
    body = theirs_encrypt(plaintext, key, rs, salt)
    assert ece.decrypt(body, key) == plaintext
    # Both encoders fill records the same way: same salt, same bytes.
    assert ece.encrypt(plaintext, key, rs=rs, salt=salt) == body


def test_empty_payload_from_http_ece_is_rejected_as_truncated():
    """http_ece encodes an empty plaintext as a bare header with no record at all.

    A payload without a final (delimiter 2) record is indistinguishable from one cut
    after its header, so sealbox rejects it: a truncated stream is never reported as
    complete. Sealbox itself always writes a final record (17 bytes for empty content),
    which http_ece decrypts (test_ours_decrypts_with_http_ece, size 0).
    """
    key = os.urandom(16)
    body = theirs_encrypt(b"", key, 4096)
    assert len(body) == ece.HEADER_LENGTH
    with pytest.raises(CryptoError, match="truncated stream"):
        ece.decrypt(body, key)
    ours = ece.encrypt(b"", key, rs=4096)
    assert len(ours) == ece.HEADER_LENGTH + 17
    assert theirs_decrypt(ours, key) == b""


@pytest.mark.parametrize("rs", [18, 40, 4096])
def test_final_record_holding_only_the_delimiter(rs):
    """A layout our encoder never writes but both decoders must accept."""
    key = os.urandom(16)
    full = os.urandom(rs - 17)
    body = reference_encrypt([(full, 0, 1), (full, 0, 1), (b"", 0, 2)], key, rs=rs)
    assert len(body) == 21 + 2 * rs + 17
    assert ece.decrypt(body, key) == full + full
    assert theirs_decrypt(body, key) == full + full
