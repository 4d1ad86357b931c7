"""The one source of "now" for rules with a lifetime (codes, sessions, rate limits).

Tests move this clock instead of sleeping, so every time-based rule is checked exactly.
"""

from datetime import UTC, datetime

from django.utils import timezone


def now() -> datetime:
    return timezone.now()


def aware(moment: datetime) -> datetime:
    """A time given without a zone (an API client's "2026-05-01T12:00:00") is read as UTC:
    compared with `now()` as it is, it would fail."""
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
