"""The audit log: record events in the caller's transaction, verify the hash chains.

Each organisation has its own chain (events with no organisation, such as a failed
login for an unknown address, go to the "system" chain). An event's hash is
SHA-256(previous hash ‖ canonical JSON of the event), so editing, removing or
reordering any stored event breaks every hash after it.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from django.db import transaction

from sealbox import clock
from sealbox.audit.models import GENESIS_HASH, ActorType, ChainHead, Event
from sealbox.http import client_ip, user_agent

SYSTEM_CHAIN = "system"


def chain_name(organisation_id: int | None) -> str:
    return f"org:{organisation_id}" if organisation_id else SYSTEM_CHAIN


def canonical(event: Event) -> str:
    """The exact bytes that are hashed: stable key order, UTC microsecond timestamps."""
    payload = {
        "chain": event.chain,
        "seq": event.seq,
        "organisation_id": event.organisation_id,
        "created_at": event.created_at.isoformat(timespec="microseconds"),
        "actor_type": event.actor_type,
        "actor_id": event.actor_id,
        "actor_label": event.actor_label,
        "action": event.action,
        "target_type": event.target_type,
        "target_id": event.target_id,
        "ip": event.ip,
        "user_agent": event.user_agent,
        "details": event.details,
    }
    return json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def compute_hash(prev_hash: str, event: Event) -> str:
    return hashlib.sha256((prev_hash + canonical(event)).encode()).hexdigest()


def record(
    action: str,
    *,
    organisation: Any = None,
    actor: Any = None,
    actor_type: str | None = None,
    actor_id: str = "",
    actor_label: str = "",
    target: Any = None,
    target_type: str = "",
    target_id: str = "",
    request: Any = None,
    ip: str | None = None,
    details: dict | None = None,
) -> Event:
    """Append one event to its organisation's chain, inside the caller's transaction.

    `actor` may be a user; `target` any model instance. Never put codes, passwords,
    link secrets or content in `details`.
    """
    if actor is not None:
        actor_type = actor_type or ActorType.USER
        actor_id = actor_id or str(actor.pk)
        actor_label = actor_label or getattr(actor, "email", "")
        if organisation is None:
            organisation = getattr(actor, "organisation", None)
    if target is not None:
        target_type = target_type or target._meta.model_name
        target_id = target_id or str(target.pk)
    if request is not None:
        ip = ip or client_ip(request)
        agent = user_agent(request)
    else:
        agent = ""
    organisation_id = organisation.pk if organisation is not None else None
    chain = chain_name(organisation_id)

    with transaction.atomic():
        ChainHead.objects.get_or_create(chain=chain)
        head = ChainHead.objects.select_for_update().get(chain=chain)
        event = Event(
            chain=chain,
            seq=head.seq + 1,
            organisation_id=organisation_id,
            created_at=clock.now(),
            actor_type=actor_type or ActorType.SYSTEM,
            actor_id=actor_id,
            actor_label=actor_label,
            action=action,
            target_type=target_type,
            target_id=target_id,
            ip=ip,
            user_agent=agent,
            details=details or {},
            prev_hash=head.last_hash,
        )
        event.hash = compute_hash(head.last_hash, event)
        event.save()
        head.seq = event.seq
        head.last_hash = event.hash
        head.save(update_fields=["seq", "last_hash"])
    return event


@dataclass(frozen=True)
class ChainReport:
    chain: str
    checked: int
    broken_event: Event | None = None
    reason: str = ""

    @property
    def intact(self) -> bool:
        return not self.reason


def verify_chain(chain: str) -> ChainReport:
    """Walk one chain from its first event; report the first event that does not fit.

    When retention has removed the oldest events, the walk starts from the latest
    checkpoint (its seq and hash), once the checkpoint's signature is verified.
    """
    from sealbox.audit import retention  # retention signs with keys that record events

    expected_seq = 1
    prev_hash = GENESIS_HASH
    checkpoint = retention.latest_checkpoint(chain)
    if checkpoint is not None:
        if not retention.checkpoint_is_authentic(checkpoint):
            reason = f"the checkpoint at seq {checkpoint.seq} has an invalid signature"
            return ChainReport(chain, 0, None, reason)
        # Retention removes everything up to a checkpoint; anything left there was put back.
        stale = Event.objects.filter(chain=chain, seq__lte=checkpoint.seq).order_by("seq").first()
        if stale is not None:
            reason = f"found before the checkpoint at seq {checkpoint.seq}"
            return ChainReport(chain, 0, stale, reason)
        expected_seq = checkpoint.seq + 1
        prev_hash = checkpoint.hash
    checked = 0
    last: Event | None = None
    events = (
        Event.objects.filter(chain=chain, seq__gte=expected_seq)
        .order_by("seq")
        .iterator(chunk_size=2000)
    )
    for event in events:
        if event.seq != expected_seq:
            return ChainReport(chain, checked, event, f"sequence gap: expected {expected_seq}")
        if event.prev_hash != prev_hash:
            return ChainReport(chain, checked, event, "does not link to the event before it")
        if compute_hash(prev_hash, event) != event.hash:
            return ChainReport(chain, checked, event, "content does not match its hash")
        prev_hash = event.hash
        expected_seq += 1
        checked += 1
        last = event
    head = ChainHead.objects.filter(chain=chain).first()
    if head is not None and (head.seq != expected_seq - 1 or head.last_hash != prev_hash):
        return ChainReport(chain, checked, last, "events are missing after this one")
    return ChainReport(chain, checked)


def chains(organisation: Any = None) -> Iterator[str]:
    if organisation is not None:
        yield chain_name(organisation.pk)
        return
    yield from ChainHead.objects.order_by("chain").values_list("chain", flat=True)


def describe(report: ChainReport) -> str:
    event = report.broken_event
    where = f"event {event.pk} (seq {event.seq}, {event.action})" if event else "start"
    return f"chain {report.chain}: broken at {where}: {report.reason}"
