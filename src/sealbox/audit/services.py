"""The audit log: record events in the caller's transaction, verify the hash chains.

Each organisation has its own chain (events with no organisation, such as a failed
login for an unknown address, go to the "system" chain). An event's hash is
SHA-256(previous hash ‖ canonical JSON of the event), so editing, removing or
reordering any stored event breaks every hash after it.
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from django.db import transaction

from sealbox.audit.actions import Action
from sealbox.audit.models import GENESIS_HASH, ActorType, ChainHead, Event
from sealbox.lib import clock
from sealbox.lib.http import client_ip, normalise_ip, user_agent

SYSTEM_CHAIN = "system"
_STORED_IP = object()
# A report names this many breaks and counts the rest: a chain damaged everywhere must not
# make a report the size of the chain.
MAX_REPORTED_BREAKS = 100


def chain_name(organisation_id: int | None) -> str:
    return f"org:{organisation_id}" if organisation_id else SYSTEM_CHAIN


def canonical_ip(value: str | None) -> str | None:
    """The spelling of an event's address that is hashed.

    The database may hand back another spelling than the one that was stored (PostgreSQL's
    inet writes ::102:304 as ::1.2.3.4): hashing the address, not the spelling, keeps a
    verification from reporting a break where nothing changed. Anything that is not an
    address is hashed as it is, so no two different stored values hash alike.
    """
    if not value or ":" not in value:
        return value  # IPv4 or nothing: already one spelling
    return normalise_ip(value) or value


def legacy_ip_spellings(value: str | None) -> list[str]:
    """How events recorded before addresses were normalised spelled an IPv4-mapped address.

    Those events hashed Python's spelling (::ffff:7f00:1 on 3.11, ::ffff:127.0.0.1 on 3.13)
    while the row kept Django's; verification accepts either for the same address, so old
    events do not show a break that no one made.
    """
    if not value or ":" not in value:
        return []
    try:
        address = ipaddress.IPv6Address(value)
    except ValueError:
        return []
    mapped = address.ipv4_mapped
    if mapped is None:
        return []
    high, low = int(mapped) >> 16, int(mapped) & 0xFFFF
    return [f"::ffff:{high:x}:{low:x}", f"::ffff:{mapped}"]


def canonical(event: Any, *, ip: Any = _STORED_IP) -> str:
    """The exact bytes that are hashed: stable key order, UTC microsecond timestamps.

    `ip` replaces the event's address spelling (to check an event of an older release).
    """
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
        "ip": canonical_ip(event.ip) if ip is _STORED_IP else ip,
        "user_agent": event.user_agent,
        "details": event.details,
    }
    return json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def compute_hash(prev_hash: str, event: Any) -> str:
    return hashlib.sha256((prev_hash + canonical(event)).encode()).hexdigest()


def matching_canonical(prev_hash: str, event: Any, expected: str) -> str | None:
    """The canonical text of `event` whose hash after `prev_hash` is `expected`, or None."""
    text = canonical(event)
    if hashlib.sha256((prev_hash + text).encode()).hexdigest() == expected:
        return text
    for spelling in legacy_ip_spellings(event.ip):
        text = canonical(event, ip=spelling)
        if hashlib.sha256((prev_hash + text).encode()).hexdigest() == expected:
            return text
    return None


def hash_matches(prev_hash: str, event: Any, expected: str) -> bool:
    return matching_canonical(prev_hash, event, expected) is not None


def record(
    action: Action | str,
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
    action = str(action)  # an `Action` member is stored as its value
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
    # Stored as it is hashed: one spelling per address (see canonical_ip).
    ip = normalise_ip(ip) if ip else None
    organisation_id = organisation.pk if organisation is not None else None
    chain = chain_name(organisation_id)

    event = Event(
        chain=chain,
        organisation_id=organisation_id,
        actor_type=actor_type or ActorType.SYSTEM,
        actor_id=actor_id,
        actor_label=actor_label,
        action=action,
        target_type=target_type,
        target_id=target_id,
        ip=ip,
        user_agent=agent,
        details=details or {},
    )
    with transaction.atomic():
        # The chain's head is locked until the caller's transaction ends (on SQLite the
        # whole database is, from BEGIN IMMEDIATE): one query to lock it, and the head is
        # only created the first time its chain is used.
        head = ChainHead.objects.select_for_update().filter(chain=chain).first()
        if head is None:
            ChainHead.objects.get_or_create(chain=chain)
            head = ChainHead.objects.select_for_update().get(chain=chain)
        # Taken under the lock, so the chain's times never go backwards.
        event.created_at = clock.now()
        event.seq = head.seq + 1
        event.prev_hash = head.last_hash
        event.hash = compute_hash(head.last_hash, event)
        event.save()
        head.seq = event.seq
        head.last_hash = event.hash
        head.save(update_fields=["seq", "last_hash"])
    return event


@dataclass(frozen=True)
class Break:
    """One place where a chain does not fit, and how far it verifies again after it."""

    event: Event | None
    reason: str
    # Events after this one that verify, up to the next break (or the end of the chain).
    verified_after: int = 0


@dataclass(frozen=True)
class ChainReport:
    chain: str
    checked: int  # events walked
    broken_event: Event | None = None  # the first break's event
    reason: str = ""  # the first break's reason
    breaks: tuple[Break, ...] = field(default=())
    verified: int = 0  # events that fit their place
    more_breaks: int = 0  # breaks beyond MAX_REPORTED_BREAKS, counted, not named

    @property
    def break_count(self) -> int:
        return len(self.breaks) + self.more_breaks

    @property
    def intact(self) -> bool:
        return not self.reason


def verify_chain(chain: str) -> ChainReport:
    """Walk one chain from its first event and report every event that does not fit.

    After a break the walk goes on from the event that broke (its stored hash becomes the
    anchor), so an event edited or spelled differently cannot hide a later, real break:
    each break says how many events after it verify. When retention has removed the
    oldest events, the walk starts from the latest checkpoint (its seq and hash), once
    the checkpoint's signature is verified.
    """
    # Imported here: retention imports this module (its checkpoints are recorded events).
    from sealbox.audit import retention

    breaks: list[list] = []  # [event, reason, verified_after]
    more_breaks = 0

    def note(event: Event | None, reason: str) -> None:
        nonlocal more_breaks
        if len(breaks) < MAX_REPORTED_BREAKS:
            breaks.append([event, reason, 0])
        else:
            more_breaks += 1

    expected_seq = 1
    prev_hash = GENESIS_HASH
    checkpoint = retention.latest_checkpoint(chain)
    if checkpoint is not None:
        problem = retention.checkpoint_problem(checkpoint)
        if problem:
            note(None, problem)
        # Retention removes everything up to a checkpoint; anything left there was put back.
        stale = Event.objects.filter(chain=chain, seq__lte=checkpoint.seq).order_by("seq")
        first_stale = stale.first()
        if first_stale is not None:
            count = stale.count()
            reason = f"found before the checkpoint at seq {checkpoint.seq}"
            if count > 1:
                reason += f" (with {count - 1} more)"
            note(first_stale, reason)
        expected_seq = checkpoint.seq + 1
        prev_hash = checkpoint.hash
    checked = verified = 0
    last: Event | None = None
    events = (
        Event.objects.filter(chain=chain, seq__gte=expected_seq)
        .order_by("seq")
        .iterator(chunk_size=2000)
    )
    for event in events:
        problems = []
        if event.seq != expected_seq:
            problems.append(f"sequence gap: expected {expected_seq}")
        elif event.prev_hash != prev_hash:
            problems.append("does not link to the event before it")
        if not hash_matches(event.prev_hash, event, event.hash):
            problems.append("content does not match its hash")
        if problems:
            note(event, "; ".join(problems))
        else:
            verified += 1
            if breaks and not more_breaks:
                breaks[-1][2] += 1
        prev_hash = event.hash
        expected_seq = event.seq + 1
        checked += 1
        last = event
    head = ChainHead.objects.filter(chain=chain).first()
    if head is not None and (head.seq != expected_seq - 1 or head.last_hash != prev_hash):
        note(last, "events are missing after this one")
    if not breaks:
        return ChainReport(chain, checked, verified=verified)
    found = tuple(Break(*item) for item in breaks)
    return ChainReport(
        chain, checked, found[0].event, found[0].reason, found, verified, more_breaks
    )


def chains(organisation: Any = None) -> Iterator[str]:
    if organisation is not None:
        yield chain_name(organisation.pk)
        return
    yield from ChainHead.objects.order_by("chain").values_list("chain", flat=True)


def describe(report: ChainReport) -> str:
    """One line per break, each saying how many later events verify from the next one."""
    if report.intact:
        return f"chain {report.chain}: intact, {report.checked} events checked"
    lines = []
    for found in report.breaks:
        event = found.event
        where = f"event {event.pk} (seq {event.seq}, {event.action})" if event else "start"
        after = (
            "1 later event verifies"
            if found.verified_after == 1
            else f"{found.verified_after} later events verify"
        )
        lines.append(
            f"chain {report.chain}: broken at {where}: {found.reason} ({after} from the next one)"
        )
    if report.more_breaks:
        lines.append(f"chain {report.chain}: and {report.more_breaks} more breaks")
    if report.break_count > 1:
        lines.append(
            f"chain {report.chain}: {report.break_count} breaks; "
            f"{report.verified} of {report.checked} events verify"
        )
    return "\n".join(lines)
