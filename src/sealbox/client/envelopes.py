"""Secure envelopes and replies from Python: the owner's envelopes (create, list, close),
and what someone without an account seals for an owner — a submission to an envelope
link, a reply to a message — encrypted on this machine.

Sealing for an owner is the protocol of the pages (static/sealbox/js/envelope-upload.js):
a fresh content key, the manifest and files encrypted with it, and one grant that only the
owner, logged in, can open. The owner's link (with its secret) goes to the server only so
it can email it; the uploads and their retries are the sender's (client/messages.py).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from sealbox.client.messages import (
    Attachment,
    ClientError,
    Opened,
    Transport,
    Upload,
    check,
    encrypt_manifest,
    open_message,
    upload_blob,
)
from sealbox.crypto import CryptoError, ece, grants, links
from sealbox.crypto._b64 import b64url_encode

# {BASE_URL}/e/{token}: the base is checked by links.normalise_base_url.
ENVELOPE_LINK = re.compile(
    r"(?P<base>https?://[^/?#\s]+(?:/[A-Za-z0-9._~-]+)*?)/e/(?P<token>[A-Za-z0-9_-]{16,64})"
)


# --- The owner's envelopes -------------------------------------------------------------------


def create_envelope(transport: Transport, **fields) -> dict:
    """POST /api/v1/envelopes with the New envelope page's fields (see the API schema);
    the answer has each link and, with delivery "links", its opening code (shown once)."""
    if isinstance(fields.get("expires_at"), datetime):
        fields["expires_at"] = fields["expires_at"].isoformat()
    return check(*transport.request("POST", "/api/v1/envelopes", json_body=fields))


def list_envelopes(transport: Transport) -> list[dict]:
    return check(*transport.request("GET", "/api/v1/envelopes"))


def close_envelope(transport: Transport, envelope_id: str) -> dict:
    return check(*transport.request("POST", f"/api/v1/envelopes/{envelope_id}/close"))


def find_envelope(transport: Transport, reference: str) -> dict:
    """One of the owner's envelopes by its id, reference (V-…) or one of its links."""
    wanted = reference.strip()
    for envelope in list_envelopes(transport):
        names = {envelope["id"], envelope["reference"].lower(), *envelope["links"]}
        if wanted in names or wanted.lower() in names:
            return envelope
    raise ClientError(404, {"message": f"You have no envelope {wanted}."})


# --- Sealing for an owner -------------------------------------------------------------------


def extension_of(name: str) -> str:
    """A file name's extension, lowercased, without the dot (as the pages declare it)."""
    stem, dot, extension = name.rpartition(".")
    return extension.lower() if dot and stem else ""


def seal_for_owner(
    transport: Transport,
    *,
    base_url: str,
    body: str,
    attachments: list[Attachment],
    create: Callable[[dict], dict],
    finalise_path: Callable[[str], str],
) -> dict:
    """Encrypt `body` and `attachments` for the owner, create the draft with `create`
    (which posts the grant and blobs with its own fields), upload and finalise it."""
    content_key = grants.new_content_key()
    manifest_ct = encrypt_manifest(body, attachments, content_key)
    token = links.new_grant_token()
    grant = grants.create_grant(content_key, token)
    created = create(
        {
            "grant": {
                "grant_token": token,
                "server_secret": b64url_encode(grant.server_secret),
                "wrapped_key": b64url_encode(grant.wrapped_key),
            },
            "blobs": [{"kind": "manifest", "size": len(manifest_ct)}]
            + [
                {
                    "kind": "file",
                    "size": ece.encrypted_size(a.size),
                    "file_ref": a.ref,
                    "extension": extension_of(a.name),
                }
                for a in attachments
            ],
            # Straight to the store where the server allows it (S3): see upload_blob.
            "upload_mode": "direct",
        }
    )
    upload = Upload.sealed(created["id"], created["upload_token"])
    blobs = {b["file_ref"] or "manifest": b for b in created["blobs"]}
    upload_blob(
        transport,
        created["id"],
        blobs["manifest"]["id"],
        [manifest_ct],
        upload=upload,
        plan=blobs["manifest"].get("upload"),
    )
    for attachment in attachments:
        upload_blob(
            transport,
            created["id"],
            blobs[attachment.ref]["id"],
            ece.encrypt_stream(attachment.chunks(), content_key),
            upload=upload,
            plan=blobs[attachment.ref].get("upload"),
        )
    owner_link = links.build_link(base_url, token, grant.link_secret)
    finalise = {"links": [{"grant_token": token, "link": owner_link}]}
    check(*upload.call(transport, "POST", finalise_path(created["id"]), json_body=finalise))
    return created


# --- Submitting to an envelope link ----------------------------------------------------------


@dataclass(frozen=True)
class EnvelopeLink:
    base_url: str
    token: str


def parse_envelope_link(link: str) -> EnvelopeLink:
    """`{BASE_URL}/e/{token}`, as the owner gave it."""
    match = ENVELOPE_LINK.fullmatch(link.strip().rstrip("/")) if isinstance(link, str) else None
    if match is None:
        raise CryptoError("bad link: expected {BASE_URL}/e/{token}")
    return EnvelopeLink(links.normalise_base_url(match["base"]), match["token"])


def _prepare(transport: Transport, token: str) -> None:
    # An HTTP transport loads the submitter's page first, as a browser does (CSRF token).
    page = getattr(transport, "envelope_page", None)
    if page is not None:
        page(token)


def envelope_info(transport: Transport, link: str) -> dict:
    """Who asks, what for, which proof and which files the envelope takes."""
    token = parse_envelope_link(link).token
    return check(*transport.request("GET", f"/api/v1/envelope-links/{token}"))


def request_envelope_code(transport: Transport, link: str) -> dict:
    """Have the server send the submitter their code (SMS or email, as the link says)."""
    token = parse_envelope_link(link).token
    _prepare(transport, token)
    return check(*transport.request("POST", f"/api/v1/envelope-links/{token}/code"))


@dataclass(frozen=True)
class Submitted:
    reference: str  # the submission's (as the owner sees it in their History)
    owner: str
    organisation: str
    subject: str


def submit_to_envelope(
    transport: Transport,
    link: str,
    *,
    name: str,
    email: str,
    body: str = "",
    attachments: list[Attachment] = (),
    code: str = "",
    password: str | None = None,
) -> Submitted:
    """Prove who you are if the envelope asks, then seal and send for its owner."""
    attachments = list(attachments)
    if not body.strip() and not attachments:
        raise ClientError(400, {"message": "Write a message or attach a file."})
    parsed = parse_envelope_link(link)
    _prepare(transport, parsed.token)
    info = check(*transport.request("GET", f"/api/v1/envelope-links/{parsed.token}"))
    proof = {"code": code, "password": password or ""}
    started = check(
        *transport.request("POST", f"/api/v1/envelope-links/{parsed.token}/start", json_body=proof)
    )

    def create(sealed: dict) -> dict:
        fields = {"submit_token": started["submit_token"], "name": name, "email": email}
        return check(
            *transport.request("POST", "/api/v1/envelope-submissions", json_body=fields | sealed)
        )

    created = seal_for_owner(
        transport,
        base_url=parsed.base_url,
        body=body,
        attachments=attachments,
        create=create,
        finalise_path=lambda draft: f"/api/v1/envelope-submissions/{draft}/finalise",
    )
    return Submitted(created["reference"], info["owner"], info["organisation"], info["subject"])


# --- Replying to a message -------------------------------------------------------------------


@dataclass(frozen=True)
class Replied:
    reference: str  # the reply's (as the original sender sees it)
    opened: Opened  # the message replied to, as `open_message` read it


def reply_to_message(
    transport: Transport,
    link: str,
    *,
    body: str,
    attachments: list[Attachment] = (),
    code: str = "",
    password: str | None = None,
    output_dir=None,
) -> Replied:
    """Open the message (one open, as the page counts it: its text is read, its files
    saved only into `output_dir`), then seal the reply for the original sender."""
    attachments = list(attachments)
    if not body.strip() and not attachments:
        raise ClientError(400, {"message": "Write a reply or attach a file."})
    parsed = links.parse_link(link)
    opened = open_message(
        transport,
        link,
        code=code,
        password=password,
        download=output_dir is not None,
        output_dir=output_dir,
    )
    allowed = opened.reply
    if allowed is None:
        raise ClientError(403, {"message": "The sender does not accept replies to this message."})
    if attachments and not allowed["files"]:
        raise ClientError(413, {"message": "The sender allows replies without files."})

    def create(sealed: dict) -> dict:
        fields = {"authorisation": allowed["authorisation"]}
        return check(*transport.request("POST", "/api/v1/replies", json_body=fields | sealed))

    created = seal_for_owner(
        transport,
        base_url=parsed.base_url,
        body=body,
        attachments=attachments,
        create=create,
        finalise_path=lambda draft: f"/api/v1/replies/{draft}/finalise",
    )
    return Replied(created["reference"], opened)
