"""Direct mode: each blob of a draft is one S3 multipart upload the client sends its
parts to; the server presigns the parts, checks and completes the uploads, and aborts
the stale ones.
"""

from __future__ import annotations

import contextlib
import logging
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db import IntegrityError, transaction
from django.utils.translation import gettext as _

from sealbox.exchange import storage
from sealbox.exchange.errors import ExchangeError
from sealbox.exchange.models import (
    AbortedUpload,
    Blob,
    BlobChunk,
    Message,
)
from sealbox.exchange.rules import DRAFT_LIFETIME, BlobSpec
from sealbox.lib import clock

logger = logging.getLogger(__name__)


# Direct mode: each blob is one S3 multipart upload of parts this large (the last one
# smaller), larger for blobs that would need more parts than S3 allows.
DIRECT_PART_BYTES = 16 * 1024 * 1024
MAX_PARTS = 10_000
# How long presigned part URLs work: a client asks for fresh ones (…/parts) past this,
# and every ask also tells the purge that the draft is still being uploaded.
PART_URLS_LIFETIME = timedelta(minutes=30)

# Rows claiming aborted multipart uploads are kept this long (the store no longer lists
# an upload once it is aborted, so an old claim can never be needed again).
ABORT_CLAIMS_KEPT = timedelta(days=7)


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
