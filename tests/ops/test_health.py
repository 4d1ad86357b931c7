"""/healthz is liveness (instant, touches nothing); /readyz checks each dependency in 3 s."""

import socket
import threading
import time
from datetime import timedelta

import pytest

from sealbox import config
from sealbox.ops import services
from sealbox.ops.models import WorkerHeartbeat

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def live_worker():
    services.beat("node-a:1", services.clock.now())


def test_healthz_is_liveness_only(client, settings, tmp_path, django_assert_num_queries):
    blocked = tmp_path / "not-a-dir"
    blocked.write_text("x")
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": str(blocked)},
        },
    }
    # Broken storage, no worker: the process is alive, and says so without a query.
    with django_assert_num_queries(0):
        response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_readyz_ok_with_database_storage_queue_and_a_worker(client, live_worker):
    response = client.get("/readyz")
    assert response.status_code == 200, response.json()
    body = response.json()
    assert {k: body[k] for k in ("status", "database", "storage", "queue", "workers")} == {
        "status": "ok",
        "database": "ok",
        "storage": "ok",
        "queue": "ok",
        "workers": "ok",
    }


def test_readyz_names_missing_workers(client):
    response = client.get("/readyz")
    assert response.status_code == 503
    assert response.json()["workers"] == "failed"
    assert "no background worker" in response.json()["details"]["workers"]


def test_readyz_stale_heartbeat_is_no_worker(client, clock):
    services.beat("node-a:1", clock())
    clock.advance(seconds=91)
    assert client.get("/readyz").json()["workers"] == "failed"


def test_readyz_names_a_queue_nobody_drains(client, live_worker, settings):
    from django_tasks_db.models import DBTaskResult

    settings.TASKS = {"default": {"BACKEND": "django_tasks_db.DatabaseBackend"}}
    from sealbox.notify.tasks import deliver_email

    deliver_email.enqueue(to=["a@example.org"], subject="s", text="t")
    DBTaskResult.objects.update(enqueued_at=services.clock.now() - timedelta(minutes=6))
    response = client.get("/readyz")
    assert response.status_code == 503
    assert response.json()["queue"] == "failed"
    assert "360 s old" in response.json()["details"]["queue"]


def test_readyz_never_writes_to_storage(client, live_worker, settings, tmp_path):
    blobs = tmp_path / "blobs"
    blobs.mkdir()
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": str(blobs)},
        },
    }
    assert client.get("/readyz").status_code == 200
    assert list(blobs.iterdir()) == []


@pytest.fixture
def hanging_s3(settings, tmp_path):
    """An S3 endpoint that accepts connections and never answers (a hung store)."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(16)
    accepted = []
    stop = threading.Event()

    def accept() -> None:
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                accepted.append(server.accept()[0])
            except OSError:
                continue

    threading.Thread(target=accept, daemon=True).start()
    port = server.getsockname()[1]
    settings.STORAGES = {
        **settings.STORAGES,
        "default": config.load(
            {
                "SEALBOX_DATA_DIR": str(tmp_path),
                "SEALBOX_STORAGE_URL": f"s3://k:s@bucket?endpoint_url=http://127.0.0.1:{port}"
                "&region=us-east-1",
            }
        ).storage,
    }
    yield
    stop.set()
    for connection in accepted:
        connection.close()
    server.close()


def test_readyz_answers_within_3_seconds_when_storage_hangs(client, live_worker, hanging_s3):
    started = time.monotonic()
    response = client.get("/readyz")
    elapsed = time.monotonic() - started
    assert elapsed < 3.0, elapsed
    assert response.status_code == 503
    body = response.json()
    assert body["storage"] == "failed" and body["database"] == "ok"
    assert "no answer within" in body["details"]["storage"]


def s3_storage_of(settings, tmp_path, endpoint: str, bucket: str) -> None:
    """The storage an operator's SEALBOX_STORAGE_URL gives, for `bucket` on `endpoint`."""
    settings.STORAGES = {
        **settings.STORAGES,
        "default": config.load(
            {
                "SEALBOX_DATA_DIR": str(tmp_path),
                "SEALBOX_STORAGE_URL": f"s3://k:s@{bucket}?endpoint_url={endpoint}"
                "&region=us-east-1",
            }
        ).storage,
    }


def test_readyz_names_a_bucket_that_does_not_exist(client, live_worker, settings, tmp_path):
    from moto.server import ThreadedMotoServer

    from tests.exchange.test_storage_s3 import free_port

    port = free_port()
    moto = ThreadedMotoServer(ip_address="127.0.0.1", port=port)
    moto.start()
    try:
        endpoint = f"http://127.0.0.1:{port}"
        s3_storage_of(settings, tmp_path, endpoint, "sealbox-blobs-mistyped")
        # A fresh moto server loads its S3 backend on the first request, which can take
        # longer than the readiness deadline on a loaded machine: warm it up first, and
        # let a timed-out first probe be followed by a timely one.
        import boto3

        boto3.client(
            "s3",
            endpoint_url=endpoint,
            aws_access_key_id="k",
            aws_secret_access_key="s",
            region_name="us-east-1",
        ).list_buckets()
        for _ in range(10):
            response = client.get("/readyz")
            assert response.status_code == 503
            body = response.json()
            assert body["storage"] == "failed"
            if "no answer within" not in body["details"]["storage"]:
                break
        assert body["details"]["storage"] == "the bucket sealbox-blobs-mistyped does not exist"

        import boto3

        s3 = boto3.client(
            "s3",
            endpoint_url=endpoint,
            aws_access_key_id="k",
            aws_secret_access_key="s",  # noqa: S106
            region_name="us-east-1",
        )
        s3.create_bucket(Bucket="sealbox-blobs")
        s3_storage_of(settings, tmp_path, endpoint, "sealbox-blobs")
        response = client.get("/readyz")
        assert response.status_code == 200, response.json()
        assert s3.list_objects_v2(Bucket="sealbox-blobs").get("KeyCount") == 0  # a read only
    finally:
        moto.stop()


def test_heartbeat_rows_are_purged_after_a_day(clock):
    services.beat("old:1", clock())
    clock.advance(days=2)
    services.beat("new:2", clock())
    assert services.purge_stale_heartbeats() == 1
    assert list(WorkerHeartbeat.objects.values_list("name", flat=True)) == ["new:2"]
