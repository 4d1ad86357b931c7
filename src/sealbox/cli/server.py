"""The server's commands: serve (with its embedded worker), migrate, worker, purge."""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys

from sealbox.cli.common import CommandError, migrate, setup_django


def add_parsers(commands) -> None:
    serve = commands.add_parser("serve", help="apply migrations and serve the portal")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument("--workers", type=int, default=2, help="web worker processes")
    serve.add_argument(
        "--no-worker", action="store_true", help="do not start the background task worker"
    )
    serve.add_argument(
        "--no-migrate",
        action="store_true",
        help="do not apply migrations at start (run `sealbox migrate` once per deploy)",
    )
    serve.set_defaults(handler=cmd_serve)

    migrate_ = commands.add_parser(
        "migrate", help="apply database migrations (once per deploy; safe to run concurrently)"
    )
    migrate_.set_defaults(handler=cmd_migrate)

    worker = commands.add_parser("worker", help="run background tasks (email, SMS, purge)")
    worker.add_argument(
        "--purge-interval",
        type=int,
        default=60,
        metavar="SECONDS",
        help="how often expired content is wiped (default 60)",
    )
    worker.add_argument(
        "--no-migrate", action="store_true", help="do not apply migrations at start"
    )
    worker.set_defaults(handler=cmd_worker)

    purge = commands.add_parser("purge", help="wipe dead grants and delete expired content now")
    purge.set_defaults(handler=cmd_purge)


def cmd_migrate(args: argparse.Namespace) -> int:
    setup_django()
    from django.conf import settings

    settings.DATA_DIR.mkdir(parents=True, exist_ok=True)
    migrate()
    print("Migrations applied.")
    return 0


# --- serve --------------------------------------------------------------------------


def cmd_serve(args: argparse.Namespace) -> int:
    metrics_directory()
    setup_django()
    from django.conf import settings

    settings.DATA_DIR.mkdir(parents=True, exist_ok=True)
    if not args.no_migrate:
        migrate()
    worker = None if args.no_worker else EmbeddedWorker()
    address = f"http://{args.host}:{args.port}"
    print(
        f"Sealbox is serving on {address} (data in {settings.DATA_DIR}). Press Ctrl-C to stop.",
        flush=True,
    )
    try:
        run_gunicorn(args.host, args.port, args.workers)
    finally:
        if worker is not None:
            worker.stop()
    return 0


class EmbeddedWorker:
    """The background worker `serve` runs beside gunicorn, restarted if it dies.

    Nothing else is watching it on a one-machine install: without a restart, an email or
    a login's SMS code would wait in the queue until someone noticed."""

    RESTART_DELAYS_SECONDS = (1, 2, 5, 10, 30)

    def __init__(self) -> None:
        import threading

        self._stopping = threading.Event()
        self.process = self._start()
        self.restarts = 0
        threading.Thread(target=self._watch, name="sealbox-worker-watch", daemon=True).start()

    @staticmethod
    def _start() -> subprocess.Popen:
        # The migrations are done already.
        return subprocess.Popen(  # noqa: S603
            [sys.executable, "-m", "sealbox.cli", "worker", "--no-migrate"]
        )

    def _watch(self) -> None:
        while not self._stopping.is_set():
            code = self.process.wait()
            if self._stopping.is_set():
                return
            delay = self.RESTART_DELAYS_SECONDS[
                min(self.restarts, len(self.RESTART_DELAYS_SECONDS) - 1)
            ]
            print(
                f"sealbox: the background worker stopped (exit {code}); restarting in {delay} s",
                file=sys.stderr,
                flush=True,
            )
            if self._stopping.wait(delay):
                return
            self.restarts += 1
            self.process = self._start()

    def stop(self) -> None:
        self._stopping.set()
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()


def metrics_directory() -> None:
    """Share request metrics between gunicorn's processes (prometheus multi-process mode).

    Set before anything imports prometheus-client, so every process writes its counts
    there; a fresh folder per `serve`, so a restart does not add up the last run's."""
    import shutil
    import tempfile

    from sealbox import config

    try:
        parent = config.data_dir() / "metrics"
    except config.ConfigError:
        return  # setup_django() reports it, in one line
    parent.mkdir(parents=True, exist_ok=True)
    for old in parent.iterdir():
        shutil.rmtree(old, ignore_errors=True)
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(dir=parent)


def run_gunicorn(host: str, port: int, workers: int) -> None:
    from gunicorn.app.base import BaseApplication

    from sealbox.ops.metrics import forget_process
    from sealbox.wsgi import application

    class SealboxServer(BaseApplication):
        def load_config(self) -> None:
            options = {
                "bind": f"{host}:{port}",
                "workers": workers,
                # Threads let one worker stream a large upload while serving other pages.
                "worker_class": "gthread",
                "threads": 8,
                "timeout": 120,
                "graceful_timeout": 10,
                # Sealbox logs each request itself (sealbox.request), with the client's
                # address resolved behind trusted proxies and the route, not the path.
                "accesslog": None,
                "errorlog": "-",
                "child_exit": lambda _server, worker: forget_process(worker.pid),
            }
            for key, value in options.items():
                self.cfg.set(key, value)

        def load(self):
            return application

    try:
        SealboxServer().run()
    except SystemExit as stop:
        if stop.code not in (0, None):
            raise


def cmd_worker(args: argparse.Namespace) -> int:
    setup_django()
    from sealbox.ops.worker import run_worker, wait_for_migrations

    if args.no_migrate:
        wait_for_migrations()
    else:
        migrate()
    start_purge_thread(args.purge_interval)
    run_worker()
    return 0


def start_purge_thread(interval: int) -> None:
    """Run the purge every `interval` seconds beside the task worker (a daemon thread)."""
    import logging
    import threading
    import time

    from django.db import close_old_connections

    from sealbox.lib.errors import StorageUnavailable

    logger = logging.getLogger("sealbox.purge")

    def loop() -> None:
        while True:
            try:
                report = run_purge()
                if any(vars(report).values()):
                    logger.info("purge: %s", vars(report))
            except StorageUnavailable:  # expected in an outage, and logged by the step
                logger.warning("purge incomplete: storage unavailable; trying again later")
            except Exception:  # keep purging on the next round
                logger.exception("purge failed")
            finally:
                close_old_connections()
            time.sleep(interval)

    threading.Thread(target=loop, name="sealbox-purge", daemon=True).start()


def run_purge():
    """Every purge step, each on its own: one that fails (storage unavailable, say) is
    logged and the others still run; the first failure is raised at the end."""
    import logging
    from datetime import timedelta

    from sealbox.audit import retention
    from sealbox.envelopes import services as envelopes
    from sealbox.exchange import services as exchange
    from sealbox.notify import services as notify
    from sealbox.ops import services as ops
    from sealbox.ops.worker import requeue_abandoned_tasks
    from sealbox.ratelimit import services as ratelimit
    from sealbox.twofactor import services as twofactor

    report = exchange.PurgeReport()

    def purge_messages() -> None:
        nonlocal report
        report = exchange.purge()

    def purge_rate_limits() -> int:
        return ratelimit.purge_older_than(timedelta(days=2))

    steps = [
        requeue_abandoned_tasks,
        ops.purge_stale_heartbeats,
        ops.purge_finished_tasks,  # result rows of tasks that ended more than a day ago
        purge_messages,
        envelopes.record_expired,  # envelope.expired events; submissions expire as messages
        purge_rate_limits,
        twofactor.purge_expired,
        notify.purge,  # erases what was left queued; gives stalled messages a task again
        retention.purge_expired_events,  # after a signed checkpoint of each chain
    ]
    failures: list[Exception] = []
    for step in steps:
        try:
            step()
        except Exception as error:  # the other steps do not depend on this one
            logging.getLogger("sealbox.purge").warning(
                "purge step %s failed: %s", step.__qualname__, error
            )
            failures.append(error)
    if failures:
        raise failures[0]
    return report


def cmd_purge(args: argparse.Namespace) -> int:
    setup_django()
    from sealbox.audit.sealing import SealingKeyUnavailable
    from sealbox.lib.errors import StorageUnavailable

    try:
        report = run_purge()
    except StorageUnavailable as error:
        raise CommandError(f"{error.message} The purge did the rest; run it again later.") from None
    except SealingKeyUnavailable as error:
        raise CommandError(f"audit retention skipped: {error}. The purge did the rest.") from None
    print(
        f"Purge done: {report.grants_wiped} grants wiped, {report.blobs_deleted} messages' "
        f"content deleted ({report.messages_expired} expired), "
        f"{report.drafts_removed} unfinished uploads removed"
        + (f", {report.uploads_aborted} stale uploads aborted." if report.uploads_aborted else ".")
    )
    if report.deletions_waiting:
        print(f"{report.deletions_waiting} messages' content waits for the storage to delete it.")
    return 0
