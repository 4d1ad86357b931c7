"""The one source of "now" for rules with a lifetime (codes, sessions, rate limits).

Tests move this clock instead of sleeping, so every time-based rule is checked exactly.
"""

from datetime import datetime

from django.utils import timezone


def now() -> datetime:
    return timezone.now()
