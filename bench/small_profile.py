"""Where one small message's time goes, request by request, without contention.

    .venv/bin/python bench/small_profile.py [--operations 100] [--pyinstrument FILE]
    SEALBOX_DATABASE_URL=postgres://… .venv/bin/python bench/small_profile.py

Runs Sealbox's WSGI application in this process (the full middleware stack; SQLite in a
temporary data folder, or the PostgreSQL database given, recreated) and drives the same
create + open as bench/small_messages.py through the Python client, one operation at a
time. For each kind of request it prints the p50 of its CPU time and the number of SQL
queries; then it runs the background tasks those operations queued, one by one, the
way the worker does, and prints their CPU time per task and per operation. Figures are
CPU time of this thread, so the load of a shared machine changes them little.
`--pyinstrument FILE` writes an HTML (or, for another suffix, text) profile of the
requests; it needs the `bench` extra (pip install 'sealbox[bench]').
"""

from __future__ import annotations

import argparse
import email.message
import io
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from contextlib import nullcontext
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from small_messages import BODY, fresh_postgres, request_name  # noqa: E402
from transfer import PASSWORD  # noqa: E402

HOST = "127.0.0.1:8000"


class WsgiResponse:
    """Enough of http.client.HTTPResponse for HttpTransport."""

    def __init__(self, status: str, headers: list, body: bytes):
        self.status = int(status.split()[0])
        self.headers = email.message.Message()
        for name, value in headers:
            self.headers[name] = value
        self._body = io.BytesIO(body)

    def read(self, size: int = -1) -> bytes:
        return self._body.read(size)


def in_process_transport(application, stats, **kwargs):
    from django.db import connection

    from sealbox.client.http import HttpTransport

    class Transport(HttpTransport):
        def _send(self, method, path, body=None, headers=None):
            raw_path, _, query = path.partition("?")
            payload = body if isinstance(body, bytes) else (body or "").encode()
            environ = {
                "REQUEST_METHOD": method,
                "PATH_INFO": raw_path,
                "QUERY_STRING": query,
                "SERVER_NAME": "127.0.0.1",
                "SERVER_PORT": "8000",
                "REMOTE_ADDR": "127.0.0.1",
                "SERVER_PROTOCOL": "HTTP/1.1",
                "wsgi.url_scheme": "http",
                "wsgi.input": io.BytesIO(payload),
                "wsgi.errors": sys.stderr,
                "CONTENT_LENGTH": str(len(payload)),
                "HTTP_HOST": HOST,
            }
            for name, value in self._headers(headers).items():
                key = name.upper().replace("-", "_")
                if key == "CONTENT_TYPE":
                    environ["CONTENT_TYPE"] = value
                else:
                    environ[f"HTTP_{key}"] = value
            started: list = []
            queries = [0]

            def count(execute, sql, params, many, context):
                queries[0] += 1
                return execute(sql, params, many, context)

            cpu = time.thread_time()
            with connection.execute_wrapper(count):
                chunks = application(
                    environ, lambda status, headers, exc=None: started.append((status, headers))
                )
                content = b"".join(chunks)
                if hasattr(chunks, "close"):
                    chunks.close()
            name = request_name(method, path)
            stats[name]["cpu"].append(time.thread_time() - cpu)
            stats[name]["queries"].append(queries[0])
            response = WsgiResponse(*started[0], content)
            for header in response.headers.get_all("Set-Cookie") or []:
                from http.cookies import SimpleCookie

                for cookie_name, morsel in SimpleCookie(header).items():
                    self.cookies[cookie_name] = morsel.value
            return response

    return Transport(f"http://{HOST}", **kwargs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--operations", type=int, default=100)
    parser.add_argument("--pyinstrument", type=Path)
    parser.add_argument("--profile-tasks", action="store_true", help="cProfile the tasks")
    args = parser.parse_args()

    database = os.environ.get("SEALBOX_DATABASE_URL", "")
    if database:
        fresh_postgres(database)
        os.environ.setdefault("SEALBOX_SECRET_KEY", "bench-only-secret-key-" + "x" * 40)
    tmp = tempfile.TemporaryDirectory(prefix="sealbox-bench-", dir=".")
    os.environ["SEALBOX_DATA_DIR"] = str(Path(tmp.name).resolve() / "data")
    os.environ["SEALBOX_BASE_URL"] = f"http://{HOST}"
    os.environ["SEALBOX_EMAIL_URL"] = f"filemail:///{Path(tmp.name).resolve()}/mail"
    os.environ["DJANGO_SETTINGS_MODULE"] = "sealbox.settings"
    # `createuser` migrates the new database first.
    subprocess.run(
        [
            str(Path(sys.executable).with_name("sealbox")),
            "createuser",
            "bench@example.com",
            "--org",
            "Bench",
            "--plan",
            "Pro",
            "--admin",
            "--password-stdin",
        ],
        input=PASSWORD + "\n",
        check=True,
        capture_output=True,
        text=True,
    )
    import django

    django.setup()
    import logging

    logging.disable(logging.INFO)  # the access lines (the profile is about the requests)

    from sealbox.accounts.models import User
    from sealbox.accounts.services import create_api_token
    from sealbox.client.messages import Recipient, open_message, send_message
    from sealbox.wsgi import application

    _, token = create_api_token(None, User.objects.get(email="bench@example.com"), "bench", 7)
    holds = audit_lock_holds()
    stats: dict = defaultdict(lambda: defaultdict(list))
    sender = in_process_transport(application, stats, token=token)
    recipient = in_process_transport(application, stats)

    def operation() -> None:
        sent = send_message(
            sender,
            base_url=f"http://{HOST}",
            subject="Appointment",
            body=BODY,
            recipients=[Recipient("someone@example.org")],
            expires_at=datetime.now(UTC) + timedelta(days=1),
            delivery="links",
        )
        link = sent.links["someone@example.org"]
        opened = open_message(recipient, link, code=sent.opening_codes["someone@example.org"])
        assert opened.body == BODY

    for _ in range(5):  # warm-up: imports, templates, first queries
        operation()
    stats.clear()
    holds.clear()
    profiler = None
    if args.pyinstrument:
        from pyinstrument import Profiler

        profiler = Profiler()
    wall = time.perf_counter()
    with profiler or nullcontext():
        for _ in range(args.operations):
            operation()
    wall = time.perf_counter() - wall
    engine = "PostgreSQL" if database else "SQLite"
    print(f"small message create + open, one client in process, {engine}, {args.operations} ops")
    print(f"  load average: {os.getloadavg()[0]:.1f} (2 cores)")
    total_cpu = 0.0
    total_queries = 0
    for name, values in stats.items():
        cpu = statistics.median(values["cpu"]) * 1000
        queries = statistics.median(values["queries"])
        total_cpu += sum(values["cpu"])
        total_queries += sum(values["queries"])
        print(f"  {name:15s} CPU p50 {cpu:5.1f} ms   {queries:3.0f} queries")
    ops = args.operations
    print(
        f"  per operation: {total_cpu / ops * 1000:.1f} ms CPU in the requests, "
        f"{total_queries / ops:.0f} queries, {wall / ops * 1000:.1f} ms elapsed"
    )
    p95 = sorted(holds)[int(0.95 * len(holds))]
    print(
        f"  audit chain head held after each append until commit: p50 "
        f"{statistics.median(holds) * 1000:.2f} ms, p95 {p95 * 1000:.2f} ms "
        f"({len(holds) / ops:.1f} events per operation)"
    )
    for action, values in sorted(holds.by_action.items()):
        print(f"    {action}: p50 {statistics.median(values) * 1000:.2f} ms")
    if profiler:
        if args.pyinstrument.suffix == ".html":
            args.pyinstrument.write_text(profiler.output_html())
        else:
            args.pyinstrument.write_text(profiler.output_text(unicode=True, show_all=False))

    run_tasks(ops, args.profile_tasks)
    tmp.cleanup()


class Holds(list):
    def __init__(self):
        super().__init__()
        self.by_action: dict[str, list[float]] = defaultdict(list)

    def clear(self) -> None:
        super().clear()
        self.by_action.clear()


def audit_lock_holds() -> Holds:
    """How long the chain head stays locked after each append (until the commit of the
    transaction that recorded it): what a concurrent event of the same chain waits."""
    from django.db import transaction

    from sealbox.audit import services as audit

    holds = Holds()
    original = audit.record

    def record(*args, **kwargs):
        event = original(*args, **kwargs)
        locked = time.perf_counter()

        def committed(action=event.action):
            holds.append(time.perf_counter() - locked)
            holds.by_action[action].append(holds[-1])

        transaction.on_commit(committed)
        return event

    audit.record = record
    return holds


def run_tasks(ops: int, profile: bool = False) -> None:
    """The queued tasks, run one by one as django_tasks_db's worker runs them."""
    from django.db import connection
    from django_tasks_db.management.commands.db_worker import Worker
    from django_tasks_db.models import DBTaskResult

    def run_one() -> str | None:
        task = DBTaskResult.objects.ready().order_by("enqueued_at").first()
        if task is None:
            return None
        Worker(
            queue_names=["default"],
            interval=0,
            batch=True,
            backend_name="default",
            startup_delay=False,
            max_tasks=1,
            worker_id="bench",
            excluded_queue_names=[],
        ).run()
        return task.task_path

    import cProfile
    import pstats

    profiler = cProfile.Profile(time.thread_time) if profile else None
    queued = DBTaskResult.objects.ready().count()
    by_task: dict[str, list[float]] = defaultdict(list)
    queries: dict[str, list[int]] = defaultdict(list)
    while True:
        count = [0]

        def counter(execute, sql, params, many, context, count=count):
            count[0] += 1
            return execute(sql, params, many, context)

        cpu = time.thread_time()
        with connection.execute_wrapper(counter), profiler or nullcontext():
            name = run_one()
        if name is None:
            break
        by_task[name].append(time.thread_time() - cpu)
        queries[name].append(count[0])
    total = sum(sum(v) for v in by_task.values())
    print(f"  background tasks queued: {queued} ({queued / ops:.2f} per operation)")
    for name, values in by_task.items():
        print(
            f"    {name}: {len(values)} run, CPU p50 {statistics.median(values) * 1000:.1f} ms, "
            f"{statistics.median(queries[name]):.0f} queries"
        )
    print(f"  task CPU per operation: {total / ops * 1000:.1f} ms")
    if profiler:
        stats = pstats.Stats(profiler)
        stats.sort_stats("cumulative").print_stats(45)
        stats.sort_stats("tottime").print_stats(25)


if __name__ == "__main__":
    main()
