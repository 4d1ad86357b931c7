"""Python <-> JS (Node) cross-checks: the browser modules and sealbox.crypto agree.

All batch cases run in one Node process (tests/js/interop.mjs); the streaming cases
pass data through real pipes in both directions.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import random
import subprocess
import threading
import unicodedata
from collections.abc import Iterator

import pytest

from sealbox.crypto import ece, grants, links
from tests.crypto.conftest import NODE_HELPER, RFC_VECTORS, ROOT, b64d, b64e, run_node_cases
from tests.crypto.test_links import MALFORMED
from tests.crypto.test_tampering import tampered_payloads

GRANT_ID = "9b1f0c6e-2d4a-4f8b-a3c5-7e6d5c4b3a29"
PASSWORD = "Ünïcödé pass phrase"  # typed NFC here; one case sends it NFD
SIZES_PER_RS = 6


def size_cases(seed: int = 8188) -> list[tuple[int, int]]:
    """(plaintext size, rs) pairs: record boundaries +-1, empty, one record, random."""
    rng = random.Random(seed)
    cases = []
    for rs in (18, 19, 25, 64, 100, 1000, 4096, 65536):
        c = rs - ece.RECORD_OVERHEAD
        sizes = {0, 1, c - 1, c, c + 1, 2 * c, 2 * c + 1}
        for _ in range(SIZES_PER_RS):
            sizes.add(rng.randrange(0, min(5 * c, 300_000)))
        cases += [(size, rs) for size in sorted(sizes)]
    return cases


@pytest.fixture(scope="module")
def batch(tmp_path_factory):
    """Build every case, run them all in one Node process, return (cases, results)."""
    rng = random.Random(1)
    cases: list[dict] = []
    expect: list[dict] = []  # what Python expects for each case

    def add(case: dict, **expected) -> None:
        cases.append(case)
        expect.append(expected)

    for v in RFC_VECTORS:
        add({"op": "decrypt", "body": b64e(v.body), "ikm": b64e(v.ikm)}, plaintext=v.plaintext)
        add(
            {"op": "decrypt", "body": b64e(v.body), "ikm": b64e(v.ikm), "chunk": 1},
            plaintext=v.plaintext,
        )
        add(
            {
                "op": "encrypt",
                "plaintext": b64e(v.plaintext),
                "ikm": b64e(v.ikm),
                "rs": v.rs,
                "salt": b64e(v.salt),
                "keyid": b64e(v.keyid),
                "pad": v.pad,
            },
            body=v.body,
        )

    for size, rs in size_cases():
        ikm = os.urandom(rng.choice([16, 32]))
        salt = os.urandom(16)
        plaintext = os.urandom(size)
        body = ece.encrypt(plaintext, ikm, rs=rs, salt=salt)
        chunk = rng.choice([1, 7, rs - 1, rs, rs + 1, 65536]) if size < 20_000 else 65536
        base = {"ikm": b64e(ikm)}
        # Python encrypts, JS decrypts (one-shot and streamed).
        add({"op": "decrypt", "body": b64e(body), **base}, plaintext=plaintext)
        add({"op": "decrypt", "body": b64e(body), "chunk": chunk, **base}, plaintext=plaintext)
        # JS encrypts (one-shot and streamed) with the same salt: same bytes as Python.
        enc = {"op": "encrypt", "plaintext": b64e(plaintext), "rs": rs, "salt": b64e(salt)}
        add({**enc, **base}, body=body, plaintext=plaintext, ikm=ikm)
        add({**enc, "chunk": chunk, **base}, body=body, plaintext=plaintext, ikm=ikm)
        # JS encrypts with a fresh salt: Python decrypts.
        add(
            {"op": "encrypt", "plaintext": b64e(plaintext), "rs": rs, **base},
            plaintext=plaintext,
            ikm=ikm,
        )

    # The test-only padding option and key ids give the same bytes in both.
    for size, rs, pad, keyid in [
        (0, 30, 13, b""),
        (5, 30, 13, b"k"),
        (40, 30, 5, b"id"),
        (100, 18, 1, b""),
        (13, 30, 12, b"x" * 255),
    ]:
        ikm, salt, plaintext = os.urandom(16), os.urandom(16), os.urandom(size)
        body = ece.encrypt(plaintext, ikm, rs=rs, salt=salt, keyid=keyid, pad=pad)
        assert ece.decrypt(body, ikm) == plaintext
        for chunk in (None, 3):
            add(
                {
                    "op": "encrypt",
                    "plaintext": b64e(plaintext),
                    "ikm": b64e(ikm),
                    "rs": rs,
                    "salt": b64e(salt),
                    "keyid": b64e(keyid),
                    "pad": pad,
                    "chunk": chunk,
                },
                body=body,
            )

    for name, body, key, message in tampered_payloads():
        for chunk in (None, 10):
            add(
                {"op": "decrypt", "body": b64e(body), "ikm": b64e(key), "chunk": chunk},
                error=message,
                name=name,
            )

    # Password keys and verifiers: one full-strength derivation, cheaper ones for NFC.
    pkey = grants.derive_password_key(PASSWORD, GRANT_ID)
    add(
        {"op": "derivePasswordKey", "password": PASSWORD, "grantId": GRANT_ID},
        passwordKey=pkey,
        verifier=grants.password_verifier(pkey, GRANT_ID),
    )
    for password in (unicodedata.normalize("NFD", PASSWORD), "x", "pass word with spaces"):
        cheap = grants.derive_password_key(password, "g-é", iterations=1000)
        add(
            {"op": "derivePasswordKey", "password": password, "grantId": "g-é", "iterations": 1000},
            passwordKey=cheap,
            verifier=grants.password_verifier(cheap, "g-é"),
        )

    # KEK and wrapping, deterministic.
    for with_password in (False, True):
        link, server, kek_pkey = os.urandom(16), os.urandom(16), os.urandom(32)
        p = kek_pkey if with_password else None
        kek = grants.derive_kek(link, server, GRANT_ID, p)
        add(
            {
                "op": "deriveKek",
                "linkSecret": b64e(link),
                "serverSecret": b64e(server),
                "grantId": GRANT_ID,
                "passwordKey": b64e(p) if p else None,
            },
            kek=kek,
        )
        content_key, nonce = os.urandom(32), os.urandom(12)
        add(
            {
                "op": "wrapKey",
                "kek": b64e(kek),
                "contentKey": b64e(content_key),
                "nonce": b64e(nonce),
            },
            wrappedKey=grants.wrap_key(kek, content_key, nonce=nonce),
        )

    # Python creates grants, JS unwraps (and rejects wrong factors).
    content_key = grants.new_content_key()
    plain_grant = grants.create_grant(content_key, GRANT_ID)
    pw_grant = grants.create_grant(content_key, GRANT_ID, password_key=pkey)
    for g, extra in ((plain_grant, {}), (pw_grant, {"passwordKey": b64e(pkey)})):
        fields = {
            "op": "unwrapGrant",
            "grantId": GRANT_ID,
            "linkSecret": b64e(g.link_secret),
            "serverSecret": b64e(g.server_secret),
            "wrappedKey": b64e(g.wrapped_key),
        }
        add({**fields, **extra}, contentKey=content_key)
        add({**fields, "linkSecret": b64e(os.urandom(16)), **extra}, error="authentication failed")
        add({**fields, "grantId": GRANT_ID + "0", **extra}, error="authentication failed")
    pw_fields = {
        "op": "unwrapGrant",
        "grantId": GRANT_ID,
        "linkSecret": b64e(pw_grant.link_secret),
        "serverSecret": b64e(pw_grant.server_secret),
        "wrappedKey": b64e(pw_grant.wrapped_key),
    }
    add(pw_fields, error="authentication failed")  # no password
    add({**pw_fields, "password": PASSWORD}, contentKey=content_key)
    add({**pw_fields, "password": PASSWORD + "!"}, error="authentication failed")

    # JS creates grants, Python unwraps.
    add(
        {"op": "createGrant", "contentKey": b64e(content_key), "grantId": GRANT_ID},
        created=True,
        contentKey=content_key,
        passwordKey=None,
    )
    add(
        {
            "op": "createGrant",
            "contentKey": b64e(content_key),
            "grantId": GRANT_ID,
            "passwordKey": b64e(pkey),
        },
        created=True,
        contentKey=content_key,
        passwordKey=pkey,
    )

    # Links.
    for base in ("https://sealbox.example.com", "http://127.0.0.1:8000/", "https://EX.org/a/b"):
        token, secret = links.new_grant_token(), os.urandom(16)
        link = links.build_link(base, token, secret)
        add(
            {"op": "buildLink", "baseUrl": base, "grantToken": token, "linkSecret": b64e(secret)},
            link=link,
        )
        parsed = links.parse_link(link, base)
        add(
            {"op": "parseLink", "link": link, "baseUrl": base},
            parsed={
                "baseUrl": parsed.base_url,
                "grantToken": parsed.grant_token,
                "linkSecret": b64e(parsed.link_secret),
            },
        )
    for bad in MALFORMED:
        add({"op": "parseLink", "link": bad}, error="bad link")
    add(
        {"op": "parseLink", "link": link, "baseUrl": "https://other.example.com"},
        error="does not belong",
    )

    results = run_node_cases(cases, tmp_path_factory.mktemp("node"))
    return list(zip(cases, expect, results, strict=True))


def _ops(batch, *ops):
    return [(c, x, r) for c, x, r in batch if c["op"] in ops]


def test_rfc_vectors_in_js(batch):
    for case, expected, result in batch[: 3 * len(RFC_VECTORS)]:
        assert "error" not in result, result
        if case["op"] == "decrypt":
            assert b64d(result["plaintext"]) == expected["plaintext"]
        else:
            assert b64d(result["body"]) == expected["body"]


def test_python_encrypts_js_decrypts(batch):
    checked = 0
    for case, expected, result in _ops(batch, "decrypt"):
        if "plaintext" in expected:
            assert "error" not in result, (case.get("chunk"), result)
            assert b64d(result["plaintext"]) == expected["plaintext"]
            checked += 1
    assert checked > 150


def test_js_encrypts_python_decrypts_same_bytes(batch):
    checked = 0
    for case, expected, result in _ops(batch, "encrypt"):
        assert "error" not in result, result
        body = b64d(result["body"])
        if "body" in expected:
            assert body == expected["body"], (case["rs"], len(expected["plaintext"]))
        if "ikm" in expected:
            assert ece.decrypt(body, expected["ikm"]) == expected["plaintext"]
            assert result["size"] == ece.encrypted_size(len(expected["plaintext"]), case["rs"])
            checked += 1
    assert checked > 200


def test_js_rejects_every_tampered_payload(batch):
    checked = 0
    for _case, expected, result in _ops(batch, "decrypt"):
        if "error" in expected:
            assert "error" in result, f"JS accepted: {expected['name']}"
            assert result["error"]["name"] == "CryptoError", result
            assert expected["error"] in result["error"]["message"], (expected["name"], result)
            checked += 1
    assert checked == 2 * len(tampered_payloads())


def test_password_keys_and_verifiers_agree(batch):
    for _case, expected, result in _ops(batch, "derivePasswordKey"):
        assert b64d(result["passwordKey"]) == expected["passwordKey"]
        assert b64d(result["verifier"]) == expected["verifier"]


def test_kek_and_wrapping_agree(batch):
    for case, expected, result in _ops(batch, "deriveKek", "wrapKey"):
        key = "kek" if case["op"] == "deriveKek" else "wrappedKey"
        assert b64d(result[key]) == expected[key]


def test_python_grants_unwrap_in_js(batch):
    for _case, expected, result in _ops(batch, "unwrapGrant"):
        if "error" in expected:
            assert result.get("error", {}).get("name") == "CryptoError", result
            assert expected["error"] in result["error"]["message"]
        else:
            assert b64d(result["contentKey"]) == expected["contentKey"]


def test_js_grants_unwrap_in_python(batch):
    for _case, expected, result in _ops(batch, "createGrant"):
        pkey = expected["passwordKey"]
        args = (
            GRANT_ID,
            b64d(result["linkSecret"]),
            b64d(result["serverSecret"]),
            b64d(result["wrappedKey"]),
        )
        assert grants.unwrap_grant(*args, password_key=pkey) == expected["contentKey"]
        if pkey is None:
            assert result["passwordVerifier"] is None
        else:
            assert b64d(result["passwordVerifier"]) == grants.password_verifier(pkey, GRANT_ID)


def test_links_agree(batch):
    for _case, expected, result in _ops(batch, "buildLink", "parseLink"):
        if "error" in expected:
            assert result.get("error", {}).get("name") == "CryptoError", (_case, result)
            assert expected["error"] in result["error"]["message"]
        elif "link" in expected:
            assert result["link"] == expected["link"]
        else:
            assert result == expected["parsed"]


# --- streaming through pipes -----------------------------------------------------------


def _feed(proc: subprocess.Popen, chunks: Iterator[bytes]) -> threading.Thread:
    def run() -> None:
        try:
            for chunk in chunks:
                proc.stdin.write(chunk)
        except BrokenPipeError:
            pass
        finally:
            with contextlib.suppress(BrokenPipeError):
                proc.stdin.close()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def _read(stream, size: int = 100_000) -> Iterator[bytes]:
    while chunk := stream.read1(size):
        yield chunk


def _blocks(total: int, seed: bytes) -> Iterator[bytes]:
    """Deterministic plaintext in uneven chunks."""
    sent, n = 0, 0
    while sent < total:
        size = min(total - sent, 10_000 + (n * 7919) % 200_000)
        yield hashlib.shake_256(seed + n.to_bytes(4, "big")).digest(size)
        sent += size
        n += 1


@pytest.mark.parametrize("rs", [4096, 65536])
def test_pipe_python_encrypts_node_decrypts(node, rs):
    total = 12 * 1024 * 1024 + 12345
    ikm = os.urandom(32)
    proc = subprocess.Popen(
        [node, str(NODE_HELPER), "decrypt-pipe", b64e(ikm)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=ROOT,
    )
    feeder = _feed(proc, ece.encrypt_stream(_blocks(total, b"a"), ikm, rs=rs))
    digest, count = hashlib.sha256(), 0
    for chunk in _read(proc.stdout):
        digest.update(chunk)
        count += len(chunk)
    feeder.join()
    assert proc.wait(timeout=120) == 0, proc.stderr.read()
    assert count == total
    expected = hashlib.sha256(b"".join(_blocks(total, b"a"))).digest()
    assert digest.digest() == expected


@pytest.mark.parametrize("rs", [4096, 65536])
def test_pipe_node_encrypts_python_decrypts(node, rs):
    total = 12 * 1024 * 1024 + 54321
    ikm, salt = os.urandom(32), os.urandom(16)
    proc = subprocess.Popen(
        [node, str(NODE_HELPER), "encrypt-pipe", b64e(ikm), str(rs), b64e(salt)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=ROOT,
    )
    feeder = _feed(proc, _blocks(total, b"b"))
    ours = ece.encrypt_stream(_blocks(total, b"b"), ikm, rs=rs, salt=salt)
    theirs_digest, ours_digest = hashlib.sha256(), hashlib.sha256()

    def tee() -> Iterator[bytes]:
        for chunk in _read(proc.stdout):
            theirs_digest.update(chunk)
            yield chunk

    plain_digest, count = hashlib.sha256(), 0
    for chunk in ece.decrypt_stream(tee(), ikm):
        plain_digest.update(chunk)
        count += len(chunk)
    feeder.join()
    assert proc.wait(timeout=120) == 0, proc.stderr.read()
    assert count == total
    assert plain_digest.digest() == hashlib.sha256(b"".join(_blocks(total, b"b"))).digest()
    for chunk in ours:
        ours_digest.update(chunk)
    assert theirs_digest.digest() == ours_digest.digest()  # byte for byte


@pytest.mark.parametrize("cut", ["last record", "mid record", "after header"])
def test_pipe_truncated_stream_is_an_error_in_node(node, cut):
    rs = 4096
    ikm = os.urandom(32)
    body = ece.encrypt(os.urandom(10 * (rs - 17)), ikm, rs=rs)  # 10 full records
    end = {"last record": len(body) - rs, "mid record": len(body) - 100, "after header": 21}[cut]
    proc = subprocess.run(
        [node, str(NODE_HELPER), "decrypt-pipe", b64e(ikm)],
        input=body[:end],
        capture_output=True,
        timeout=60,
        cwd=ROOT,
    )
    assert proc.returncode == 3
    assert b"CryptoError" in proc.stderr


def test_node_test_suite_passes(node):
    """The JS unit tests (tests/js/*.test.mjs) are part of the Python test run."""
    proc = subprocess.run(
        [node, "--test", "tests/js/"], capture_output=True, text=True, timeout=600, cwd=ROOT
    )
    assert proc.returncode == 0, proc.stdout[-5000:] + proc.stderr[-5000:]
    assert "# fail 0" in proc.stdout
