"""Secure messages over the REST API: what the send and open pages (and the CLI) call."""

from __future__ import annotations

import uuid

from django.http import HttpRequest, HttpResponseRedirect, StreamingHttpResponse
from ninja import Router, Status

from sealbox.crypto._b64 import b64url_encode
from sealbox.csrf import public_csrf
from sealbox.exchange import codes, services, storage
from sealbox.exchange.models import Grant, ReplyMode, Verification
from sealbox.exchange.schemas import (
    ERRORS,
    ChunkOut,
    CodeSentOut,
    FinaliseIn,
    MessageCreatedOut,
    MessageIn,
    MessageOut,
    OpenInfoOut,
    ReplyIn,
    SealedDraftOut,
    SealedFinaliseIn,
    SealedStateOut,
    UnlockIn,
    UnlockOut,
    UploadOut,
    b64decode,
    blob_out,
    blob_specs,
    message_out,
    notifications_of,
    request_length,
    sealed_draft_out,
    sealed_grant_spec,
    upload_token_of,
)
from sealbox.exchange.services import ExchangeError
from sealbox.lib.errors import SealboxError
from sealbox.lib.phones import mask_phone
from sealbox.ops import metrics

router = Router(tags=["messages"])


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
    """Revoke every grant and delete the ciphertext now; a draft (a cancelled upload) is
    removed."""
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


@router.delete(
    "/uploads/{message_id}",
    auth=public_csrf,
    response={204: None, **ERRORS},
    tags=["uploads"],
)
def cancel_sealed_upload(request: HttpRequest, message_id: uuid.UUID):
    """Cancel a sealed draft being uploaded (Cancel on the page): it is deleted with its
    ciphertext. Needs X-Upload-Token."""
    message = services.sealed_draft(upload_token_of(request), message_id)
    services.cancel_draft(message, request=request)
    return Status(204, None)


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
