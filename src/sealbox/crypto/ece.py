"""RFC 8188 "aes128gcm" encrypted content-encoding, one-shot and streaming.

Payload layout (all integers big-endian)::

    header  = salt (16 bytes) || rs (uint32) || idlen (uint8) || keyid (idlen bytes)
    records = record_0 || record_1 || ... || record_last

    PRK    = HKDF-Extract(salt, IKM)                                  (HMAC-SHA-256)
    CEK    = HKDF-Expand(PRK, "Content-Encoding: aes128gcm" || 0x00, 16)
    NONCE  = HKDF-Expand(PRK, "Content-Encoding: nonce" || 0x00, 12)
    record_i = AES-128-GCM(CEK, nonce = NONCE XOR i (96-bit), plaintext_i)  (+16-byte tag)
    plaintext_i = data || delimiter || zero padding
    delimiter   = 0x01 for every record but the last, 0x02 for the last

Every record but the last is exactly ``rs`` bytes of ciphertext (``rs - 17`` bytes of
data when unpadded). The encoder here is canonical: it fills records to capacity, the
last record holds the remaining 1..rs-17 bytes (0 only for an empty payload), so the
output depends only on plaintext, key, salt, rs and key id, never on how the input was
chunked; the JS module ``static/sealbox/js/ece.js`` produces the same bytes. The decoder
accepts every valid RFC 8188 layout (padding anywhere, a last record that holds only
the delimiter).

Sealbox uses rs = 65536, an empty key id and a fresh random 16-byte salt per payload;
the IKM is the message's 32-byte content key. Record sizes are limited to
``MIN_RS``..``MAX_RS`` (18 bytes to 16 MiB) so that a hostile header cannot make the
decoder buffer an arbitrarily large record.

The streaming functions hold at most one record plus one input chunk. Decryption yields
each record's plaintext as soon as that record is authenticated; a stream is only
complete (and known not to be truncated) when the iterator finishes without raising.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from itertools import chain

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from sealbox.crypto import CryptoError

__all__ = [
    "DEFAULT_RS",
    "HEADER_LENGTH",
    "MAX_RS",
    "MIN_RS",
    "RECORD_OVERHEAD",
    "SALT_LENGTH",
    "Header",
    "decrypt",
    "decrypt_stream",
    "encrypt",
    "encrypt_stream",
    "encrypted_size",
    "parse_header",
]

DEFAULT_RS = 65536
SALT_LENGTH = 16
TAG_LENGTH = 16
KEY_LENGTH = 16
NONCE_LENGTH = 12
#: Header length with an empty key id: salt (16) + rs (4) + idlen (1).
HEADER_LENGTH = SALT_LENGTH + 4 + 1
#: Bytes a record adds to its data: the 16-byte tag and the 1-byte delimiter.
RECORD_OVERHEAD = TAG_LENGTH + 1
MIN_RS = RECORD_OVERHEAD + 1
MAX_RS = 1 << 24
MAX_KEYID_LENGTH = 255
MIN_IKM_LENGTH = 16

_CEK_INFO = b"Content-Encoding: aes128gcm\x00"
_NONCE_INFO = b"Content-Encoding: nonce\x00"
_DELIMITER = 1
_LAST_DELIMITER = 2


@dataclass(frozen=True)
class Header:
    """The parsed header of an aes128gcm payload."""

    salt: bytes
    rs: int
    keyid: bytes

    @property
    def length(self) -> int:
        """Length of the header in bytes."""
        return HEADER_LENGTH + len(self.keyid)


def parse_header(body: bytes) -> Header:
    """Parse and validate the header at the start of ``body`` (which may hold more)."""
    view = memoryview(body)
    if len(view) < HEADER_LENGTH:
        raise CryptoError(
            f"bad header: {len(view)} bytes, an aes128gcm header is at least {HEADER_LENGTH} bytes"
        )
    idlen = view[SALT_LENGTH + 4]
    if len(view) < HEADER_LENGTH + idlen:
        raise CryptoError(f"bad header: the body ends inside the {idlen}-byte key id")
    rs = int.from_bytes(view[SALT_LENGTH : SALT_LENGTH + 4], "big")
    _check_rs(rs)
    return Header(
        salt=bytes(view[:SALT_LENGTH]),
        rs=rs,
        keyid=bytes(view[HEADER_LENGTH : HEADER_LENGTH + idlen]),
    )


def encrypted_size(plaintext_size: int, rs: int = DEFAULT_RS, *, keyid_length: int = 0) -> int:
    """Exact size of the payload :func:`encrypt` produces for ``plaintext_size`` bytes."""
    _check_rs(rs)
    if plaintext_size < 0:
        raise CryptoError("plaintext size must not be negative")
    records = max(1, -(-plaintext_size // (rs - RECORD_OVERHEAD)))
    return HEADER_LENGTH + keyid_length + plaintext_size + records * RECORD_OVERHEAD


def encrypt(
    plaintext: bytes,
    ikm: bytes,
    *,
    rs: int = DEFAULT_RS,
    salt: bytes | None = None,
    keyid: bytes = b"",
    pad: int = 0,
) -> bytes:
    """Encrypt ``plaintext`` into an aes128gcm payload (header + records).

    ``salt`` defaults to 16 fresh random bytes; pass one only to reproduce known output.
    ``pad`` (for test vectors) puts that many zero octets of padding in the first
    record, 0 <= pad <= rs - 17.
    """
    return b"".join(encrypt_stream((plaintext,), ikm, rs=rs, salt=salt, keyid=keyid, pad=pad))


def decrypt(body: bytes, ikm: bytes) -> bytes:
    """Decrypt a complete aes128gcm payload; raise CryptoError if it is not intact."""
    return b"".join(decrypt_stream((body,), ikm))


def encrypt_stream(
    chunks: Iterable[bytes],
    ikm: bytes,
    *,
    rs: int = DEFAULT_RS,
    salt: bytes | None = None,
    keyid: bytes = b"",
    pad: int = 0,
) -> Iterator[bytes]:
    """Encrypt an iterable of plaintext chunks (any sizes) into payload chunks.

    Yields the header, then one chunk per record. Holds at most one record plus one
    input chunk. Arguments are checked before the first chunk is read.
    """
    _check_ikm(ikm)
    _check_rs(rs)
    if salt is None:
        salt = os.urandom(SALT_LENGTH)
    elif len(salt) != SALT_LENGTH:
        raise CryptoError(f"salt must be {SALT_LENGTH} bytes")
    keyid = bytes(keyid)
    if len(keyid) > MAX_KEYID_LENGTH:
        raise CryptoError(f"key id must be at most {MAX_KEYID_LENGTH} bytes")
    if not 0 <= pad <= rs - RECORD_OVERHEAD:
        raise CryptoError(f"padding must be between 0 and rs - {RECORD_OVERHEAD}")
    header = bytes(salt) + rs.to_bytes(4, "big") + bytes((len(keyid),)) + keyid
    return _encrypt_records(chunks, ikm, bytes(salt), rs, pad, header)


def decrypt_stream(chunks: Iterable[bytes], ikm: bytes) -> Iterator[bytes]:
    """Decrypt payload chunks (any boundaries) and yield plaintext chunks.

    Each yielded chunk comes from an authenticated record, but the payload is only known
    to be complete when the iterator is exhausted without raising: a missing last
    record, data after it, or any modification raises CryptoError at that point.
    """
    _check_ikm(ikm)
    return _decrypt_records(chunks, ikm)


# --- internals ---------------------------------------------------------------------


def _check_ikm(ikm: bytes) -> None:
    if not isinstance(ikm, bytes | bytearray | memoryview):
        raise TypeError("the key must be bytes")
    if len(ikm) < MIN_IKM_LENGTH:
        raise CryptoError(f"key too short: at least {MIN_IKM_LENGTH} bytes are required")


def _check_rs(rs: int) -> None:
    if not isinstance(rs, int) or not MIN_RS <= rs <= MAX_RS:
        raise CryptoError(f"record size out of range: rs must be between {MIN_RS} and {MAX_RS}")


def _derive(ikm: bytes, salt: bytes) -> tuple[AESGCM, int]:
    def hkdf(info: bytes, length: int) -> bytes:
        return HKDF(algorithm=hashes.SHA256(), length=length, salt=salt, info=info).derive(
            bytes(ikm)
        )

    return AESGCM(hkdf(_CEK_INFO, KEY_LENGTH)), int.from_bytes(hkdf(_NONCE_INFO, NONCE_LENGTH))


def _view(chunk: bytes) -> memoryview:
    view = memoryview(chunk)
    if view.format != "B" or view.ndim != 1:
        view = view.cast("B")
    return view


def _encrypt_records(
    chunks: Iterable[bytes], ikm: bytes, salt: bytes, rs: int, pad: int, header: bytes
) -> Iterator[bytes]:
    aes, nonce = _derive(ikm, salt)
    seal = aes.encrypt
    yield header
    capacity = rs - RECORD_OVERHEAD
    # Plaintext of a full record: `capacity` data bytes then the 0x01 delimiter.
    record = bytearray(capacity + 1)
    record[capacity] = _DELIMITER
    view = memoryview(record)
    limit = capacity - pad  # data bytes the current record can hold
    fill = 0  # data bytes waiting in `record`
    counter = 0
    for chunk in chunks:
        data = _view(chunk)
        pos, end = 0, len(data)
        # A record is sealed as non-final only once a byte beyond it exists, so the
        # last record is always the one sealed in the final step below.
        while fill + end - pos > limit:
            take = limit - fill
            view[fill:limit] = data[pos : pos + take]
            pos += take
            if limit == capacity:
                plain: bytes | bytearray = record
            else:  # the first record carries padding
                plain = bytes(view[:limit]) + b"\x01" + bytes(pad)
                limit = capacity
            yield seal((nonce ^ counter).to_bytes(12, "big"), plain, None)
            counter += 1
            fill = 0
        view[fill : fill + end - pos] = data[pos:]
        fill += end - pos
    padding = bytes(pad) if counter == 0 else b""
    plain = bytes(view[:fill]) + b"\x02" + padding
    yield seal((nonce ^ counter).to_bytes(12, "big"), plain, None)


def _unpad(plain: bytes, counter: int) -> tuple[bytes, bool]:
    """Split a record's plaintext into (data, is_last)."""
    end = len(plain) - 1
    delimiter = plain[end]
    if delimiter == 0:
        end = len(plain.rstrip(b"\x00")) - 1
        if end < 0:
            raise CryptoError(f"bad padding: record {counter} has no delimiter")
        delimiter = plain[end]
    if delimiter == _DELIMITER:
        return plain[:end], False
    if delimiter == _LAST_DELIMITER:
        return plain[:end], True
    raise CryptoError(f"bad padding: record {counter} has an invalid delimiter")


def _auth_failed(counter: int, final: bool = False) -> CryptoError:
    cause = "modified or truncated" if final else "modified or reordered"
    return CryptoError(
        f"authentication failed for record {counter}: wrong key, or the data was {cause}"
    )


def _read_header(chunks: Iterator[bytes]) -> tuple[Header, memoryview]:
    """Consume the header from `chunks`; return it and the rest of its last chunk."""
    head = bytearray()
    need = HEADER_LENGTH  # then the key id, whose length is the header's last byte
    for chunk in chunks:
        data = _view(chunk)
        while data and len(head) < need:
            take = need - len(head)
            head += data[:take]
            data = data[take:]
            if len(head) == HEADER_LENGTH:
                need += head[HEADER_LENGTH - 1]
        if len(head) == need:
            return parse_header(head), data
    parse_header(head)  # raises: the body ends inside the header
    raise AssertionError("unreachable")


def _decrypt_records(chunks: Iterable[bytes], ikm: bytes) -> Iterator[bytes]:
    chunks = iter(chunks)
    header, rest = _read_header(chunks)
    rs = header.rs
    aes, nonce = _derive(ikm, header.salt)
    open_ = aes.decrypt

    record = bytearray(rs)
    view = memoryview(record)
    fill = 0  # bytes of an incomplete record waiting in `record`
    counter = 0
    last = False
    for chunk in chain((rest,), chunks):
        if type(chunk) is bytes and fill == 0 and len(chunk) == rs:
            # Fast path: the chunk is exactly one record (as encrypt_stream yields them).
            # Same steps as the general path below, without slicing or copying.
            if last:
                raise CryptoError("data after the final record")
            try:
                plain = open_((nonce ^ counter).to_bytes(12, "big"), chunk, None)
            except InvalidTag:
                raise _auth_failed(counter) from None
            counter += 1
            if plain[-1] == _DELIMITER and len(plain) > 1:
                yield plain[:-1]
                continue
            out, last = _unpad(plain, counter - 1)
            if out:
                yield out
            continue
        data = _view(chunk)
        pos, end = 0, len(data)
        while pos < end:
            if last:
                raise CryptoError("data after the final record")
            if fill == 0 and end - pos >= rs:
                sealed: memoryview | bytearray = data[pos : pos + rs]
                pos += rs
            else:
                take = min(rs - fill, end - pos)
                view[fill : fill + take] = data[pos : pos + take]
                fill += take
                pos += take
                if fill < rs:
                    break
                sealed = record
                fill = 0
            try:
                plain = open_((nonce ^ counter).to_bytes(12, "big"), sealed, None)
            except InvalidTag:
                raise _auth_failed(counter) from None
            counter += 1
            if plain[-1] == _DELIMITER and len(plain) > 1:
                yield plain[:-1]
                continue
            out, last = _unpad(plain, counter - 1)
            if out:
                yield out
    if last:
        return
    if fill == 0:
        raise CryptoError("truncated stream: missing final record")
    if fill < RECORD_OVERHEAD:
        raise CryptoError(
            f"record too short: record {counter} has {fill} bytes, at least "
            f"{RECORD_OVERHEAD} are needed"
        )
    try:
        plain = open_((nonce ^ counter).to_bytes(12, "big"), view[:fill], None)
    except InvalidTag:
        raise _auth_failed(counter, final=True) from None
    out, last = _unpad(plain, counter)
    if not last:
        raise CryptoError(
            f"truncated stream: missing final record (record {counter} is shorter than "
            "the record size but not marked as final)"
        )
    if out:
        yield out
