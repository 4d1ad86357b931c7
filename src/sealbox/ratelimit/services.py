"""Sliding-window rate limits shared by login, second factors and public links."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import timedelta

from sealbox import clock
from sealbox.ratelimit.models import Hit


@dataclass(frozen=True)
class Rule:
    scope: str
    limit: int
    window: timedelta


@dataclass(frozen=True)
class Decision:
    allowed: bool
    retry_after: int = 0  # seconds

    @property
    def retry_after_minutes(self) -> int:
        return max(1, -(-self.retry_after // 60))


def _digest(key: str) -> str:
    # Keys can be email addresses or IPs: store a digest so the table is not a list of them.
    return hashlib.sha256(key.strip().lower().encode()).hexdigest()


def hit(rule: Rule, key: str) -> None:
    Hit.objects.create(scope=rule.scope, key=_digest(key), created_at=clock.now())


def recent(rule: Rule, key: str) -> list:
    """Times of the hits still inside the window, oldest first."""
    since = clock.now() - rule.window
    return list(
        Hit.objects.filter(scope=rule.scope, key=_digest(key), created_at__gt=since)
        .order_by("created_at")
        .values_list("created_at", flat=True)
    )


def count(rule: Rule, key: str) -> int:
    since = clock.now() - rule.window
    return Hit.objects.filter(scope=rule.scope, key=_digest(key), created_at__gt=since).count()


def check(rule: Rule, key: str) -> Decision:
    """Allowed while fewer than `limit` hits fall inside the window."""
    times = recent(rule, key)
    if len(times) < rule.limit:
        return Decision(True)
    # The window frees a slot when the oldest hit that keeps it full slides out.
    blocking = times[len(times) - rule.limit]
    wait = (blocking + rule.window - clock.now()).total_seconds()
    return Decision(False, max(1, int(wait + 0.999)))


def clear(rule: Rule, key: str) -> None:
    Hit.objects.filter(scope=rule.scope, key=_digest(key)).delete()


def purge_older_than(age: timedelta) -> int:
    deleted, _ = Hit.objects.filter(created_at__lt=clock.now() - age).delete()
    return deleted
