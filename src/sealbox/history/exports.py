"""The History's exports: every row of the selection as cells for CSV, Excel and PDF, and
the time range of the audit log's JSON Lines export."""

from __future__ import annotations

import zoneinfo
from collections import namedtuple
from collections.abc import Iterator
from datetime import datetime, timedelta

from sealbox.accounts.models import User
from sealbox.exchange.models import MessageKind, MessageState, Verification, reference_for
from sealbox.history.services import (
    BATCH,
    COLUMNS,
    KIND_LABELS,
    Filters,
    Status,
    activity_of,
    batched,
    derived_status,
    from_label,
    local_bounds,
    ordered,
    undelivered_grants,
    visible_grants,
)
from sealbox.lib import clock


def export_headers() -> list[str]:
    return [str(label) for _key, label in COLUMNS]


# What an export reads of each recipient's row: plain values, not model instances.
ExportValues = namedtuple(
    "ExportValues",
    [
        "grant_id",
        "message_id",
        "public_id",
        "kind",
        "sent_at",
        "expires_at",
        "state",
        "revoked_at",
        "opens",
        "subject",
        "first_name",
        "last_name",
        "sender_email",
        "email",
        "verification",
        "files",
        "submitter",
        "replier",
    ],
)
EXPORT_QUERY_FIELDS = (
    "id",
    "message_id",
    "message__public_id",
    "message__kind",
    "message__sent_at",
    "expires_at",
    "message__state",
    "revoked_at",
    "opens",
    "message__subject",
    "message__sender__first_name",
    "message__sender__last_name",
    "message__sender__email",
    "email",
    "verification",
    "message__file_count",
    "message__submission__email",
    "message__replied_by__email",
)


class _ExportCells:
    """Turns one row's values into the export's cells: labels translated once, dates in
    the user's time zone."""

    def __init__(self, user: User, now: datetime):
        self.zone = zoneinfo.ZoneInfo(user.time_zone)
        self.now = now
        self.status_labels = {key: str(label) for key, label in Status.LABELS.items()}
        self.code_labels = {key: str(label) for key, label in Verification.choices}
        self.kind_labels = {key: str(label) for key, label in KIND_LABELS.items()}

    def local(self, moment: datetime | None) -> datetime | None:
        # Naive local times: a streamed export is written after the request's time zone
        # is gone, so the conversion happens here.
        return moment.astimezone(self.zone).replace(tzinfo=None) if moment else None

    def row(
        self, row: ExportValues, latest_at: datetime | None, activities: int, undelivered: bool
    ) -> list:
        member = f"{row.first_name} {row.last_name}".strip() or row.sender_email
        status = derived_status(
            deleted=row.state == MessageState.DELETED or bool(row.revoked_at),
            opens=row.opens,
            expired=row.expires_at <= self.now,
            undelivered=undelivered,
        )
        return [
            reference_for(row.public_id, row.kind),
            self.local(row.sent_at),
            self.local(latest_at),
            self.local(row.expires_at),
            self.status_labels[status],
            row.subject,
            from_label(row.kind, member, row.submitter or "", row.replier or ""),
            row.email if row.kind == MessageKind.MESSAGE else member,
            self.code_labels.get(row.verification, row.verification),
            row.files,
            row.opens,
            activities,
            self.kind_labels.get(row.kind, row.kind),
        ]


def export_rows(user: User, filters: Filters) -> Iterator[list]:
    """Every row of the selection (no paging), dates in the user's time zone.

    Plain tuples and labels translated once: an export of 100,000 rows must not build
    300,000 model instances nor call gettext for every cell."""
    cells = _ExportCells(user, clock.now())
    query = ordered(visible_grants(user, filters)).values_list(*EXPORT_QUERY_FIELDS)
    for batch in batched(query.iterator(chunk_size=BATCH), BATCH):
        rows = [ExportValues._make(values) for values in batch]
        message_ids = [row.message_id for row in rows]
        activity = activity_of(message_ids)
        undelivered = undelivered_grants(message_ids)
        for row in rows:
            latest_at, count = activity.get(row.message_id, (None, 0))
            yield cells.row(row, latest_at, count, row.grant_id in undelivered)


def export_range(user: User, filters: Filters) -> tuple[datetime, datetime]:
    """The events' time range of a JSON Lines export: the filter's days, or everything."""
    start, end = local_bounds(filters, user.time_zone)
    return (
        start or datetime(2000, 1, 1, tzinfo=zoneinfo.ZoneInfo("UTC")),
        end or clock.now() + timedelta(seconds=1),
    )
