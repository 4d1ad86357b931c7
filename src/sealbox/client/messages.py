"""Send and open secure messages from Python, encrypting on this machine.

The same protocol as the pages: the content key never leaves the client, the server
receives ciphertext, grant halves and (for "Send") the links it must email.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import secrets
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Protocol

from sealbox.client.errors import CHUNK_BYTES, ClientError
from sealbox.client.http import StoreError, put_to_store
from sealbox.crypto import ece, grants, links
from sealbox.crypto._b64 import b64url_decode, b64url_encode
from sealbox.lib.limits import MAX_MANIFEST_BYTES

READ_BYTES = 1024 * 1024
# Waits before each new try of a chunk: about half a minute in all, long enough for a
# proxy to send the retry to another app server, or for a restarted one to come back.
UPLOAD_RETRY_DELAYS_SECONDS: tuple[float, ...] = (1, 2, 4, 8, 15)
# Direct mode: fresh part URLs are asked for once those in hand are this old (they last
# 30 minutes; each ask also tells the server the upload is alive).
PART_URLS_REFRESH_SECONDS = 600


class Transport(Protocol):
    # `headers` is passed only when a call needs one (an upload token): a transport for
    # the sender's calls alone may leave it out.
    def request(
        self,
        method: str,
        path: str,
        *,
        json_body: dict | None = None,
        body: bytes | None = None,
        headers: dict | None = None,
    ) -> tuple[int, dict | None]: ...

    def stream(self, path: str) -> Iterator[bytes]: ...


def check(status: int, data: dict | None, expected: tuple[int, ...] = (200, 201, 204)):
    if status not in expected:
        raise ClientError(status, data)
    return data


@dataclass
class Recipient:
    email: str
    verification: str = "opening_code"
    phone: str = ""
    password: str | None = None


@dataclass
class Attachment:
    name: str
    path: Path | None = None
    data: bytes | None = None
    type: str = "application/octet-stream"
    ref: str = field(default_factory=lambda: secrets.token_hex(12))

    @property
    def size(self) -> int:
        return len(self.data) if self.data is not None else os.path.getsize(self.path)

    def chunks(self) -> Iterator[bytes]:
        if self.data is not None:
            yield self.data
            return
        with open(self.path, "rb") as handle:
            while piece := handle.read(READ_BYTES):
                yield piece


@dataclass
class Sent:
    id: str
    reference: str
    links: dict[str, str]  # email → link
    opening_codes: dict[str, str]  # email → opening code (Create links only)


def _grant_payload(recipient: Recipient, content_key: bytes) -> tuple[dict, str, bytes]:
    token = links.new_grant_token()
    grant = grants.create_grant(content_key, token, password=recipient.password)
    entry = {
        "email": recipient.email,
        "phone": recipient.phone,
        "verification": recipient.verification,
        "grant_token": token,
        "server_secret": b64url_encode(grant.server_secret),
        "wrapped_key": b64url_encode(grant.wrapped_key),
        "password_verifier": (
            b64url_encode(grant.password_verifier) if grant.password_verifier else None
        ),
    }
    return entry, token, grant.link_secret


def _rechunk(pieces: Iterable[bytes], size: int) -> Iterator[bytes]:
    """The pieces cut and joined into chunks of `size` bytes (the last may be shorter).

    Each byte is copied once, by the join: the pieces are held as views until a chunk is
    full (appending to a bytearray, slicing it and converting the slice copied it three
    times, a third of the client's time in an upload)."""
    held: list[memoryview] = []
    count = 0
    for piece in pieces:
        view = memoryview(piece)
        while view:
            take = min(size - count, len(view))
            held.append(view[:take])
            count += take
            view = view[take:]
            if count == size:
                yield b"".join(held)
                held, count = [], 0
    if held:
        yield b"".join(held)


@dataclass(frozen=True)
class Upload:
    """Where a draft's ciphertext goes: the sender's own message (their token or session),
    or a draft sealed for an owner (an envelope submission, a reply), which its uploader
    reaches with the upload token the server gave at creation."""

    state_path: str  # GET: how much of each blob is stored; blobs are under …/blobs/{id}
    headers: dict = field(default_factory=dict)

    @classmethod
    def of_message(cls, message_id: str) -> Upload:
        return cls(f"/api/v1/messages/{message_id}")

    @classmethod
    def sealed(cls, message_id: str, upload_token: str) -> Upload:
        return cls(f"/api/v1/uploads/{message_id}", {"X-Upload-Token": upload_token})

    def call(self, transport: Transport, method: str, path: str, **kwargs):
        if self.headers:
            kwargs["headers"] = self.headers
        return transport.request(method, path, **kwargs)


def upload_blob(
    transport: Transport,
    message_id: str,
    blob_id: str,
    ciphertext: Iterable[bytes],
    *,
    upload: Upload | None = None,
    plan: dict | None = None,
) -> None:
    """Upload one blob: straight to the store when the server's `plan` (the blob's
    `upload` at creation) says direct, else through the server, chunk by chunk."""
    if plan and plan.get("mode") == "direct":
        upload_parts(transport, upload or Upload.of_message(message_id), blob_id, ciphertext, plan)
        return
    offset = 0
    for chunk in _rechunk(ciphertext, CHUNK_BYTES):
        put_chunk(transport, message_id, blob_id, offset, chunk, upload=upload)
        offset += len(chunk)


def put_chunk(
    transport: Transport,
    message_id: str,
    blob_id: str,
    offset: int,
    chunk: bytes,
    *,
    upload: Upload | None = None,
) -> None:
    """PUT one chunk, retrying interrupted attempts and server errors (as transfer.js does).

    A chunk the server stored while its answer was lost comes back as 409 "offset": the
    server's count then says whether it is this chunk, so it is not sent twice."""
    upload = upload or Upload.of_message(message_id)
    path = f"{upload.state_path}/blobs/{blob_id}?offset={offset}"
    waits = list(UPLOAD_RETRY_DELAYS_SECONDS)
    while True:
        try:
            status, data = upload.call(transport, "PUT", path, body=chunk)
        except (OSError, http.client.HTTPException):
            # Lost before the answer: the server may hold the chunk already.
            if _stored_or_none(transport, upload, blob_id) == offset + len(chunk):
                return
            if not waits:
                raise
            time.sleep(waits.pop(0))
            continue
        error = (data or {}).get("error")
        if status == 200:
            return
        stored = status == 409 and error == "offset"
        if stored and _stored(transport, upload, blob_id) == offset + len(chunk):
            return
        retry = status >= 500 or error == "short_body"
        if not retry or not waits:
            raise ClientError(status, data)
        time.sleep(waits.pop(0))


class PartUrls:
    """A direct blob's parts as the server last described them (its ListParts state and
    presigned URLs), asked for again when they grow old or after a failure."""

    def __init__(self, transport: Transport, upload: Upload, blob_id: str, plan: dict):
        self.transport, self.upload, self.blob_id = transport, upload, blob_id
        self._take(plan)

    def _take(self, plan: dict) -> None:
        self.parts = {p["number"]: p for p in plan["parts"]}
        self.fetched = time.monotonic()

    def refresh(self) -> None:
        path = f"{self.upload.state_path}/blobs/{self.blob_id}/parts"
        self._take(check(*self.upload.call(self.transport, "GET", path)))

    def part(self, number: int) -> dict:
        if time.monotonic() - self.fetched > PART_URLS_REFRESH_SECONDS:
            self.refresh()
        return self.parts[number]


def upload_parts(
    transport: Transport, upload: Upload, blob_id: str, ciphertext: Iterable[bytes], plan: dict
) -> None:
    """Direct mode: PUT the ciphertext, part by part, to the store's presigned URLs."""
    urls = PartUrls(transport, upload, blob_id, plan)
    for number, body in enumerate(_rechunk(ciphertext, plan["part_size"]), start=1):
        put_part(urls, number, body)


def put_part(urls: PartUrls, number: int, body: bytes) -> None:
    """PUT one part, retrying failures as put_chunk does. After each failure the server
    is asked for the store's state (ListParts): a part that arrived while its answer was
    lost is not sent again, and expired URLs are replaced."""
    waits = list(UPLOAD_RETRY_DELAYS_SECONDS)
    while True:
        part = urls.part(number)
        if part["uploaded"]:
            return
        try:
            put_to_store(part["url"], body)
            return
        except StoreError as refusal:
            # 403: expired (or a clock too far off); 5xx and throttling: try again.
            if refusal.status < 500 and refusal.status not in (403, 408, 429):
                raise ClientError(refusal.status, {"message": str(refusal)}) from None
            failure: Exception = refusal
        except (OSError, http.client.HTTPException) as error:
            host = part["url"].split("/")[2]
            failure = OSError(f"cannot reach the file store at {host}: {error}")
        if not waits:
            raise ClientError(0, {"message": str(failure)}) from None
        time.sleep(waits.pop(0))
        # If the server is away too, the URL in hand is tried again.
        with contextlib.suppress(OSError, http.client.HTTPException, ClientError):
            urls.refresh()


def _stored(transport: Transport, upload: Upload, blob_id: str) -> int:
    state = check(*upload.call(transport, "GET", upload.state_path))
    return next(b["stored"] for b in state["blobs"] if b["id"] == blob_id)


def _stored_or_none(transport: Transport, upload: Upload, blob_id: str) -> int | None:
    """The server's count, or None while it cannot be asked (it is down)."""
    try:
        return _stored(transport, upload, blob_id)
    except (OSError, http.client.HTTPException, ClientError):
        return None


def check_manifest_size(size: int) -> None:
    """Refuse, before anything is uploaded, a manifest the server would refuse (413)."""
    if size > MAX_MANIFEST_BYTES:
        raise ClientError(
            413,
            {
                "error": "too_large",
                "field": "message",
                "message": "The message is too long: its text and file names take "
                f"{size:,} bytes once encrypted, at most {MAX_MANIFEST_BYTES // 1000} kB.",
            },
        )


def encrypt_manifest(body: str, attachments: Iterable[Attachment], content_key: bytes) -> bytes:
    """The message's manifest (its text and each file's id, name, type and size),
    encrypted; refused here if the server would refuse it."""
    manifest = {
        "v": 1,
        "body": body,
        "files": [
            {"id": a.ref, "name": a.name, "type": a.type, "size": a.size} for a in attachments
        ],
    }
    ciphertext = ece.encrypt(json.dumps(manifest).encode(), content_key)
    check_manifest_size(len(ciphertext))
    return ciphertext


def send_message(
    transport: Transport,
    *,
    base_url: str,
    subject: str,
    body: str,
    recipients: list[Recipient],
    expires_at: datetime,
    attachments: list[Attachment] = (),
    delivery: str = "email",
    direct: bool = True,
    **options,
) -> Sent:
    """Encrypt and send one message; returns the links (and opening codes if any).
    `direct`: upload straight to the store where the server allows it."""
    content_key = grants.new_content_key()
    manifest_ct = encrypt_manifest(body, attachments, content_key)
    entries, secrets_by_token, email_by_token = [], {}, {}
    for recipient in recipients:
        entry, token, link_secret = _grant_payload(recipient, content_key)
        entries.append(entry)
        secrets_by_token[token] = link_secret
        email_by_token[token] = recipient.email
    payload = {
        "subject": subject,
        "expires_at": expires_at.isoformat(),
        "delivery": delivery,
        "recipients": entries,
        "blobs": [{"kind": "manifest", "size": len(manifest_ct)}]
        + [
            {"kind": "file", "size": ece.encrypted_size(a.size), "file_ref": a.ref}
            for a in attachments
        ],
        "upload_mode": "direct" if direct else "proxy",
        **options,
    }
    created = check(*transport.request("POST", "/api/v1/messages", json_body=payload))
    blobs = {b["file_ref"] or "manifest": b for b in created["blobs"]}
    upload_blob(
        transport,
        created["id"],
        blobs["manifest"]["id"],
        [manifest_ct],
        plan=blobs["manifest"].get("upload"),
    )
    for attachment in attachments:
        upload_blob(
            transport,
            created["id"],
            blobs[attachment.ref]["id"],
            ece.encrypt_stream(attachment.chunks(), content_key),
            plan=blobs[attachment.ref].get("upload"),
        )
    link_list = {
        token: links.build_link(base_url, token, secret)
        for token, secret in secrets_by_token.items()
    }
    finalise = {
        "links": [{"grant_token": t, "link": v} for t, v in link_list.items()]
        if delivery == "email"
        else None
    }
    check(
        *transport.request("POST", f"/api/v1/messages/{created['id']}/finalise", json_body=finalise)
    )
    return Sent(
        id=created["id"],
        reference=created["reference"],
        links={email_by_token[t]: v for t, v in link_list.items()},
        opening_codes={email_by_token[t]: c for t, c in created["opening_codes"].items()},
    )


@dataclass
class Opened:
    body: str
    files: dict[str, bytes]  # name → content (when not saved to a folder)
    opens_left: int
    manifest: dict
    saved: dict[str, Path] = field(default_factory=dict)  # name → where it was written
    # The unlock's permission to reply ({"authorisation", "files"}), when the sender allows.
    reply: dict | None = None


def prepare(transport: Transport, grant_token: str) -> None:
    # An HTTP transport loads the recipient's page first, as a browser does (CSRF token).
    page = getattr(transport, "recipient_page", None)
    if page is not None:
        page(grant_token)


def request_code(transport: Transport, link: str) -> dict:
    token = links.parse_link(link).grant_token
    prepare(transport, token)
    return check(*transport.request("POST", f"/api/v1/open/{token}/code"))


def open_message(
    transport: Transport,
    link: str,
    *,
    code: str = "",
    password: str | None = None,
    download: bool = True,
    output_dir: Path | str | None = None,
) -> Opened:
    """Unlock a grant with its proof and decrypt the message (and its files, in memory or
    streamed into `output_dir`)."""
    parsed = links.parse_link(link)
    token = parsed.grant_token
    prepare(transport, token)
    body: dict = {"code": code}
    password_key = None
    if password is not None:
        password_key = grants.derive_password_key(password, token)
        body["password_verifier"] = b64url_encode(grants.password_verifier(password_key, token))
    unlocked = check(*transport.request("POST", f"/api/v1/open/{token}/unlock", json_body=body))
    content_key = grants.unwrap_grant(
        token,
        parsed.link_secret,
        b64url_decode(unlocked["server_secret"]),
        b64url_decode(unlocked["wrapped_key"]),
        password_key=password_key,
    )
    downloads = {d["file_ref"] or "manifest": d for d in unlocked["downloads"]}
    manifest_ct = b"".join(transport.stream(downloads["manifest"]["url"]))
    manifest = json.loads(ece.decrypt(manifest_ct, content_key))
    files: dict[str, bytes] = {}
    saved: dict[str, Path] = {}
    if download:
        for entry in manifest["files"]:
            plaintext = ece.decrypt_stream(
                transport.stream(downloads[entry["id"]]["url"]), content_key
            )
            if output_dir is None:
                files[entry["name"]] = b"".join(plaintext)
            else:
                saved[entry["name"]] = save_file(plaintext, Path(output_dir), entry["name"])
    return Opened(
        manifest["body"], files, unlocked["opens_left"], manifest, saved, unlocked.get("reply")
    )


def safe_name(name: str) -> str:
    """A file name from the (sender-controlled) manifest that cannot leave the folder."""
    cleaned = Path(name.replace("\\", "/")).name.strip().lstrip(".")
    return cleaned or "file"


def save_file(plaintext: Iterable[bytes], folder: Path, name: str) -> Path:
    """Stream the decrypted file to disk; it gets its name only once it is complete and
    authentic (a truncated or tampered download leaves nothing behind)."""
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / safe_name(name)
    stem, suffix, number = target.stem, target.suffix, 1
    while target.exists():
        number += 1
        target = folder / f"{stem} ({number}){suffix}"
    partial = target.with_name(target.name + ".part")
    try:
        with open(partial, "xb") as handle:
            for piece in plaintext:
                handle.write(piece)
        partial.rename(target)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    return target
