"""Secure envelopes over the REST API: the owner's envelopes, and what the submitter's page
(no account, no session) calls to verify, create a sealed submission and finalise it."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Literal

from django.http import HttpRequest
from ninja import Field, Router, Schema, Status

from sealbox.csrf import public_csrf
from sealbox.envelopes import services
from sealbox.envelopes.models import EnvelopeVerification, FilesMode
from sealbox.exchange import codes
from sealbox.exchange import schemas as exchange_schemas
from sealbox.exchange.models import BlobKind
from sealbox.exchange.schemas import (
    ERRORS,
    BlobIn,
    CodeSentOut,
    LinkIn,
    SealedDraftOut,
    SealedGrantIn,
    SealedStateOut,
)
from sealbox.exchange.services import MAX_RECIPIENTS, BlobSpec, ExchangeError
from sealbox.lib import clock
from sealbox.lib.phones import mask_phone

router = Router(tags=["envelopes"])


class EnvelopeRecipientIn(Schema):
    email: str
    phone: str = Field("", description="mobile phone, for an SMS code")
    verification: EnvelopeVerification = EnvelopeVerification.NONE
    password: str = Field(
        "", description="with verification `password`: give it to the recipient another way"
    )


class EnvelopeIn(Schema):
    """A new envelope: the fields of the New envelope page. The rules are the page's,
    checked by the same service (a refusal names its `field`)."""

    subject: str = Field(..., description="not encrypted: shown in logs, emails, the page")
    public: bool = Field(False, description="one link for anyone (no recipients)")
    recipients: list[EnvelopeRecipientIn] = Field(
        [], description=f"each gets their own link; at most {MAX_RECIPIENTS}"
    )
    expires_at: datetime | None = Field(
        None, description=f"default: in {services.DEFAULT_EXPIRY_DAYS} days"
    )
    instructions: str = Field("", description="shown to the submitter; not encrypted")
    files_mode: FilesMode = FilesMode.OPTIONAL
    allowed_extensions: list[str] = Field([], description='e.g. ["pdf", "jpg"]; [] = any')
    max_total_bytes: int | None = Field(None, description="default: the plan's size per message")
    reply_expiry_hours: int = Field(24, description="a submission opens this long after it")
    reply_max_opens: int = Field(3, description="opens of each submission by the owner")
    notify_on_use: bool = True
    language: str | None = Field(None, description="en or fr; default: the owner's")
    delivery: Literal["email", "links"] | None = Field(
        None, description="email the links (default) or only return them (always for public)"
    )
    per_ip_hourly: int = Field(5, description="public link: submissions per hour per address")
    max_submissions: int = Field(100, description="public link: submissions in total")


class EnvelopeLinkOut(Schema):
    id: int
    email: str = Field(..., description='"" for the public link')
    url: str
    verification: str
    state: str
    submissions: int
    opening_code: str | None = Field(
        None, description="at creation with delivery links only: shown this once"
    )


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
    recipients: list[EnvelopeLinkOut]


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
    upload_mode: str = exchange_schemas.UPLOAD_MODE


class FinaliseIn(Schema):
    links: list[LinkIn] = Field(..., max_length=1)


def envelope_out(envelope, opening_codes: dict[int, str] | None = None) -> dict:
    links = list(envelope.links.all())
    for link in links:
        link.envelope = envelope  # its state reads the envelope's
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
        "submissions": sum(link.submissions for link in links),
        "links": [services.link_url(link) for link in links],
        "recipients": [
            {
                "id": link.pk,
                "email": link.email,
                "url": services.link_url(link),
                "verification": link.verification,
                "state": services.link_state(link),
                "submissions": link.submissions,
                "opening_code": (opening_codes or {}).get(link.pk),
            }
            for link in links
        ],
    }


# --- The owner -------------------------------------------------------------------------------


@router.post("/envelopes", response={201: EnvelopeOut, **ERRORS})
def create_envelope(request: HttpRequest, payload: EnvelopeIn):
    """Create an envelope, as the New envelope page does; with delivery `email`, each
    recipient is emailed their link. Opening codes (delivery `links`) appear only here."""
    user = request.auth
    spec = services.EnvelopeSpec(
        subject=payload.subject,
        expires_at=payload.expires_at or clock.now() + timedelta(days=services.DEFAULT_EXPIRY_DAYS),
        recipients=[
            services.EnvelopeRecipient(
                email=r.email, phone=r.phone, verification=r.verification, password=r.password
            )
            for r in payload.recipients
        ],
        public=payload.public,
        instructions=payload.instructions,
        files_mode=payload.files_mode,
        allowed_extensions=services.normalise_extensions(payload.allowed_extensions),
        max_total_bytes=payload.max_total_bytes,
        reply_expiry_hours=payload.reply_expiry_hours,
        reply_max_opens=payload.reply_max_opens,
        notify_on_use=payload.notify_on_use,
        language=payload.language or user.language,
        delivery=payload.delivery or ("links" if payload.public else "email"),
        per_ip_hourly=payload.per_ip_hourly,
        max_submissions=payload.max_submissions,
    )
    created = services.create_envelope(user, spec, request=request)
    return Status(201, envelope_out(created, created.new_opening_codes))


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
    return {"sent_to": _link_info(link)["sent_to"], "retry_after": services.resend_wait(link)}


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
        grant=exchange_schemas.sealed_grant_spec(payload.grant),
        manifest=BlobSpec(kind=BlobKind.MANIFEST, size=manifests[0].size),
        files=files,
        direct=payload.upload_mode == "direct",
        request=request,
    )
    return Status(201, exchange_schemas.sealed_draft_out(message))


@router.post(
    "/envelope-submissions/{message_id}/finalise",
    auth=public_csrf,
    response={200: SealedStateOut, **ERRORS},
)
def finalise_submission(request: HttpRequest, message_id: uuid.UUID, payload: FinaliseIn):
    """Deliver the submission: the owner is emailed their link. Needs X-Upload-Token."""
    message = services.finalise_submission(
        exchange_schemas.upload_token_of(request),
        message_id,
        exchange_schemas.notifications_of(payload.links),
        request=request,
    )
    return {
        "id": message.public_id,
        "blobs": [exchange_schemas.blob_out(b) for b in message.blobs.order_by("id")],
    }
