"""Retention: remove audit events older than the organisation keeps them, verifiably.

Before events leave a chain, a checkpoint of the last removed event (its seq and hash),
signed with the organisation's sealing key, is stored and the removal is itself recorded
as an event. `verify_chain` then starts from the latest checkpoint instead of the
genesis hash, so the remaining chain still verifies — and a forged checkpoint does not.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime, timedelta

from django.db import transaction

from sealbox.audit import sealing
from sealbox.audit import services as audit
from sealbox.audit.actions import Action
from sealbox.audit.models import ChainHead, Checkpoint, Event
from sealbox.lib import clock

logger = logging.getLogger(__name__)


def _organisations():
    # audit sits below accounts: it reaches organisations through its own foreign key
    # (resolved when called: the string reference is a class only once apps are loaded).
    return Event._meta.get_field("organisation").related_model.objects


def checkpoint_payload(chain: str, seq: int, hash_: str, created_at: datetime) -> bytes:
    """The exact bytes a checkpoint signature covers."""
    payload = {
        "chain": chain,
        "seq": seq,
        "hash": hash_,
        # UTC, as the database returns it, so the signed bytes survive the round trip.
        "created_at": created_at.astimezone(UTC).isoformat(timespec="microseconds"),
    }
    return json.dumps(payload, sort_keys=True, separators=(",", ":")).encode()


def organisation_id_of(chain: str) -> int | None:
    prefix, _, number = chain.partition(":")
    return int(number) if prefix == "org" and number.isdigit() else None


def latest_checkpoint(chain: str) -> Checkpoint | None:
    return Checkpoint.objects.filter(chain=chain).order_by("-seq").first()


def checkpoint_problem(checkpoint: Checkpoint) -> str:
    """What is wrong with the checkpoint's signature ("" when it verifies)."""
    if checkpoint_is_authentic(checkpoint):
        return ""
    organisation_id = organisation_id_of(checkpoint.chain)
    if organisation_id is not None and not sealing.is_readable(organisation_id):
        # Not a forgery as far as anyone can tell: the key that would say is locked.
        return (
            f"the checkpoint at seq {checkpoint.seq} cannot be checked: the organisation's "
            "sealing key decrypts under neither SEALBOX_SECRET_KEY nor its fallbacks"
        )
    return f"the checkpoint at seq {checkpoint.seq} has an invalid signature"


def checkpoint_is_authentic(checkpoint: Checkpoint) -> bool:
    organisation_id = organisation_id_of(checkpoint.chain)
    if organisation_id is None:
        return False
    payload = checkpoint_payload(
        checkpoint.chain, checkpoint.seq, checkpoint.hash, checkpoint.created_at
    )
    return sealing.verify(organisation_id, payload, checkpoint.signature)


def purge_expired_events(now: datetime | None = None) -> int:
    """Remove every organisation's events older than its retention; return how many.

    The system chain (events of no organisation) has no retention setting and is kept.
    """
    now = now or clock.now()
    removed = 0
    unusable: list[sealing.SealingKeyUnavailable] = []
    for organisation in _organisations().order_by("pk"):
        try:
            removed += purge_organisation(organisation, now)
        except sealing.SealingKeyUnavailable as error:
            # Nothing is removed without a signed checkpoint; the others go on.
            logger.error("audit retention skipped: %s", error)
            unusable.append(error)
    if unusable:
        raise unusable[0]
    return removed


def purge_organisation(organisation, now: datetime) -> int:
    chain = audit.chain_name(organisation.pk)
    cutoff = now - timedelta(days=organisation.audit_retention_days)
    expired = Event.objects.filter(organisation=organisation, chain=chain, created_at__lt=cutoff)
    if not expired.exists():
        return 0  # the common case: one indexed query and nothing to lock
    sealing.sealing_key(organisation)  # created (and audited) outside the purge transaction
    with transaction.atomic():
        # Serialises purges of this chain (two workers) with the appends to it.
        ChainHead.objects.select_for_update().filter(chain=chain).first()
        last = _last_expired_event(chain, cutoff)
        if last is None:
            return 0
        count = _store_checkpoint(organisation, last, now)
        Event.objects.filter(chain=chain, seq__lte=last.seq).delete()
    return count


def _last_expired_event(chain: str, cutoff: datetime) -> Event | None:
    """The last event of the chain's expired *prefix*.

    Only a prefix can go: verification starts after the checkpoint, so an old event that
    follows a newer one (a clock stepped back) stays until everything before it expires.
    """
    first_kept = (
        Event.objects.filter(chain=chain, created_at__gte=cutoff)
        .order_by("seq")
        .values_list("seq", flat=True)
        .first()
    )
    expired = Event.objects.filter(chain=chain, created_at__lt=cutoff)
    if first_kept is not None:
        expired = expired.filter(seq__lt=first_kept)
    return expired.order_by("-seq").first()


def _store_checkpoint(organisation, last: Event, now: datetime) -> int:
    """Sign and store the checkpoint, and record it, in the caller's transaction."""
    chain = last.chain
    count = Event.objects.filter(chain=chain, seq__lte=last.seq).count()
    created_at = now.astimezone(UTC)
    payload = checkpoint_payload(chain, last.seq, last.hash, created_at)
    Checkpoint.objects.create(
        chain=chain,
        seq=last.seq,
        hash=last.hash,
        created_at=created_at,
        signature=sealing.sign(organisation, payload),
    )
    audit.record(
        Action.AUDIT_RETENTION_CHECKPOINT,
        organisation=organisation,
        details={"seq": last.seq, "hash": last.hash, "removed": count},
    )
    return count
