"""Speed of the History with a large organisation: pages, search and a full CSV export.

    SEALBOX_DATABASE_URL=postgres://postgres@127.0.0.1:5432/sealbox_bench \\
        .venv/bin/python bench/history.py [--messages 100000] [--events 1000000]

Loads --messages sent messages (one recipient each) and --events audit events about
them for one organisation (kept between runs), then measures through Django's request
handling (middleware, view, template), as an administrator who sees every message:

- the first page of /history/, a deep page (a cursor half-way down), and a search;
  each 20 times, printing p50 and p95 in milliseconds;
- the full CSV export of every row, printing rows per second and the process's peak
  resident memory during the export, with the ratio to a raw baseline measured in the
  same run (the same rows read by a plain SELECT through a server-side cursor).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import history_export  # noqa: E402 - the shared loader of the audit benchmark

BATCH = 5000


def organisation_and_admin(messages: int):
    from sealbox.accounts import services as accounts
    from sealbox.accounts.models import Plan, Role, User
    from sealbox.accounts.plans import ensure_default_plans

    ensure_default_plans(Plan)
    organisation, _ = accounts.get_or_create_organisation(
        f"History bench {messages}", plan_name="Pro"
    )
    organisation.seats = 1000
    organisation.save()
    admin = User.objects.filter(email=f"admin{messages}@bench.example").first()
    if admin is None:
        admin = accounts.create_user(
            f"admin{messages}@bench.example",
            "benchmark passphrase 2026",
            organisation,
            role=Role.ADMIN,
            first_name="Bench",
            last_name="Admin",
        )
    return organisation, admin


def load_messages(organisation, sender, count: int, start: datetime) -> list[int]:
    from django.db import transaction

    from sealbox.exchange.models import Grant, Message, MessageState, Verification

    existing = list(
        Message.objects.filter(organisation=organisation)
        .order_by("id")
        .values_list("id", flat=True)
    )
    if len(existing) >= count:
        print(f"using the {len(existing):,} messages already loaded")
        return existing
    print(f"loading {count - len(existing):,} messages…", flush=True)
    step = timedelta(days=365) / count
    for first in range(len(existing), count, BATCH):
        with transaction.atomic():
            batch = []
            for n in range(first, min(first + BATCH, count)):
                sent = start + step * n
                batch.append(
                    Message(
                        organisation=organisation,
                        sender=sender,
                        subject=f"Dossier {n} — contract",
                        state=MessageState.SENT,
                        delivery="email",
                        expires_at=sent + timedelta(days=7),
                        created_at=sent,
                        sent_at=sent,
                        file_count=n % 4,
                        attachment_bytes=(n % 4) * 250_000,
                    )
                )
            created = Message.objects.bulk_create(batch)
            Grant.objects.bulk_create(
                [
                    Grant(
                        token=f"bench{m.pk:017d}",
                        message=m,
                        email=f"client{m.pk}@firm-{m.pk % 97}.example",
                        verification=Verification.OPENING_CODE,
                        opens=m.pk % 3,
                        max_opens=3,
                        expires_at=m.expires_at,
                        server_secret=None,
                        wrapped_key=None,
                    )
                    for m in created
                ]
            )
        print(f"  {first + len(batch):,} messages", end="\r", flush=True)
    print()
    return list(
        Message.objects.filter(organisation=organisation)
        .order_by("id")
        .values_list("id", flat=True)
    )


def load_events(organisation, message_ids: list[int], count: int, start: datetime) -> None:
    """Events about the messages, with a valid hash chain (COPY on PostgreSQL)."""
    from sealbox.audit import services as audit

    original = history_export.fake_event

    def about_a_message(organisation_id, chain, seq, when, prev_hash):
        event = original(organisation_id, chain, seq, when, prev_hash)
        event.target_id = str(message_ids[(seq * 7919) % len(message_ids)])
        return event

    history_export.fake_event = about_a_message
    try:
        history_export.load_events(organisation, count, start, timedelta(days=365))
    finally:
        history_export.fake_event = original
    assert audit.chain_name(organisation.pk)


def timed(call, repeat: int) -> list[float]:
    times = []
    for _ in range(repeat):
        began = time.perf_counter()
        call()
        times.append((time.perf_counter() - began) * 1000)
    return times


def percentiles(times: list[float]) -> str:
    ordered = sorted(times)
    p95 = ordered[min(len(ordered) - 1, int(round(0.95 * (len(ordered) - 1))))]
    return f"p50 {statistics.median(ordered):7.1f} ms   p95 {p95:7.1f} ms"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--messages", type=int, default=100_000)
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=20)
    args = parser.parse_args()
    history_export.setup(os.environ.get("SEALBOX_DATABASE_URL"))

    from django.db import connection
    from django.test import Client

    from sealbox.history import services
    from sealbox.history.services import Filters

    start = datetime(2025, 11, 1, tzinfo=UTC)
    organisation, admin = organisation_and_admin(args.messages)
    message_ids = load_messages(organisation, admin, args.messages, start)
    load_events(organisation, message_ids, args.events, start)
    if connection.vendor == "postgresql":
        # Fresh bulk loads have no planner statistics yet; autovacuum would add them.
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE")

    browser = Client(HTTP_HOST="127.0.0.1")
    browser.force_login(admin)

    def get(path: str) -> bytes:
        response = browser.get(path)
        assert response.status_code == 200, response.status_code
        if response.streaming:
            return b"".join(response.streaming_content)
        return response.content

    rows = list(services.rows(admin, Filters(), limit=args.messages // 2))
    deep_cursor = services.encode_cursor(rows[-1])
    del rows

    print(
        f"History of {args.messages:,} messages and {args.events:,} events "
        f"on {connection.vendor}, as an administrator"
    )
    pages = {
        "first page": "/history/",
        "deep page": f"/history/?after={deep_cursor}",
        "search": "/history/?q=firm-42.example",
    }
    for label, path in pages.items():
        times = timed(lambda path=path: get(path), args.repeat)
        print(f"  {label + ':':13} {percentiles(times)}")

    raw = history_export.measure("raw", lambda: raw_rows(organisation), args.messages)
    export = history_export.measure(
        "csv", lambda: count_lines(browser, "/history/export.csv") - 1, args.messages
    )
    assert export["bytes"] == raw["bytes"] == args.messages, (export["bytes"], raw["bytes"])
    print(f"  raw SELECT:   {raw['rate']:10,.0f} rows/s")
    print(
        f"  CSV export:   {export['rate']:10,.0f} rows/s   ratio {export['rate'] / raw['rate']:.2f}"
        f"   peak memory {export['peak_mb']:.0f} MB (+{export['growth_mb']:.0f} MB during the "
        f"export of {export['bytes']:,} rows)"
    )
    return 0


def count_lines(browser, path: str) -> int:
    """Consume a streamed response piece by piece, as a client would (never joined)."""
    response = browser.get(path)
    assert response.status_code == 200, response.status_code
    return sum(piece.count(b"\n") for piece in response.streaming_content)


def raw_rows(organisation) -> int:
    from django.db import connection, transaction

    from sealbox.exchange.models import Grant

    query = Grant.objects.filter(message__organisation=organisation).values_list(
        "id", "email", "message__subject", "message__sent_at", "opens"
    )
    count = 0
    with transaction.atomic():
        for _row in query.iterator(chunk_size=2000):
            count += 1
    assert connection
    return count


if __name__ == "__main__":
    sys.exit(main())
