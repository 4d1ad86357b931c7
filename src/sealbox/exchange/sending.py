"""Finalising a draft: check that every byte is stored, mark it sent once, hold the
monthly quota, and email each recipient their link.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from django.conf import settings
from django.db import transaction
from django.http import HttpRequest
from django.utils.translation import gettext as _

from sealbox.accounts.models import User
from sealbox.audit import services as audit
from sealbox.audit.actions import Action
from sealbox.crypto import CryptoError, links
from sealbox.exchange import storage
from sealbox.exchange.direct import complete_direct_uploads
from sealbox.exchange.drafts import _require_sender
from sealbox.exchange.errors import ExchangeError
from sealbox.exchange.models import (
    Delivery,
    Grant,
    Message,
    MessageState,
    Verification,
)
from sealbox.exchange.recipients import set_opening_code
from sealbox.exchange.rules import check_monthly_quota, hold_monthly_quota
from sealbox.lib import clock


@dataclass(frozen=True)
class Notification:
    grant_token: str
    link: str


def finalise(
    sender: User,
    message: Message,
    notifications: list[Notification] | None,
    *,
    request: HttpRequest | None = None,
) -> Message:
    """Make a fully uploaded message visible to its recipients; email them if asked.

    With `notifications`, the sender's device handed over each recipient's link so the
    server can email it: the link is sealed into the email task and never stored."""
    _require_sender(sender, message)
    links_by_grant = check_ready(message, notifications)
    check_monthly_quota(message.organisation)
    with transaction.atomic():
        mark_sent(message)
        hold_monthly_quota(message.organisation)
        audit.record(
            Action.MESSAGE_SENT,
            actor=sender,
            target=message,
            request=request,
            details={
                "reference": message.reference,
                "delivery": message.delivery,
                "recipients": len(links_by_grant) or message.grants.count(),
                "files": message.file_count,
                "bytes": message.attachment_bytes,
            },
        )
        deliver_links(message, links_by_grant, request=request)
    return message


OwnerEmail = Callable[[Message, Grant, str], None]


def finalise_sealed(
    message: Message,
    notifications: list[Notification],
    *,
    record: Callable[[Message], None],
    owner_email: OwnerEmail,
    request: HttpRequest | None = None,
) -> Message:
    """Finalise a draft sealed for its owner: `record` writes the caller's audit event and
    `owner_email` emails the owner their link, in the same transaction."""
    links_by_grant = check_ready(message, notifications)
    with transaction.atomic():
        mark_sent(message)
        record(message)
        deliver_links(message, links_by_grant, request=request, owner_email=owner_email)
    return message


def check_ready(message: Message, notifications: list[Notification] | None) -> dict[str, str]:
    """Check a draft can be sent (its direct uploads completed first); return the links
    to email, by grant token."""
    if message.state != MessageState.DRAFT:
        raise ExchangeError(_("This message is already sent."), status=409, code="sent")
    complete_direct_uploads(message)
    incomplete = [b for b in message.blobs.all() if not b.complete]
    if incomplete:
        raise ExchangeError(
            _("%(n)d file(s) are not completely uploaded yet.") % {"n": len(incomplete)},
            status=409,
            code="incomplete",
        )
    lost = chunks_not_stored(message)
    if lost:
        raise ExchangeError(
            _(
                "%(n)d part(s) of the uploaded files are missing from storage. "
                "Upload the message again."
            )
            % {"n": lost},
            status=409,
            code="chunk_missing",
        )
    if (notifications is not None) != (message.delivery == Delivery.EMAIL):
        raise ExchangeError(
            _("Send needs each recipient's link; Create links sends no email."),
            field="links",
        )
    if message.expires_at <= clock.now():
        raise ExchangeError(_("The expiry must be in the future."), field="expires_at")
    if notifications is None:
        return {}
    return _links_by_grant(message, notifications)


def chunks_not_stored(message: Message) -> int:
    """How many recorded chunks are not in storage, whole, where the records say: a
    message is only sent if every byte its recipients will download is there."""
    lost = 0
    for blob in message.blobs.all():
        expected_offset = 0
        for chunk in blob.chunks.order_by("index"):
            in_place = chunk.offset == expected_offset
            if not in_place or storage.stored_size(chunk.storage_name) != chunk.size:
                lost += 1
            expected_offset = chunk.offset + chunk.size
        if expected_offset != blob.size:
            lost += 1
    return lost


def _links_by_grant(message: Message, notifications: list[Notification]) -> dict[str, str]:
    grants = set(message.grants.values_list("token", flat=True))
    found: dict[str, str] = {}
    for item in notifications:
        try:
            parsed = links.parse_link(item.link, settings.SEALBOX_BASE_URL)
        except CryptoError:
            raise ExchangeError(_("A recipient's link is malformed."), field="links") from None
        if item.grant_token not in grants or parsed.grant_token != item.grant_token:
            raise ExchangeError(_("A link does not belong to this message."), field="links")
        found[item.grant_token] = item.link
    if set(found) != grants:
        raise ExchangeError(_("Every recipient needs a link to email."), field="links")
    return found


def mark_sent(message: Message) -> None:
    """Draft → sent, as one conditional UPDATE: of parallel finalises of one draft exactly
    one wins (and goes on to record and deliver); the others are refused with 409."""
    now = clock.now()
    won = Message.objects.filter(pk=message.pk, state=MessageState.DRAFT).update(
        state=MessageState.SENT, sent_at=now
    )
    if not won:
        raise ExchangeError(_("This message is already sent."), status=409, code="sent")
    message.state = MessageState.SENT
    message.sent_at = now


def deliver_links(
    message: Message,
    links_by_grant: dict[str, str],
    *,
    request: HttpRequest | None = None,
    owner_email: OwnerEmail | None = None,
) -> None:
    """Email each grant its link (sealed tasks); account grants go to their owner."""
    from sealbox.exchange import notifications as notify

    grants = {g.token: g for g in message.grants.filter(token__in=list(links_by_grant))}
    for token, link in links_by_grant.items():
        grant = grants[token]
        if grant.verification == Verification.ACCOUNT:
            (owner_email or notify.send_sender_copy)(message, grant, link)
            continue
        code = ""
        if grant.verification == Verification.OPENING_CODE:
            code = set_opening_code(grant)
            grant.save(update_fields=["opening_code_hash"])
        notify.send_recipient_notification(message, grant, link, opening_code=code, request=request)
