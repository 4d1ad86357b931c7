"""sealbox.crypto.ece: RFC 8188 vectors, round trips, streaming, sizes, arguments."""

from __future__ import annotations

import os
import tracemalloc

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sealbox.crypto import CryptoError, ece
from tests.crypto.conftest import RFC_VECTORS, Vector, reference_encrypt, split


@pytest.mark.parametrize("vector", RFC_VECTORS, ids=lambda v: v.name)
def test_rfc8188_vectors_decrypt(vector: Vector):
    assert ece.decrypt(vector.body, vector.ikm) == vector.plaintext


@pytest.mark.parametrize("vector", RFC_VECTORS, ids=lambda v: v.name)
def test_rfc8188_vectors_reencrypt_to_the_same_bytes(vector: Vector):
    body = ece.encrypt(
        vector.plaintext,
        vector.ikm,
        rs=vector.rs,
        salt=vector.salt,
        keyid=vector.keyid,
        pad=vector.pad,
    )
    assert body == vector.body


@pytest.mark.parametrize("vector", RFC_VECTORS, ids=lambda v: v.name)
def test_rfc8188_vectors_byte_by_byte_stream(vector: Vector):
    chunks = [vector.body[i : i + 1] for i in range(len(vector.body))]
    assert b"".join(ece.decrypt_stream(chunks, vector.ikm)) == vector.plaintext
    plain_chunks = [vector.plaintext[i : i + 1] for i in range(len(vector.plaintext))]
    out = ece.encrypt_stream(
        plain_chunks, vector.ikm, rs=vector.rs, salt=vector.salt, keyid=vector.keyid, pad=vector.pad
    )
    assert b"".join(out) == vector.body


def test_rfc8188_3_2_header_and_records():
    vector = RFC_VECTORS[1]
    header = ece.parse_header(vector.body)
    assert header.rs == 25
    assert header.keyid == b"a1"
    assert header.length == 23
    assert len(vector.body) == 23 + 2 * 25


def test_header_layout_and_defaults():
    salt = bytes(range(16))
    body = ece.encrypt(b"hello", os.urandom(32), salt=salt)
    assert body[:16] == salt
    assert body[16:20] == (65536).to_bytes(4, "big")
    assert body[20] == 0  # empty key id
    assert len(body) == ece.HEADER_LENGTH + 5 + 17


def test_fresh_salt_per_payload():
    key = os.urandom(32)
    salts = {ece.parse_header(ece.encrypt(b"same", key)).salt for _ in range(20)}
    assert len(salts) == 20


RS_CASES = [18, 19, 25, 100, 4096, 65536]


def edge_sizes(rs: int) -> list[int]:
    c = rs - ece.RECORD_OVERHEAD
    return sorted({0, 1, c - 1, c, c + 1, 2 * c - 1, 2 * c, 2 * c + 1, 3 * c})


@pytest.mark.parametrize("rs", RS_CASES)
def test_round_trip_at_record_boundaries(rs: int):
    key = os.urandom(32)
    for size in edge_sizes(rs):
        plaintext = os.urandom(size)
        body = ece.encrypt(plaintext, key, rs=rs)
        assert len(body) == ece.encrypted_size(size, rs)
        assert ece.decrypt(body, key) == plaintext


def test_record_layout_is_canonical():
    """Full records, the last one holds the rest (1..rs-17 bytes, 0 only when empty)."""
    rs = 100
    c = rs - 17
    for size, records in [(0, 1), (1, 1), (c, 1), (c + 1, 2), (2 * c, 2), (2 * c + 1, 3)]:
        body = ece.encrypt(os.urandom(size), os.urandom(16), rs=rs)
        assert len(body) - 21 - size == records * 17
        assert (len(body) - 21) // rs + bool((len(body) - 21) % rs) == records


def test_encrypted_size():
    assert ece.encrypted_size(0) == 21 + 17
    assert ece.encrypted_size(65519) == 21 + 65536
    assert ece.encrypted_size(65520) == 21 + 65536 + 18
    assert ece.encrypted_size(int(2.5e9)) == 21 + int(2.5e9) + 17 * 38157
    assert ece.encrypted_size(10, 25, keyid_length=2) == 23 + 10 + 2 * 17
    with pytest.raises(CryptoError):
        ece.encrypted_size(-1)
    with pytest.raises(CryptoError, match="record size out of range"):
        ece.encrypted_size(1, 17)


@settings(max_examples=60, deadline=None)
@given(
    plaintext=st.binary(max_size=3000),
    rs=st.integers(min_value=18, max_value=700),
    cuts=st.lists(st.integers(min_value=0, max_value=10_000), max_size=12),
    salt=st.binary(min_size=16, max_size=16),
)
def test_stream_output_does_not_depend_on_chunking(plaintext, rs, cuts, salt):
    key = b"k" * 32
    whole = ece.encrypt(plaintext, key, rs=rs, salt=salt)
    streamed = b"".join(ece.encrypt_stream(split(plaintext, cuts), key, rs=rs, salt=salt))
    assert streamed == whole
    assert len(whole) == ece.encrypted_size(len(plaintext), rs)
    out = list(ece.decrypt_stream(split(whole, cuts), key))
    assert b"".join(out) == plaintext
    assert all(out)  # never an empty chunk


def test_stream_accepts_any_bytes_like_chunks():
    key = os.urandom(32)
    data = os.urandom(1000)
    chunks = [bytearray(data[:300]), memoryview(data)[300:700], data[700:]]
    body = b"".join(ece.encrypt_stream(chunks, key, rs=100))
    parts = [memoryview(body)[:50], bytearray(body[50:500]), body[500:]]
    assert b"".join(ece.decrypt_stream(parts, key)) == data
    assert ece.decrypt(bytearray(body), bytearray(key)) == data


def test_stream_accepts_empty_chunks():
    key = os.urandom(32)
    body = b"".join(ece.encrypt_stream([b"", b"abc", b"", b""], key, rs=20))
    assert b"".join(ece.decrypt_stream([b"", body[:5], b"", body[5:], b""], key)) == b"abc"


def test_decrypt_stream_yields_before_the_end():
    """Plaintext of authenticated records comes out while the payload still streams."""
    key = os.urandom(32)
    body = ece.encrypt(os.urandom(10_000), key, rs=1000)
    fed = []

    def source():
        for i in range(0, len(body), 500):
            fed.append(i)
            yield body[i : i + 500]

    stream = ece.decrypt_stream(source(), key)
    first = next(stream)
    assert len(first) == 1000 - 17
    assert len(fed) < len(body) // 500


def test_decrypt_accepts_any_valid_layout():
    """Padding in any record and a final record holding only the delimiter."""
    key = os.urandom(16)
    rs = 40  # 23 data bytes per unpadded record
    body = reference_encrypt(
        [(b"a" * 23, 0, 1), (b"b" * 3, 20, 1), (b"", 23, 1), (b"c" * 23, 0, 1), (b"", 0, 2)],
        key,
        rs=rs,
    )
    expected = b"a" * 23 + b"b" * 3 + b"c" * 23
    assert ece.decrypt(body, key) == expected
    assert b"".join(ece.decrypt_stream(split(body, [7, 41, 100]), key)) == expected
    final_padding = reference_encrypt([(b"x" * 23, 0, 1), (b"y", 5, 2)], key, rs=rs)
    assert ece.decrypt(final_padding, key) == b"x" * 23 + b"y"
    only_delimiter = reference_encrypt([(b"x" * 23, 0, 1), (b"", 0, 2)], key, rs=rs)
    assert ece.decrypt(only_delimiter, key) == b"x" * 23


def test_keyid_is_carried_and_ignored_for_keys():
    key = os.urandom(32)
    body = ece.encrypt(b"data", key, keyid=b"some key id")
    assert ece.parse_header(body).keyid == b"some key id"
    assert ece.decrypt(body, key) == b"data"
    assert len(body) == ece.encrypted_size(4, keyid_length=11)


def test_padding_option_pads_the_first_record():
    key = os.urandom(16)
    rs = 30
    plain = b"z" * 40
    body = ece.encrypt(plain, key, rs=rs, pad=5)
    assert ece.decrypt(body, key) == plain
    # 8 data bytes in the first record (13 - 5), then 13, 13, 6.
    assert len(body) == 21 + 3 * rs + 6 + 17
    assert ece.decrypt(ece.encrypt(b"", key, rs=rs, pad=13), key) == b""


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"rs": 17}, "record size out of range"),
        ({"rs": 2**24 + 1}, "record size out of range"),
        ({"salt": b"short"}, "salt must be 16 bytes"),
        ({"keyid": b"k" * 256}, "key id"),
        ({"rs": 100, "pad": 84}, "padding"),
        ({"pad": -1}, "padding"),
    ],
)
def test_encrypt_rejects_bad_arguments(kwargs, message):
    with pytest.raises(CryptoError, match=message):
        ece.encrypt(b"x", os.urandom(32), **kwargs)
    # Streaming checks its arguments at once, before reading any chunk.
    with pytest.raises(CryptoError, match=message):
        ece.encrypt_stream(iter(()), os.urandom(32), **kwargs)


def test_short_or_missing_key_is_rejected():
    with pytest.raises(CryptoError, match="key too short"):
        ece.encrypt(b"x", b"short")
    with pytest.raises(CryptoError, match="key too short"):
        ece.decrypt_stream(iter(()), b"")
    with pytest.raises(TypeError):
        ece.encrypt(b"x", "a string key" * 4)  # type: ignore[arg-type]


def test_largest_record_size_round_trips():
    key = os.urandom(32)
    plain = os.urandom(ece.MAX_RS + 100)
    body = ece.encrypt(plain, key, rs=ece.MAX_RS)
    assert ece.decrypt(body, key) == plain


def _peak_memory(run) -> int:
    tracemalloc.start()
    try:
        run()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_streaming_memory_does_not_grow_with_the_stream():
    """64 MiB in 256 KiB chunks: peak allocations stay around one record + one chunk."""
    key = os.urandom(32)
    block = os.urandom(256 * 1024)
    count = 256

    def plaintext():
        for _ in range(count):
            yield block

    def encrypt_only():
        total = 0
        for part in ece.encrypt_stream(plaintext(), key):
            total += len(part)
        assert total == ece.encrypted_size(len(block) * count)

    def round_trip():
        total = 0
        for part in ece.decrypt_stream(ece.encrypt_stream(plaintext(), key), key):
            total += len(part)
        assert total == len(block) * count

    assert _peak_memory(encrypt_only) < 1_000_000
    assert _peak_memory(round_trip) < 1_000_000


def test_errors_are_value_errors():
    assert issubclass(CryptoError, ValueError)
