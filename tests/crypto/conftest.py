"""Shared helpers for the crypto tests (no Django, no database)."""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

ROOT = Path(__file__).resolve().parents[2]
JS_DIR = ROOT / "src" / "sealbox" / "static" / "sealbox" / "js"
NODE_HELPER = ROOT / "tests" / "js" / "interop.mjs"
WALRUS = b"I am the walrus"


def b64d(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def b64e(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


@dataclass(frozen=True)
class Vector:
    name: str
    ikm: bytes
    body: bytes
    rs: int
    keyid: bytes
    pad: int
    plaintext: bytes = WALRUS

    @property
    def salt(self) -> bytes:
        return self.body[:16]


#: RFC 8188 section 3.1 and 3.2, as quoted in DESIGN.md section 3.
RFC_VECTORS = [
    Vector(
        "rfc8188-3.1",
        ikm=b64d("yqdlZ-tYemfogSmv7Ws5PQ"),
        body=b64d("I1BsxtFttlv3u_Oo94xnmwAAEAAA-NAVub2qFgBEuQKRapoZu-IxkIva3MEB1PD-ly8Thjg"),
        rs=4096,
        keyid=b"",
        pad=0,
    ),
    Vector(
        "rfc8188-3.2",
        ikm=b64d("BO3ZVPxUlnLORbVGMpbT1Q"),
        body=b64d(
            "uNCkWiNYzKTnBN9ji3-qWAAAABkCYTHOG8chz_gnvgOqdGYovxyjuqRyJFjEDyoF1Fvkj6hQPdPHI51OEUKE"
            "pgz3SsLWIqS_uA"
        ),
        rs=25,
        keyid=b"a1",
        pad=1,
    ),
]


def reference_encrypt(
    records: list[tuple[bytes, int, int]],
    ikm: bytes,
    *,
    salt: bytes | None = None,
    rs: int = 4096,
    keyid: bytes = b"",
) -> bytes:
    """An independent, deliberately naive aes128gcm encoder for arbitrary layouts.

    ``records`` lists ``(data, padding_length, delimiter)`` per record, so tests can
    build any layout: padding anywhere, a last record holding only the delimiter, wrong
    delimiters, short non-final records. Sizes are not checked.
    """
    salt = os.urandom(16) if salt is None else salt

    def hkdf(info: bytes, length: int) -> bytes:
        return HKDF(hashes.SHA256(), length, salt, info).derive(ikm)

    aes = AESGCM(hkdf(b"Content-Encoding: aes128gcm\x00", 16))
    base = hkdf(b"Content-Encoding: nonce\x00", 12)
    out = [salt, rs.to_bytes(4, "big"), bytes([len(keyid)]), keyid]
    for index, (data, padding, delimiter) in enumerate(records):
        nonce = bytes(a ^ b for a, b in zip(base, index.to_bytes(12, "big"), strict=True))
        plain = data + bytes([delimiter]) + bytes(padding)
        out.append(aes.encrypt(nonce, plain, None))
    return b"".join(out)


def split(data: bytes, cuts: list[int]) -> list[bytes]:
    """Split ``data`` at the given offsets (any order, duplicates allowed)."""
    points = sorted({0, len(data), *(c % (len(data) + 1) for c in cuts)})
    return [data[a:b] for a, b in zip(points, points[1:], strict=False)]


def node_path() -> str:
    node = shutil.which("node") or "/usr/bin/node"
    if not Path(node).exists():
        pytest.skip("Node.js is not installed")
    return node


def run_node_cases(cases: list[dict], tmp_path: Path) -> list[dict]:
    """Run a batch of cases through tests/js/interop.mjs in one Node process."""
    request = tmp_path / "cases.json"
    response = tmp_path / "results.json"
    request.write_text(json.dumps({"cases": cases}))
    proc = subprocess.run(
        [node_path(), str(NODE_HELPER), "batch", str(request), str(response)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr
    results = json.loads(response.read_text())["results"]
    assert len(results) == len(cases)
    return results


@pytest.fixture
def node() -> str:
    return node_path()
