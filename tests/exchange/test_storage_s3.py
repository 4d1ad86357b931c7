"""The same flows on S3-compatible storage: a real moto server over HTTP on loopback."""

import socket

import boto3
import pytest
from django.core.files.storage import default_storage

from sealbox import config
from sealbox.client import messages as client
from sealbox.exchange.models import Message

pytestmark = pytest.mark.django_db


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def moto_endpoint():
    from moto.server import ThreadedMotoServer

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port)
    server.start()
    yield f"http://127.0.0.1:{port}"
    server.stop()


@pytest.fixture
def s3_storage(moto_endpoint, settings, tmp_path):
    s3 = boto3.client(
        "s3",
        endpoint_url=moto_endpoint,
        aws_access_key_id="test",
        aws_secret_access_key="test",
        region_name="us-east-1",
    )
    s3.create_bucket(Bucket="sealbox-blobs")
    # The storage comes from SEALBOX_STORAGE_URL, exactly as an operator sets it.
    parsed = config.load(
        {
            "SEALBOX_DATA_DIR": str(tmp_path),
            "SEALBOX_STORAGE_URL": f"s3://test:test@sealbox-blobs/tenant1?endpoint_url="
            f"{moto_endpoint}&region=us-east-1",
        }
    ).storage
    settings.STORAGES = {**settings.STORAGES, "default": parsed}  # resets default_storage
    yield s3
    for item in s3.list_objects_v2(Bucket="sealbox-blobs").get("Contents", []):
        s3.delete_object(Bucket="sealbox-blobs", Key=item["Key"])
    s3.delete_bucket(Bucket="sealbox-blobs")


def keys(s3) -> list[str]:
    return [o["Key"] for o in s3.list_objects_v2(Bucket="sealbox-blobs").get("Contents", [])]


def test_upload_resume_download_delete_on_s3(
    s3_storage, send, sender_transport, recipient_transport, monkeypatch
):
    assert default_storage.__class__.__name__ == "S3Storage"
    monkeypatch.setattr(client, "CHUNK_BYTES", 64 * 1024)  # several chunk objects
    data = bytes(range(256)) * 1000  # 256 kB
    sent = send(attachments=[client.Attachment("big.bin", data=data)], max_opens=2)
    stored = keys(s3_storage)
    assert len(stored) >= 5 and all(k.startswith("tenant1/messages/") for k in stored)
    opened = client.open_message(
        recipient_transport,
        sent.links["client@example.org"],
        code=sent.opening_codes["client@example.org"],
    )
    assert opened.files["big.bin"] == data
    status, _ = sender_transport.request("DELETE", f"/api/v1/messages/{sent.id}")
    assert status == 204
    assert keys(s3_storage) == []
    assert Message.objects.get().blobs_deleted_at


def test_resume_after_an_interrupted_chunk_on_s3(s3_storage, sender_transport):
    from tests.exchange.test_send import create_draft

    created = create_draft(sender_transport, size=300)
    blob = created["blobs"][1]
    base = f"/api/v1/messages/{created['id']}/blobs/{blob['id']}"
    assert sender_transport.request("PUT", base + "?offset=0", body=b"a" * 100)[0] == 200
    # The client lost the answer and retries the same chunk: refused, nothing doubled.
    status, data = sender_transport.request("PUT", base + "?offset=0", body=b"a" * 100)
    assert status == 409 and data["error"] == "offset"
    status, state = sender_transport.request("GET", f"/api/v1/messages/{created['id']}")
    assert state["blobs"][1]["stored"] == 100
    assert sender_transport.request("PUT", base + "?offset=100", body=b"b" * 200)[0] == 200
    assert len(keys(s3_storage)) == 2


def test_readyz_checks_s3(s3_storage, client):
    assert client.get("/readyz").json()["storage"] == "ok"
