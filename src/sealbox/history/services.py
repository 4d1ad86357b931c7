"""The History: one row per recipient of every message, with filters, search, keyset
pagination, per-user statistics and each message's timeline."""

from __future__ import annotations

import json
import zoneinfo
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from django.db.models import Count, F, Max, Q, QuerySet, Sum
from django.db.models.functions import Coalesce
from django.utils.translation import gettext_lazy as _

from sealbox.accounts.models import User
from sealbox.audit import actions
from sealbox.audit.actions import Action
from sealbox.audit.models import Event
from sealbox.crypto._b64 import b64url_decode, b64url_encode
from sealbox.exchange.models import (
    BlobKind,
    Grant,
    Message,
    MessageKind,
    MessageState,
    Verification,
)
from sealbox.lib import clock

PAGE_SIZE = 50


class Status:
    OPENED = "opened"
    NOT_OPENED = "not_opened"
    # The email with the recipient's link (or its opening code) failed for good: the
    # recipient cannot open it, and the sender should know.
    NOT_DELIVERED = "not_delivered"
    EXPIRED = "expired"
    DELETED = "deleted"

    LABELS = {
        OPENED: _("Opened"),
        NOT_OPENED: _("Not opened"),
        NOT_DELIVERED: _("Email not delivered"),
        EXPIRED: _("Expired"),
        DELETED: _("Deleted"),
    }


KIND_LABELS = {
    "message": _("Message"),
    "envelope": _("Envelope"),
    "reply": _("Reply"),
    "signature": _("Signature"),
}


def activity_label(action: str) -> str:
    return actions.label(action)


def event_label(event: Event) -> str:
    label = activity_label(event.action)
    to = (event.details or {}).get("to") if event.action in actions.ADDRESSED else ""
    return f"{label} ({to})" if to else label


COLUMNS = [
    ("reference", _("Reference")),
    ("date", _("Date")),
    ("latest_activity", _("Latest activity")),
    ("expires", _("Expires")),
    ("status", _("Status")),
    ("subject", _("Subject")),
    ("sender", _("Sender")),
    ("recipient", _("Recipient")),
    ("code", _("Code")),
    ("files", _("Files")),
    ("openings", _("Openings")),
    ("activities", _("Activities")),
    ("kind", _("Kind")),
]


@dataclass(frozen=True)
class Filters:
    start: date | None = None
    end: date | None = None
    search: str = ""
    user_id: int | None = None  # administrators only: one user's messages


@dataclass
class Row:
    grant: Grant
    message: Message
    latest_activity: datetime | None
    activities: int
    status: str

    @property
    def status_label(self) -> str:
        return str(Status.LABELS[self.status])

    @property
    def kind(self) -> str:
        return self.message.kind  # message, or envelope (a submission) or reply

    @property
    def kind_label(self) -> str:
        return str(KIND_LABELS[self.kind])

    @property
    def sender_label(self) -> str:
        """Who the content came from: the member, a submitter or a replying recipient."""
        return from_label(
            self.message.kind,
            self.message.sender.display_name,
            getattr(getattr(self.message, "submission", None), "email", ""),
            getattr(self.message.replied_by, "email", ""),
        )

    @property
    def recipient_label(self) -> str:
        """Who may open it: the recipient, or the member a submission or reply is for."""
        if self.message.kind == MessageKind.MESSAGE:
            return self.grant.email
        return self.message.sender.display_name

    @property
    def alive(self) -> bool:
        return self.status in (Status.OPENED, Status.NOT_OPENED) and (
            self.message.state == MessageState.SENT
        )


def from_label(kind: str, member: str, submitter: str, replier: str) -> str:
    if kind == MessageKind.ENVELOPE:
        return submitter or member
    if kind == MessageKind.REPLY:
        return replier or member
    return member


def local_bounds(filters: Filters, time_zone: str) -> tuple[datetime | None, datetime | None]:
    """The filter's dates as moments: from the start date's midnight to the end of the end
    date, in the user's time zone (the end date is included)."""
    zone = zoneinfo.ZoneInfo(time_zone)
    start = datetime.combine(filters.start, time.min, zone) if filters.start else None
    end = datetime.combine(filters.end + timedelta(days=1), time.min, zone) if filters.end else None
    return start, end


def visible_grants(user: User, filters: Filters) -> QuerySet[Grant]:
    """The recipients' rows this user may see: their own messages, or (administrators)
    every message of the organisation, optionally one user's."""
    query = Grant.objects.filter(
        message__organisation=user.organisation,
        message__state__in=[MessageState.SENT, MessageState.DELETED],
    ).exclude(verification=Verification.ACCOUNT, message__kind="message")  # own copies
    if not user.is_org_admin:
        query = query.filter(message__sender=user)
    elif filters.user_id:
        query = query.filter(message__sender_id=filters.user_id)
    start, end = local_bounds(filters, user.time_zone)
    if start:
        query = query.filter(message__sent_at__gte=start)
    if end:
        query = query.filter(message__sent_at__lt=end)
    term = filters.search.strip()
    if term:
        query = query.filter(
            Q(message__subject__icontains=term)
            | Q(email__icontains=term)
            | Q(message__sender__email__icontains=term)
            | Q(message__sender__first_name__icontains=term)
            | Q(message__sender__last_name__icontains=term)
            | Q(message__submission__email__icontains=term)
            | Q(message__submission__name__icontains=term)
            | Q(message__replied_by__email__icontains=term)
        )
    return query


BATCH = 1000


def activity_of(message_ids: list[int]) -> dict[int, tuple[datetime | None, int]]:
    """Latest event time and number of events of each message, in one query per batch.

    One grouped query for a batch of rows reads each message's events once through the
    (target_type, target_id) index, instead of two correlated subqueries per row."""
    found = (
        Event.objects.filter(target_type="message", target_id__in=[str(i) for i in message_ids])
        .values("target_id")
        .annotate(last=Max("created_at"), n=Count("id"))
        .order_by()
    )
    return {int(row["target_id"]): (row["last"], row["n"]) for row in found}


GRANT_REFERENCE = "grant:"


def undelivered_grants(message_ids: list[int]) -> set[int]:
    """The grants (of these messages) whose link or opening-code email failed for good.

    Read from the audit log, like the activity: the outbox records `email.failed` on the
    message with the reference `grant:<id>` of the recipient the email was for."""
    references = (
        Event.objects.filter(
            target_type="message",
            target_id__in=[str(i) for i in message_ids],
            action=Action.EMAIL_FAILED,
        )
        .values_list("details__reference", flat=True)
        .order_by()
    )
    found = set()
    for reference in references:
        if isinstance(reference, str) and reference.startswith(GRANT_REFERENCE):
            number = reference.removeprefix(GRANT_REFERENCE)
            if number.isdigit():
                found.add(int(number))
    return found


def batched(items: Iterator, size: int) -> Iterator[list]:
    batch: list = []
    for item in items:
        batch.append(item)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def status_of(grant: Grant, now: datetime, *, undelivered: bool = False) -> str:
    return derived_status(
        deleted=grant.message.state == MessageState.DELETED or bool(grant.revoked_at),
        opens=grant.opens,
        expired=grant.expires_at <= now,
        undelivered=undelivered,
    )


def derived_status(*, deleted: bool, opens: int, expired: bool, undelivered: bool) -> str:
    """One rule for the page and the exports: a recipient who opened it got it, whatever
    an email said; one whose email failed is told apart from one who did not open yet."""
    if deleted:
        return Status.DELETED
    if opens > 0:
        return Status.OPENED
    if undelivered:
        return Status.NOT_DELIVERED
    if expired:
        return Status.EXPIRED
    return Status.NOT_OPENED


def encode_cursor(row: Row) -> str:
    raw = json.dumps([row.message.sent_at.isoformat(), row.grant.pk]).encode()
    return b64url_encode(raw)


def decode_cursor(cursor: str) -> tuple[datetime, int] | None:
    try:
        raw = b64url_decode(cursor, what="cursor")
        moment, pk = json.loads(raw)
        return datetime.fromisoformat(moment), int(pk)
    except (ValueError, TypeError):
        return None


def ordered(query: QuerySet[Grant], after: str = "") -> QuerySet[Grant]:
    """Newest first, from the row after the cursor (keyset pagination)."""
    query = query.order_by("-message__sent_at", "-id")
    position = decode_cursor(after) if after else None
    if position:
        moment, pk = position
        query = query.filter(Q(message__sent_at__lt=moment) | Q(message__sent_at=moment, id__lt=pk))
    return query


def rows(
    user: User, filters: Filters, *, after: str = "", limit: int | None = PAGE_SIZE
) -> Iterator[Row]:
    """Rows newest first; `after` is the cursor of the last row of the previous page."""
    query = ordered(
        visible_grants(user, filters).select_related(
            "message", "message__sender", "message__replied_by", "message__submission"
        ),
        after,
    )
    if limit is not None:
        query = query[:limit]
    now = clock.now()
    for batch in batched(query.iterator(chunk_size=BATCH), BATCH):
        message_ids = [grant.message_id for grant in batch]
        activity = activity_of(message_ids)
        undelivered = undelivered_grants(message_ids)
        for grant in batch:
            latest, count = activity.get(grant.message_id, (None, 0))
            status = status_of(grant, now, undelivered=grant.pk in undelivered)
            yield Row(grant, grant.message, latest, count, status)


@dataclass(frozen=True)
class Page:
    rows: list[Row]
    next_cursor: str


def page(user: User, filters: Filters, *, after: str = "") -> Page:
    found = list(rows(user, filters, after=after, limit=PAGE_SIZE + 1))
    more = len(found) > PAGE_SIZE
    found = found[:PAGE_SIZE]
    return Page(found, encode_cursor(found[-1]) if more and found else "")


# --- A message's timeline ---------------------------------------------------------------


def timeline(message: Message) -> QuerySet[Event]:
    return Event.objects.filter(target_type="message", target_id=str(message.pk)).order_by(
        "created_at", "id"
    )


def downloads_per_file(message: Message) -> list[tuple[int, int, int]]:
    """(file number, size, downloads) for each file of the message, in upload order."""
    counts = dict(
        Event.objects.filter(
            target_type="message", target_id=str(message.pk), action=Action.FILE_DOWNLOADED
        )
        .values_list("details__file")
        .annotate(n=Count("id"))
        .order_by()
    )
    files = message.blobs.filter(kind=BlobKind.FILE).order_by("id")
    return [
        (number, blob.size, counts.get(blob.file_ref, 0))
        for number, blob in enumerate(files, start=1)
    ]


# --- Statistics -----------------------------------------------------------------------


@dataclass(frozen=True)
class UserStatistics:
    user: User
    messages: int
    files: int
    total_bytes: int
    recipients: int
    opened: int

    @property
    def open_ratio(self) -> float:
        return self.opened / self.recipients if self.recipients else 0.0


def statistics(admin: User, filters: Filters) -> list[UserStatistics]:
    """Per user of the organisation: messages sent, files, total size, open ratio."""
    start, end = local_bounds(filters, admin.time_zone)
    # Submissions and replies are received, not sent: they stay out of these figures.
    sent = Message.objects.filter(
        organisation=admin.organisation, sent_at__isnull=False, kind=MessageKind.MESSAGE
    )
    if start:
        sent = sent.filter(sent_at__gte=start)
    if end:
        sent = sent.filter(sent_at__lt=end)
    per_sender = {
        row["sender_id"]: row
        for row in sent.values("sender_id")
        .annotate(
            messages=Count("id"),
            files=Coalesce(Sum("file_count"), 0),
            total=Coalesce(Sum("attachment_bytes"), 0),
        )
        .order_by()
    }
    grants = (
        Grant.objects.filter(message__in=sent)
        .exclude(verification=Verification.ACCOUNT)
        .values(sender_id=F("message__sender_id"))
        .annotate(recipients=Count("id"), opened=Count("id", filter=Q(opens__gt=0)))
        .order_by()
    )
    per_grants = {row["sender_id"]: row for row in grants}
    users = User.objects.filter(organisation=admin.organisation).order_by(
        "last_name", "first_name", "email"
    )
    result = []
    for user in users:
        s = per_sender.get(user.pk, {})
        g = per_grants.get(user.pk, {})
        result.append(
            UserStatistics(
                user,
                s.get("messages", 0),
                s.get("files", 0),
                s.get("total", 0),
                g.get("recipients", 0),
                g.get("opened", 0),
            )
        )
    return result
