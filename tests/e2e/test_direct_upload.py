"""Direct mode in a real browser: the send page PUTs the ciphertext parts to the object
store (a moto server) by presigned URLs and the recipient's page GETs them back from it,
under the page's Content-Security-Policy (connect-src names the store's origin)."""

import copy
import re

import pytest
from playwright.sync_api import expect

from sealbox import config
from sealbox.exchange import direct
from sealbox.exchange.models import Blob, Message, MessageState
from sealbox.ops import metrics
from tests.e2e.test_messages import LINK, compose, download_all, open_as_recipient
from tests.exchange.test_storage_s3 import free_port

pytestmark = pytest.mark.django_db(transaction=True)

BUCKET = "sealbox-blobs"
# The CORS rule docs/operations.md tells operators to set on the bucket. (moto's server
# answers CORS for every origin whatever the rule; a real store applies this one.)
CORS_RULE = {
    "AllowedOrigins": ["{base}"],
    "AllowedMethods": ["PUT", "GET"],
    "AllowedHeaders": ["*"],
    "ExposeHeaders": ["ETag"],
    "MaxAgeSeconds": 3600,
}


@pytest.fixture
def direct_store(settings, tmp_path, live_server, monkeypatch):
    import boto3
    import moto.s3.models
    from moto.server import ThreadedMotoServer

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    s3 = boto3.client(
        "s3",
        endpoint_url=endpoint,
        aws_access_key_id="test",
        aws_secret_access_key="test",
        region_name="us-east-1",
    )
    s3.create_bucket(Bucket=BUCKET)
    rule = {**CORS_RULE, "AllowedOrigins": [live_server.url]}
    s3.put_bucket_cors(Bucket=BUCKET, CORSConfiguration={"CORSRules": [rule]})
    monkeypatch.setattr(moto.s3.models, "S3_UPLOAD_PART_MIN_SIZE", 1024)
    monkeypatch.setattr(direct, "DIRECT_PART_BYTES", 1024 * 1024)  # several parts
    loaded = config.load(
        {
            "SEALBOX_DATA_DIR": str(tmp_path),
            "SEALBOX_STORAGE_URL": f"s3://test:test@{BUCKET}?endpoint_url={endpoint}"
            "&region=us-east-1",
        }
    )
    settings.STORAGES = {**settings.STORAGES, "default": loaded.storage}
    settings.SEALBOX_DIRECT_STORAGE = loaded.direct_storage
    # What settings.py computes at start-up from the same configuration.
    policy = copy.deepcopy(settings.CONTENT_SECURITY_POLICY)
    policy["DIRECTIVES"]["connect-src"] = ["'self'", *loaded.direct_storage.origins]
    settings.CONTENT_SECURITY_POLICY = policy
    s3.endpoint = endpoint
    yield s3
    server.stop()


def test_send_and_open_straight_through_the_store(
    direct_store, member_page, new_context, mail_folder, attachments, tmp_path
):
    uploaded_before = metrics.UPLOADED_BYTES._value.get()
    store_requests: list[str] = []
    page = member_page
    page.on(
        "request",
        lambda r: store_requests.append(r.method) if r.url.startswith(direct_store.endpoint) else 0,
    )
    compose(
        page,
        email="client@example.org",
        verification="Opening code",
        subject="Scans, direct",
        files=attachments,
    )
    page.get_by_role("button", name="Send", exact=True).click()
    expect(page.get_by_role("heading", name="Your message is sent")).to_be_visible(timeout=60000)
    message = Message.objects.get(subject="Scans, direct")
    assert message.state == MessageState.SENT
    # Every byte went to the store: a manifest, a small file, a file of six 1 MiB parts.
    assert store_requests.count("PUT") == 1 + 1 + 6
    assert metrics.UPLOADED_BYTES._value.get() == uploaded_before
    objects = direct_store.list_objects_v2(Bucket=BUCKET)["Contents"]
    assert sorted(o["Size"] for o in objects) == sorted(b.size for b in message.blobs.all())
    assert not Blob.objects.exclude(upload_id="").exists()

    texts = mail_folder.texts_to("client@example.org")
    link = LINK.search(texts[0]).group(0)
    code = re.search(r"\b([A-Z2-9]{4}-[A-Z2-9]{4})\b", "\n".join(texts)).group(1)
    recipient = open_as_recipient(new_context, link)
    downloads: list[str] = []
    recipient.on(
        "request",
        lambda r: downloads.append(r.method) if r.url.startswith(direct_store.endpoint) else 0,
    )
    recipient.get_by_label("Opening code").fill(code)
    recipient.get_by_role("button", name="Open").click()
    expect(recipient.get_by_text("Here are the documents.")).to_be_visible(timeout=30000)
    download_all(recipient, attachments, tmp_path)
    assert downloads.count("GET") == 3  # the manifest and both files, from the store
