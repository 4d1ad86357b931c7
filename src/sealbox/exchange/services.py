"""Business rules of secure messages: create, upload, finalise, open, expire, destroy.

The sender's device encrypts; the server checks sizes, limits and proofs, counts opens
atomically, and wipes what it holds when a grant dies (cryptographic erasure).
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import logging
import secrets
import uuid
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import TypeVar

from django.conf import settings
from django.core import signing
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import F, Q, QuerySet
from django.http import HttpRequest
from django.utils.translation import gettext as _

from sealbox import keys
from sealbox.accounts.models import MAX_OPENS, Organisation, User
from sealbox.audit import services as audit
from sealbox.audit.actions import Action
from sealbox.crypto import CryptoError, links
from sealbox.crypto.grants import SERVER_SECRET_LENGTH, WRAPPED_KEY_LENGTH
from sealbox.exchange import storage
from sealbox.exchange.errors import ExchangeError
from sealbox.exchange.models import (
    AbortedUpload,
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
from sealbox.lib import clock, phones, throttle
from sealbox.lib.formats import human_size
from sealbox.lib.http import client_ip
from sealbox.lib.limits import MAX_MANIFEST_BYTES
from sealbox.ops import metrics
from sealbox.ratelimit import services as ratelimit
from sealbox.ratelimit.services import Rule

RECORD_SIZE = 65536
HEADER_SIZE = 21  # RFC 8188 header with an empty key id
RECORD_OVERHEAD = 17  # tag and delimiter
MAX_CHUNK_BYTES = 16 * 1024 * 1024
# Direct mode: each blob is one S3 multipart upload of parts this large (the last one
# smaller), larger for blobs that would need more parts than S3 allows.
DIRECT_PART_BYTES = 16 * 1024 * 1024
MAX_PARTS = 10_000
# How long presigned part URLs work: a client asks for fresh ones (…/parts) past this,
# and every ask also tells the purge that the draft is still being uploaded.
PART_URLS_LIFETIME = timedelta(minutes=30)
# A presigned download is used at once (the download authorisation lasts an hour and can
# ask for another).
DIRECT_DOWNLOAD_LIFETIME = timedelta(minutes=5)
# Rows claiming aborted multipart uploads are kept this long (the store no longer lists
# an upload once it is aborted, so an old claim can never be needed again).
ABORT_CLAIMS_KEPT = timedelta(days=7)
MAX_RECIPIENTS = 50
MAX_FILES = 100
DRAFT_LIFETIME = timedelta(hours=24)
# A draft sealed by someone without an account (an envelope submission, a reply) that
# received nothing for this long is abandoned: the purge removes it and its ciphertext.
ABANDONED_AFTER = timedelta(hours=1)
SEALED_KINDS = (MessageKind.ENVELOPE, MessageKind.REPLY)
DOWNLOAD_WINDOW = timedelta(hours=1)
UNLOCK_FAILURES_PER_GRANT = Rule("unlock-grant", 10, timedelta(hours=1))
UNLOCK_FAILURES_PER_IP = Rule("unlock-ip", 20, timedelta(hours=1))
# Consecutive wrong proofs of one grant (as for an account's factor) before it locks.
PROOF_FAILURES_BEFORE_LOCK = 100
OPENING_CODE_ALPHABET = "ABCDEFGHJKMNPQRSTVWXYZ23456789"  # no 0/O, 1/I/L, U
OPENING_CODE_LENGTH = 8

T = TypeVar("T")
logger = logging.getLogger(__name__)


# --- Proof hashing ------------------------------------------------------------------


PROOF_INFO = b"sealbox grant proof v1"


def proof_hash(grant_token: str, kind: str, value: str | bytes, key: bytes | None = None) -> str:
    """HMAC of a proof (opening code, password verifier) bound to its grant.

    Keyed by a key derived from the server's secret key (`key`: the current one unless
    given), so a copy of the database alone cannot test guesses against it."""
    raw = value.encode() if isinstance(value, str) else value
    message = grant_token.encode() + b"\n" + kind.encode() + b"\n" + raw
    return hmac.new(key or keys.derive(PROOF_INFO), message, hashlib.sha256).hexdigest()


def proof_is_right(
    model: type, pk: int, field: str, grant_token: str, kind: str, value: str | bytes
) -> bool:
    """Whether `value` is the proof whose HMAC the row `pk` of `model` keeps in `field`.

    Checked under the current secret key and its fallbacks, so proofs given before a
    rotation keep working; one that matched under a former key is hashed again under the
    current key (a conditional update), so it survives that key's removal."""
    stored = model.objects.filter(pk=pk).values_list(field, flat=True).first() or ""
    found = keys.matching(stored, lambda key: proof_hash(grant_token, kind, value, key), PROOF_INFO)
    if found is None:
        return False
    if found != keys.CURRENT:
        model.objects.filter(pk=pk, **{field: stored}).update(
            **{field: proof_hash(grant_token, kind, value)}
        )
    return True


def new_opening_code() -> str:
    code = "".join(secrets.choice(OPENING_CODE_ALPHABET) for _ in range(OPENING_CODE_LENGTH))
    return f"{code[:4]}-{code[4:]}"


def set_opening_code(grant: Grant) -> str:
    """Give the grant a fresh opening code; only its HMAC is kept."""
    code = new_opening_code()
    grant.opening_code_hash = proof_hash(grant.token, "opening", code)
    return code


def normalise_opening_code(text: str) -> str:
    cleaned = "".join(ch for ch in text.upper() if ch.isalnum())
    return f"{cleaned[:4]}-{cleaned[4:]}" if len(cleaned) == OPENING_CODE_LENGTH else cleaned


# --- Sizes and limits ------------------------------------------------------------------


def plaintext_size(ciphertext_size: int, rs: int = RECORD_SIZE) -> int:
    """The plaintext size of an unpadded RFC 8188 payload of this ciphertext size."""
    body = ciphertext_size - HEADER_SIZE
    if body < RECORD_OVERHEAD:
        raise ExchangeError(_("A file is too small to be a valid encrypted payload."))
    records = -(-body // rs)
    return body - records * RECORD_OVERHEAD


def count_sent_since(organisation: Organisation, since: datetime) -> int:
    """Messages the organisation sent (submissions and replies it received don't count)."""
    return Message.objects.filter(
        organisation=organisation, kind=MessageKind.MESSAGE, sent_at__gte=since
    ).count()


def month_start(now: datetime) -> datetime:
    return now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)


def _quota_reached(limit: int) -> ExchangeError:
    return ExchangeError(
        _(
            "Your organisation has sent its %(limit)d messages for this month. "
            "Ask your administrator about a larger plan."
        )
        % {"limit": limit},
        status=403,
        code="quota",
    )


def check_monthly_quota(organisation: Organisation) -> None:
    """Refuse early when the month's messages are used up (before anything is uploaded).
    Counts nothing: `hold_monthly_quota`, at finalise, is the check that holds."""
    limit = organisation.plan.messages_per_month
    if limit is None:
        return
    if count_sent_since(organisation, month_start(clock.now())) >= limit:
        raise _quota_reached(limit)


def hold_monthly_quota(organisation: Organisation) -> None:
    """In the transaction that has just marked a message sent: count the month's messages
    under the organisation's lock, this one included, and refuse past the plan's limit.

    Parallel finalises take turns on the lock, and each counts the messages the others
    committed, so they can never send more than the plan allows.
    """
    limit = organisation.plan.messages_per_month
    if limit is None:
        return
    ratelimit.lock("monthly-quota", str(organisation.pk))
    if count_sent_since(organisation, month_start(clock.now())) > limit:
        raise _quota_reached(limit)


def latest_expiry(organisation: Organisation, now: datetime) -> datetime:
    return now + timedelta(days=organisation.plan.max_retention_days)


# --- Creating and uploading ----------------------------------------------------------


@dataclass(frozen=True)
class RecipientSpec:
    email: str
    verification: str
    grant_token: str
    server_secret: bytes
    wrapped_key: bytes
    phone: str = ""
    password_verifier: bytes | None = None


@dataclass(frozen=True)
class BlobSpec:
    kind: str
    size: int
    file_ref: str = ""


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


def _validate_recipient(spec: RecipientSpec, index: int) -> None:
    field = f"recipients[{index}]"
    if spec.verification not in Verification.values:
        raise ExchangeError(
            _("Choose how the recipient proves who they are."), field=f"{field}.verification"
        )
    if spec.verification == Verification.SMS_CODE and not spec.phone:
        raise ExchangeError(
            _("An SMS code needs the recipient's mobile phone."), field=f"{field}.phone"
        )
    if spec.verification == Verification.PASSWORD and not spec.password_verifier:
        raise ExchangeError(
            _("A password is needed for this recipient."), field=f"{field}.password"
        )
    if not links.GRANT_TOKEN_RE.fullmatch(spec.grant_token or ""):
        raise ExchangeError(_("A recipient's link token is malformed."), field=field)
    if len(spec.server_secret) != SERVER_SECRET_LENGTH:
        raise ExchangeError(_("A recipient's server secret is malformed."), field=field)
    if len(spec.wrapped_key) != WRAPPED_KEY_LENGTH:
        raise ExchangeError(_("A recipient's wrapped key is malformed."), field=field)


def recipient_phone(phone: str, country: str, index: int) -> str:
    """A recipient's phone in E.164 (or "" for none), read with the sender's default SMS
    country; refused naming the recipient's row (messages and envelopes alike)."""
    try:
        return phones.parse_optional_phone(phone, country)
    except ValidationError as error:
        raise ExchangeError(error.messages[0], field=f"recipients[{index}].phone") from None


def check_recipient_count(recipients: list) -> None:
    """At most MAX_RECIPIENTS recipients in one send (messages and envelopes)."""
    if len(recipients) > MAX_RECIPIENTS:
        raise ExchangeError(
            _("Send to at most %(n)d recipients at once.") % {"n": MAX_RECIPIENTS},
            field="recipients",
        )


def check_max_opens(value: int, field: str) -> None:
    """Opens per recipient between 1 and MAX_OPENS (a message's, an envelope reply's)."""
    if not 1 <= value <= MAX_OPENS:
        raise ExchangeError(
            _("Maximum opens must be between 1 and %(n)d.") % {"n": MAX_OPENS}, field=field
        )


def _with_parsed_phone(spec: RecipientSpec, country: str, index: int) -> RecipientSpec:
    if not spec.phone:
        return spec
    return replace(spec, phone=recipient_phone(spec.phone, country, index))


def validate_blobs(organisation: Organisation, blobs: list[BlobSpec]) -> int:
    """Check sizes against the plan; return the plaintext total of the files."""
    manifests = [b for b in blobs if b.kind == BlobKind.MANIFEST]
    files = [b for b in blobs if b.kind == BlobKind.FILE]
    if len(manifests) != 1 or len(manifests) + len(files) != len(blobs):
        raise ExchangeError(_("A message has exactly one manifest and its files."))
    manifest_size = manifests[0].size
    if manifest_size <= 0:
        raise ExchangeError(_("A file is too small to be a valid encrypted payload."))
    if manifest_size > MAX_MANIFEST_BYTES:
        raise ExchangeError(
            _(
                "The message is too long: its text and file names take %(size)s once "
                "encrypted, at most %(limit)s."
            )
            % {"size": human_size(manifest_size), "limit": human_size(MAX_MANIFEST_BYTES)},
            status=413,
            code="too_large",
            field="message",
        )
    if len(files) > MAX_FILES:
        raise ExchangeError(_("Attach at most %(n)d files.") % {"n": MAX_FILES}, field="files")
    refs = [b.file_ref for b in files]
    if any(not ref or len(ref) > 64 for ref in refs) or len(set(refs)) != len(refs):
        raise ExchangeError(_("Each file needs its own reference."), field="files")
    total = sum(plaintext_size(b.size) for b in files)
    limit = organisation.plan.max_send_bytes
    if files and limit == 0:
        raise ExchangeError(
            _("Your plan does not allow attachments."), status=413, code="too_large", field="files"
        )
    if limit is not None and total > limit:
        raise ExchangeError(
            _("The attachments total %(total)s; your plan allows %(limit)s per message.")
            % {"total": human_size(total), "limit": human_size(limit)},
            status=413,
            code="too_large",
            field="files",
        )
    return total


def create_message(
    sender: User, spec: MessageSpec, *, request: HttpRequest | None = None
) -> CreatedMessage:
    """Record a draft message with its grants and empty blobs, ready for upload."""
    organisation = sender.organisation
    now = clock.now()
    spec = replace(spec, expires_at=clock.aware(spec.expires_at))
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
    attachment_bytes = validate_blobs(organisation, spec.blobs)
    check_monthly_quota(organisation)

    opening_codes: dict[str, str] = {}
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
            if (
                recipient.verification == Verification.OPENING_CODE
                and spec.delivery == Delivery.LINKS
            ):
                # The sender delivers the link and this code; shown to them once.
                opening_codes[grant.token] = set_opening_code(grant)
            grant.save()
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


# --- Direct mode: multipart uploads straight to the store -----------------------------------


@dataclass(frozen=True)
class DirectUploads:
    """The multipart uploads started for a draft about to be created: its id, and for
    each blob (in order) its id, object name and upload id."""

    message_id: uuid.UUID
    blobs: list[tuple[uuid.UUID, str, str]]


def start_direct_uploads(blobs: list[BlobSpec]) -> DirectUploads | None:
    """Start one multipart upload per blob of a new draft; None where the storage does
    not allow direct uploads (the local folder, `?direct=false`): the client then uploads
    through the app server."""
    if not storage.direct_mode():
        return None
    message_id = uuid.uuid4()
    started: list[tuple[uuid.UUID, str, str]] = []
    with aborting_on_failure(DirectUploads(message_id, started)):
        for _blob in blobs:
            blob_id = uuid.uuid4()
            name = storage.direct_object_name(message_id, blob_id)
            started.append((blob_id, name, storage.start_upload(name)))
    return DirectUploads(message_id, started)


@contextlib.contextmanager
def aborting_on_failure(uploads: DirectUploads | None):
    """Abort these uploads if what follows fails (the draft that would name them is not
    created); whatever cannot be aborted now, the purge aborts once it is stale."""
    try:
        yield
    except BaseException:
        for _blob_id, name, upload_id in uploads.blobs if uploads else ():
            try:
                storage.abort_upload(name, upload_id)
            except Exception:  # the error that brought us here is the one to report
                logger.warning("could not abort the upload of %s", name, exc_info=True)
        raise


def part_size_for(size: int) -> int:
    """The size of each part of a blob (but the last): DIRECT_PART_BYTES, or the next MiB
    multiple that keeps the blob within MAX_PARTS."""
    needed = -(-size // MAX_PARTS)
    if needed <= DIRECT_PART_BYTES:
        return DIRECT_PART_BYTES
    mib = 1024 * 1024
    return -(-needed // mib) * mib


def planned_parts(blob: Blob) -> list[tuple[int, int]]:
    """(part number, size) of every part of a direct blob, as announced at creation."""
    count = -(-blob.size // blob.part_size)
    return [
        (number, min(blob.part_size, blob.size - (number - 1) * blob.part_size))
        for number in range(1, count + 1)
    ]


def direct_upload_state(blob: Blob, *, list_parts: bool = True) -> dict:
    """What a client needs to upload a blob: `{"mode": "proxy"}` (through the app server),
    or the direct multipart upload's parts, each with a fresh presigned URL unless the
    store holds it already (`list_parts`: ask the store which, to resume)."""
    if not blob.upload_id:
        return {"mode": "proxy" if not blob.direct else "done", "part_size": 0, "parts": []}
    held = storage.uploaded_parts(blob.upload_name, blob.upload_id) if list_parts else {}
    planned = planned_parts(blob)
    held = held or {}
    missing = [(n, size) for n, size in planned if held.get(n, (None,))[0] != size]
    lifetime = int(PART_URLS_LIFETIME.total_seconds())
    urls = dict(
        zip(
            [n for n, _ in missing],
            storage.part_urls(blob.upload_name, blob.upload_id, missing, lifetime),
            strict=True,
        )
    )
    if list_parts:
        # Asking for part URLs is the draft's sign of life (its parts bypass the server).
        Message.objects.filter(pk=blob.message_id).update(last_upload_at=clock.now())
    return {
        "mode": "direct",
        "part_size": blob.part_size,
        "expires_in": lifetime,
        "parts": [
            {"number": n, "size": size, "url": urls.get(n, ""), "uploaded": n not in urls}
            for n, size in planned
        ],
    }


def _parts_refused(count: int) -> ExchangeError:
    return ExchangeError(
        _(
            "%(n)d part(s) of a file are missing from storage or not of the announced size. "
            "Upload them again."
        )
        % {"n": count},
        status=409,
        code="incomplete",
    )


def complete_direct_uploads(message: Message) -> None:
    """Complete each direct blob's multipart upload, once every part is in the store at
    its announced size (ListParts), and check the object (HeadObject). On any mismatch
    nothing is completed and the draft stays resumable (409)."""
    for blob in message.blobs.exclude(upload_id="").order_by("id"):
        _complete_direct(blob)


def _complete_direct(blob: Blob) -> None:
    with transaction.atomic():
        # The claim, first in the transaction: of parallel finalises one completes; the
        # others wait for it here and then find nothing to do (or, if it failed, retry).
        claimed = Blob.objects.filter(pk=blob.pk, upload_id=blob.upload_id).update(
            upload_id="", stored=blob.size, chunk_count=1
        )
        if not claimed:
            return
        held = storage.uploaded_parts(blob.upload_name, blob.upload_id)
        if held is None:
            # Completed by an attempt whose record was lost (or aborted): take the object
            # if it is there whole, else the file must be uploaded again.
            if storage.stored_size(blob.upload_name) != blob.size:
                raise _parts_refused(len(planned_parts(blob)))
        else:
            planned = dict(planned_parts(blob))
            wrong = sum(1 for n, size in planned.items() if held.get(n, (None,))[0] != size)
            wrong += len(set(held) - set(planned))
            if wrong:
                raise _parts_refused(wrong)
            storage.complete_upload(blob.upload_name, blob.upload_id, held)
            if storage.stored_size(blob.upload_name) != blob.size:
                # Cannot happen with the parts checked; if a store ever did it, the object
                # is not what was announced, and it goes.
                storage.delete(blob.upload_name)
                raise _parts_refused(len(planned))
        BlobChunk.objects.create(
            blob_id=blob.pk, index=0, offset=0, size=blob.size, storage_name=blob.upload_name
        )
        Message.objects.filter(pk=blob.message_id).update(last_upload_at=clock.now())


def _abort_direct_uploads(uploads: list[tuple[str, str]]) -> None:
    for name, upload_id in uploads:
        storage.abort_upload(name, upload_id)


def abort_stale_uploads(now: datetime) -> int:
    """Abort the multipart uploads started before the draft lifetime that nothing
    completed (an upload given up, a draft whose removal could not abort it, one started
    for a draft that was never created). Each abort is claimed by inserting its row: of
    parallel purges exactly one aborts it and counts it."""
    if not storage.direct_mode():
        return 0
    aborted = 0
    for name, upload_id in storage.uploads_started_before(now - DRAFT_LIFETIME):
        if Blob.objects.filter(upload_id=upload_id).exists():
            # A live draft's (a store's clock, or its listing, may say otherwise): its
            # removal, once stale, aborts it.
            continue
        try:
            with transaction.atomic():
                AbortedUpload.objects.create(upload_id=upload_id, name=name, aborted_at=now)
                # In the claim's transaction: if the store fails, the claim goes with it
                # and the next purge tries again.
                aborted += storage.abort_upload(name, upload_id)
        except IntegrityError:
            continue  # claimed by another purge
    AbortedUpload.objects.filter(aborted_at__lt=now - ABORT_CLAIMS_KEPT).delete()
    return aborted


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


@dataclass(frozen=True)
class Notification:
    grant_token: str
    link: str


def finalise(
    sender: User,
    message: Message,
    notifications: list[Notification] | None,
    *,
    request: HttpRequest | None = None,
) -> Message:
    """Make a fully uploaded message visible to its recipients; email them if asked.

    With `notifications`, the sender's device handed over each recipient's link so the
    server can email it: the link is sealed into the email task and never stored."""
    _require_sender(sender, message)
    links_by_grant = check_ready(message, notifications)
    check_monthly_quota(message.organisation)
    with transaction.atomic():
        mark_sent(message)
        hold_monthly_quota(message.organisation)
        audit.record(
            Action.MESSAGE_SENT,
            actor=sender,
            target=message,
            request=request,
            details={
                "reference": message.reference,
                "delivery": message.delivery,
                "recipients": len(links_by_grant) or message.grants.count(),
                "files": message.file_count,
                "bytes": message.attachment_bytes,
            },
        )
        deliver_links(message, links_by_grant, request=request)
    return message


OwnerEmail = Callable[[Message, Grant, str], None]


def finalise_sealed(
    message: Message,
    notifications: list[Notification],
    *,
    record: Callable[[Message], None],
    owner_email: OwnerEmail,
    request: HttpRequest | None = None,
) -> Message:
    """Finalise a draft sealed for its owner: `record` writes the caller's audit event and
    `owner_email` emails the owner their link, in the same transaction."""
    links_by_grant = check_ready(message, notifications)
    with transaction.atomic():
        mark_sent(message)
        record(message)
        deliver_links(message, links_by_grant, request=request, owner_email=owner_email)
    return message


def check_ready(message: Message, notifications: list[Notification] | None) -> dict[str, str]:
    """Check a draft can be sent (its direct uploads completed first); return the links
    to email, by grant token."""
    if message.state != MessageState.DRAFT:
        raise ExchangeError(_("This message is already sent."), status=409, code="sent")
    complete_direct_uploads(message)
    incomplete = [b for b in message.blobs.all() if not b.complete]
    if incomplete:
        raise ExchangeError(
            _("%(n)d file(s) are not completely uploaded yet.") % {"n": len(incomplete)},
            status=409,
            code="incomplete",
        )
    lost = chunks_not_stored(message)
    if lost:
        raise ExchangeError(
            _(
                "%(n)d part(s) of the uploaded files are missing from storage. "
                "Upload the message again."
            )
            % {"n": lost},
            status=409,
            code="chunk_missing",
        )
    if (notifications is not None) != (message.delivery == Delivery.EMAIL):
        raise ExchangeError(
            _("Send needs each recipient's link; Create links sends no email."),
            field="links",
        )
    if message.expires_at <= clock.now():
        raise ExchangeError(_("The expiry must be in the future."), field="expires_at")
    if notifications is None:
        return {}
    return _links_by_grant(message, notifications)


def chunks_not_stored(message: Message) -> int:
    """How many recorded chunks are not in storage, whole, where the records say: a
    message is only sent if every byte its recipients will download is there."""
    lost = 0
    for blob in message.blobs.all():
        expected_offset = 0
        for chunk in blob.chunks.order_by("index"):
            in_place = chunk.offset == expected_offset
            if not in_place or storage.stored_size(chunk.storage_name) != chunk.size:
                lost += 1
            expected_offset = chunk.offset + chunk.size
        if expected_offset != blob.size:
            lost += 1
    return lost


def _links_by_grant(message: Message, notifications: list[Notification]) -> dict[str, str]:
    grants = set(message.grants.values_list("token", flat=True))
    found: dict[str, str] = {}
    for item in notifications:
        try:
            parsed = links.parse_link(item.link, settings.SEALBOX_BASE_URL)
        except CryptoError:
            raise ExchangeError(_("A recipient's link is malformed."), field="links") from None
        if item.grant_token not in grants or parsed.grant_token != item.grant_token:
            raise ExchangeError(_("A link does not belong to this message."), field="links")
        found[item.grant_token] = item.link
    if set(found) != grants:
        raise ExchangeError(_("Every recipient needs a link to email."), field="links")
    return found


def mark_sent(message: Message) -> None:
    """Draft → sent, as one conditional UPDATE: of parallel finalises of one draft exactly
    one wins (and goes on to record and deliver); the others are refused with 409."""
    now = clock.now()
    won = Message.objects.filter(pk=message.pk, state=MessageState.DRAFT).update(
        state=MessageState.SENT, sent_at=now
    )
    if not won:
        raise ExchangeError(_("This message is already sent."), status=409, code="sent")
    message.state = MessageState.SENT
    message.sent_at = now


def deliver_links(
    message: Message,
    links_by_grant: dict[str, str],
    *,
    request: HttpRequest | None = None,
    owner_email: OwnerEmail | None = None,
) -> None:
    """Email each grant its link (sealed tasks); account grants go to their owner."""
    from sealbox.exchange import notifications as notify

    grants = {g.token: g for g in message.grants.filter(token__in=list(links_by_grant))}
    for token, link in links_by_grant.items():
        grant = grants[token]
        if grant.verification == Verification.ACCOUNT:
            (owner_email or notify.send_sender_copy)(message, grant, link)
            continue
        code = ""
        if grant.verification == Verification.OPENING_CODE:
            code = set_opening_code(grant)
            grant.save(update_fields=["opening_code_hash"])
        notify.send_recipient_notification(message, grant, link, opening_code=code, request=request)


# --- Opening ----------------------------------------------------------------------------


class GrantState:
    OPEN = "open"
    EXPIRED = "expired"
    DELETED = "deleted"
    USED_UP = "used_up"
    NOT_SENT = "not_sent"
    LOCKED = "locked"  # open, but too many wrong proofs: the sender can unlock it


def grant_state(grant: Grant, now: datetime | None = None) -> str:
    now = now or clock.now()
    if grant.message.state == MessageState.DRAFT:
        return GrantState.NOT_SENT
    if grant.revoked_at or grant.message.state == MessageState.DELETED:
        return GrantState.DELETED
    if grant.expires_at <= now:
        return GrantState.EXPIRED
    if grant.opens >= grant.max_opens:
        return GrantState.USED_UP
    if grant.server_secret is None:
        return GrantState.EXPIRED
    if grant.locked_at is not None:
        return GrantState.LOCKED
    return GrantState.OPEN


def find_grant(token: str) -> Grant:
    grant = (
        Grant.objects.select_related("message", "message__sender", "message__organisation")
        .filter(token=token)
        .first()
    )
    if grant is None or grant.message.state == MessageState.DRAFT:
        raise ExchangeError(
            _("This link is not valid. Check that you copied all of it."),
            status=404,
            code="not_found",
        )
    return grant


def locked_error() -> ExchangeError:
    return ExchangeError(
        _("Too many wrong attempts: this link is locked. Ask the sender to unlock it."),
        status=403,
        code="locked",
    )


def ensure_open(grant: Grant) -> None:
    state = grant_state(grant)
    if state == GrantState.LOCKED:
        raise locked_error()
    if state != GrantState.OPEN:
        raise ExchangeError(
            _("This message is no longer available. Ask the sender to send it again."),
            status=410,
            code="gone",
        )


def _throttled(decision: ratelimit.Decision) -> ExchangeError:
    return throttle.too_many_attempts(decision.retry_after, kind=ExchangeError)


def enforce_limits(checks: list[tuple[Rule, str]]) -> None:
    """Refuse (429) while any of these failure counters is full. Counts nothing: for
    requests that guess nothing; a proof reserves its try with `reserve_limits`."""
    for rule, key in checks:
        decision = ratelimit.check(rule, key)
        if not decision.allowed:
            raise _throttled(decision)


def reserve_limits(checks: list[tuple[Rule, str]]) -> ratelimit.Decision:
    """Count this attempt under every failure counter, or refuse (429) if one is full."""
    decision = ratelimit.reserve(checks)
    if not decision.allowed:
        raise _throttled(decision)
    return decision


def count_proof_failure(model: type, pk: int) -> int | None:
    """Count one more consecutive wrong proof of a grant or an envelope link.

    Returns the new count when this failure locked it (exactly one failure does, however
    many run at once: the increment and the lock are conditional updates), else None.
    """
    model.objects.filter(pk=pk).update(failed_attempts=F("failed_attempts") + 1)
    locked = model.objects.filter(
        pk=pk, locked_at__isnull=True, failed_attempts__gte=PROOF_FAILURES_BEFORE_LOCK
    ).update(locked_at=clock.now())
    if not locked:
        return None
    return model.objects.filter(pk=pk).values_list("failed_attempts", flat=True).first()


def check_within_limits(
    checks: list[tuple[Rule, str]],
    check: Callable[[], T | None],
    record_failure: Callable[[T], None],
    *,
    slow: bool = False,
) -> T | None:
    """Run `check` (None when the proof is right, else what is wrong) as one counted try
    under these failure counters; refuse (429) when one is full.

    The try is counted before the proof is checked and given back if it was right, so
    parallel guesses can never be checked more often than the limits allow. A quick
    check (an HMAC, a code row) runs while the counters' locks are held, with the
    failure recorded in the same transaction: parallel tries take turns, and right
    proofs leave nothing behind. A `slow` one (Argon2) runs after its try is committed,
    so that it does not hold the locks (SQLite's write lock) while it works.
    """
    with contextlib.nullcontext() if slow else transaction.atomic():
        reservation = reserve_limits(checks)
        failure = check()
        if failure is None:
            reservation.release()
        else:
            record_failure(failure)
    return failure


def _unlock_limits(grant: Grant, ip: str) -> list[tuple[Rule, str]]:
    return [(UNLOCK_FAILURES_PER_GRANT, grant.token), (UNLOCK_FAILURES_PER_IP, ip)]


def _record_recipient(
    grant: Grant, action: str, request: HttpRequest | None, details: dict | None = None
) -> None:
    own = grant.user_id is not None  # an account grant: its owner is a user
    audit.record(
        action,
        organisation=grant.message.organisation,
        actor_type="user" if own else "recipient",
        actor_id=str(grant.user_id if own else grant.pk),
        actor_label=grant.email,
        target=grant.message,
        request=request,
        details={"reference": grant.message.reference, **(details or {})},
    )


def sealed_for_someone_else(grant: Grant, user) -> bool:
    """A submission or reply seen by a logged-in user who is not its owner (even an
    administrator): for them it does not exist."""
    return (
        grant.message.kind != MessageKind.MESSAGE
        and user is not None
        and user.is_authenticated
        and user.pk != grant.user_id
    )


OPENED_ACTIONS = {
    MessageKind.MESSAGE: Action.MESSAGE_OPENED,
    MessageKind.ENVELOPE: Action.SUBMISSION_OPENED,
    MessageKind.REPLY: Action.REPLY_OPENED,
}


def check_proof(
    grant: Grant,
    *,
    code: str = "",
    password_verifier: bytes | None = None,
    request: HttpRequest | None = None,
) -> None:
    """Check the proof the grant's verification method asks for; failures count."""
    from sealbox.exchange import codes

    ip = (client_ip(request) if request else None) or "unknown"
    method = grant.verification
    if method == Verification.ACCOUNT:
        # The owner's session is the proof: nothing to guess, nothing to count.
        enforce_limits(_unlock_limits(grant, ip))
        user = getattr(request, "user", None)
        if sealed_for_someone_else(grant, user):
            raise ExchangeError(_("No such message."), status=404, code="not_found")
        if user is None or not user.is_authenticated or user.pk != grant.user_id:
            raise ExchangeError(
                _("Log in as the sender to open this copy."), status=403, code="login_required"
            )
        return

    def wrong() -> tuple[str, str] | None:
        """(reason for the audit log, message for the person), or None if right."""
        if method == Verification.OPENING_CODE:
            given = normalise_opening_code(code or "")
            if not code or not proof_is_right(
                Grant, grant.pk, "opening_code_hash", grant.token, "opening", given
            ):
                return "wrong opening code", _("This opening code is not correct.")
        elif method == Verification.PASSWORD:
            if not password_verifier or not proof_is_right(
                Grant,
                grant.pk,
                "password_verifier_hash",
                grant.token,
                "password",
                password_verifier,
            ):
                return "wrong password", _("This password is not correct.")
        else:
            ok, error = codes.check(grant, code or "")
            if not ok:
                return "wrong code", error
        return None

    locked: list[int] = []

    def record(failure: tuple[str, str]) -> None:
        _record_recipient(
            grant,
            Action.GRANT_VERIFICATION_FAILED,
            request,
            details={"method": method, "reason": failure[0]},
        )
        failures = count_proof_failure(Grant, grant.pk)
        if failures is not None:
            locked.append(failures)
            _record_recipient(grant, Action.GRANT_LOCKED, request, details={"failures": failures})

    failure = check_within_limits(_unlock_limits(grant, ip), wrong, record)
    if locked:
        raise locked_error()
    if failure is not None:
        raise ExchangeError(failure[1], status=403, code="verification_failed")


@dataclass(frozen=True)
class Unlocked:
    grant: Grant
    server_secret: bytes
    wrapped_key: bytes
    opens_left: int
    downloads: list[tuple[Blob, str]]  # blob, download authorisation
    reply: str = ""  # authorisation to reply, when the sender allows replies


def unlock(
    token: str,
    *,
    code: str = "",
    password_verifier: bytes | None = None,
    request: HttpRequest | None = None,
) -> Unlocked:
    """Check the proof, count one open atomically, release the grant's server half."""
    grant = find_grant(token)
    ensure_open(grant)
    check_proof(grant, code=code, password_verifier=password_verifier, request=request)
    now = clock.now()
    with transaction.atomic():
        # One conditional UPDATE: concurrent unlocks can never exceed the maximum. The
        # right proof ends the run of consecutive failures.
        counted = Grant.objects.filter(
            pk=grant.pk,
            opens__lt=F("max_opens"),
            expires_at__gt=now,
            revoked_at__isnull=True,
            server_secret__isnull=False,
            locked_at__isnull=True,
        ).update(
            opens=F("opens") + 1,
            last_opened_at=now,
            downloads_until=now + DOWNLOAD_WINDOW,
            failed_attempts=0,
        )
        if not counted:
            if Grant.objects.filter(pk=grant.pk, locked_at__isnull=False).exists():
                raise locked_error()
            raise ExchangeError(
                _("This message is no longer available. Ask the sender to send it again."),
                status=410,
                code="gone",
            )
        # The grant's row alone: without `of`, PostgreSQL also locks every joined row
        # (the message, its sender, the organisation), which serialised all the opens of
        # an organisation and deadlocked with audit appends (an event's foreign key to
        # the organisation is checked at commit, while the chain head is held).
        grant = (
            Grant.objects.select_for_update(of=("self",))
            .select_related("message", "message__sender", "message__organisation")
            .get(pk=grant.pk)
        )
        server_secret = bytes(grant.server_secret)
        wrapped_key = bytes(grant.wrapped_key)
        first_open = grant.first_opened_at is None
        if first_open:
            grant.first_opened_at = now
            grant.save(update_fields=["first_opened_at"])
        if grant.opens >= grant.max_opens:
            _wipe(grant, now)  # the last open: the server forgets its half at once
        ratelimit.clear(UNLOCK_FAILURES_PER_GRANT, grant.token)
        _record_recipient(
            grant,
            OPENED_ACTIONS[grant.message.kind],
            request,
            details={"open": grant.opens, "max_opens": grant.max_opens},
        )
        if grant.message.notify_on_open and grant.message.kind == MessageKind.MESSAGE:
            from sealbox.exchange import notifications as notify

            notify.send_open_notification(grant, now)
    blobs = list(grant.message.blobs.order_by("kind", "id"))
    downloads = [(blob, download_authorisation(grant, blob)) for blob in blobs]
    return Unlocked(
        grant,
        server_secret,
        wrapped_key,
        grant.max_opens - grant.opens,
        downloads,
        reply_authorisation(grant) if can_reply(grant) else "",
    )


def _wipe(grant: Grant, now: datetime) -> bool:
    """Forget the server's half of the grant. One conditional update: of parallel wipes
    (two purges, a purge and the last open) exactly one returns True, and only that one
    records what happened."""
    wiped = Grant.objects.filter(pk=grant.pk, wiped_at__isnull=True).update(
        server_secret=None, wrapped_key=None, wiped_at=now
    )
    grant.server_secret = None
    grant.wrapped_key = None
    grant.wiped_at = grant.wiped_at or now
    return bool(wiped)


DOWNLOAD_SALT = "sealbox.exchange.download"


def download_authorisation(grant: Grant, blob: Blob) -> str:
    return signing.dumps(
        {"g": grant.pk, "b": str(blob.public_id)}, salt=DOWNLOAD_SALT, compress=False
    )


def authorised_download(authorisation: str) -> tuple[Grant, Blob]:
    """The grant and blob an authorisation names, if it and the grant are still valid."""
    try:
        data = signing.loads(
            authorisation, salt=DOWNLOAD_SALT, max_age=DOWNLOAD_WINDOW.total_seconds()
        )
    except signing.BadSignature:
        raise ExchangeError(
            _("This download link has expired. Open the message again."), status=403, code="expired"
        ) from None
    grant = Grant.objects.select_related("message").filter(pk=data["g"]).first()
    now = clock.now()
    if (
        grant is None
        or grant.revoked_at
        or grant.message.state != MessageState.SENT
        or grant.expires_at <= now
        or not grant.downloads_until
        or grant.downloads_until <= now
        or grant.message.blobs_deleted_at
    ):
        raise ExchangeError(
            _("This message is no longer available. Ask the sender to send it again."),
            status=410,
            code="gone",
        )
    blob = grant.message.blobs.filter(public_id=data["b"]).first()
    if blob is None:
        raise ExchangeError(_("No such file."), status=404, code="not_found")
    return grant, blob


def record_download(grant: Grant, blob: Blob, request: HttpRequest | None) -> None:
    if blob.kind == BlobKind.FILE:
        _record_recipient(
            grant,
            Action.FILE_DOWNLOADED,
            request,
            details={"file": blob.file_ref, "bytes": blob.size},
        )


def blob_chunk_names(blob: Blob) -> list[str]:
    return list(blob.chunks.order_by("index").values_list("storage_name", flat=True))


def direct_download_url(blob: Blob) -> str:
    """A short-lived presigned GET of the blob when the store serves it itself (direct
    mode, the blob one object), else "" (it streams through the app server). The object
    is looked at first: a store that does not answer is a 503, and nothing is recorded."""
    if not storage.direct_mode():
        return ""
    names = blob_chunk_names(blob)
    if len(names) != 1:
        return ""
    if storage.stored_size(names[0]) is None:
        logger.error("the stored chunk %s is missing from storage", names[0])
        raise storage.StorageUnavailable()
    return storage.download_url(names[0], int(DIRECT_DOWNLOAD_LIFETIME.total_seconds()))


# --- Replies ---------------------------------------------------------------------------------

REPLY_SALT = "sealbox.exchange.reply"
REPLY_WINDOW = timedelta(hours=4)  # after an open, time to write and upload a reply
REPLY_MAX_OPENS = 3
REPLIES_PER_GRANT = Rule("reply-grant", 5, timedelta(hours=1))


def can_reply(grant: Grant) -> bool:
    message = grant.message
    return (
        message.kind == MessageKind.MESSAGE
        and message.reply_mode != ReplyMode.NONE
        and grant.verification != Verification.ACCOUNT
    )


def reply_authorisation(grant: Grant) -> str:
    issued = int(clock.now().timestamp())
    return signing.dumps({"g": grant.pk, "t": issued}, salt=REPLY_SALT, compress=False)


def grant_for_reply(authorisation: str) -> Grant:
    """The recipient's grant a reply authorisation (given at unlock) names, if still valid."""
    try:
        data = signing.loads(authorisation or "", salt=REPLY_SALT)
        if clock.now().timestamp() - data["t"] > REPLY_WINDOW.total_seconds():
            raise signing.BadSignature("stale")
    except (signing.BadSignature, KeyError, TypeError):
        raise ExchangeError(
            _("You can no longer reply from this page. Open the message again."),
            status=403,
            code="expired",
        ) from None
    grant = (
        Grant.objects.select_related("message", "message__sender", "message__organisation")
        .filter(pk=data.get("g"))
        .first()
    )
    if grant is None or not can_reply(grant):
        raise ExchangeError(_("Replies are not allowed."), status=403, code="no_reply")
    if grant.revoked_at or grant.message.state != MessageState.SENT:
        raise ExchangeError(
            _("This message is no longer available. Ask the sender to send it again."),
            status=410,
            code="gone",
        )
    return grant


def reply_expiry(parent: Message, now: datetime) -> datetime:
    """A reply lives as long as the message it answers did, within the plan's retention."""
    lifetime = parent.expires_at - (parent.sent_at or parent.created_at)
    return min(now + max(lifetime, timedelta(hours=1)), latest_expiry(parent.organisation, now))


def create_reply(
    authorisation: str,
    owner_grant: RecipientSpec,
    blobs: list[BlobSpec],
    *,
    direct: bool = False,
    request: HttpRequest | None = None,
) -> Message:
    """A reply draft sealed in the recipient's browser for the original sender."""
    grant = grant_for_reply(authorisation)
    parent = grant.message
    if parent.reply_mode != ReplyMode.FILES and any(b.kind == BlobKind.FILE for b in blobs):
        raise ExchangeError(
            _("The sender allows replies without files."), status=413, field="files"
        )
    with transaction.atomic():
        # Counted in the draft's transaction: a refused or invalid draft counts nothing.
        decision = ratelimit.reserve([(REPLIES_PER_GRANT, grant.token)])
        if not decision.allowed:
            raise _throttled(decision)
        return create_sealed_draft(
            parent.sender,
            kind=MessageKind.REPLY,
            subject=_("Re: %(subject)s") % {"subject": parent.subject},
            expires_at=reply_expiry(parent, clock.now()),
            max_opens=REPLY_MAX_OPENS,
            grant=owner_grant,
            blobs=blobs,
            language=parent.sender.language,
            parent=parent,
            replied_by=grant,
            direct=direct,
        )


def finalise_reply(
    message: Message, notifications: list[Notification], *, request: HttpRequest | None = None
) -> Message:
    """Send a reply draft: the original sender is emailed their link. Any other sealed
    draft (an envelope submission) is not a reply: for this call it does not exist."""
    from sealbox.exchange import notifications as notify

    if message.kind != MessageKind.REPLY:
        raise ExchangeError(_("No such reply."), status=404, code="not_found")

    def record(reply: Message) -> None:
        # On the reply's timeline and on the original message's (its thread).
        for target, details in (
            (reply, {"reference": reply.reference, "parent": reply.parent.reference}),
            (reply.parent, {"reference": reply.parent.reference, "reply": reply.reference}),
        ):
            audit.record(
                Action.REPLY_SENT,
                organisation=reply.organisation,
                actor_type="recipient",
                actor_id=str(reply.replied_by_id),
                actor_label=reply.replied_by.email if reply.replied_by else "",
                target=target,
                request=request,
                details=details | {"files": reply.file_count, "bytes": reply.attachment_bytes},
            )

    return finalise_sealed(
        message, notifications, record=record, owner_email=notify.send_reply_link, request=request
    )


# --- Destruction -------------------------------------------------------------------------


def delete_message(user: User, message: Message, *, request: HttpRequest | None = None) -> None:
    """Revoke every grant at once and delete the ciphertext (sender or administrator).
    A draft (its upload cancelled) is removed instead: it was never sent, so nothing of
    it stays to show in History."""
    if message.state == MessageState.DRAFT:
        cancel_draft(message, actor=user, request=request)
        return
    now = clock.now()
    with transaction.atomic():
        # The claim: of parallel deletions (a double click, two administrators) one
        # revokes and records; the others find the message deleted already.
        claimed = (
            Message.objects.filter(pk=message.pk)
            .exclude(state=MessageState.DELETED)
            .update(state=MessageState.DELETED, deleted_at=now)
        )
        if not claimed:
            return
        message.grants.filter(revoked_at__isnull=True).update(revoked_at=now)
        message.grants.filter(wiped_at__isnull=True).update(
            server_secret=None, wrapped_key=None, wiped_at=now
        )
        message.state = MessageState.DELETED
        message.deleted_at = now
        audit.record(
            Action.MESSAGE_DELETED,
            actor=user,
            target=message,
            request=request,
            organisation=message.organisation,
            details={"reference": message.reference},
        )
    delete_blobs(message)


def unlock_grant(
    user: User, message: Message, grant_id: int, *, request: HttpRequest | None = None
) -> Grant:
    """The sender (or an administrator) unlocks a recipient's link that wrong proofs locked.

    The recipient can then ask for a new code at once. `message` comes from
    `message_for_sender`, which says who may.
    """
    grant = message.grants.filter(pk=grant_id).first()
    if grant is None:
        raise ExchangeError(_("No such recipient."), status=404, code="not_found")
    with transaction.atomic():
        unlocked = Grant.objects.filter(pk=grant.pk, locked_at__isnull=False).update(
            locked_at=None, failed_attempts=0
        )
        if unlocked:
            ratelimit.clear(UNLOCK_FAILURES_PER_GRANT, grant.token)
            audit.record(
                Action.GRANT_UNLOCKED,
                actor=user,
                target=message,
                request=request,
                organisation=message.organisation,
                details={"reference": message.reference, "recipient": grant.email},
            )
    grant.refresh_from_db()
    return grant


# A deletion claimed this long ago whose chunk rows remain was interrupted (the store
# was unavailable, the process died): the purge takes it over. Long enough that the
# claimer, if alive, has finished (a message has at most a few thousand chunks).
INTERRUPTED_DELETION_AFTER = timedelta(minutes=10)


def delete_blobs(
    message: Message, *, condition: Q | None = None, record: Callable[[], None] | None = None
) -> bool:
    """Claim the deletion of the message's ciphertext, then delete it; True if claimed.

    The claim is one conditional update of `blobs_deleted_at` (no download starts after
    it), with `record` writing the caller's audit event in the same transaction: of
    parallel deleters (two purges, a purge and the sender) exactly one claims, records
    and deletes, and `condition` is checked again in the claim. When the store fails
    half-way, the chunk rows stay and a later purge finishes the deletion
    (`finish_interrupted_deletions`): the grants are already wiped, so what is left
    behind meanwhile opens for nobody.
    """
    now = clock.now()
    with transaction.atomic():
        claimed = Message.objects.filter(
            condition or Q(), pk=message.pk, blobs_deleted_at__isnull=True
        ).update(blobs_deleted_at=now)
        if claimed and record is not None:
            record()
    if not claimed:
        return False
    message.blobs_deleted_at = now
    _delete_content_or_leave_it(message)
    return True


def _delete_content_or_leave_it(message: Message) -> bool:
    """Delete the stored objects, then the chunk rows that name them. On a storage
    failure the rows stay for the purge to try again; False then."""
    names = list(
        BlobChunk.objects.filter(blob__message=message).values_list("storage_name", flat=True)
    )
    try:
        _delete_stored(message, names)
    except storage.StorageUnavailable:
        logger.warning("content of message %s not deleted yet: storage unavailable", message.pk)
        return False
    BlobChunk.objects.filter(blob__message=message).delete()
    return True


def _messages_with_chunks(**conditions) -> QuerySet:
    return (
        BlobChunk.objects.filter(**conditions).values_list("blob__message_id", flat=True).distinct()
    )


def finish_interrupted_deletions(now: datetime) -> int:
    """Finish the deletions a storage failure (or a dead process) interrupted.

    Each is taken over with a conditional update of its claim time (a lease), so that
    parallel purges do not both work on it."""
    finished = 0
    # From the chunk rows: only live content has any, so this stays small.
    pending = _messages_with_chunks(
        blob__message__blobs_deleted_at__lte=now - INTERRUPTED_DELETION_AFTER
    )
    for message in Message.objects.filter(pk__in=list(pending)):
        taken = Message.objects.filter(
            pk=message.pk, blobs_deleted_at=message.blobs_deleted_at
        ).update(blobs_deleted_at=now)
        if taken and _delete_content_or_leave_it(message):
            finished += 1
    return finished


def _delete_stored(message: Message, names: list[str]) -> None:
    # Direct uploads still open: each abort claimed by clearing its id (one deleter does).
    for blob in Blob.objects.filter(message=message).exclude(upload_id=""):
        if Blob.objects.filter(pk=blob.pk, upload_id=blob.upload_id).update(upload_id=""):
            storage.abort_upload(blob.upload_name, blob.upload_id)
    for name in names:
        storage.delete(name)
    # And what no chunk row names: attempts that died between writing and recording, or
    # that were still writing when the message stopped taking uploads.
    for name in storage.names_under(storage.message_folder(message.public_id)):
        storage.delete(name)


def idle_since(cutoff: datetime) -> Q:
    """Drafts that received no chunk (or were created, if none came) after `cutoff`."""
    return Q(last_upload_at__lte=cutoff) | Q(last_upload_at__isnull=True, created_at__lte=cutoff)


def abandoned_drafts(now: datetime) -> QuerySet[Message]:
    return Message.objects.filter(
        idle_since(now - ABANDONED_AFTER), state=MessageState.DRAFT, kind__in=SEALED_KINDS
    )


def cancel_draft(
    message: Message, *, actor: User | None = None, request: HttpRequest | None = None
) -> None:
    """The person uploading a draft cancelled it (the sender, or a submitter or replier by
    their upload token): the draft goes, its ciphertext with it, and the cancellation is
    recorded. A draft sent meanwhile is left alone (409)."""

    def record(draft: Message) -> None:
        audit.record(
            Action.UPLOAD_CANCELLED,
            actor=actor,
            target=draft,
            request=request,
            organisation=draft.organisation,
            details={"reference": draft.reference, "kind": draft.kind},
        )

    if not remove_draft(message, record=record):
        raise ExchangeError(_("This message is already sent."), status=409, code="sent")


def remove_draft(
    message: Message,
    *,
    condition: Q | None = None,
    record: Callable[[Message], None] | None = None,
) -> bool:
    """Delete a draft that was never sent, rows first: an upload still running then finds
    no blob to record its chunk in and deletes its own object. `condition` is checked
    again under the lock (a chunk may have arrived since the draft was picked); `record`
    writes the audit event, in the same transaction, when there is one to write."""
    with transaction.atomic():
        draft = (
            Message.objects.select_for_update()
            .filter(condition or Q(), pk=message.pk, state=MessageState.DRAFT)
            .first()
        )
        if draft is None:
            return False  # sent (or removed) meanwhile
        if record:
            record(draft)
        names = list(
            BlobChunk.objects.filter(blob__message=draft).values_list("storage_name", flat=True)
        )
        uploads = list(
            Blob.objects.filter(message=draft)
            .exclude(upload_id="")
            .values_list("upload_name", "upload_id")
        )
        draft.delete()
    try:
        _abort_direct_uploads(uploads)
        _delete_stored(message, names)
    except storage.StorageUnavailable:
        # The rows are gone with the grant's server secret: what stays is noise.
        logger.warning("objects of the removed draft %s left in storage", message.pk)
    return True


@dataclass
class PurgeReport:
    grants_wiped: int = 0
    messages_expired: int = 0
    blobs_deleted: int = 0
    drafts_removed: int = 0
    deletions_finished: int = 0
    # Deletions claimed whose objects the store has not deleted yet (it was unavailable).
    deletions_waiting: int = 0
    # Stale multipart uploads (direct mode) aborted.
    uploads_aborted: int = 0


def purge(now: datetime | None = None) -> PurgeReport:
    """Wipe dead grants, delete ciphertext nobody can open any more, drop stale drafts.

    Several purges may run at once (each worker runs one, an operator runs
    `sealbox purge`): every wipe and deletion is claimed by one conditional update, and
    only the purge that claimed it records its event, so each happens, and is recorded,
    once.
    """
    now = now or clock.now()
    report = PurgeReport()
    dead = (
        Grant.objects.filter(wiped_at__isnull=True)
        .filter(Q(expires_at__lte=now) | Q(revoked_at__isnull=False) | Q(opens__gte=F("max_opens")))
        .exclude(message__state=MessageState.DRAFT)
    )
    for grant in dead.select_related("message", "message__organisation"):
        with transaction.atomic():
            if not _wipe(grant, now):
                continue  # wiped meanwhile (another purge, the last open, a deletion)
            if grant.expires_at <= now and not grant.revoked_at:
                _record_recipient(grant, Action.GRANT_EXPIRED, None)
        report.grants_wiped += 1
    finished = Message.objects.filter(state=MessageState.SENT, blobs_deleted_at__isnull=True)
    for message in finished.select_related("organisation"):
        alive = (
            message.grants.filter(Q(wiped_at__isnull=True) | Q(downloads_until__gt=now))
            .filter(revoked_at__isnull=True, expires_at__gt=now)
            .exists()
        )
        if alive:
            continue
        expired = message.expires_at <= now

        def record_expiry(message: Message = message) -> None:
            audit.record(
                Action.MESSAGE_EXPIRED,
                organisation=message.organisation,
                target=message,
                details={"reference": message.reference},
            )

        # Still sent when claimed: a message its sender deleted meanwhile did not expire.
        claimed = delete_blobs(
            message,
            condition=Q(state=MessageState.SENT),
            record=record_expiry if expired else None,
        )
        if claimed:
            report.blobs_deleted += 1
            report.messages_expired += int(expired)
    report.deletions_finished = finish_interrupted_deletions(now)
    stale = Message.objects.filter(state=MessageState.DRAFT, created_at__lte=now - DRAFT_LIFETIME)
    for message in stale:
        if remove_draft(message):
            report.drafts_removed += 1
    # Like the stale drafts above, no audit event: a draft was never sent, so nothing
    # that happened to anyone is undone.
    for message in abandoned_drafts(now):
        if remove_draft(message, condition=idle_since(now - ABANDONED_AFTER)):
            report.drafts_removed += 1
    report.uploads_aborted = abort_stale_uploads(now)
    report.deletions_waiting = _messages_with_chunks(
        blob__message__blobs_deleted_at__isnull=False
    ).count()
    return report
