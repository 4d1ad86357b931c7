"""Creating and uploading drafts: a sender's message with its grants, a draft sealed
for an owner (envelope submissions, replies), and the chunks uploaded through the app
server.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from django.conf import settings
from django.core import signing
from django.db import transaction
from django.http import HttpRequest
from django.utils.translation import gettext as _

from sealbox.accounts.models import MAX_OPENS, Organisation, User
from sealbox.audit import services as audit
from sealbox.audit.actions import Action
from sealbox.exchange import storage
from sealbox.exchange.direct import (
    DirectUploads,
    aborting_on_failure,
    part_size_for,
    start_direct_uploads,
)
from sealbox.exchange.errors import ExchangeError
from sealbox.exchange.models import (
    Blob,
    BlobChunk,
    BlobKind,
    Delivery,
    Grant,
    Message,
    MessageKind,
    MessageState,
    ReplyMode,
    Verification,
)
from sealbox.exchange.recipients import (
    RecipientSpec,
    _validate_recipient,
    _with_parsed_phone,
    check_max_opens,
    check_recipient_count,
    proof_hash,
    set_opening_code,
)
from sealbox.exchange.rules import (
    DRAFT_LIFETIME,
    MAX_CHUNK_BYTES,
    BlobSpec,
    check_monthly_quota,
    latest_expiry,
    validate_blobs,
)
from sealbox.lib import clock
from sealbox.ops import metrics

# --- Creating and uploading ----------------------------------------------------------


@dataclass(frozen=True)
class MessageSpec:
    subject: str
    expires_at: datetime
    recipients: list[RecipientSpec]
    blobs: list[BlobSpec]
    max_opens: int = 1
    notify_on_open: bool = True
    show_subject: bool = True
    keep_copy: bool = False
    language: str = "en"
    reply_mode: str = ReplyMode.NONE
    delivery: str = Delivery.EMAIL
    # The client asks to upload straight to the store (granted with S3 storage only).
    direct: bool = False


@dataclass(frozen=True)
class CreatedMessage:
    message: Message
    opening_codes: dict[str, str]  # grant token → code, shown once to the sender


def create_message(
    sender: User, spec: MessageSpec, *, request: HttpRequest | None = None
) -> CreatedMessage:
    """Record a draft message with its grants and empty blobs, ready for upload."""
    organisation = sender.organisation
    spec = replace(spec, expires_at=clock.aware(spec.expires_at))
    subject = _check_message_spec(organisation, spec)
    recipients = _checked_recipients(sender, spec)
    attachment_bytes = validate_blobs(organisation, spec.blobs)
    check_monthly_quota(organisation)

    # Before the transaction: the store's answers are not waited for under its locks.
    uploads = start_direct_uploads(spec.blobs) if spec.direct else None
    with aborting_on_failure(uploads), transaction.atomic():
        message = _insert_draft(
            sender,
            spec.blobs,
            attachment_bytes,
            uploads=uploads,
            subject=subject,
            expires_at=spec.expires_at,
            max_opens=spec.max_opens,
            notify_on_open=spec.notify_on_open,
            show_subject=spec.show_subject,
            keep_copy=spec.keep_copy,
            language=spec.language,
            reply_mode=spec.reply_mode,
            delivery=spec.delivery,
        )
        opening_codes = _insert_grants(sender, message, spec, recipients)
        audit.record(
            Action.MESSAGE_CREATED,
            actor=sender,
            target=message,
            request=request,
            details={
                "reference": message.reference,
                "recipients": len(spec.recipients),
                "files": message.file_count,
            },
        )
    return CreatedMessage(message, opening_codes)


def _check_message_spec(organisation: Organisation, spec: MessageSpec) -> str:
    """Check the message's own fields (its recipients' number among them); return the
    subject to keep."""
    now = clock.now()
    subject = spec.subject.strip()
    if not subject:
        raise ExchangeError(_("Write a subject."), field="subject")
    if not spec.recipients:
        raise ExchangeError(_("Add at least one recipient."), field="recipients")
    check_recipient_count(spec.recipients)
    check_max_opens(spec.max_opens, "max_opens")
    if spec.expires_at <= now:
        raise ExchangeError(_("The expiry must be in the future."), field="expires_at")
    if spec.expires_at > latest_expiry(organisation, now) + timedelta(minutes=5):
        raise ExchangeError(
            _("Your plan keeps messages at most %(days)d days.")
            % {"days": organisation.plan.max_retention_days},
            field="expires_at",
        )
    if spec.language not in dict(settings.LANGUAGES):
        raise ExchangeError(_("Choose English or French."), field="language")
    if spec.reply_mode not in ReplyMode.values:
        raise ExchangeError(_("Choose a reply option."), field="reply_mode")
    if spec.delivery not in Delivery.values:
        raise ExchangeError(_("Choose Send or Create links."), field="delivery")
    return subject


def _checked_recipients(sender: User, spec: MessageSpec) -> list[RecipientSpec]:
    """Check each recipient, the sender's own copy and the link tokens; return the
    recipients with their phones in E.164."""
    recipients = []
    for index, recipient in enumerate(spec.recipients):
        _validate_recipient(recipient, index)
        recipients.append(_with_parsed_phone(recipient, sender.sms_country, index))
    copies = [r for r in recipients if r.verification == Verification.ACCOUNT]
    if len(copies) != (1 if spec.keep_copy else 0) or len(copies) == len(recipients):
        raise ExchangeError(
            _("Keep a copy for me needs exactly one copy for the sender."), field="keep_copy"
        )
    tokens = [r.grant_token for r in spec.recipients]
    if len(set(tokens)) != len(tokens) or Grant.objects.filter(token__in=tokens).exists():
        raise ExchangeError(_("A recipient's link token is already used."), status=409)
    return recipients


def _insert_grants(
    sender: User, message: Message, spec: MessageSpec, recipients: list[RecipientSpec]
) -> dict[str, str]:
    """One grant per recipient (inside the caller's transaction); return the opening
    codes the sender delivers themselves (Create links), by grant token."""
    opening_codes: dict[str, str] = {}
    for recipient in recipients:
        own_copy = recipient.verification == Verification.ACCOUNT
        grant = Grant(
            token=recipient.grant_token,
            message=message,
            email=sender.email if own_copy else recipient.email.strip().lower(),
            phone=recipient.phone,
            verification=recipient.verification,
            user=sender if own_copy else None,
            server_secret=recipient.server_secret,
            wrapped_key=recipient.wrapped_key,
            max_opens=MAX_OPENS if own_copy else spec.max_opens,
            expires_at=spec.expires_at,
        )
        if recipient.verification == Verification.PASSWORD:
            grant.password_verifier_hash = proof_hash(
                grant.token, "password", recipient.password_verifier
            )
        if recipient.verification == Verification.OPENING_CODE and spec.delivery == Delivery.LINKS:
            # The sender delivers the link and this code; shown to them once.
            opening_codes[grant.token] = set_opening_code(grant)
        grant.save()
    return opening_codes


def _insert_draft(
    sender: User,
    blobs: list[BlobSpec],
    attachment_bytes: int,
    *,
    uploads: DirectUploads | None = None,
    **fields,
) -> Message:
    """The draft message row and its empty blobs (inside the caller's transaction), with
    the multipart uploads started for them in direct mode."""
    message = Message.objects.create(
        public_id=uploads.message_id if uploads else uuid.uuid4(),
        organisation=sender.organisation,
        sender=sender,
        file_count=sum(1 for b in blobs if b.kind == BlobKind.FILE),
        attachment_bytes=attachment_bytes,
        created_at=clock.now(),
        **fields,
    )
    rows = []
    for index, b in enumerate(blobs):
        row = Blob(message=message, kind=b.kind, size=b.size, file_ref=b.file_ref or "")
        if uploads:
            row.public_id, row.upload_name, row.upload_id = uploads.blobs[index]
            row.part_size = part_size_for(b.size)
        rows.append(row)
    Blob.objects.bulk_create(rows)
    return message


# --- Sealed for an owner: envelope submissions and replies ---------------------------------
#
# Someone without a session (a submitter, a replying recipient) encrypts on their device
# to a fresh content key with one ACCOUNT grant for the owner. The draft is uploaded with a
# signed upload token instead of a session, through the same store_chunk and finalise steps.

UPLOAD_SALT = "sealbox.exchange.upload"


def create_sealed_draft(
    owner: User,
    *,
    kind: str,
    subject: str,
    expires_at: datetime,
    max_opens: int,
    grant: RecipientSpec,
    blobs: list[BlobSpec],
    language: str = "en",
    direct: bool = False,
    **fields,
) -> Message:
    """A draft with one grant that only `owner`, logged in, can open. The caller checks
    its own rules and records its audit event in the same transaction. `direct`: the
    uploader asks to send its parts straight to the store."""
    spec = replace(grant, verification=Verification.ACCOUNT, email=owner.email, phone="")
    _validate_recipient(spec, 0)
    if Grant.objects.filter(token=spec.grant_token).exists():
        raise ExchangeError(_("A recipient's link token is already used."), status=409)
    if expires_at <= clock.now():
        raise ExchangeError(_("The expiry must be in the future."), field="expires_at")
    attachment_bytes = validate_blobs(owner.organisation, blobs)
    uploads = start_direct_uploads(blobs) if direct else None
    with aborting_on_failure(uploads), transaction.atomic():
        message = _insert_draft(
            owner,
            blobs,
            attachment_bytes,
            uploads=uploads,
            kind=kind,
            subject=subject[:200],
            expires_at=expires_at,
            max_opens=max_opens,
            notify_on_open=False,
            language=language,
            delivery=Delivery.EMAIL,
            **fields,
        )
        Grant.objects.create(
            token=spec.grant_token,
            message=message,
            email=owner.email,
            verification=Verification.ACCOUNT,
            user=owner,
            server_secret=spec.server_secret,
            wrapped_key=spec.wrapped_key,
            max_opens=max_opens,
            expires_at=expires_at,
        )
    return message


def upload_token(message: Message) -> str:
    """What a session-less uploader shows to add ciphertext to (and finalise) its draft."""
    return signing.dumps({"m": str(message.public_id)}, salt=UPLOAD_SALT, compress=False)


def sealed_draft(token: str, message_id) -> Message:
    """The draft an upload token names; 404 for anything else (wrong, expired, sent)."""
    try:
        data = signing.loads(token or "", salt=UPLOAD_SALT, max_age=DRAFT_LIFETIME.total_seconds())
    except signing.BadSignature:
        data = {}
    message = (
        Message.objects.select_related("organisation", "sender")
        .filter(public_id=message_id, kind__in=[MessageKind.ENVELOPE, MessageKind.REPLY])
        .first()
    )
    if message is None or data.get("m") != str(message.public_id):
        raise ExchangeError(_("No such upload."), status=404, code="not_found")
    if message.state != MessageState.DRAFT:
        raise ExchangeError(_("This message is already sent."), status=409, code="sent")
    return message


def sealed_draft_blob(token: str, message_id, blob_id) -> Blob:
    return _blob_of(sealed_draft(token, message_id), blob_id)


def _blob_of(message: Message, blob_id) -> Blob:
    blob = message.blobs.select_related("message").filter(public_id=blob_id).first()
    if blob is None:
        raise ExchangeError(_("No such file."), status=404, code="not_found")
    return blob


def message_for_sender(user: User, public_id) -> Message:
    """The user's own message, or (for an administrator) one of their organisation's."""
    query = Message.objects.select_related("organisation", "sender").filter(
        public_id=public_id, organisation=user.organisation
    )
    if not user.is_org_admin:
        query = query.filter(sender=user)
    message = query.first()
    if message is None:
        raise ExchangeError(_("No such message."), status=404, code="not_found")
    return message


def _require_sender(user: User, message: Message) -> None:
    """Sending is the sender's act alone: an administrator who may read a colleague's
    message (message_for_sender) may not send it or write to it; for them it does not
    exist."""
    if message.sender_id != user.pk:
        raise ExchangeError(_("No such message."), status=404, code="not_found")


def draft_blob(user: User, message_id, blob_id) -> Blob:
    message = message_for_sender(user, message_id)
    _require_sender(user, message)
    if message.state != MessageState.DRAFT:
        raise ExchangeError(_("This message is already sent."), status=409, code="sent")
    return _blob_of(message, blob_id)


def store_chunk(blob: Blob, offset: int, length: int, source) -> Blob:
    """Append one chunk at `offset` (which must be what is stored so far)."""
    if offset != blob.stored:
        raise ExchangeError(
            _("Upload out of order: the server has %(stored)d bytes of this file.")
            % {"stored": blob.stored},
            status=409,
            code="offset",
            retry_after=0,
        )
    if length <= 0 or length > MAX_CHUNK_BYTES:
        raise ExchangeError(
            _("A chunk must have between 1 byte and 16 MiB."), status=413, code="chunk_size"
        )
    if offset + length > blob.size:
        raise ExchangeError(
            _("This chunk goes past the announced size of the file."), status=413, code="too_large"
        )
    name = storage.new_chunk_name(blob.message.public_id, blob.public_id, blob.chunk_count)
    try:
        stored_name = storage.write_chunk(name, source, length)
    except storage.ShortBody:
        raise ExchangeError(
            _("The upload was interrupted. Send this chunk again."), code="short_body"
        ) from None
    try:
        recorded = _record_chunk(blob, offset, length, stored_name)
        metrics.UPLOADED_CHUNKS.inc()
        metrics.UPLOADED_BYTES.inc(length)
        return recorded
    except BaseException:
        # Not recorded: the object is this attempt's alone (its name is unique), and
        # nothing will ever read it.
        storage.discard(stored_name)
        raise


def _record_chunk(blob: Blob, offset: int, length: int, stored_name: str) -> Blob:
    """Record the chunk just written, if the blob is still where this upload found it."""
    with transaction.atomic():
        current = (
            Blob.objects.select_for_update().select_related("message").filter(pk=blob.pk).first()
        )
        if current is None or current.message.state != MessageState.DRAFT:
            # Deleted, purged or sent while the body was arriving.
            raise ExchangeError(_("This upload is no longer open."), status=410, code="gone")
        if current.stored != offset:
            raise ExchangeError(
                _("Another upload of this file is running."), status=409, code="offset"
            )
        BlobChunk.objects.create(
            blob=current,
            index=current.chunk_count,
            offset=offset,
            size=length,
            storage_name=stored_name,
        )
        current.stored = offset + length
        current.chunk_count += 1
        current.save(update_fields=["stored", "chunk_count"])
        Message.objects.filter(pk=current.message_id).update(last_upload_at=clock.now())
    return current
