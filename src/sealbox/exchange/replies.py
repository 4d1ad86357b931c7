"""Replies: a recipient the sender allows to answer seals a reply for the sender, as a
draft uploaded without a session.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from django.core import signing
from django.db import transaction
from django.http import HttpRequest
from django.utils.translation import gettext as _

from sealbox.audit import services as audit
from sealbox.audit.actions import Action
from sealbox.exchange.drafts import create_sealed_draft
from sealbox.exchange.errors import ExchangeError
from sealbox.exchange.models import (
    BlobKind,
    Grant,
    Message,
    MessageKind,
    MessageState,
    ReplyMode,
    Verification,
)
from sealbox.exchange.recipients import RecipientSpec
from sealbox.exchange.rules import BlobSpec, _throttled, latest_expiry
from sealbox.exchange.sending import Notification, finalise_sealed
from sealbox.lib import clock
from sealbox.ratelimit import services as ratelimit
from sealbox.ratelimit.services import Rule

# --- Replies ---------------------------------------------------------------------------------

REPLY_SALT = "sealbox.exchange.reply"
REPLY_WINDOW = timedelta(hours=4)  # after an open, time to write and upload a reply
REPLY_MAX_OPENS = 3
REPLIES_PER_GRANT = Rule("reply-grant", 5, timedelta(hours=1))


def can_reply(grant: Grant) -> bool:
    message = grant.message
    return (
        message.kind == MessageKind.MESSAGE
        and message.reply_mode != ReplyMode.NONE
        and grant.verification != Verification.ACCOUNT
    )


def reply_authorisation(grant: Grant) -> str:
    issued = int(clock.now().timestamp())
    return signing.dumps({"g": grant.pk, "t": issued}, salt=REPLY_SALT, compress=False)


def grant_for_reply(authorisation: str) -> Grant:
    """The recipient's grant a reply authorisation (given at unlock) names, if still valid."""
    try:
        data = signing.loads(authorisation or "", salt=REPLY_SALT)
        if clock.now().timestamp() - data["t"] > REPLY_WINDOW.total_seconds():
            raise signing.BadSignature("stale")
    except (signing.BadSignature, KeyError, TypeError):
        raise ExchangeError(
            _("You can no longer reply from this page. Open the message again."),
            status=403,
            code="expired",
        ) from None
    grant = (
        Grant.objects.select_related("message", "message__sender", "message__organisation")
        .filter(pk=data.get("g"))
        .first()
    )
    if grant is None or not can_reply(grant):
        raise ExchangeError(_("Replies are not allowed."), status=403, code="no_reply")
    if grant.revoked_at or grant.message.state != MessageState.SENT:
        raise ExchangeError(
            _("This message is no longer available. Ask the sender to send it again."),
            status=410,
            code="gone",
        )
    return grant


def reply_expiry(parent: Message, now: datetime) -> datetime:
    """A reply lives as long as the message it answers did, within the plan's retention."""
    lifetime = parent.expires_at - (parent.sent_at or parent.created_at)
    return min(now + max(lifetime, timedelta(hours=1)), latest_expiry(parent.organisation, now))


def create_reply(
    authorisation: str,
    owner_grant: RecipientSpec,
    blobs: list[BlobSpec],
    *,
    direct: bool = False,
    request: HttpRequest | None = None,
) -> Message:
    """A reply draft sealed in the recipient's browser for the original sender."""
    grant = grant_for_reply(authorisation)
    parent = grant.message
    if parent.reply_mode != ReplyMode.FILES and any(b.kind == BlobKind.FILE for b in blobs):
        raise ExchangeError(
            _("The sender allows replies without files."), status=413, field="files"
        )
    with transaction.atomic():
        # Counted in the draft's transaction: a refused or invalid draft counts nothing.
        decision = ratelimit.reserve([(REPLIES_PER_GRANT, grant.token)])
        if not decision.allowed:
            raise _throttled(decision)
        return create_sealed_draft(
            parent.sender,
            kind=MessageKind.REPLY,
            subject=_("Re: %(subject)s") % {"subject": parent.subject},
            expires_at=reply_expiry(parent, clock.now()),
            max_opens=REPLY_MAX_OPENS,
            grant=owner_grant,
            blobs=blobs,
            language=parent.sender.language,
            parent=parent,
            replied_by=grant,
            direct=direct,
        )


def finalise_reply(
    message: Message, notifications: list[Notification], *, request: HttpRequest | None = None
) -> Message:
    """Send a reply draft: the original sender is emailed their link. Any other sealed
    draft (an envelope submission) is not a reply: for this call it does not exist."""
    from sealbox.exchange import notifications as notify

    if message.kind != MessageKind.REPLY:
        raise ExchangeError(_("No such reply."), status=404, code="not_found")

    def record(reply: Message) -> None:
        # On the reply's timeline and on the original message's (its thread).
        for target, details in (
            (reply, {"reference": reply.reference, "parent": reply.parent.reference}),
            (reply.parent, {"reference": reply.parent.reference, "reply": reply.reference}),
        ):
            audit.record(
                Action.REPLY_SENT,
                organisation=reply.organisation,
                actor_type="recipient",
                actor_id=str(reply.replied_by_id),
                actor_label=reply.replied_by.email if reply.replied_by else "",
                target=target,
                request=request,
                details=details | {"files": reply.file_count, "bytes": reply.attachment_bytes},
            )

    return finalise_sealed(
        message, notifications, record=record, owner_email=notify.send_reply_link, request=request
    )
