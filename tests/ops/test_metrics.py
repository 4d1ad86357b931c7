"""/metrics: Prometheus figures for a bearer token or an allowed address, 404 otherwise."""

import pytest

from sealbox.ops import services
from tests.exchange.conftest import (  # noqa: F401 - fixtures
    recipient_transport,
    send,
    sender,
    sender_transport,
)

pytestmark = pytest.mark.django_db

TOKEN = "metrics-token-0123456789abcdef"


@pytest.fixture
def metrics_on(settings):
    settings.SEALBOX_METRICS_TOKEN = TOKEN
    settings.SEALBOX_METRICS_ALLOW = ["10.1.0.0/16"]


def scrape(client, **extra) -> str:
    response = client.get("/metrics", **extra)
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain")
    return response.content.decode()


def test_off_until_configured(client):
    assert client.get("/metrics").status_code == 404


def test_token_or_allowed_address(client, metrics_on):
    assert client.get("/metrics").status_code == 404
    assert (
        client.get("/metrics", HTTP_AUTHORIZATION="Bearer wrong-token-0000000000").status_code
        == 404
    )
    scrape(client, HTTP_AUTHORIZATION=f"Bearer {TOKEN}")
    scrape(client, REMOTE_ADDR="10.1.2.3")
    assert client.get("/metrics", REMOTE_ADDR="10.2.0.1").status_code == 404


def test_requests_queue_workers_and_background_counts(client, metrics_on, settings):
    from sealbox.notify.tasks import deliver_email

    client.get("/login/")
    settings.TASKS = {"default": {"BACKEND": "django_tasks_db.DatabaseBackend"}}
    deliver_email.enqueue(to=["a@example.org"], subject="s", text="t")
    services.beat("node:1", services.clock.now())
    services.count("emails_sent", 2)
    services.count("emails_sent")
    text = scrape(client, HTTP_AUTHORIZATION=f"Bearer {TOKEN}")
    assert 'sealbox_http_requests_total{method="GET",route="login/",status="200"}' in text
    assert "sealbox_http_request_duration_seconds_bucket" in text
    assert 'sealbox_tasks{state="ready"} 1.0' in text
    assert "sealbox_task_oldest_ready_age_seconds" in text
    assert "sealbox_workers_alive 1.0" in text
    assert 'sealbox_background_total{what="emails_sent"} 3.0' in text
    assert "sealbox_audit_events" in text


def test_counters_add_up_from_parallel_workers(transactional_db):
    import threading

    from django.db import connection

    from sealbox.ops.models import EventCounter

    if connection.vendor == "sqlite" and connection.is_in_memory_db():
        pytest.skip("threads need a shared database file or PostgreSQL")
    barrier = threading.Barrier(8)

    def work() -> None:
        from django.db import connections

        barrier.wait()
        for _ in range(10):
            services.count("sms_sent")
        connections.close_all()

    threads = [threading.Thread(target=work) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert EventCounter.objects.get(name="sms_sent").value == 80


def test_unlocks_and_uploads_are_counted(client, metrics_on, send, recipient_transport):  # noqa: F811
    from sealbox.client import messages as client_lib

    sent = send(body="counted", attachments=[client_lib.Attachment("a.bin", data=b"x" * 1000)])
    email = next(iter(sent.links))
    client_lib.open_message(recipient_transport, sent.links[email], code=sent.opening_codes[email])
    text = scrape(client, HTTP_AUTHORIZATION=f"Bearer {TOKEN}")
    assert 'sealbox_unlocks_total{outcome="opened"}' in text
    assert "sealbox_upload_chunks_total" in text
    assert "sealbox_upload_bytes_total" in text
