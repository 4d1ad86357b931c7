"""Secure envelopes over the REST API: the owner's envelopes, and what the submitter's page
(no account, no session) calls to verify, create a sealed submission and finalise it."""

from __future__ import annotations

import uuid
from datetime import datetime

from django.http import HttpRequest
from ninja import Field, Router, Schema, Status

from sealbox.api.auth import public_csrf
from sealbox.envelopes import services
from sealbox.envelopes.models import EnvelopeVerification
from sealbox.exchange import api as exchange_api
from sealbox.exchange import codes
from sealbox.exchange.api import (
    ERRORS,
    BlobIn,
    CodeSentOut,
    LinkIn,
    SealedDraftOut,
    SealedGrantIn,
    SealedStateOut,
)
from sealbox.exchange.models import BlobKind
from sealbox.exchange.services import BlobSpec, ExchangeError
from sealbox.twofactor.services import mask_phone

router = Router(tags=["envelopes"])


class EnvelopeOut(Schema):
    id: uuid.UUID
    reference: str
    subject: str
    public: bool
    state: str
    files_mode: str
    allowed_extensions: list[str]
    max_total_bytes: int | None
    expires_at: datetime
    created_at: datetime
    submissions: int
    links: list[str]


class LinkInfoOut(Schema):
    owner: str
    organisation: str
    subject: str
    instructions: str
    verification: str
    state: str
    files_mode: str
    allowed_extensions: list[str]
    max_total_bytes: int | None
    expires_at: datetime
    sent_to: str


class StartIn(Schema):
    code: str = Field("", max_length=32)
    password: str = Field("", max_length=200)


class StartOut(Schema):
    submit_token: str


class DeclaredBlobIn(BlobIn):
    extension: str = Field("", max_length=20, description="a file's extension, in clear")


class SubmissionIn(Schema):
    submit_token: str = Field(..., max_length=500)
    name: str = Field(..., max_length=200)
    email: str = Field(..., max_length=254, pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
    grant: SealedGrantIn
    blobs: list[DeclaredBlobIn] = Field(..., max_length=101)


class FinaliseIn(Schema):
    links: list[LinkIn] = Field(..., max_length=1)


def envelope_out(envelope) -> dict:
    return {
        "id": envelope.public_id,
        "reference": envelope.reference,
        "subject": envelope.subject,
        "public": envelope.public,
        "state": services.envelope_state(envelope),
        "files_mode": envelope.files_mode,
        "allowed_extensions": envelope.extensions,
        "max_total_bytes": envelope.max_total_bytes,
        "expires_at": envelope.expires_at,
        "created_at": envelope.created_at,
        "submissions": sum(link.submissions for link in envelope.links.all()),
        "links": [services.link_url(link) for link in envelope.links.all()],
    }


# --- The owner -------------------------------------------------------------------------------


@router.get("/envelopes", response={200: list[EnvelopeOut], **ERRORS})
def list_envelopes(request: HttpRequest):
    """The logged-in user's envelopes, newest first."""
    return [envelope_out(e) for e in services.envelopes_of(request.auth)[:200]]


@router.get("/envelopes/{envelope_id}", response={200: EnvelopeOut, **ERRORS})
def get_envelope(request: HttpRequest, envelope_id: uuid.UUID):
    return envelope_out(services.envelope_for_owner(request.auth, envelope_id))


@router.post("/envelopes/{envelope_id}/close", response={200: EnvelopeOut, **ERRORS})
def close_envelope(request: HttpRequest, envelope_id: uuid.UUID):
    """Close the envelope now: its links stop working at once."""
    envelope = services.envelope_for_owner(request.auth, envelope_id)
    services.close_envelope(request.auth, envelope, request=request)
    return envelope_out(envelope)


# --- The submitter (no account) ----------------------------------------------------------------


def _link_info(link) -> dict:
    envelope = link.envelope
    sent_to = ""
    if link.verification == EnvelopeVerification.SMS_CODE:
        sent_to = mask_phone(link.phone)
    elif link.verification == EnvelopeVerification.EMAIL_CODE:
        sent_to = link.email
    return {
        "owner": envelope.owner.display_name,
        "organisation": envelope.organisation.name,
        "subject": envelope.subject,
        "instructions": envelope.instructions,
        "verification": link.verification,
        "state": services.link_state(link),
        "files_mode": envelope.files_mode,
        "allowed_extensions": envelope.extensions,
        "max_total_bytes": envelope.max_total_bytes,
        "expires_at": envelope.expires_at,
        "sent_to": sent_to,
    }


@router.get("/envelope-links/{token}", auth=None, response={200: LinkInfoOut, **ERRORS})
def link_info(request: HttpRequest, token: str):
    """What the envelope asks for and which proof it needs."""
    return _link_info(services.find_link(token))


@router.post(
    "/envelope-links/{token}/code",
    auth=public_csrf,
    response={200: CodeSentOut, **ERRORS},
)
def envelopes_send_code(request: HttpRequest, token: str):
    """Send the submitter a verification code (SMS or email, as the link says)."""
    link = services.find_link(token)
    codes.send_or_refuse(lambda: services.send_code(link, request))
    return {"sent_to": _link_info(link)["sent_to"], "retry_after": 60}


@router.post("/envelope-links/{token}/start", auth=public_csrf, response={200: StartOut, **ERRORS})
def envelopes_start(request: HttpRequest, token: str, payload: StartIn):
    """Check the submitter's proof; the token returned lets them submit for a few hours."""
    link = services.find_link(token)
    submit_token = services.start(
        link, code=payload.code, password=payload.password, request=request
    )
    return {"submit_token": submit_token}


@router.post("/envelope-submissions", auth=public_csrf, response={201: SealedDraftOut, **ERRORS})
def create_submission(request: HttpRequest, payload: SubmissionIn):
    """Start a submission sealed for the envelope's owner; upload it with X-Upload-Token."""
    manifests = [b for b in payload.blobs if b.kind == BlobKind.MANIFEST]
    if len(manifests) != 1:
        raise ExchangeError("A message has exactly one manifest and its files.")
    files = [
        services.DeclaredFile(BlobSpec(kind=b.kind, size=b.size, file_ref=b.file_ref), b.extension)
        for b in payload.blobs
        if b.kind == BlobKind.FILE
    ]
    message = services.create_submission(
        payload.submit_token,
        name=payload.name,
        email=payload.email,
        grant=exchange_api.sealed_grant_spec(payload.grant),
        manifest=BlobSpec(kind=BlobKind.MANIFEST, size=manifests[0].size),
        files=files,
        request=request,
    )
    return Status(201, exchange_api.sealed_draft_out(message))


@router.post(
    "/envelope-submissions/{message_id}/finalise",
    auth=public_csrf,
    response={200: SealedStateOut, **ERRORS},
)
def finalise_submission(request: HttpRequest, message_id: uuid.UUID, payload: FinaliseIn):
    """Deliver the submission: the owner is emailed their link. Needs X-Upload-Token."""
    message = services.finalise_submission(
        exchange_api.upload_token_of(request),
        message_id,
        exchange_api.notifications_of(payload.links),
        request=request,
    )
    return {
        "id": message.public_id,
        "blobs": [exchange_api.blob_out(b) for b in message.blobs.order_by("id")],
    }
