"""Opening a message: a grant's state, the recipient's proof (counted under the failure
limits), the open counted atomically, the downloads it authorises, and the sender
unlocking a locked grant.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.core import signing
from django.db import transaction
from django.db.models import F
from django.http import HttpRequest
from django.utils.translation import gettext as _

from sealbox.accounts.models import User
from sealbox.audit import services as audit
from sealbox.audit.actions import Action
from sealbox.exchange import storage
from sealbox.exchange.errors import ExchangeError
from sealbox.exchange.models import (
    Blob,
    BlobKind,
    Grant,
    Message,
    MessageKind,
    MessageState,
    Verification,
)
from sealbox.exchange.recipients import normalise_opening_code, proof_is_right
from sealbox.exchange.replies import can_reply, reply_authorisation
from sealbox.exchange.rules import check_within_limits, count_proof_failure, enforce_limits
from sealbox.lib import clock
from sealbox.lib.http import client_ip
from sealbox.ratelimit import services as ratelimit
from sealbox.ratelimit.services import Rule

logger = logging.getLogger(__name__)


# A presigned download is used at once (the download authorisation lasts an hour and can
# ask for another).
DIRECT_DOWNLOAD_LIFETIME = timedelta(minutes=5)

DOWNLOAD_WINDOW = timedelta(hours=1)
UNLOCK_FAILURES_PER_GRANT = Rule("unlock-grant", 10, timedelta(hours=1))
UNLOCK_FAILURES_PER_IP = Rule("unlock-ip", 20, timedelta(hours=1))


# --- Opening ----------------------------------------------------------------------------


class GrantState:
    OPEN = "open"
    EXPIRED = "expired"
    DELETED = "deleted"
    USED_UP = "used_up"
    NOT_SENT = "not_sent"
    LOCKED = "locked"  # open, but too many wrong proofs: the sender can unlock it


def grant_state(grant: Grant, now: datetime | None = None) -> str:
    now = now or clock.now()
    if grant.message.state == MessageState.DRAFT:
        return GrantState.NOT_SENT
    if grant.revoked_at or grant.message.state == MessageState.DELETED:
        return GrantState.DELETED
    if grant.expires_at <= now:
        return GrantState.EXPIRED
    if grant.opens >= grant.max_opens:
        return GrantState.USED_UP
    if grant.server_secret is None:
        return GrantState.EXPIRED
    if grant.locked_at is not None:
        return GrantState.LOCKED
    return GrantState.OPEN


def find_grant(token: str) -> Grant:
    grant = (
        Grant.objects.select_related("message", "message__sender", "message__organisation")
        .filter(token=token)
        .first()
    )
    if grant is None or grant.message.state == MessageState.DRAFT:
        raise ExchangeError(
            _("This link is not valid. Check that you copied all of it."),
            status=404,
            code="not_found",
        )
    return grant


def locked_error() -> ExchangeError:
    return ExchangeError(
        _("Too many wrong attempts: this link is locked. Ask the sender to unlock it."),
        status=403,
        code="locked",
    )


def ensure_open(grant: Grant) -> None:
    state = grant_state(grant)
    if state == GrantState.LOCKED:
        raise locked_error()
    if state != GrantState.OPEN:
        raise ExchangeError(
            _("This message is no longer available. Ask the sender to send it again."),
            status=410,
            code="gone",
        )


def _unlock_limits(grant: Grant, ip: str) -> list[tuple[Rule, str]]:
    return [(UNLOCK_FAILURES_PER_GRANT, grant.token), (UNLOCK_FAILURES_PER_IP, ip)]


def _record_recipient(
    grant: Grant, action: str, request: HttpRequest | None, details: dict | None = None
) -> None:
    own = grant.user_id is not None  # an account grant: its owner is a user
    audit.record(
        action,
        organisation=grant.message.organisation,
        actor_type="user" if own else "recipient",
        actor_id=str(grant.user_id if own else grant.pk),
        actor_label=grant.email,
        target=grant.message,
        request=request,
        details={"reference": grant.message.reference, **(details or {})},
    )


def sealed_for_someone_else(grant: Grant, user) -> bool:
    """A submission or reply seen by a logged-in user who is not its owner (even an
    administrator): for them it does not exist."""
    return (
        grant.message.kind != MessageKind.MESSAGE
        and user is not None
        and user.is_authenticated
        and user.pk != grant.user_id
    )


OPENED_ACTIONS = {
    MessageKind.MESSAGE: Action.MESSAGE_OPENED,
    MessageKind.ENVELOPE: Action.SUBMISSION_OPENED,
    MessageKind.REPLY: Action.REPLY_OPENED,
}


def check_proof(
    grant: Grant,
    *,
    code: str = "",
    password_verifier: bytes | None = None,
    request: HttpRequest | None = None,
) -> None:
    """Check the proof the grant's verification method asks for; failures count."""
    from sealbox.exchange import codes

    ip = (client_ip(request) if request else None) or "unknown"
    method = grant.verification
    if method == Verification.ACCOUNT:
        # The owner's session is the proof: nothing to guess, nothing to count.
        enforce_limits(_unlock_limits(grant, ip))
        user = getattr(request, "user", None)
        if sealed_for_someone_else(grant, user):
            raise ExchangeError(_("No such message."), status=404, code="not_found")
        if user is None or not user.is_authenticated or user.pk != grant.user_id:
            raise ExchangeError(
                _("Log in as the sender to open this copy."), status=403, code="login_required"
            )
        return

    def wrong() -> tuple[str, str] | None:
        """(reason for the audit log, message for the person), or None if right."""
        if method == Verification.OPENING_CODE:
            given = normalise_opening_code(code or "")
            if not code or not proof_is_right(
                Grant, grant.pk, "opening_code_hash", grant.token, "opening", given
            ):
                return "wrong opening code", _("This opening code is not correct.")
        elif method == Verification.PASSWORD:
            if not password_verifier or not proof_is_right(
                Grant,
                grant.pk,
                "password_verifier_hash",
                grant.token,
                "password",
                password_verifier,
            ):
                return "wrong password", _("This password is not correct.")
        else:
            ok, error = codes.check(grant, code or "")
            if not ok:
                return "wrong code", error
        return None

    locked: list[int] = []

    def record(failure: tuple[str, str]) -> None:
        _record_recipient(
            grant,
            Action.GRANT_VERIFICATION_FAILED,
            request,
            details={"method": method, "reason": failure[0]},
        )
        failures = count_proof_failure(Grant, grant.pk)
        if failures is not None:
            locked.append(failures)
            _record_recipient(grant, Action.GRANT_LOCKED, request, details={"failures": failures})

    failure = check_within_limits(_unlock_limits(grant, ip), wrong, record)
    if locked:
        raise locked_error()
    if failure is not None:
        raise ExchangeError(failure[1], status=403, code="verification_failed")


@dataclass(frozen=True)
class Unlocked:
    grant: Grant
    server_secret: bytes
    wrapped_key: bytes
    opens_left: int
    downloads: list[tuple[Blob, str]]  # blob, download authorisation
    reply: str = ""  # authorisation to reply, when the sender allows replies


def unlock(
    token: str,
    *,
    code: str = "",
    password_verifier: bytes | None = None,
    request: HttpRequest | None = None,
) -> Unlocked:
    """Check the proof, count one open atomically, release the grant's server half."""
    grant = find_grant(token)
    ensure_open(grant)
    check_proof(grant, code=code, password_verifier=password_verifier, request=request)
    now = clock.now()
    with transaction.atomic():
        # One conditional UPDATE: concurrent unlocks can never exceed the maximum. The
        # right proof ends the run of consecutive failures.
        counted = Grant.objects.filter(
            pk=grant.pk,
            opens__lt=F("max_opens"),
            expires_at__gt=now,
            revoked_at__isnull=True,
            server_secret__isnull=False,
            locked_at__isnull=True,
        ).update(
            opens=F("opens") + 1,
            last_opened_at=now,
            downloads_until=now + DOWNLOAD_WINDOW,
            failed_attempts=0,
        )
        if not counted:
            if Grant.objects.filter(pk=grant.pk, locked_at__isnull=False).exists():
                raise locked_error()
            raise ExchangeError(
                _("This message is no longer available. Ask the sender to send it again."),
                status=410,
                code="gone",
            )
        # The grant's row alone: without `of`, PostgreSQL also locks every joined row
        # (the message, its sender, the organisation), which serialised all the opens of
        # an organisation and deadlocked with audit appends (an event's foreign key to
        # the organisation is checked at commit, while the chain head is held).
        grant = (
            Grant.objects.select_for_update(of=("self",))
            .select_related("message", "message__sender", "message__organisation")
            .get(pk=grant.pk)
        )
        server_secret = bytes(grant.server_secret)
        wrapped_key = bytes(grant.wrapped_key)
        first_open = grant.first_opened_at is None
        if first_open:
            grant.first_opened_at = now
            grant.save(update_fields=["first_opened_at"])
        if grant.opens >= grant.max_opens:
            _wipe(grant, now)  # the last open: the server forgets its half at once
        ratelimit.clear(UNLOCK_FAILURES_PER_GRANT, grant.token)
        _record_recipient(
            grant,
            OPENED_ACTIONS[grant.message.kind],
            request,
            details={"open": grant.opens, "max_opens": grant.max_opens},
        )
        if grant.message.notify_on_open and grant.message.kind == MessageKind.MESSAGE:
            from sealbox.exchange import notifications as notify

            notify.send_open_notification(grant, now)
    blobs = list(grant.message.blobs.order_by("kind", "id"))
    downloads = [(blob, download_authorisation(grant, blob)) for blob in blobs]
    return Unlocked(
        grant,
        server_secret,
        wrapped_key,
        grant.max_opens - grant.opens,
        downloads,
        reply_authorisation(grant) if can_reply(grant) else "",
    )


def _wipe(grant: Grant, now: datetime) -> bool:
    """Forget the server's half of the grant. One conditional update: of parallel wipes
    (two purges, a purge and the last open) exactly one returns True, and only that one
    records what happened."""
    wiped = Grant.objects.filter(pk=grant.pk, wiped_at__isnull=True).update(
        server_secret=None, wrapped_key=None, wiped_at=now
    )
    grant.server_secret = None
    grant.wrapped_key = None
    grant.wiped_at = grant.wiped_at or now
    return bool(wiped)


DOWNLOAD_SALT = "sealbox.exchange.download"


def download_authorisation(grant: Grant, blob: Blob) -> str:
    return signing.dumps(
        {"g": grant.pk, "b": str(blob.public_id)}, salt=DOWNLOAD_SALT, compress=False
    )


def authorised_download(authorisation: str) -> tuple[Grant, Blob]:
    """The grant and blob an authorisation names, if it and the grant are still valid."""
    try:
        data = signing.loads(
            authorisation, salt=DOWNLOAD_SALT, max_age=DOWNLOAD_WINDOW.total_seconds()
        )
    except signing.BadSignature:
        raise ExchangeError(
            _("This download link has expired. Open the message again."), status=403, code="expired"
        ) from None
    grant = Grant.objects.select_related("message").filter(pk=data["g"]).first()
    now = clock.now()
    if (
        grant is None
        or grant.revoked_at
        or grant.message.state != MessageState.SENT
        or grant.expires_at <= now
        or not grant.downloads_until
        or grant.downloads_until <= now
        or grant.message.blobs_deleted_at
    ):
        raise ExchangeError(
            _("This message is no longer available. Ask the sender to send it again."),
            status=410,
            code="gone",
        )
    blob = grant.message.blobs.filter(public_id=data["b"]).first()
    if blob is None:
        raise ExchangeError(_("No such file."), status=404, code="not_found")
    return grant, blob


def record_download(grant: Grant, blob: Blob, request: HttpRequest | None) -> None:
    if blob.kind == BlobKind.FILE:
        _record_recipient(
            grant,
            Action.FILE_DOWNLOADED,
            request,
            details={"file": blob.file_ref, "bytes": blob.size},
        )


def blob_chunk_names(blob: Blob) -> list[str]:
    return list(blob.chunks.order_by("index").values_list("storage_name", flat=True))


def direct_download_url(blob: Blob) -> str:
    """A short-lived presigned GET of the blob when the store serves it itself (direct
    mode, the blob one object), else "" (it streams through the app server). The object
    is looked at first: a store that does not answer is a 503, and nothing is recorded."""
    if not storage.direct_mode():
        return ""
    names = blob_chunk_names(blob)
    if len(names) != 1:
        return ""
    if storage.stored_size(names[0]) is None:
        logger.error("the stored chunk %s is missing from storage", names[0])
        raise storage.StorageUnavailable()
    return storage.download_url(names[0], int(DIRECT_DOWNLOAD_LIFETIME.total_seconds()))


def unlock_grant(
    user: User, message: Message, grant_id: int, *, request: HttpRequest | None = None
) -> Grant:
    """The sender (or an administrator) unlocks a recipient's link that wrong proofs locked.

    The recipient can then ask for a new code at once. `message` comes from
    `message_for_sender`, which says who may.
    """
    grant = message.grants.filter(pk=grant_id).first()
    if grant is None:
        raise ExchangeError(_("No such recipient."), status=404, code="not_found")
    with transaction.atomic():
        unlocked = Grant.objects.filter(pk=grant.pk, locked_at__isnull=False).update(
            locked_at=None, failed_attempts=0
        )
        if unlocked:
            ratelimit.clear(UNLOCK_FAILURES_PER_GRANT, grant.token)
            audit.record(
                Action.GRANT_UNLOCKED,
                actor=user,
                target=message,
                request=request,
                organisation=message.organisation,
                details={"reference": message.reference, "recipient": grant.email},
            )
    grant.refresh_from_db()
    return grant
