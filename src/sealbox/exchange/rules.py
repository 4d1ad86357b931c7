"""The limits of secure messages: sizes and lifetimes, the plan's monthly quota and
retention, what a message may hold, and the failure counters of proofs.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TypeVar

from django.db import transaction
from django.db.models import F
from django.utils.translation import gettext as _

from sealbox.accounts.models import Organisation
from sealbox.exchange.errors import ExchangeError
from sealbox.exchange.models import (
    BlobKind,
    Message,
    MessageKind,
)
from sealbox.lib import clock, throttle
from sealbox.lib.formats import human_size
from sealbox.lib.limits import MAX_MANIFEST_BYTES
from sealbox.ratelimit import services as ratelimit
from sealbox.ratelimit.services import Rule

RECORD_SIZE = 65536
HEADER_SIZE = 21  # RFC 8188 header with an empty key id
RECORD_OVERHEAD = 17  # tag and delimiter
MAX_CHUNK_BYTES = 16 * 1024 * 1024

MAX_RECIPIENTS = 50
MAX_FILES = 100
DRAFT_LIFETIME = timedelta(hours=24)
# A draft sealed by someone without an account (an envelope submission, a reply) that
# received nothing for this long is abandoned: the purge removes it and its ciphertext.
ABANDONED_AFTER = timedelta(hours=1)
SEALED_KINDS = (MessageKind.ENVELOPE, MessageKind.REPLY)

# Consecutive wrong proofs of one grant (as for an account's factor) before it locks.
PROOF_FAILURES_BEFORE_LOCK = 100

T = TypeVar("T")


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


@dataclass(frozen=True)
class BlobSpec:
    kind: str
    size: int
    file_ref: str = ""


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
