"""Export speed and memory of the activity log: CSV and JSON Lines of N events.

    createdb -h 127.0.0.1 -U postgres sealbox_bench   # once (the bench also tries)
    SEALBOX_DATABASE_URL=postgres://postgres@127.0.0.1:5432/sealbox_bench \\
        .venv/bin/python bench/history_export.py [--events 1000000]

Loads --events audit events with valid chain hashes for one organisation (COPY on
PostgreSQL, bulk inserts on SQLite; kept between runs: an organisation per event count),
then measures, in the same run:

- raw: the same rows read with a plain SELECT through a server-side cursor, nothing
  done with them — the ceiling any export can reach;
- csv: a full CSV export of the events (`exports.stream_csv` over the rows);
- jsonl: the JSON Lines export with chain hashes (`exports.stream_events_jsonl`);
- verify: `exports.verify_jsonl` over that file (what an auditor runs offline).

Prints events per second (wall clock and this process's CPU time), the ratios to raw,
and the process's peak resident memory during each phase (the kernel's high-water mark,
reset before each phase). Without SEALBOX_DATABASE_URL it runs on SQLite in a temporary
data folder; with it, the data folder (secret key) is $TMPDIR/sealbox-bench-data.
"""

from __future__ import annotations

import argparse
import atexit
import json
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

LOAD_BATCH = 20_000
ACTIONS = [
    "message.sent",
    "message.opened",
    "file.downloaded",
    "grant.verification_failed",
    "message.deleted",
    "login.succeeded",
]
AGENTS = [
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 Chrome/131.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_6) AppleWebKit/605.1.15 Version/18.1 Safari",
    "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0",
]


# --- setup --------------------------------------------------------------------------


def setup(database_url: str | None) -> None:
    if not database_url:
        if "SEALBOX_DATA_DIR" not in os.environ:
            folder = tempfile.mkdtemp(prefix="sealbox-bench-")
            atexit.register(shutil.rmtree, folder, ignore_errors=True)
            os.environ["SEALBOX_DATA_DIR"] = folder
    else:
        # A fixed folder: its secret key must outlive runs that reuse the loaded events
        # (the organisation's sealing key is encrypted under it).
        bench_dir = Path(tempfile.gettempdir()) / "sealbox-bench-data"
        os.environ.setdefault("SEALBOX_DATA_DIR", str(bench_dir))
        ensure_postgres_database(database_url)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "sealbox.settings")
    import django
    from django.core.management import call_command

    django.setup()
    call_command("migrate", interactive=False, verbosity=0)


def ensure_postgres_database(url: str) -> None:
    """Create the benchmark's database if it is missing (like `createdb`)."""
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    if not parts.scheme.startswith("postgres"):
        return
    import psycopg

    name = parts.path.lstrip("/")
    maintenance = parts._replace(path="/postgres").geturl()
    with psycopg.connect(maintenance, autocommit=True) as connection:
        exists = connection.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name])
        if exists.fetchone() is None:
            connection.execute(f'CREATE DATABASE "{name}"')
            print(f"created database {name}")


def bench_organisation(events: int):
    from sealbox.accounts import services as accounts
    from sealbox.accounts.models import Plan
    from sealbox.accounts.plans import ensure_default_plans

    ensure_default_plans(Plan)
    organisation, _ = accounts.get_or_create_organisation(f"Sealbox bench {events}")
    return organisation


def load_events(organisation, count: int, start: datetime, span: timedelta) -> None:
    """Append events until the chain holds `count` of them (resumes a partial load)."""
    from django.db import connection, transaction

    from sealbox.audit import services as audit
    from sealbox.audit.models import ChainHead, Event

    chain = audit.chain_name(organisation.pk)
    assert record_class()._fields == COPY_COLUMNS
    head = ChainHead.objects.get(chain=chain)
    missing = count - head.seq
    if missing <= 0:
        print(f"using the {head.seq:,} events already loaded for {organisation.name}")
        return
    print(f"loading {missing:,} events…", flush=True)
    began = time.perf_counter()
    step = span / count
    seq, prev_hash = head.seq, head.last_hash
    while seq < count:
        batch = []
        for _ in range(min(LOAD_BATCH, count - seq)):
            seq += 1
            event = fake_event(organisation.pk, chain, seq, start + step * seq, prev_hash)
            # The application's own hash function, over the same fields it will read back.
            event = event._replace(hash=audit.compute_hash(prev_hash, event))
            prev_hash = event.hash
            batch.append(event)
        with transaction.atomic():
            if connection.vendor == "postgresql":
                copy_events(connection, batch)
            else:
                events = [Event(**event._asdict()) for event in batch]
                Event.objects.bulk_create(events, batch_size=2000)
            ChainHead.objects.filter(pk=head.pk).update(seq=seq, last_hash=prev_hash)
        print(f"  {seq:,} events", end="\r", flush=True)
    elapsed = time.perf_counter() - began
    print(f"loaded {missing:,} events in {elapsed:.1f} s ({missing / elapsed:,.0f} events/s)")


def record_class():
    """The exports' light event record (importable once Django is set up)."""
    from sealbox.audit.exports import EventRecord

    return EventRecord


def fake_event(organisation_id: int, chain: str, seq: int, when: datetime, prev_hash: str):
    action = ACTIONS[seq % len(ACTIONS)]
    return record_class()(
        chain=chain,
        seq=seq,
        organisation_id=organisation_id,
        created_at=when,
        actor_type="recipient" if "message.opened" in action else "user",
        actor_id=str(seq % 500),
        actor_label=f"person{seq % 500}@client-{seq % 37}.example",
        action=action,
        target_type="message",
        target_id=str(seq // 7),
        ip=f"203.0.{seq % 250}.{seq % 200 + 1}",
        user_agent=AGENTS[seq % len(AGENTS)],
        details={"grant": seq // 3, "file": f"f{seq % 11}"} if seq % 2 else {},
        prev_hash=prev_hash,
        hash="",
    )


COPY_COLUMNS = (
    "chain",
    "seq",
    "organisation_id",
    "created_at",
    "actor_type",
    "actor_id",
    "actor_label",
    "action",
    "target_type",
    "target_id",
    "ip",
    "user_agent",
    "details",
    "prev_hash",
    "hash",
)


def copy_events(connection, batch) -> None:
    from sealbox.audit.models import Event

    table = Event._meta.db_table
    with connection.cursor() as cursor:
        raw = cursor.cursor  # psycopg's own cursor: COPY is not in the DB-API
        with raw.copy(f"COPY {table} ({', '.join(COPY_COLUMNS)}) FROM STDIN") as copy:
            for event in batch:
                copy.write_row(event._replace(details=json.dumps(event.details)))


# --- measuring ------------------------------------------------------------------------


def rss_mb(field: str) -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return 0.0


def reset_peak() -> bool:
    """Reset the kernel's resident high-water mark (Linux ≥ 4.0), so VmHWM is per phase."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return True


def measure(name: str, run: Callable[[], int], events: int) -> dict:
    import gc

    gc.collect()
    reset = reset_peak()
    before = rss_mb("VmRSS")
    began, began_cpu = time.perf_counter(), time.process_time()
    produced = run()
    elapsed, cpu = time.perf_counter() - began, time.process_time() - began_cpu
    peak = rss_mb("VmHWM") if reset else float("nan")
    return {
        "name": name,
        "seconds": elapsed,
        "rate": events / elapsed,
        "cpu_rate": events / cpu,
        "bytes": produced,
        "peak_mb": peak,
        "growth_mb": peak - before,
    }


def raw_select(organisation) -> Callable[[], int]:
    """The ceiling: every column of the same rows, through a server-side cursor."""
    from django.db import connection, transaction

    from sealbox.audit import services as audit
    from sealbox.audit.models import Event

    sql = (
        f"SELECT {', '.join(COPY_COLUMNS)} FROM {Event._meta.db_table} "
        "WHERE chain = %s ORDER BY seq"
    )
    chain = audit.chain_name(organisation.pk)

    def run() -> int:
        rows = 0
        with transaction.atomic(), connection.cursor() as cursor:
            if connection.vendor == "postgresql":
                raw = cursor.connection.cursor(name="bench_raw")  # server-side
                raw.itersize = 2000
                raw.execute(sql, [chain])
            else:
                raw = cursor
                raw.execute(sql, [chain])
            for _row in raw:
                rows += 1
        return rows

    return run


def csv_export(organisation, start: datetime, end: datetime) -> Callable[[], int]:
    from sealbox.audit import exports
    from sealbox.audit.models import Event

    headers = ["Date", "Actor", "Action", "Target", "IP address", "User agent"]

    def rows() -> Iterator[tuple]:
        query = (
            Event.objects.filter(organisation=organisation, created_at__gte=start)
            .filter(created_at__lt=end)
            .order_by("seq")
            .values_list("created_at", "actor_label", "action", "target_id", "ip", "user_agent")
        )
        yield from query.iterator(chunk_size=2000)

    def run() -> int:
        return sum(len(chunk) for chunk in exports.stream_csv(headers, rows()))

    return run


def jsonl_export(organisation, start: datetime, end: datetime, path: Path):
    from sealbox.audit import exports

    def run() -> int:
        size = 0
        with open(path, "wb") as handle:
            for chunk in exports.stream_events_jsonl(organisation, start, end):
                handle.write(chunk)
                size += len(chunk)
        return size

    return run


def verify_file(path: Path, expected: int) -> Callable[[], int]:
    from sealbox.audit import exports

    def run() -> int:
        with open(path, "rb") as lines:
            result = exports.verify_jsonl(lines)
        if not result.ok or result.count < expected:
            raise SystemExit(f"verification failed: {result.message}")
        return result.count

    return run


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=1, help="best of N runs of each phase")
    args = parser.parse_args(argv)
    setup(os.environ.get("SEALBOX_DATABASE_URL"))
    from django.db import connection

    from sealbox.audit import sealing

    organisation = bench_organisation(args.events)
    start = datetime(2025, 1, 1, tzinfo=UTC)
    span = timedelta(days=365)
    load_events(organisation, args.events, start, span)
    sealing.sealing_key(organisation)  # made once, outside the measured exports
    # The whole chain: organisation.created (now) is outside; the range covers the load.
    end = start + span + timedelta(days=1)
    count = args.events - 1
    print(
        f"\n{connection.vendor} ({connection.settings_dict['NAME']}), "
        f"{count:,} events, Python {sys.version.split()[0]}"
    )

    print(f"load average {' '.join(f'{x:.1f}' for x in os.getloadavg())} on {os.cpu_count()} CPUs")

    raw = raw_select(organisation)
    raw()  # warm the database's cache: every phase then reads from memory alike
    with tempfile.TemporaryDirectory() as folder:
        export_path = Path(folder) / "export.jsonl"
        phases = [
            ("raw SELECT (baseline)", raw, False),
            ("CSV export", csv_export(organisation, start, end), True),
            ("JSON Lines export", jsonl_export(organisation, start, end, export_path), True),
            ("JSON Lines verify", verify_file(export_path, count), False),
        ]
        results = []
        for name, run, writes in phases:
            runs = [measure(name, run, count) for _ in range(args.repeat)]
            best = max(runs, key=lambda result: result["rate"])
            best["peak_mb"] = max(result["peak_mb"] for result in runs)
            best["writes"] = writes
            results.append(best)
    report(results)
    return 0


def report(results: list[dict]) -> None:
    baseline = results[0]
    print(
        f"{'phase':<24}{'events/s':>11}{'× raw':>7}{'CPU ev/s':>11}{'× raw':>7}"
        f"{'seconds':>9}{'MB out':>8}{'peak RSS':>10}{'growth':>8}"
    )
    for result in results:
        out = f"{result['bytes'] / 1e6:8.1f}" if result["writes"] else f"{'':8}"
        print(
            f"{result['name']:<24}{result['rate']:>11,.0f}{result['rate'] / baseline['rate']:>7.2f}"
            f"{result['cpu_rate']:>11,.0f}{result['cpu_rate'] / baseline['cpu_rate']:>7.2f}"
            f"{result['seconds']:>9.1f}{out}{result['peak_mb']:>8.0f}MB"
            f"{result['growth_mb']:>6.0f}MB"
        )
    exports_ = [result for result in results if result["writes"]]
    met = all(result["rate"] >= 50_000 and result["peak_mb"] < 150 for result in exports_)
    print(
        "events/s: wall clock; CPU ev/s: this process's CPU time (the database server's "
        "work is not in it)"
    )
    print(f"aim, exports ≥ 50,000 events/s (wall) with < 150 MB: {'met' if met else 'NOT met'}")


if __name__ == "__main__":
    sys.exit(main())
