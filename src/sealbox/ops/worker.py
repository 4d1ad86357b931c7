"""The background worker: django-tasks-db's worker, made to survive and to lease.

- A database outage (PostgreSQL restarting) no longer ends the worker: it waits, with a
  growing delay, and carries on.
- A task is leased, not owned for ever: a task left running by a worker that died
  (its heartbeat stopped) or that has run for longer than any task may, goes back to the
  queue. Tasks are therefore run at least once; each one makes its effect idempotent.
"""

from __future__ import annotations

import logging
import time
from datetime import timedelta

from django.db import connections
from django.db.utils import InterfaceError, OperationalError

from sealbox.lib import clock
from sealbox.ops import services

logger = logging.getLogger("sealbox.worker")

# Every Sealbox task (an email, an SMS) finishes in seconds; one running this long is
# taken for abandoned even if its worker still beats.
TASK_LEASE = timedelta(minutes=10)
# A worker that missed this many seconds of beats is dead: its tasks go back at once.
DEAD_WORKER_AFTER = services.HEARTBEAT_STALE_AFTER
RECONNECT_DELAYS_SECONDS = (1, 2, 5, 10, 30)
# A worker started beside `sealbox migrate` checks this often whether it has finished.
MIGRATION_WAIT_DELAYS_SECONDS = (1, 2, 3, 5)


def requeue_abandoned_tasks() -> int:
    """Put back in the queue every running task whose lease ended; returns how many."""
    from django_tasks_db.models import DBTaskResult

    now = clock.now()
    alive = set(
        services.WorkerHeartbeat.objects.filter(beat_at__gte=now - DEAD_WORKER_AFTER).values_list(
            "name", flat=True
        )
    )
    requeued = 0
    running = DBTaskResult.objects.filter(status="RUNNING").only("id", "worker_ids", "started_at")
    for task in running:
        owner = task.worker_ids[-1] if task.worker_ids else ""
        overdue = task.started_at is None or task.started_at < now - TASK_LEASE
        if owner in alive and not overdue:
            continue
        # Conditional: a worker that finishes the task meanwhile wins, nothing is undone.
        requeued += DBTaskResult.objects.filter(
            id=task.id, status="RUNNING", started_at=task.started_at
        ).update(status="READY", started_at=None, run_after=now)
    if requeued:
        logger.warning("requeued %d task(s) whose worker stopped", requeued)
    return requeued


def pending_migrations() -> int:
    """How many migrations this code has that the database has not applied."""
    from django.db import connection
    from django.db.migrations.executor import MigrationExecutor

    executor = MigrationExecutor(connection)
    return len(executor.migration_plan(executor.loader.graph.leaf_nodes()))


def wait_for_migrations(*, sleep=time.sleep) -> None:
    """Return once the database has every migration of this code; wait until then.

    A worker started with --no-migrate may come up before `sealbox migrate` has finished
    (a first start, an upgrade, a machine booting): its queries would meet tables that do
    not exist yet, or lack a column, and end it. It waits instead, as it waits out a
    database that is down.
    """
    checks = 0
    while True:
        try:
            pending = pending_migrations()
        except (OperationalError, InterfaceError) as error:
            reason = f"the database is unreachable ({type(error).__name__})"
        else:
            if not pending:
                return
            reason = f"{pending} migration(s) not applied yet: run `sealbox migrate`"
        delay = MIGRATION_WAIT_DELAYS_SECONDS[min(checks, len(MIGRATION_WAIT_DELAYS_SECONDS) - 1)]
        checks += 1
        logger.warning("worker waiting: %s; checking again in %d s", reason, delay)
        connections.close_all()
        sleep(delay)


def run_worker(*, interval: float = 1.0) -> None:
    """Run tasks until a signal stops the worker; database outages are waited out."""
    from django_tasks_db.management.commands.db_worker import Worker

    name = services.worker_name()
    services.start_heartbeat_thread(name)
    worker = Worker(
        queue_names=["default"],
        interval=interval,
        batch=False,
        backend_name="default",
        startup_delay=True,
        max_tasks=None,
        worker_id=name,
        excluded_queue_names=[],
    )
    worker.configure_signals()
    failures = 0
    while worker.running:
        try:
            worker.run()
            return
        except (OperationalError, InterfaceError) as error:
            delay = RECONNECT_DELAYS_SECONDS[min(failures, len(RECONNECT_DELAYS_SECONDS) - 1)]
            failures += 1
            logger.warning(
                "worker lost the database (%s); retrying in %d s", type(error).__name__, delay
            )
            connections.close_all()
            time.sleep(delay)
