"""Destruction: a sender deleting a message, the deletion of ciphertext (claimed once,
finished after a storage failure), stale drafts removed, and the purge.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db import transaction
from django.db.models import F, Q, QuerySet
from django.http import HttpRequest
from django.utils.translation import gettext as _

from sealbox.accounts.models import User
from sealbox.audit import services as audit
from sealbox.audit.actions import Action
from sealbox.exchange import storage
from sealbox.exchange.direct import _abort_direct_uploads, abort_stale_uploads
from sealbox.exchange.errors import ExchangeError
from sealbox.exchange.models import (
    Blob,
    BlobChunk,
    Grant,
    Message,
    MessageState,
)
from sealbox.exchange.opening import _record_recipient, _wipe
from sealbox.exchange.rules import ABANDONED_AFTER, DRAFT_LIFETIME, SEALED_KINDS
from sealbox.lib import clock

logger = logging.getLogger(__name__)


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
