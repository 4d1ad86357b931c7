"""Secure messages over the REST API: what the send and open pages (and the CLI) call."""

from __future__ import annotations

import uuid
from datetime import datetime

from django.http import HttpRequest, HttpResponseRedirect, StreamingHttpResponse
from ninja import Field, Router, Schema, Status

from sealbox.crypto import CryptoError
from sealbox.crypto._b64 import b64url_decode, b64url_encode
from sealbox.csrf import public_csrf
from sealbox.exchange import codes, services, storage
from sealbox.exchange.models import Blob, BlobKind, Delivery, Grant, ReplyMode, Verification
from sealbox.exchange.services import ExchangeError
from sealbox.lib.errors import SealboxError
from sealbox.lib.phones import mask_phone
from sealbox.ops import metrics

router = Router(tags=["messages"])


def b64decode(value: str, field: str) -> bytes:
    """A key field of a request, decoded as the clients encode it (crypto's base64url)."""
    try:
        return b64url_decode(value, what=field)
    except CryptoError:
        raise ExchangeError(f"{field}: expected base64url", field=field) from None


# --- Schemas ---------------------------------------------------------------------------


class RecipientIn(Schema):
    email: str = Field(..., max_length=254, pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
    phone: str = Field("", max_length=32)
    verification: Verification = Verification.OPENING_CODE
    grant_token: str = Field(..., min_length=16, max_length=64)
    server_secret: str = Field(..., description="16 bytes, base64url")
    wrapped_key: str = Field(..., description="60 bytes, base64url")
    password_verifier: str | None = Field(None, description="32 bytes, base64url")


class BlobIn(Schema):
    kind: BlobKind
    size: int = Field(..., ge=1, le=10**13, description="ciphertext size in bytes")
    file_ref: str = Field("", max_length=64)


UPLOAD_MODE = Field(
    "proxy",
    pattern="^(direct|proxy)$",
    description="`direct`: upload each blob's parts straight to the object store with the "
    "presigned URLs of `blobs[].upload` (granted with S3 storage only; see `upload.mode`)",
)


class MessageIn(Schema):
    subject: str = Field(..., max_length=200)
    expires_at: datetime
    max_opens: int = Field(1, ge=1, le=services.MAX_OPENS)
    notify_on_open: bool = True
    show_subject: bool = True
    keep_copy: bool = False
    language: str = Field("en", max_length=5)
    reply_mode: ReplyMode = ReplyMode.NONE
    delivery: Delivery = Delivery.EMAIL
    recipients: list[RecipientIn] = Field(..., max_length=services.MAX_RECIPIENTS)
    blobs: list[BlobIn] = Field(..., max_length=services.MAX_FILES + 1)
    upload_mode: str = UPLOAD_MODE


class PartOut(Schema):
    number: int
    size: int = Field(..., description="the exact Content-Length its URL accepts")
    url: str = Field(..., description="presigned PUT; empty when the store holds it already")
    uploaded: bool


class UploadOut(Schema):
    mode: str = Field(
        ...,
        description="`proxy`: PUT chunks to the blob's URL here; `direct`: PUT each part to "
        "its URL at the store, then finalise; `done`: completed",
    )
    part_size: int = 0
    expires_in: int = Field(0, description="seconds the part URLs work; ask …/parts again")
    parts: list[PartOut] = []


class BlobOut(Schema):
    id: uuid.UUID
    kind: str
    file_ref: str
    size: int
    stored: int
    upload: UploadOut | None = None


class GrantOut(Schema):
    token: str
    email: str
    verification: str
    state: str
    opens: int
    max_opens: int
    failed_attempts: int = Field(0, description="consecutive wrong proofs (locks at 100)")


class MessageOut(Schema):
    id: uuid.UUID
    reference: str
    subject: str
    state: str
    delivery: str
    expires_at: datetime
    blobs: list[BlobOut]
    grants: list[GrantOut]


class MessageCreatedOut(MessageOut):
    opening_codes: dict[str, str]


class LinkIn(Schema):
    grant_token: str = Field(..., max_length=64)
    link: str = Field(..., max_length=500)


class FinaliseIn(Schema):
    links: list[LinkIn] | None = None


class ChunkOut(Schema):
    stored: int
    size: int


class ErrorOut(Schema):
    error: str
    message: str
    field: str | None = None


class OpenInfoOut(Schema):
    sender: str
    organisation: str
    verification: str
    state: str
    expires_at: datetime
    sent_to: str


class CodeSentOut(Schema):
    sent_to: str
    retry_after: int


class UnlockIn(Schema):
    code: str = Field("", max_length=32)
    password_verifier: str | None = Field(None, max_length=64)


class DownloadOut(Schema):
    id: uuid.UUID
    kind: str
    file_ref: str
    size: int
    url: str


class ReplyAllowedOut(Schema):
    authorisation: str
    files: bool


class UnlockOut(Schema):
    server_secret: str
    wrapped_key: str
    opens_left: int
    downloads: list[DownloadOut]
    reply: ReplyAllowedOut | None = None


class SealedGrantIn(Schema):
    """The owner's grant, made on the uploader's device for a fresh content key."""

    grant_token: str = Field(..., min_length=16, max_length=64)
    server_secret: str = Field(..., description="16 bytes, base64url")
    wrapped_key: str = Field(..., description="60 bytes, base64url")


class ReplyIn(Schema):
    authorisation: str = Field(..., max_length=500, description="`reply.authorisation` of unlock")
    grant: SealedGrantIn
    blobs: list[BlobIn] = Field(..., max_length=services.MAX_FILES + 1)
    upload_mode: str = UPLOAD_MODE


class SealedDraftOut(Schema):
    id: uuid.UUID
    reference: str
    blobs: list[BlobOut]
    upload_token: str = Field(..., description="send it as X-Upload-Token to upload, finalise")


class SealedStateOut(Schema):
    id: uuid.UUID
    blobs: list[BlobOut]


class SealedFinaliseIn(Schema):
    links: list[LinkIn] = Field(..., max_length=1)


def message_out(message) -> dict:
    return {
        "id": message.public_id,
        "reference": message.reference,
        "subject": message.subject,
        "state": message.state,
        "delivery": message.delivery,
        "expires_at": message.expires_at,
        "blobs": [blob_out(b) for b in message.blobs.order_by("id")],
        "grants": [
            {
                "token": g.token,
                "email": g.email,
                "verification": g.verification,
                "state": services.grant_state(g),
                "opens": g.opens,
                "max_opens": g.max_opens,
                "failed_attempts": g.failed_attempts,
            }
            for g in message.grants.select_related("message").order_by("id")
        ],
    }


def blob_out(blob: Blob, *, urls: bool = False) -> dict:
    """A blob's state; with `urls` (a draft just created), how to upload it."""
    out = {
        "id": blob.public_id,
        "kind": blob.kind,
        "file_ref": blob.file_ref,
        "size": blob.size,
        "stored": blob.stored,
        "upload": {"mode": "direct" if blob.upload_id else "done" if blob.direct else "proxy"},
    }
    if urls:
        out["upload"] = services.direct_upload_state(blob, list_parts=False)
    return out


def sealed_grant_spec(grant: SealedGrantIn) -> services.RecipientSpec:
    return services.RecipientSpec(
        email="",
        verification=Verification.ACCOUNT,
        grant_token=grant.grant_token,
        server_secret=b64decode(grant.server_secret, "server_secret"),
        wrapped_key=b64decode(grant.wrapped_key, "wrapped_key"),
    )


def blob_specs(blobs: list[BlobIn]) -> list[services.BlobSpec]:
    return [services.BlobSpec(kind=b.kind, size=b.size, file_ref=b.file_ref) for b in blobs]


def sealed_draft_out(message) -> dict:
    return {
        "id": message.public_id,
        "reference": message.reference,
        "blobs": [blob_out(b, urls=True) for b in message.blobs.order_by("id")],
        "upload_token": services.upload_token(message),
    }


def notifications_of(links: list[LinkIn]) -> list[services.Notification]:
    return [services.Notification(i.grant_token, i.link) for i in links]


def upload_token_of(request: HttpRequest) -> str:
    return request.headers.get("X-Upload-Token", "")


def request_length(request: HttpRequest) -> int:
    try:
        return int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return 0


ERRORS = {
    400: ErrorOut,
    403: ErrorOut,
    404: ErrorOut,
    409: ErrorOut,
    410: ErrorOut,
    413: ErrorOut,
    422: ErrorOut,
    429: ErrorOut,
    503: ErrorOut,
}


# --- Sender ------------------------------------------------------------------------------


@router.post("/messages", response={201: MessageCreatedOut, **ERRORS})
def create_message(request: HttpRequest, payload: MessageIn):
    """Create a draft message with one grant per recipient and its (empty) blobs."""
    spec = services.MessageSpec(
        subject=payload.subject,
        expires_at=payload.expires_at,
        max_opens=payload.max_opens,
        notify_on_open=payload.notify_on_open,
        show_subject=payload.show_subject,
        keep_copy=payload.keep_copy,
        language=payload.language,
        reply_mode=payload.reply_mode,
        delivery=payload.delivery,
        recipients=[
            services.RecipientSpec(
                email=r.email,
                phone=r.phone,
                verification=r.verification,
                grant_token=r.grant_token,
                server_secret=b64decode(r.server_secret, "server_secret"),
                wrapped_key=b64decode(r.wrapped_key, "wrapped_key"),
                password_verifier=(
                    b64decode(r.password_verifier, "password_verifier")
                    if r.password_verifier
                    else None
                ),
            )
            for r in payload.recipients
        ],
        blobs=[
            services.BlobSpec(kind=b.kind, size=b.size, file_ref=b.file_ref) for b in payload.blobs
        ],
        direct=payload.upload_mode == "direct",
    )
    created = services.create_message(request.auth, spec, request=request)
    out = message_out(created.message)
    out["blobs"] = [blob_out(b, urls=True) for b in created.message.blobs.order_by("id")]
    return Status(201, out | {"opening_codes": created.opening_codes})


@router.get("/messages/{message_id}", response={200: MessageOut, **ERRORS})
def get_message(request: HttpRequest, message_id: uuid.UUID):
    """A message's state, including how much of each blob is stored (to resume)."""
    return message_out(services.message_for_sender(request.auth, message_id))


@router.put("/messages/{message_id}/blobs/{blob_id}", response={200: ChunkOut, **ERRORS})
def upload_chunk(request: HttpRequest, message_id: uuid.UUID, blob_id: uuid.UUID, offset: int):
    """Append the request body (application/octet-stream) at `offset`; streamed to storage."""
    blob = services.draft_blob(request.auth, message_id, blob_id)
    blob = services.store_chunk(blob, offset, request_length(request), request)
    return {"stored": blob.stored, "size": blob.size}


@router.get("/messages/{message_id}/blobs/{blob_id}/parts", response={200: UploadOut, **ERRORS})
def upload_parts(request: HttpRequest, message_id: uuid.UUID, blob_id: uuid.UUID):
    """Direct mode: which parts the store holds, and fresh URLs for the others (to resume,
    or when the URLs given are about to expire)."""
    return services.direct_upload_state(services.draft_blob(request.auth, message_id, blob_id))


@router.post("/messages/{message_id}/finalise", response={200: MessageOut, **ERRORS})
def finalise_message(request: HttpRequest, message_id: uuid.UUID, payload: FinaliseIn):
    """Make the message visible to its recipients (and email them their links)."""
    message = services.message_for_sender(request.auth, message_id)
    notifications = None
    if payload.links is not None:
        notifications = [services.Notification(i.grant_token, i.link) for i in payload.links]
    services.finalise(request.auth, message, notifications, request=request)
    message.refresh_from_db()
    return message_out(message)


@router.delete("/messages/{message_id}", response={204: None, **ERRORS})
def delete_message(request: HttpRequest, message_id: uuid.UUID):
    """Revoke every grant and delete the ciphertext now."""
    message = services.message_for_sender(request.auth, message_id)
    services.delete_message(request.auth, message, request=request)
    return Status(204, None)


# --- Recipient (no account) -----------------------------------------------------------------


def _open_info(grant: Grant) -> dict:
    message = grant.message
    sent_to = ""
    if grant.verification == Verification.SMS_CODE:
        sent_to = mask_phone(grant.phone)
    elif grant.verification == Verification.EMAIL_CODE:
        sent_to = grant.email
    return {
        "sender": message.sender.display_name,
        "organisation": message.organisation.name,
        "verification": grant.verification,
        "state": services.grant_state(grant),
        "expires_at": grant.expires_at,
        "sent_to": sent_to,
    }


@router.get("/open/{token}", auth=None, response={200: OpenInfoOut, **ERRORS}, tags=["open"])
def open_info(request: HttpRequest, token: str):
    """Who sent the message and which proof it needs. Reveals no content."""
    grant = services.find_grant(token)
    if services.sealed_for_someone_else(grant, request.user):
        raise ExchangeError("No such message.", status=404, code="not_found")
    return _open_info(grant)


@router.post(
    "/open/{token}/code", auth=public_csrf, response={200: CodeSentOut, **ERRORS}, tags=["open"]
)
def send_code(request: HttpRequest, token: str):
    """Send the recipient a verification code (SMS or email, as the grant says)."""
    grant = services.find_grant(token)
    services.ensure_open(grant)
    if grant.verification not in (Verification.SMS_CODE, Verification.EMAIL_CODE):
        raise ExchangeError("This message does not use a code sent by SMS or email.")
    codes.send_or_refuse(lambda: codes.send(grant, request))
    info = _open_info(grant)
    return {"sent_to": info["sent_to"], "retry_after": codes.resend_wait(grant)}


@router.post(
    "/open/{token}/unlock", auth=public_csrf, response={200: UnlockOut, **ERRORS}, tags=["open"]
)
def unlock(request: HttpRequest, token: str, payload: UnlockIn):
    """Check the proof, count one open, and release the grant's server half."""
    verifier = (
        b64decode(payload.password_verifier, "password_verifier")
        if payload.password_verifier
        else None
    )
    try:
        result = services.unlock(
            token, code=payload.code, password_verifier=verifier, request=request
        )
    except SealboxError as refusal:  # a storage outage is counted too
        metrics.UNLOCKS.labels(outcome=refusal.code or "refused").inc()
        raise
    metrics.UNLOCKS.labels(outcome="opened").inc()
    return {
        "server_secret": b64url_encode(result.server_secret),
        "wrapped_key": b64url_encode(result.wrapped_key),
        "opens_left": result.opens_left,
        "downloads": [
            {
                "id": blob.public_id,
                "kind": blob.kind,
                "file_ref": blob.file_ref,
                "size": blob.size,
                "url": f"/api/v1/downloads/{authorisation}",
            }
            for blob, authorisation in result.downloads
        ],
        "reply": {
            "authorisation": result.reply,
            "files": result.grant.message.reply_mode == ReplyMode.FILES,
        }
        if result.reply
        else None,
    }


@router.get(
    "/downloads/{authorisation}",
    auth=None,
    response={200: None, 302: None, **ERRORS},
    tags=["open"],
)
def download(request: HttpRequest, authorisation: str, direct: bool = True):
    """One ciphertext blob (application/octet-stream); the browser decrypts it. Where the
    store serves it itself, a redirect (302) to a presigned GET valid five minutes;
    `direct=false` streams it through the app server instead."""
    grant, blob = services.authorised_download(authorisation)
    url = services.direct_download_url(blob) if direct else ""
    if url:
        services.record_download(grant, blob, request)
        response = HttpResponseRedirect(url)
        response["Cache-Control"] = "no-store"
        return response
    # Read first: a store that does not answer is a 503, and no download is recorded.
    content = storage.read_chunks(services.blob_chunk_names(blob))
    services.record_download(grant, blob, request)
    response = StreamingHttpResponse(content, content_type="application/octet-stream")
    response["Content-Length"] = str(blob.size)
    response["Cache-Control"] = "no-store"
    response["Content-Disposition"] = "attachment"
    return response


# --- Uploads without a session: envelope submissions and replies ----------------------------


@router.get(
    "/uploads/{message_id}", auth=None, response={200: SealedStateOut, **ERRORS}, tags=["uploads"]
)
def sealed_state(request: HttpRequest, message_id: uuid.UUID):
    """How much of each blob of a sealed draft is stored (to resume). Needs X-Upload-Token."""
    message = services.sealed_draft(upload_token_of(request), message_id)
    return {"id": message.public_id, "blobs": [blob_out(b) for b in message.blobs.order_by("id")]}


@router.get(
    "/uploads/{message_id}/blobs/{blob_id}/parts",
    auth=None,
    response={200: UploadOut, **ERRORS},
    tags=["uploads"],
)
def sealed_upload_parts(request: HttpRequest, message_id: uuid.UUID, blob_id: uuid.UUID):
    """Direct mode: the parts the store holds and fresh URLs for the others. Needs
    X-Upload-Token."""
    blob = services.sealed_draft_blob(upload_token_of(request), message_id, blob_id)
    return services.direct_upload_state(blob)


@router.put(
    "/uploads/{message_id}/blobs/{blob_id}",
    auth=public_csrf,
    response={200: ChunkOut, **ERRORS},
    tags=["uploads"],
)
def sealed_upload_chunk(
    request: HttpRequest, message_id: uuid.UUID, blob_id: uuid.UUID, offset: int
):
    """Append ciphertext to a sealed draft (as the sender's upload does). Needs X-Upload-Token."""
    blob = services.sealed_draft_blob(upload_token_of(request), message_id, blob_id)
    blob = services.store_chunk(blob, offset, request_length(request), request)
    return {"stored": blob.stored, "size": blob.size}


@router.post(
    "/replies", auth=public_csrf, response={201: SealedDraftOut, **ERRORS}, tags=["replies"]
)
def create_reply(request: HttpRequest, payload: ReplyIn):
    """Start a reply sealed for the original sender (with the authorisation unlock gave)."""
    message = services.create_reply(
        payload.authorisation,
        sealed_grant_spec(payload.grant),
        blob_specs(payload.blobs),
        direct=payload.upload_mode == "direct",
        request=request,
    )
    return Status(201, sealed_draft_out(message))


@router.post(
    "/replies/{message_id}/finalise",
    auth=public_csrf,
    response={200: SealedStateOut, **ERRORS},
    tags=["replies"],
)
def finalise_reply(request: HttpRequest, message_id: uuid.UUID, payload: SealedFinaliseIn):
    """Send the reply: the original sender is emailed their link. Needs X-Upload-Token."""
    message = services.sealed_draft(upload_token_of(request), message_id)
    services.finalise_reply(message, notifications_of(payload.links), request=request)
    return {"id": message.public_id, "blobs": [blob_out(b) for b in message.blobs.order_by("id")]}
