"""Liveness, readiness and worker heartbeats.

Readiness answers within a deadline whatever hangs: each check runs in its own thread
and a check still running at the deadline is reported as timed out, so a load balancer
never waits on a stuck database or object store.
"""

from __future__ import annotations

import os
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from django.core.files.storage import FileSystemStorage, storages
from django.db import IntegrityError, close_old_connections, connection, connections, transaction
from django.db.models import F

from sealbox.lib import clock
from sealbox.ops.models import EventCounter, WorkerHeartbeat

READINESS_DEADLINE_SECONDS = 2.5
HEARTBEAT_INTERVAL_SECONDS = 15
# A worker silent for this long is taken for dead (several missed beats).
HEARTBEAT_STALE_AFTER = timedelta(seconds=90)
# A ready task older than this means the workers are not keeping up (or not running).
QUEUE_STALE_AFTER = timedelta(minutes=5)
READINESS_PROBE_NAME = "readyz-probe"

# Readiness checks run here, not on the request's thread; a check stuck on a dead peer
# keeps its thread, and the pool's size bounds how many such threads can pile up.
_executor = ThreadPoolExecutor(max_workers=8, thread_name_prefix="sealbox-readyz")


@dataclass(frozen=True)
class CheckResult:
    ok: bool
    detail: str = ""


def _in_own_connection(check):
    def run() -> CheckResult:
        try:
            return check()
        finally:
            connections.close_all()  # this thread's connections only

    return run


def check_database() -> CheckResult:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        cursor.fetchone()
    return CheckResult(True)


def check_storage() -> CheckResult:
    # A read, never a write: probing must not fill the store. On local files a missing
    # or read-only folder does not fail a read, so its state is asked directly.
    storage = storages["default"]
    if isinstance(storage, FileSystemStorage):
        location = Path(storage.location)
        if not location.exists() and location.parent.is_dir():
            return CheckResult(True)  # created on the first upload
        if not location.is_dir() or not os.access(location, os.R_OK | os.W_OK | os.X_OK):
            return CheckResult(False, "the blob folder is missing or not writable")
        return CheckResult(True)
    if hasattr(storage, "bucket_name") and hasattr(storage, "connection"):
        return _check_bucket(storage)
    storage.exists(READINESS_PROBE_NAME)
    return CheckResult(True)


def _check_bucket(storage) -> CheckResult:
    """One HEAD request on the bucket itself: a HEAD on an object answers 404 alike for a
    missing object and a missing bucket, so a mistyped or deleted bucket passed for ready
    while every upload failed."""
    from botocore.exceptions import ClientError

    try:
        storage.connection.meta.client.head_bucket(Bucket=storage.bucket_name)
    except ClientError as error:
        status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        if status == 404:
            return CheckResult(False, f"the bucket {storage.bucket_name} does not exist")
        if status == 403:
            return CheckResult(False, f"access to the bucket {storage.bucket_name} is denied")
        raise
    return CheckResult(True)


def oldest_ready_task_age(now: datetime | None = None) -> timedelta | None:
    from django_tasks_db.models import DBTaskResult

    oldest = (
        DBTaskResult.objects.ready()
        .order_by("enqueued_at")
        .values_list("enqueued_at", flat=True)
        .first()
    )
    return None if oldest is None else (now or clock.now()) - oldest


def check_queue() -> CheckResult:
    age = oldest_ready_task_age()
    if age is not None and age > QUEUE_STALE_AFTER:
        return CheckResult(False, f"oldest waiting task is {int(age.total_seconds())} s old")
    return CheckResult(True)


def live_workers(now: datetime | None = None) -> int:
    cutoff = (now or clock.now()) - HEARTBEAT_STALE_AFTER
    return WorkerHeartbeat.objects.filter(beat_at__gte=cutoff).count()


def check_workers() -> CheckResult:
    count = live_workers()
    if count == 0:
        return CheckResult(False, "no background worker has reported in the last 90 s")
    return CheckResult(True, f"{count} alive")


READINESS_CHECKS = {
    "database": check_database,
    "storage": check_storage,
    "queue": check_queue,
    "workers": check_workers,
}


def readiness(deadline: float = READINESS_DEADLINE_SECONDS) -> dict[str, CheckResult]:
    futures = {
        name: _executor.submit(_in_own_connection(check))
        for name, check in READINESS_CHECKS.items()
    }
    results: dict[str, CheckResult] = {}
    expires = time.monotonic() + deadline
    for name, future in futures.items():
        try:
            results[name] = future.result(timeout=max(0.0, expires - time.monotonic()))
        except FutureTimeout:
            results[name] = CheckResult(False, f"no answer within {deadline:g} s")
        except Exception as error:  # the check's own failure is the answer
            results[name] = CheckResult(False, type(error).__name__)
    return results


# --- heartbeats -----------------------------------------------------------------------


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def beat(name: str, started_at: datetime) -> None:
    WorkerHeartbeat.objects.update_or_create(
        name=name, defaults={"started_at": started_at, "beat_at": clock.now()}
    )


# How long the database task backend's result rows of finished tasks are kept. They hold
# a task's path and arguments (ids only: no Sealbox task carries content) and, for a
# failure, the traceback; a day is enough to look at a failure, and the table stays small.
FINISHED_TASK_LIFETIME = timedelta(days=1)


def purge_finished_tasks(older_than: timedelta = FINISHED_TASK_LIFETIME) -> int:
    """Delete the result rows of tasks that ended (successfully or not) before `older_than`
    ago; a waiting or running task is never touched."""
    from django_tasks_db.models import DBTaskResult

    deleted, _ = DBTaskResult.objects.filter(
        status__in=["SUCCESSFUL", "FAILED"], finished_at__lt=clock.now() - older_than
    ).delete()
    return deleted


def purge_stale_heartbeats(older_than: timedelta = timedelta(days=1)) -> int:
    deleted, _ = WorkerHeartbeat.objects.filter(beat_at__lt=clock.now() - older_than).delete()
    return deleted


def start_heartbeat_thread(name: str, interval: float = HEARTBEAT_INTERVAL_SECONDS) -> None:
    """Record this worker's heartbeat every `interval` seconds (a daemon thread).

    A failed beat (database restarting) is skipped, not fatal: the next one retries."""
    import logging

    logger = logging.getLogger("sealbox.worker")
    started_at = clock.now()

    def loop() -> None:
        while True:
            try:
                beat(name, started_at)
            except Exception as error:
                logger.warning("worker heartbeat failed: %s", type(error).__name__)
            finally:
                close_old_connections()
            time.sleep(interval)

    threading.Thread(target=loop, name="sealbox-heartbeat", daemon=True).start()


# --- background counters ----------------------------------------------------------------


def count(name: str, amount: int = 1) -> None:
    """Add `amount` to a cluster-wide counter (an atomic UPDATE; created on first use)."""
    if amount <= 0:
        return
    if EventCounter.objects.filter(name=name).update(value=F("value") + amount):
        return
    try:
        with transaction.atomic():
            EventCounter.objects.create(name=name, value=amount)
    except IntegrityError:  # created meanwhile by another worker
        EventCounter.objects.filter(name=name).update(value=F("value") + amount)
