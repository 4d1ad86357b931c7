"""Every way to tamper with a payload or a grant raises CryptoError, never bad output.

The same tampered payloads are checked against the JS modules in
test_ece_js_interop.py (see ``tampered_payloads``).
"""

from __future__ import annotations

import os

import pytest

from sealbox.crypto import CryptoError, ece, grants
from tests.crypto.conftest import RFC_VECTORS, reference_encrypt, split

RS = 64
CAPACITY = RS - 17
KEY = bytes(range(32))
PLAINTEXT = bytes(range(256)) * 1 + b"tail"  # 260 bytes: 5 full records + 25 bytes
BODY = ece.encrypt(PLAINTEXT, KEY, rs=RS, salt=b"S" * 16)
HEADER = ece.HEADER_LENGTH
FULL_BODY = ece.encrypt(PLAINTEXT[: 5 * CAPACITY], KEY, rs=RS)  # 5 full records
RECORDS = [BODY[i : i + RS] for i in range(HEADER, len(BODY), RS)]


def flip(data: bytes, index: int, bit: int = 0) -> bytes:
    out = bytearray(data)
    out[index] ^= 1 << bit
    return bytes(out)


def tampered_payloads() -> list[tuple[str, bytes, bytes, str]]:
    """(name, body, key, expected error fragment) for every kind of tampering."""
    header = BODY[:HEADER]
    cases: list[tuple[str, bytes, bytes, str]] = []
    for i in range(16):
        cases.append((f"salt byte {i}", flip(BODY, i, i % 8), KEY, "authentication failed"))
    cases += [
        (
            "rs smaller",
            header[:16] + (RS - 1).to_bytes(4, "big") + header[20:] + BODY[HEADER:],
            KEY,
            "authentication failed",
        ),
        (
            "rs larger",
            header[:16] + (RS + 1).to_bytes(4, "big") + header[20:] + BODY[HEADER:],
            KEY,
            "authentication failed",
        ),
        (
            "rs too small",
            header[:16] + (17).to_bytes(4, "big") + BODY[20:],
            KEY,
            "record size out of range",
        ),
        (
            "rs too large",
            header[:16] + (2**32 - 1).to_bytes(4, "big") + BODY[20:],
            KEY,
            "record size out of range",
        ),
        (
            "key id length changed",
            header[:20] + b"\x02" + BODY[HEADER:],
            KEY,
            "authentication failed",
        ),
        (
            "key id length past the end",
            header[:20] + b"\xff" + BODY[HEADER : HEADER + 10],
            KEY,
            "bad header",
        ),
        ("empty body", b"", KEY, "bad header"),
        ("header cut short", BODY[: HEADER - 1], KEY, "bad header"),
        ("header only", header, KEY, "truncated stream"),
        ("dropped last record", header + b"".join(RECORDS[:-1]), KEY, "truncated stream"),
        ("dropped first record", header + b"".join(RECORDS[1:]), KEY, "authentication failed"),
        (
            "dropped middle record",
            header + b"".join(RECORDS[:2] + RECORDS[3:]),
            KEY,
            "authentication failed",
        ),
        (
            "swapped records",
            header + b"".join([RECORDS[1], RECORDS[0], *RECORDS[2:]]),
            KEY,
            "authentication failed",
        ),
        (
            "swapped last two",
            header + b"".join([*RECORDS[:-2], RECORDS[-1], RECORDS[-2]]),
            KEY,
            "authentication failed",
        ),
        (
            "duplicated record",
            header + b"".join([RECORDS[0], *RECORDS]),
            KEY,
            "authentication failed",
        ),
        # The last record is short, so anything appended lengthens it.
        ("appended copy of last record", BODY + RECORDS[-1], KEY, "authentication failed"),
        ("appended record", BODY + RECORDS[0], KEY, "authentication failed"),
        ("appended byte", BODY + b"\x00", KEY, "authentication failed"),
        # A full-size last record: anything after it is data after the final record.
        (
            "appended record after a full last record",
            FULL_BODY + FULL_BODY[HEADER : HEADER + RS],
            KEY,
            "data after the final record",
        ),
        (
            "appended byte after a full last record",
            FULL_BODY + b"\x00",
            KEY,
            "data after the final record",
        ),
        (
            "last record cut to 16 bytes",
            BODY[: -len(RECORDS[-1])] + RECORDS[-1][:16],
            KEY,
            "record too short",
        ),
        ("last record cut by one byte", BODY[:-1], KEY, "authentication failed"),
        ("wrong key", BODY, os.urandom(32), "authentication failed"),
        ("key one bit off", BODY, flip(KEY, 31), "authentication failed"),
        (
            "record from another payload",
            header + b"".join(RECORDS[:2]) + ece.encrypt(PLAINTEXT, KEY, rs=RS)[HEADER + 2 * RS :],
            KEY,
            "authentication failed",
        ),
    ]
    for r, record in enumerate(RECORDS):
        for index in (0, len(record) // 2, len(record) - 17, len(record) - 16, len(record) - 1):
            body = header + b"".join(RECORDS[:r] + [flip(record, index, 7)] + RECORDS[r + 1 :])
            cases.append((f"record {r} byte {index}", body, KEY, "authentication failed"))
    # Authentic records with invalid framing (built with the reference encoder).
    data = os.urandom(CAPACITY)
    framing = [
        ("final record marked 1", [(data, 0, 1), (b"end", 0, 1)], "truncated stream"),
        (
            "non-final record marked 2",
            [(data, 0, 2), (b"end", 0, 2)],
            "data after the final record",
        ),
        ("delimiter 3", [(data, 0, 3)], "bad padding"),
        ("delimiter 0x80", [(data[:-1], 0, 0x80)], "bad padding"),
        ("all-zero record", [(b"", CAPACITY, 0)], "bad padding"),
        ("all-zero final record", [(data, 0, 1), (b"", 4, 0)], "bad padding"),
        ("short non-final record", [(b"short", 0, 1), (b"end", 0, 2)], "authentication failed"),
        ("short final record marked 1", [(data, 0, 1), (b"x", 0, 1)], "truncated stream"),
    ]
    for name, records, message in framing:
        cases.append((name, reference_encrypt(records, KEY, rs=RS), KEY, message))
    return cases


CASES = tampered_payloads()


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_tampered_payload_is_rejected(case):
    _, body, key, message = case
    with pytest.raises(CryptoError, match=message):
        ece.decrypt(body, key)
    for cuts in ([], [1], [HEADER], [HEADER + 5, HEADER + RS + 7], list(range(0, len(body), 13))):
        with pytest.raises(CryptoError, match=message):
            for _ in ece.decrypt_stream(split(body, cuts), key):
                pass


def test_every_truncation_is_detected():
    """Cut anywhere (byte by byte), the stream never completes successfully."""
    for end in range(len(BODY)):
        with pytest.raises(CryptoError):
            ece.decrypt(BODY[:end], KEY)
        with pytest.raises(CryptoError):
            b"".join(ece.decrypt_stream(split(BODY[:end], [7, 64, 150]), KEY))


def test_every_single_bit_flip_is_detected():
    """Every bit of every byte of a small multi-record payload."""
    key = os.urandom(16)
    body = ece.encrypt(b"0123456789" * 5, key, rs=30)
    for index in range(len(body)):
        for bit in range(8):
            with pytest.raises(CryptoError):
                ece.decrypt(flip(body, index, bit), key)


def test_key_id_is_unauthenticated_metadata_that_cannot_change_the_plaintext():
    """RFC 8188 does not authenticate the key id (it only names the key to use).

    Sealbox writes an empty key id and ignores it when decrypting, so rewriting it can
    change nothing but the header itself; salt and rs are bound to the records.
    """
    body = BODY[:20] + b"\x05other" + BODY[HEADER:]
    assert ece.parse_header(body).keyid == b"other"
    assert ece.decrypt(body, KEY) == PLAINTEXT


@pytest.mark.parametrize("vector", RFC_VECTORS, ids=lambda v: v.name)
def test_rfc_vector_tampering(vector):
    """Every flipped bit is rejected, except where it cannot change the plaintext.

    Those exceptions are the key id (unauthenticated, ignored) and a record size that
    stays larger than the single record of 3.1 (the record layout is unchanged).
    """
    keyid_bytes = range(ece.HEADER_LENGTH, ece.HEADER_LENGTH + len(vector.keyid))
    for index in range(len(vector.body)):
        for bit in range(8):
            tampered = flip(vector.body, index, bit)
            try:
                plaintext = ece.decrypt(tampered, vector.ikm)
            except CryptoError:
                continue
            assert plaintext == vector.plaintext
            header = ece.parse_header(tampered)
            assert index in keyid_bytes or (
                index in range(16, 20) and header.rs > len(vector.body) - header.length
            )
    with pytest.raises(CryptoError):
        ece.decrypt(vector.body, os.urandom(16))


def test_plaintext_before_the_error_is_only_authenticated_records():
    """Streaming yields authenticated records, then raises; it never yields tampered bytes."""
    body = flip(BODY, HEADER + 3 * RS + 5)
    out = []
    with pytest.raises(CryptoError, match="record 3"):
        for part in ece.decrypt_stream([body], KEY):
            out.append(part)
    assert b"".join(out) == PLAINTEXT[: 3 * CAPACITY]


def test_error_messages_never_contain_key_material():
    secret = os.urandom(32)
    body = ece.encrypt(b"secret plaintext", secret)
    representations = [secret.hex(), secret.hex().upper(), repr(secret), "secret plaintext"]
    errors = []
    for bad in (flip(body, 30), body[:-1], body + b"x", body[:10]):
        with pytest.raises(CryptoError) as info:
            ece.decrypt(bad, secret)
        errors.append(info.value)
    with pytest.raises(CryptoError) as info:
        grants.unwrap_grant("g1", secret[:16], secret[16:], bytes(60))
    errors.append(info.value)
    for error in errors:
        text = str(error) + repr(error.args)
        assert all(r not in text for r in representations)
        assert error.__cause__ is None
        assert error.__context__ is None or error.__suppress_context__


# --- grants --------------------------------------------------------------------------

GRANT_ID = "grant-7f3a"
CONTENT_KEY = os.urandom(32)


@pytest.fixture(scope="module")
def password_grant():
    password_key = grants.derive_password_key("correct horse", GRANT_ID)
    grant = grants.create_grant(CONTENT_KEY, GRANT_ID, password_key=password_key)
    return grant, password_key


def test_grant_without_password_rejects_every_wrong_factor():
    grant = grants.create_grant(CONTENT_KEY, GRANT_ID)
    good = (GRANT_ID, grant.link_secret, grant.server_secret, grant.wrapped_key)
    assert grants.unwrap_grant(*good) == CONTENT_KEY
    wrong = [
        ("other grant id", ("grant-7f3b", *good[1:])),
        ("wrong link secret", (GRANT_ID, os.urandom(16), *good[2:])),
        ("wrong server secret", (GRANT_ID, good[1], os.urandom(16), good[3])),
        ("secrets swapped", (GRANT_ID, good[2], good[1], good[3])),
    ]
    for index in range(60):
        wrong.append((f"wrapped byte {index}", (*good[:3], flip(grant.wrapped_key, index))))
    for _name, args in wrong:
        with pytest.raises(CryptoError, match="authentication failed"):
            grants.unwrap_grant(*args)
    with pytest.raises(CryptoError, match="authentication failed"):
        grants.unwrap_grant(*good, password_key=os.urandom(32))
    with pytest.raises(CryptoError, match="wrapped key"):
        grants.unwrap_grant(*good[:3], grant.wrapped_key[:-1])


def test_grant_with_password_needs_the_password(password_grant):
    grant, password_key = password_grant
    args = (GRANT_ID, grant.link_secret, grant.server_secret, grant.wrapped_key)
    assert grants.unwrap_grant(*args, password_key=password_key) == CONTENT_KEY
    with pytest.raises(CryptoError, match="authentication failed"):
        grants.unwrap_grant(*args)  # no password
    with pytest.raises(CryptoError, match="authentication failed"):
        grants.unwrap_grant(*args, password="correct horse!")  # wrong password
    with pytest.raises(CryptoError, match="authentication failed"):
        grants.unwrap_grant(*args, password_key=flip(password_key, 0))
