"""Issue 11, item 2 (High): a copy of the data folder decrypted live messages.

The finding: finished `deliver_email` tasks were never deleted (django-tasks-db keeps a
result row with the task's arguments); their arguments held the whole email, links with
their `#link_secret` included, sealed with a key derived from the secret key alone — and
the embedded default keeps the secret key in the same data folder. From a copy of it,
every emailed link opened offline, and a pending administrator invitation was taken over.
Django's password-reset tokens were no better: an HMAC of the user's row under that same
secret key, so the copy could mint a reset link for any account.

This test builds a real data folder (a separate process with the product's settings:
SQLite file in WAL mode, or PostgreSQL; blobs on disk; the generated secret key; the
database task backend; a real SMTP server; the worker as `sealbox worker` runs it), sends
every kind of email that carries a link or a code, delivers them, copies the folder while
the database is open, and then attacks the copy with the secret key found in it:

(a) no link secret, invitation, reset or address-change token, opening code or SMS text
    appears anywhere in the copy, in clear, hex, base64 or base64url;
(b) everything that looks sealed (every task row's arguments, every outbox row, every
    base64 run in the raw database and -wal bytes) is tried with the copied secret key,
    both the old way (HKDF of the secret key) and the new way (with every payload key
    found in the copied storage): nothing opens;
(c) a reset link minted from the copy (Django's HMAC token) is refused by the live
    server, while the real, emailed links still work — they are live, the copy just
    cannot rebuild them.

Before the fix, (b) opened every delivered email from the `django_tasks_database_
dbtaskresult` rows (status SUCCESSFUL, kwargs.sealed), and (c) got the password form for
the minted link; (a) alone passed, which is why sealing was thought to be enough.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import secrets as secrets_module
import shutil
import sqlite3
import subprocess
import sys
import uuid
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

ROOT = Path(__file__).resolve().parents[2]
LINK = re.compile(r"http://\S+?/o/([A-Za-z0-9_-]+)#([A-Za-z0-9_-]+)")
INVITATION = re.compile(r"/invitation/([A-Za-z0-9_-]+)/")
RESET = re.compile(r"(/password-reset/([A-Za-z0-9_-]+)/([A-Za-z0-9_-]+)/)")
EMAIL_CHANGE = re.compile(r"/account/email/confirm/([A-Za-z0-9_-]+)/")
OPENING_CODE = re.compile(r"\b([A-Z2-9]{4}-[A-Z2-9]{4})\b")
BASE64_RUN = re.compile(rb"[A-Za-z0-9_\-+/]{40,}={0,2}")


def b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def forms_of(secret: bytes) -> list[bytes]:
    """The ways a secret could be written down: raw, hex, base64, base64url."""
    return [
        secret,
        secret.hex().encode(),
        base64.b64encode(secret).rstrip(b"="),
        base64.urlsafe_b64encode(secret).rstrip(b"="),
    ]


@contextmanager
def database_url():
    """A fresh PostgreSQL database when the suite runs on PostgreSQL; else the default
    SQLite file in the data folder (None)."""
    server = os.environ.get("SEALBOX_TEST_DATABASE_URL")
    if not server:
        yield None
        return
    import psycopg

    name = f"test_sealbox_copy_{os.getpid()}"
    parts = urlsplit(server)
    admin_url = urlunsplit(parts._replace(path="/postgres"))
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield urlunsplit(parts._replace(path=f"/{name}"))
    finally:
        with psycopg.connect(admin_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def scenario(env: dict, *args: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "tests.security.data_folder_scenario", *args],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-6000:]
    return done.stdout


def sqlite_tables(copy: Path, scratch: Path) -> dict[str, list[dict]]:
    # Opened from a second copy: opening replays the -wal, and the copy under test must
    # stay byte for byte what was taken.
    shutil.copytree(copy, scratch)
    conn = sqlite3.connect(scratch / "sealbox.sqlite3")
    conn.row_factory = sqlite3.Row
    names = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")]
    tables = {n: [dict(row) for row in conn.execute(f'SELECT * FROM "{n}"')] for n in names}
    conn.close()
    return tables


def json_tables(copy: Path) -> dict[str, list[dict]]:
    def restore(value):
        if isinstance(value, dict) and set(value) == {"$bytes"}:
            return base64.b64decode(value["$bytes"])
        return value

    dumped = json.loads((copy / "database.json").read_text())
    return {
        table: [{c: restore(v) for c, v in row.items()} for row in rows]
        for table, rows in dumped.items()
    }


def json_value(value):
    return json.loads(value) if isinstance(value, str | bytes) else value


def strings_in(value) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for v in value.values() for s in strings_in(v)]
    if isinstance(value, list):
        return [s for v in value for s in strings_in(v)]
    return []


# --- The attacker's two ways to open what is sealed ----------------------------------


def legacy_open(secret_key: str, candidate: bytes) -> bytes | None:
    """The old design: AES-GCM under HKDF(secret key), nonce ‖ ciphertext, base64url."""
    key = HKDF(hashes.SHA256(), 32, salt=None, info=b"sealbox task payload v1").derive(
        secret_key.encode()
    )
    try:
        raw = base64.urlsafe_b64decode(candidate + b"=" * (-len(candidate) % 4))
        return AESGCM(key).decrypt(raw[:12], raw[12:], b"sealbox task payload v1")
    except Exception:
        return None


def outbox_open(secret_key: str, payload_key: bytes, outbox_id: uuid.UUID, sealed: bytes):
    """The new design (docs/crypto.md): HKDF(secret key ‖ payload key, salt = id)."""
    info = b"sealbox outbox v2"
    key = HKDF(hashes.SHA256(), 32, salt=outbox_id.bytes, info=info).derive(
        secret_key.encode() + payload_key
    )
    try:
        return AESGCM(key).decrypt(sealed[:12], sealed[12:], info + outbox_id.bytes)
    except Exception:
        return None


def mint_reset_token(secret_key: str, row: dict) -> str:
    """Django's reset token for this user row, computed with the copied secret key."""
    from django.contrib.auth.tokens import PasswordResetTokenGenerator

    class Copied:
        pk = row["id"]
        password = row["password"]
        email = row["email"]
        last_login = datetime.fromisoformat(str(row["last_login"])) if row["last_login"] else None

        @staticmethod
        def get_email_field_name():
            return "email"

    generator = PasswordResetTokenGenerator()
    generator.secret = secret_key
    return generator.make_token(Copied())


def test_the_attacks_work_on_what_they_target(settings):
    """The attacker's code opens what each design sealed, and the minted token is one
    Django's generator accepts: the test below cannot pass because the attacks are wrong."""
    from django.contrib.auth.tokens import PasswordResetTokenGenerator

    from sealbox.notify import sealing

    legacy_key = HKDF(hashes.SHA256(), 32, salt=None, info=b"sealbox task payload v1").derive(
        settings.SECRET_KEY.encode()
    )
    nonce = os.urandom(12)
    legacy = nonce + AESGCM(legacy_key).encrypt(nonce, b'{"text": "x"}', b"sealbox task payload v1")
    assert legacy_open(settings.SECRET_KEY, base64.urlsafe_b64encode(legacy).rstrip(b"="))
    outbox_id, payload_key = uuid.uuid4(), sealing.new_payload_key()
    sealed = sealing.seal({"text": "x"}, payload_key, outbox_id)
    assert outbox_open(settings.SECRET_KEY, payload_key, outbox_id, sealed) == b'{"text": "x"}'
    row = {"id": 7, "password": "argon2$x", "email": "a@example.org", "last_login": None}
    minted = mint_reset_token(settings.SECRET_KEY, row)
    generator = PasswordResetTokenGenerator()
    user = type("U", (), {**row, "pk": 7, "get_email_field_name": staticmethod(lambda: "email")})
    assert generator.check_token(user(), minted)


def test_a_copy_of_the_data_folder_rebuilds_no_link(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SEALBOX_", "DJANGO_"))}
    env |= {
        "SEALBOX_DATA_DIR": str(tmp_path / "data"),
        "SEALBOX_SMS_URL": f"file://{out / 'sms.jsonl'}",
        "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), str(ROOT)]),
    }
    with database_url() as url:
        if url:
            env["SEALBOX_DATABASE_URL"] = url
            # A shared database needs the key in the environment (every node has it); the
            # attacker is given it all the same, as if the server's configuration leaked too.
            env["SEALBOX_SECRET_KEY"] = secrets_module.token_urlsafe(50)
        scenario(env, "run", str(out))
        copy = out / "copy"
        facts = json.loads((out / "facts.json").read_text())
        assert facts["vendor"] == ("postgresql" if url else "sqlite")
        inbox = json.loads((out / "inbox.json").read_text())
        texts = [m["text"] for m in inbox]
        sms_lines = (out / "sms.jsonl").read_text().splitlines()
        sms_bodies = [json.loads(line)["body"] for line in sms_lines]

        # What was delivered: the secrets a copy must not give back (an email's text and
        # HTML carry the same link, the HTML twice: each secret counted once).
        def found(pattern) -> list:
            return list(dict.fromkeys(m for t in texts for m in pattern.findall(t)))

        links = found(LINK)
        invitations = found(INVITATION)
        resets = [m for t in texts for m in RESET.findall(t)]
        changes = [m for t in texts for m in EMAIL_CHANGE.findall(t)]
        codes = [m for t in texts for m in OPENING_CODE.findall(t)]
        # opening-code and SMS-code recipients, the sender's copy, the envelope
        # submission's owner, the reply's sender.
        assert len({secret for _, secret in links}) >= 5, texts
        assert invitations and resets and changes and codes and sms_bodies
        secrets = [form for _, secret in links for form in forms_of(b64url_decode(secret))]
        for token in [*invitations, *(r[2] for r in resets), *changes]:
            secrets += [token.encode(), *forms_of(token.encode())[2:]]
        secrets += [c.encode() for c in codes] + [b.encode() for b in sms_bodies]

        # The copy: every byte of every file (SQLite and its -wal/-shm, blobs, secret key).
        files = [p for p in copy.rglob("*") if p.is_file()]
        if facts["vendor"] == "sqlite":
            assert (copy / "sealbox.sqlite3-wal").exists(), "the copy was taken with the WAL"
            tables = sqlite_tables(copy, tmp_path / "scratch")
        else:
            tables = json_tables(copy)
        everything = {str(p.relative_to(copy)): p.read_bytes() for p in files}
        secret_key = env.get("SEALBOX_SECRET_KEY") or (copy / "secret_key").read_text().strip()

        # (a) No secret, in any form, in any byte of the copy.
        for where, data in everything.items():
            for secret in secrets:
                assert secret not in data, f"a link secret, token or code is in {where}"

        # (b) Nothing sealed opens with the copied secret key.
        task_rows = tables["django_tasks_database_dbtaskresult"]
        assert not [r for r in task_rows if r["task_path"].startswith("sealbox.notify.")]
        for row in task_rows:
            for text in strings_in(json_value(row["args_kwargs"])):
                assert legacy_open(secret_key, text.encode()) is None
        for name, data in everything.items():
            if name.startswith("blobs/"):
                continue  # ciphertext of messages, opened only with a link secret
            for run in BASE64_RUN.findall(data):
                run = run.replace(b"+", b"-").replace(b"/", b"_")
                assert legacy_open(secret_key, run) is None, f"a sealed payload opened in {name}"
        outbox = tables["notify_outboxmessage"]
        assert outbox and {r["status"] for r in outbox} == {"sent"}
        payload_keys = [p.read_bytes() for p in (copy / "blobs").glob("outbox/*")]
        assert payload_keys == []  # destroyed with each delivery
        for row in outbox:
            assert row["sealed"] is None
            for key in payload_keys:
                outbox_id = uuid.UUID(str(row["id"]))
                assert outbox_open(secret_key, key, outbox_id, bytes(row["sealed"])) is None

        # (c) The copy holds only hashes of the live links, and cannot mint one.
        def sha(token: str) -> str:
            return hashlib.sha256(token.encode()).hexdigest()

        invitation_hashes = {r["token_hash"] for r in tables["accounts_invitation"]}
        assert invitation_hashes >= {sha(t) for t in invitations}
        [(real_reset, uidb64, token)] = resets
        assert {r["token_hash"] for r in tables["accounts_passwordreset"]} == {sha(token)}
        [sender] = [r for r in tables["accounts_user"] if r["id"] == facts["sender_id"]]
        minted = f"/password-reset/{uidb64}/{mint_reset_token(secret_key, sender)}/"
        [invitation] = invitations
        invitation_path = f"/invitation/{invitation}/"
        probed = json.loads(scenario(env, "probe", real_reset, invitation_path, minted))
        assert probed == {
            real_reset: "form",  # the emailed links are live …
            invitation_path: "form",
            minted: "refused",  # … but the copy cannot make one
        }
