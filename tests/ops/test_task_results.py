"""The purge deletes the result rows of tasks that ended more than a day ago."""

from datetime import timedelta

import pytest
from django.utils import timezone
from django_tasks_db.models import DBTaskResult

from sealbox.ops import services

pytestmark = pytest.mark.django_db


def task_row(status: str, finished_ago: timedelta | None) -> DBTaskResult:
    now = timezone.now()
    return DBTaskResult.objects.create(
        task_path="sealbox.notify.tasks.deliver_email",
        args_kwargs={"args": [], "kwargs": {"outbox_id": "0"}},
        status=status,
        finished_at=now - finished_ago if finished_ago is not None else None,
        backend_name="default",
    )


def test_finished_task_rows_older_than_a_day_are_deleted():
    old_success = task_row("SUCCESSFUL", timedelta(days=1, minutes=1))
    old_failure = task_row("FAILED", timedelta(days=3))
    recent = task_row("SUCCESSFUL", timedelta(hours=23))
    waiting = task_row("READY", None)
    running = task_row("RUNNING", None)

    assert services.purge_finished_tasks() == 2

    left = set(DBTaskResult.objects.values_list("pk", flat=True))
    assert left == {recent.pk, waiting.pk, running.pk}
    assert old_success.pk not in left and old_failure.pk not in left


def test_the_purge_prunes_them():
    from sealbox import cli

    task_row("SUCCESSFUL", timedelta(days=2))
    cli.run_purge()
    assert not DBTaskResult.objects.exists()
