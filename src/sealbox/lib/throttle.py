"""The one answer to "too many attempts": one phrasing, status 429 and Retry-After,
whatever was throttled (logins, re-authentication, proofs, replies, submissions, codes).

The counting is `sealbox.ratelimit`'s; this says it. Each app raises it as its own error
class (`kind`), so the pages that catch that class catch it too.
"""

from __future__ import annotations

from typing import TypeVar

from django.utils.translation import ngettext

from sealbox.lib.errors import SealboxError

E = TypeVar("E", bound=SealboxError)


def wait_message(retry_after: int) -> str:
    """ "Too many attempts", and when to try again: seconds under a minute, else minutes
    (rounded up, so the person never comes back too early)."""
    retry_after = max(1, int(retry_after))
    if retry_after < 60:
        return ngettext(
            "Too many attempts. Wait %(n)d second and try again.",
            "Too many attempts. Wait %(n)d seconds and try again.",
            retry_after,
        ) % {"n": retry_after}
    minutes = -(-retry_after // 60)
    return ngettext(
        "Too many attempts. Try again in %(n)d minute.",
        "Too many attempts. Try again in %(n)d minutes.",
        minutes,
    ) % {"n": minutes}


def too_many_attempts(
    retry_after: int, *, kind: type[E] = SealboxError, code: str = "throttled"
) -> E:
    """The error to raise once a limit is reached: 429, `code`, Retry-After."""
    return kind(wait_message(retry_after), status=429, code=code, retry_after=retry_after)
