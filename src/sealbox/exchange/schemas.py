"""The REST API's request and response shapes for secure messages, and the helpers
that turn requests into service specs and rows into answers (exchange's API and
envelopes' reuse them).
"""

from __future__ import annotations

import uuid
from datetime import datetime

from django.http import HttpRequest
from ninja import Field, Schema

from sealbox.crypto import CryptoError
from sealbox.crypto._b64 import b64url_decode
from sealbox.exchange import services
from sealbox.exchange.models import Blob, BlobKind, Delivery, ReplyMode, Verification
from sealbox.exchange.services import ExchangeError


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
