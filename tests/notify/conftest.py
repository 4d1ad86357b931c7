"""Helpers for delivery tests: the database task backend (as in production) and the
worker run the way `sealbox worker` runs it."""

from __future__ import annotations

import pytest
from django.core.management import call_command

from tests.exchange.conftest import (  # noqa: F401 - fixtures
    recipient_transport,
    send,
    sender,
    sender_transport,
)
from tests.exchange.test_storage_s3 import moto_endpoint, s3_storage  # noqa: F401 - fixtures

DATABASE_TASKS = {"default": {"BACKEND": "django_tasks_db.DatabaseBackend"}}


@pytest.fixture
def database_tasks(settings):
    """Tasks stay queued in the database until `run_worker()` (needs transactional_db:
    the worker manages its own transactions and connections)."""
    settings.TASKS = DATABASE_TASKS
    yield
    # What the test left queued keeps a key in the (shared) test storage: destroy it.
    from sealbox.notify import keystore
    from sealbox.notify.models import OutboxMessage

    for outbox_id in OutboxMessage.objects.filter(status="queued").values_list("pk", flat=True):
        keystore.destroy(outbox_id)


def run_worker() -> None:
    """What `sealbox worker` runs (cli.cmd_worker → db_worker), until the queue is empty."""
    call_command(
        "db_worker", "--batch", "--no-startup-delay", "--interval", "0", "--no-reload", verbosity=0
    )
