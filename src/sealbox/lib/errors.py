"""Errors the rules raise, shared by every app (the lower layer: it imports no app).

`SealboxError` is a request the rules refuse, with the HTTP status the API answers with;
every app's own error subclasses it, and the API's one handler turns any of them into
`{"error": code, "message": …}` (with Retry-After when it says when to try again).
`StorageUnavailable`
is the one error for a blob store that does not answer: `storage_calls` turns what the
backends raise (botocore's connection and timeout errors, S3's 5xx and throttling answers,
the local folder's OS errors) into it, around every call to the store.
"""

from __future__ import annotations

import contextlib
import logging

from django.utils.translation import gettext as _

logger = logging.getLogger("sealbox.storage")

# What the 503 answer's Retry-After says: a store coming back, or a throttling one, is
# usually back within a minute or two.
STORAGE_RETRY_AFTER_SECONDS = 60

# S3 error codes that mean "not now" rather than "no": the store is overloaded or down.
_UNAVAILABLE_CODES = frozenset(
    {
        "SlowDown",
        "ServiceUnavailable",
        "InternalError",
        "RequestTimeout",
        "Throttling",
        "ThrottlingException",
        "RequestLimitExceeded",
    }
)


class SealboxError(Exception):
    """A request the rules refuse; the message is shown to the person as is.

    `status` is the HTTP status the API answers with, `code` the machine-readable reason,
    `field` the input at fault (when there is one) and `retry_after` the seconds before
    trying again is worth it (0: no such promise). A subclass sets its own defaults as
    class attributes; a raise site overrides them by keyword.
    """

    status: int = 400
    code: str = "invalid"

    def __init__(
        self,
        message: str = "",
        *,
        status: int | None = None,
        code: str | None = None,
        field: str = "",
        retry_after: int = 0,
    ):
        super().__init__(message)
        self.message = message
        if status is not None:
            self.status = status
        if code is not None:
            self.code = code
        self.field = field
        self.retry_after = retry_after


class StorageUnavailable(SealboxError):
    """The blob store did not answer: nothing the person did is wrong, try again later."""

    def __init__(self) -> None:
        super().__init__(
            _("File storage is unavailable right now. Try again in a few minutes."),
            status=503,
            code="storage_unavailable",
            retry_after=STORAGE_RETRY_AFTER_SECONDS,
        )


def is_storage_outage(error: BaseException) -> bool:
    """Whether `error` (or what it was raised from) says the store is unreachable, slow
    or overloaded, as opposed to a missing object or a refusal (403, 404…)."""
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if _outage(current):
            return True
        # What it was raised from, or while handling (unless `from None` said otherwise).
        current = current.__cause__ or (
            None if current.__suppress_context__ else current.__context__
        )
    return False


def _outage(error: BaseException) -> bool:
    if isinstance(error, FileNotFoundError):
        return False  # an object that is not there: each caller says what that means
    if isinstance(error, OSError):
        return True  # the local folder: unmounted, full, read-only, I/O error
    try:
        from botocore import exceptions as boto
    except ImportError:  # no S3 support installed: nothing of botocore to recognise
        return False
    if isinstance(error, boto.ConnectionError | boto.HTTPClientError):
        # EndpointConnectionError, ConnectTimeoutError, ReadTimeoutError,
        # ConnectionClosedError, proxy and SSL errors.
        return True
    if isinstance(error, boto.ClientError):
        answer = error.response or {}
        status = answer.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0
        code = answer.get("Error", {}).get("Code", "")
        return status >= 500 or code in _UNAVAILABLE_CODES
    return False


class storage_calls(contextlib.ContextDecorator):  # noqa: N801 - used like a function
    """Around calls to the blob store: an outage comes out as StorageUnavailable (its
    cause kept for the logs); every other error comes out as it was."""

    def __enter__(self) -> storage_calls:
        return self

    def __exit__(self, kind, error, traceback) -> bool:
        if error is None or isinstance(error, StorageUnavailable):
            return False
        if isinstance(error, Exception) and is_storage_outage(error):
            # The one place that says so: every page, API call and task comes here.
            logger.warning("blob storage unavailable: %s: %s", type(error).__name__, error)
            raise StorageUnavailable() from error
        return False
