"""The background worker survives database outages, leases its tasks, and is restarted."""

import os
import signal
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import pytest

from sealbox.ops import services
from sealbox.ops.worker import TASK_LEASE, requeue_abandoned_tasks
from tests.processes import SHARED_SECRET_KEY, TcpProxy, clean_env, empty_postgres_database

SEALBOX = os.path.join(os.path.dirname(sys.executable), "sealbox")


def running_task(worker: str, started_ago: timedelta):
    from django_tasks_db.models import DBTaskResult

    from sealbox.notify.tasks import deliver_email

    task = DBTaskResult.objects.create(
        task_path=deliver_email.module_path,
        args_kwargs={"args": [], "kwargs": {"to": ["a@example.org"], "subject": "s"}},
        status="RUNNING",
        started_at=services.clock.now() - started_ago,
        worker_ids=[worker],
        backend_name="default",
    )
    return task


@pytest.mark.django_db
def test_task_of_a_dead_worker_goes_back_to_the_queue():
    abandoned = running_task("dead-node:7", timedelta(seconds=30))
    assert requeue_abandoned_tasks() == 1
    abandoned.refresh_from_db()
    assert abandoned.status == "READY" and abandoned.started_at is None


@pytest.mark.django_db
def test_task_of_a_live_worker_keeps_its_lease_until_it_ends():
    services.beat("busy-node:8", services.clock.now())
    fresh = running_task("busy-node:8", timedelta(seconds=30))
    overdue = running_task("busy-node:8", TASK_LEASE + timedelta(seconds=1))
    assert requeue_abandoned_tasks() == 1
    fresh.refresh_from_db()
    overdue.refresh_from_db()
    assert fresh.status == "RUNNING"
    assert overdue.status == "READY"


def wait_for(predicate, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.3)
    pytest.fail(f"timed out waiting for {what}")


def queue_email(env: dict[str, str], subject: str) -> None:
    code = (
        "from sealbox.notify.services import send_email; "
        f"send_email('a@example.org', {subject!r}, 'body')"
    )
    subprocess.run(  # noqa: S603
        [SEALBOX, "manage", "shell", "-c", code], env=env, check=True, timeout=60
    )


def delivered(mail_dir: Path) -> list[str]:
    return [p.read_text() for p in mail_dir.glob("*.log")] if mail_dir.exists() else []


def test_worker_carries_on_after_a_database_outage(tmp_path):
    from urllib.parse import urlsplit, urlunsplit

    with empty_postgres_database() as url:
        parts = urlsplit(url)
        proxy = TcpProxy(parts.hostname, parts.port or 5432)
        through_proxy = urlunsplit(parts._replace(netloc=f"postgres@127.0.0.1:{proxy.port}"))
        mail_dir = tmp_path / "mail"
        env = clean_env(
            tmp_path,
            SEALBOX_DATABASE_URL=url,
            SEALBOX_SECRET_KEY=SHARED_SECRET_KEY,
            SEALBOX_EMAIL_URL=f"filemail:///{mail_dir}",
        )
        subprocess.run([SEALBOX, "migrate"], env=env, check=True, timeout=120)  # noqa: S603
        worker = subprocess.Popen(  # noqa: S603
            [SEALBOX, "worker", "--no-migrate", "--purge-interval", "1"],
            env={**env, "SEALBOX_DATABASE_URL": through_proxy},
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        try:
            queue_email(env, "before the outage")
            wait_for(lambda: len(delivered(mail_dir)) == 1, 30, "the first email")
            proxy.outage(6)  # what the issue saw: PostgreSQL restarted, 6 s away
            assert worker.poll() is None, "the worker exited during the outage"
            queue_email(env, "after the outage")
            wait_for(lambda: len(delivered(mail_dir)) == 2, 60, "the email after the outage")
            assert worker.poll() is None, "the worker exited"
        finally:
            worker.send_signal(signal.SIGTERM)
            output, _ = worker.communicate(timeout=30)
            proxy.close()
        assert any("after the outage" in mail for mail in delivered(mail_dir)), output


def child_pids(pid: int) -> set[int]:
    # Each thread lists the children it started; the restart comes from a watch thread.
    pids = set()
    for children in Path(f"/proc/{pid}/task").glob("*/children"):
        try:
            pids.update(int(p) for p in children.read_text().split())
        except OSError:
            continue  # the thread ended meanwhile
    return pids


def test_serve_restarts_its_worker_when_it_dies(tmp_path):
    from tests.test_serve import free_port, get

    env = clean_env(tmp_path)
    port = free_port()
    process = subprocess.Popen(  # noqa: S603
        [SEALBOX, "serve", "--port", str(port), "--workers", "1"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    base = f"http://127.0.0.1:{port}"

    def worker_pid() -> int | None:
        for child in child_pids(process.pid):
            cmdline = Path(f"/proc/{child}/cmdline").read_bytes().split(b"\0")
            if b"worker" in cmdline:
                return child
        return None

    try:
        wait_for(lambda: _answers(get, base + "/readyz"), 90, "the worker's first heartbeat")
        first = worker_pid()
        assert first
        os.kill(first, signal.SIGKILL)
        second = wait_for(lambda: (pid := worker_pid()) and pid != first and pid, 30, "restart")
        assert second != first
    finally:
        os.killpg(process.pid, signal.SIGINT)
        output, _ = process.communicate(timeout=30)
    assert "the background worker stopped" in output


def _answers(get, url: str) -> bool:
    try:
        return get(url)[0] == 200
    except OSError:
        return False


@pytest.fixture(params=["sqlite", "postgresql"])
def empty_database_env(request, tmp_path):
    """The environment of a node whose database has no tables yet."""
    extra = {"SEALBOX_EMAIL_URL": f"filemail:///{tmp_path / 'mail'}"}
    if request.param == "sqlite":
        yield clean_env(tmp_path, **extra)
        return
    with empty_postgres_database() as url:
        yield clean_env(
            tmp_path, SEALBOX_DATABASE_URL=url, SEALBOX_SECRET_KEY=SHARED_SECRET_KEY, **extra
        )


def test_worker_started_before_the_migrations_waits_for_them(tmp_path, empty_database_env):
    env = empty_database_env
    log = tmp_path / "worker.log"
    with open(log, "w") as out:
        worker = subprocess.Popen(  # noqa: S603
            [SEALBOX, "worker", "--no-migrate", "--purge-interval", "1"],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        wait_for(
            lambda: worker.poll() is not None or "worker waiting" in log.read_text(),
            60,
            "the worker to wait",
        )
        assert worker.poll() is None, log.read_text()
        subprocess.run([SEALBOX, "migrate"], env=env, check=True, timeout=120)  # noqa: S603
        queue_email(env, "after the migrations")
        wait_for(lambda: len(delivered(tmp_path / "mail")) == 1, 60, "the email")
        assert worker.poll() is None, log.read_text()
    finally:
        worker.send_signal(signal.SIGTERM)
        worker.wait(timeout=30)
    assert "migration(s) not applied yet: run `sealbox migrate`" in log.read_text()
