"""Benchmark: sealbox.crypto.ece streaming encryption and decryption in Python.

Encrypts a stream of ``--size`` bytes (default 1 GiB) with ``encrypt_stream`` and
decrypts one with ``decrypt_stream``, and measures in the same run a raw baseline:
AES-128-GCM from ``cryptography`` sealing and opening the same records (rs - 16 bytes
of plaintext each) with no framing at all. Prints MB/s, the ratio sealbox / raw, and the
peak memory of the process, which must not grow with ``--size``.

The plaintext is one random 1 MiB block repeated (so producing it costs nothing and
takes no memory). Decryption is fed by a live encryption of the same stream; the time
spent producing its input is measured and subtracted, for sealbox and for the baseline
alike, so the decryption figures cover decryption only. Each measurement is repeated
``--repeat`` times (sealbox and raw interleaved) and the best run is kept. Times are the
process's CPU time (``--wall`` for elapsed time), so a busy machine does not skew them.

    python bench/crypto_python.py              # 1 GiB
    python bench/crypto_python.py --size 64M   # quick run
"""

from __future__ import annotations

import argparse
import os
import re
import resource
import sys
import time
from collections.abc import Iterable, Iterator
from pathlib import Path

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))

from sealbox.crypto import ece  # noqa: E402

MiB = 1 << 20
# CPU time of this (single-threaded) process: the figures do not depend on what else
# the machine runs at the same time. --wall measures elapsed time instead.
CLOCK = time.process_time
BLOCK = 1 * MiB


def parse_size(text: str) -> int:
    match = re.fullmatch(r"(\d+(?:\.\d+)?)\s*([kKmMgG]?)(?:i?B)?", text.strip())
    if not match:
        raise argparse.ArgumentTypeError(f"bad size: {text!r} (examples: 1G, 64M, 1000)")
    factor = {"": 1, "K": 1 << 10, "M": MiB, "G": 1 << 30}[match[2].upper()]
    return int(float(match[1]) * factor)


def plaintext(size: int, block: bytes) -> Iterator[bytes]:
    view = memoryview(block)
    full, rest = divmod(size, len(block))
    for _ in range(full):
        yield view
    if rest:
        yield view[:rest]


class Timed:
    """Wrap an iterator and add up the time spent inside it."""

    def __init__(self, source: Iterable[bytes]) -> None:
        self.source = source
        self.seconds = 0.0

    def __iter__(self) -> Iterator[bytes]:
        clock = CLOCK
        it = iter(self.source)
        while True:
            start = clock()
            try:
                item = next(it)
            except StopIteration:
                self.seconds += clock() - start
                return
            self.seconds += clock() - start
            yield item


def raw_seal(chunks: Iterable[bytes], key: bytes, nonce: int, size: int) -> Iterator[bytes]:
    """Seal records of `size` plaintext bytes with no framing (baseline)."""
    aes = AESGCM(key)
    buf = bytearray(size)
    view = memoryview(buf)
    fill = 0
    counter = 0
    for chunk in chunks:
        data = memoryview(chunk)
        pos, end = 0, len(data)
        while end - pos >= size - fill:
            if fill == 0:
                record = data[pos : pos + size]
            else:
                view[fill:] = data[pos : pos + size - fill]
                record = buf
            pos += size - fill
            fill = 0
            yield aes.encrypt((nonce ^ counter).to_bytes(12, "big"), record, None)
            counter += 1
        view[fill : fill + end - pos] = data[pos:end]
        fill += end - pos
    if fill:
        yield aes.encrypt((nonce ^ counter).to_bytes(12, "big"), view[:fill], None)


def raw_open(records: Iterable[bytes], key: bytes, nonce: int) -> Iterator[bytes]:
    aes = AESGCM(key)
    for counter, record in enumerate(records):
        yield aes.decrypt((nonce ^ counter).to_bytes(12, "big"), record, None)


def consume(chunks: Iterable[bytes]) -> int:
    total = 0
    for chunk in chunks:
        total += len(chunk)
    return total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=parse_size, default=1 << 30, help="e.g. 1G, 64M")
    parser.add_argument("--rs", type=int, default=ece.DEFAULT_RS, help="record size")
    parser.add_argument("--repeat", type=int, default=5, help="runs per measurement")
    parser.add_argument("--wall", action="store_true", help="elapsed time, not CPU time")
    args = parser.parse_args()
    global CLOCK
    if args.wall:
        CLOCK = time.perf_counter
    size, rs = args.size, args.rs
    block = os.urandom(BLOCK)
    ikm = os.urandom(32)
    raw_key = os.urandom(16)
    raw_nonce = int.from_bytes(os.urandom(12))
    record = rs - ece.RECORD_OVERHEAD + 1  # plaintext bytes per record, with delimiter

    def time_encrypt() -> float:
        start = CLOCK()
        n = consume(ece.encrypt_stream(plaintext(size, block), ikm, rs=rs))
        assert n == ece.encrypted_size(size, rs)
        return CLOCK() - start

    def time_raw_seal() -> float:
        start = CLOCK()
        consume(raw_seal(plaintext(size, block), raw_key, raw_nonce, record))
        return CLOCK() - start

    def time_decrypt() -> float:
        source = Timed(ece.encrypt_stream(plaintext(size, block), ikm, rs=rs))
        start = CLOCK()
        n = consume(ece.decrypt_stream(source, ikm))
        assert n == size
        return CLOCK() - start - source.seconds

    def time_raw_open() -> float:
        source = Timed(raw_seal(plaintext(size, block), raw_key, raw_nonce, record))
        start = CLOCK()
        consume(raw_open(source, raw_key, raw_nonce))
        return CLOCK() - start - source.seconds

    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    results = {}
    for name, ours, raw in (
        ("encrypt", time_encrypt, time_raw_seal),
        ("decrypt", time_decrypt, time_raw_open),
    ):
        # Interleave the runs so that both see the same machine conditions.
        t_ours, t_raw = float("inf"), float("inf")
        for _ in range(args.repeat):
            t_raw = min(t_raw, raw())
            t_ours = min(t_ours, ours())
        results[name] = (t_ours, t_raw)
    rss_after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

    clock = "elapsed time" if args.wall else "CPU time"
    print(
        f"sealbox.crypto.ece (Python) - stream of {size / MiB:.0f} MiB, rs {rs}, "
        f"best of {args.repeat}, {clock}"
    )
    print(f"{'':8} {'sealbox MB/s':>13} {'raw AES-GCM MB/s':>17} {'ratio':>6}")
    for name, (t_ours, t_raw) in results.items():
        print(
            f"{name:8} {size / t_ours / 1e6:13.0f} {size / t_raw / 1e6:17.0f} {t_raw / t_ours:6.2f}"
        )
    print(f"peak RSS: {rss_after:.1f} MB (before the runs: {rss_before:.1f} MB)")


if __name__ == "__main__":
    main()
