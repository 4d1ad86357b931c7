"""Sliding-window rate limits shared by login, second factors and public links.

Every limit is *reserved* before the work it guards (checking a password, sending an
SMS, checking a proof): `reserve` takes the limit's lock, counts the hits inside the
window and records the new one in one step, so parallel requests queue for the last slot
instead of all reading "one left" and all going ahead. A reservation that turns out not
to count (a right password, an SMS that was never sent) is given back with `release`.
Requests that crash between the two keep their slot: a limit errs on the side of
refusing.

The lock is one row per scope and key (`KeyLock`) that the reservation UPDATEs before
it reads anything. PostgreSQL makes the next writer of that row wait until the first
commits; SQLite has a single writer, and the UPDATE takes its write lock. So one
mechanism holds across threads, processes and app servers on both databases, without
relying on SELECT ... FOR UPDATE (which SQLite ignores).

Counters kept on the row they limit (the tries of one code, of one login attempt) use
`take`/`give_back`: one conditional UPDATE, the same guarantee without a lock row.

Deadlocks: a transaction takes these locks before it records audit events (the audit
chain has its own lock), and `reserve` takes several in one fixed order.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db import transaction
from django.db.models import F, QuerySet

from sealbox.lib import clock
from sealbox.ratelimit.models import Hit, KeyLock


@dataclass(frozen=True)
class Rule:
    scope: str
    limit: int
    window: timedelta


@dataclass(frozen=True)
class Decision:
    """Whether an attempt may go ahead; from `reserve`, the slots it holds."""

    allowed: bool
    retry_after: int = 0  # seconds
    refused_by: Rule | None = None  # the first rule (in the order given) that refused
    reserved: tuple[int, ...] = ()

    def release(self) -> None:
        """Give the reserved slots back: the attempt turned out not to count."""
        if self.reserved:
            Hit.objects.filter(pk__in=self.reserved).delete()


Wait = Callable[[Rule, list[datetime]], int]


def _digest(key: str) -> str:
    # Keys can be email addresses or IPs: store a digest so the table is not a list of them.
    return hashlib.sha256(key.strip().lower().encode()).hexdigest()


def lock(scope: str, key: str) -> None:
    """Hold (scope, key) until the current transaction ends; other holders wait.

    For counts that are not hits (a plan's messages this month): take the lock, count
    the real rows, then act, all in one transaction.
    """
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("ratelimit.lock needs a transaction: it lasts until the commit")
    _lock(scope, _digest(key))


def _lock(scope: str, digest: str) -> None:
    now = clock.now()
    rows = KeyLock.objects.filter(scope=scope, key=digest)
    # The UPDATE is the lock. A missing row is created first (a concurrent creator
    # makes this INSERT wait, then do nothing); a purge may delete it in between,
    # hence the loop.
    for _attempt in range(5):
        if rows.update(used_at=now):
            return
        KeyLock.objects.bulk_create(
            [KeyLock(scope=scope, key=digest, used_at=now)], ignore_conflicts=True
        )
    raise RuntimeError(f"could not take the rate-limit lock {scope}")


def _recent(rule: Rule, digest: str) -> list[datetime]:
    since = clock.now() - rule.window
    return list(
        Hit.objects.filter(scope=rule.scope, key=digest, created_at__gt=since)
        .order_by("created_at")
        .values_list("created_at", flat=True)
    )


def _wait_for(rule: Rule, times: list[datetime]) -> int:
    """Seconds until the window has a free slot (0: free now)."""
    if len(times) < rule.limit:
        return 0
    # The window frees a slot when the oldest hit that keeps it full slides out.
    blocking = times[len(times) - rule.limit]
    wait = (blocking + rule.window - clock.now()).total_seconds()
    return max(1, int(wait + 0.999))


def _decide(checks: list[tuple[Rule, str]], wait: Wait | None) -> Decision:
    retry_after = 0
    refused_by = None
    for rule, digest in checks:
        times = _recent(rule, digest)
        seconds = _wait_for(rule, times)
        if not seconds and wait is not None:
            seconds = wait(rule, times)
        if seconds:
            retry_after = max(retry_after, seconds)
            refused_by = refused_by or rule
    return Decision(refused_by is None, retry_after, refused_by)


def reserve(checks: Sequence[tuple[Rule, str]], *, wait: Wait | None = None) -> Decision:
    """Reserve one slot under every (rule, key), or none if any of them is full.

    `wait(rule, times)` may add a delay of its own from the hits in the window (the
    growing delays between login failures); a delay refuses like a full window. Called
    inside a transaction, the slots are part of it (and the locks last until it ends);
    otherwise they are committed before this returns, so the work that follows is
    already counted.
    """
    digested = [(rule, _digest(key)) for rule, key in checks]
    with transaction.atomic():
        for scope, digest in sorted({(rule.scope, digest) for rule, digest in digested}):
            _lock(scope, digest)
        decision = _decide(digested, wait)
        if not decision.allowed:
            return decision
        now = clock.now()
        hits = [Hit.objects.create(scope=r.scope, key=d, created_at=now) for r, d in digested]
    return Decision(True, reserved=tuple(h.pk for h in hits))


def check(rule: Rule, key: str) -> Decision:
    """Allowed while fewer than `limit` hits fall inside the window.

    Only to show or pre-check a limit: acting on it is a race, `reserve` is the check
    that counts.
    """
    return _decide([(rule, _digest(key))], None)


def hit(rule: Rule, key: str) -> None:
    """Count one hit without checking the limit (tests, and records of what happened)."""
    Hit.objects.create(scope=rule.scope, key=_digest(key), created_at=clock.now())


def recent(rule: Rule, key: str) -> list:
    """Times of the hits still inside the window, oldest first."""
    return _recent(rule, _digest(key))


def count(rule: Rule, key: str) -> int:
    since = clock.now() - rule.window
    return Hit.objects.filter(scope=rule.scope, key=_digest(key), created_at__gt=since).count()


def clear(rule: Rule, key: str) -> None:
    Hit.objects.filter(scope=rule.scope, key=_digest(key)).delete()


def take(rows: QuerySet, field: str, limit: int) -> bool:
    """Use one of the `limit` tries counted in `field` of `rows` (one row, usually).

    One conditional UPDATE: of parallel callers, exactly `limit - field` get True.
    """
    return bool(rows.filter(**{f"{field}__lt": limit}).update(**{field: F(field) + 1}))


def give_back(rows: QuerySet, field: str) -> None:
    """Return a try taken with `take` that turned out not to count."""
    rows.filter(**{f"{field}__gt": 0}).update(**{field: F(field) - 1})


def purge_older_than(age: timedelta) -> int:
    cutoff = clock.now() - age
    deleted, _ = Hit.objects.filter(created_at__lt=cutoff).delete()
    KeyLock.objects.filter(used_at__lt=cutoff).delete()
    return deleted
