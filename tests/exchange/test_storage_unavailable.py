"""Storage unavailable is a 503 with a message that says so: API, pages, CLI, purge.

S3 is a real moto server, reached through a TCP switch that can cut it off (as a store
that goes down), or a port where nothing listens; local storage is a blob folder that
cannot be a folder (a file stands where its parent should be)."""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError
from django.core import mail
from django.test import Client

from sealbox import config
from sealbox.audit.models import Event
from sealbox.client import messages as client
from sealbox.crypto import links
from sealbox.exchange import services as exchange
from sealbox.exchange import storage
from sealbox.exchange.models import BlobChunk, Message, MessageState
from sealbox.lib.errors import StorageUnavailable, is_storage_outage, storage_calls
from sealbox.notify.models import OutboxMessage
from tests.client.test_cli import api_token, cli_lines, run, server  # noqa: F401 - fixtures
from tests.exchange.test_send import create_draft
from tests.exchange.test_storage_s3 import free_port, keys, moto_endpoint  # noqa: F401
from tests.processes import TcpProxy

pytestmark = pytest.mark.django_db

MESSAGE = "File storage is unavailable right now. Try again in a few minutes."
MESSAGE_FR = (
    "Le stockage des fichiers est indisponible pour le moment. Réessayez dans quelques minutes."
)


def use_storage(settings, tmp_path, url: str) -> None:
    """Point the app at SEALBOX_STORAGE_URL `url`, exactly as an operator sets it."""
    parsed = config.load({"SEALBOX_DATA_DIR": str(tmp_path), "SEALBOX_STORAGE_URL": url}).storage
    settings.STORAGES = {**settings.STORAGES, "default": parsed}  # resets default_storage


def s3_url(endpoint: str) -> str:
    return f"s3://test:test@sealbox-blobs/tenant1?endpoint_url={endpoint}&region=us-east-1"


@pytest.fixture
def s3_switch(moto_endpoint, settings, tmp_path):  # noqa: F811
    """A real S3 (moto) behind a switch: `.go_down()` cuts it off, `.come_back()`."""
    import boto3

    s3 = boto3.client(
        "s3",
        endpoint_url=moto_endpoint,
        aws_access_key_id="test",
        aws_secret_access_key="test",
        region_name="us-east-1",
    )
    s3.create_bucket(Bucket="sealbox-blobs")
    host, port = moto_endpoint.removeprefix("http://").split(":")
    switch = TcpProxy(host, int(port))
    switch.s3 = s3
    use_storage(settings, tmp_path, s3_url(f"http://127.0.0.1:{switch.port}"))
    yield switch
    switch.close()
    for item in s3.list_objects_v2(Bucket="sealbox-blobs").get("Contents", []):
        s3.delete_object(Bucket="sealbox-blobs", Key=item["Key"])
    s3.delete_bucket(Bucket="sealbox-blobs")


@pytest.fixture
def s3_nowhere(settings, tmp_path):
    """S3 at a port where nothing listens (connection refused)."""
    use_storage(settings, tmp_path, s3_url(f"http://127.0.0.1:{free_port()}"))


@pytest.fixture
def broken_local_storage(settings, tmp_path):
    """Local storage whose folder cannot be made: a file stands where its parent should."""
    (tmp_path / "not-a-folder").write_text("")

    def breaks() -> None:
        use_storage(settings, tmp_path, f"file://{tmp_path / 'not-a-folder' / 'blobs'}")

    return breaks


def assert_unavailable(status: int, data: dict | None) -> None:
    assert status == 503, data
    assert data == {"error": "storage_unavailable", "message": MESSAGE, "retry_after": 60}


def put(transport, draft: dict, blob: int, body: bytes, offset: int = 0):
    blob_id = draft["blobs"][blob]["id"]
    path = f"/api/v1/messages/{draft['id']}/blobs/{blob_id}?offset={offset}"
    return transport.request("PUT", path, body=body)


# --- what counts as an outage -------------------------------------------------------------


def boto_answer(status: int, code: str) -> ClientError:
    return ClientError(
        {"Error": {"Code": code}, "ResponseMetadata": {"HTTPStatusCode": status}}, "PutObject"
    )


def test_outages_are_told_from_refusals_and_missing_objects():
    from botocore.exceptions import ConnectTimeoutError, EndpointConnectionError, ReadTimeoutError

    for outage in (
        EndpointConnectionError(endpoint_url="http://s3"),
        ConnectTimeoutError(endpoint_url="http://s3"),
        ReadTimeoutError(endpoint_url="http://s3"),
        boto_answer(503, "SlowDown"),
        boto_answer(500, "InternalError"),
        boto_answer(400, "RequestTimeout"),
        OSError(28, "No space left on device"),
        NotADirectoryError(20, "Not a directory"),
    ):
        assert is_storage_outage(outage), outage
    for refusal in (
        boto_answer(403, "AccessDenied"),
        boto_answer(404, "NoSuchKey"),
        FileNotFoundError(2, "No such file"),
        ValueError("not storage"),
    ):
        assert not is_storage_outage(refusal), refusal
    # Wrapped (boto3's S3UploadFailedError is raised while handling the ClientError).
    try:
        try:
            raise boto_answer(503, "SlowDown")
        except ClientError:
            raise RuntimeError("Failed to upload") from None
    except RuntimeError as wrapped:
        assert not is_storage_outage(wrapped)  # `from None`: nothing said it was storage
    try:
        try:
            raise boto_answer(503, "SlowDown")
        except ClientError as error:
            raise RuntimeError("Failed to upload") from error
    except RuntimeError as wrapped:
        assert is_storage_outage(wrapped)


def test_storage_calls_keeps_other_errors_as_they_are():
    with pytest.raises(StorageUnavailable) as raised, storage_calls():
        raise OSError(5, "Input/output error")
    assert isinstance(raised.value.__cause__, OSError)
    with pytest.raises(FileNotFoundError), storage_calls():
        raise FileNotFoundError(2, "No such file")
    with pytest.raises(KeyError), storage_calls():
        raise KeyError("x")


# --- API ------------------------------------------------------------------------------


def test_an_upload_to_an_unreachable_s3_is_a_503_that_says_so(s3_nowhere, sender_transport):
    draft = create_draft(sender_transport, size=300)
    status, data = put(sender_transport, draft, 0, b"m" * 100)
    assert_unavailable(status, data)
    status, state = sender_transport.request("GET", f"/api/v1/messages/{draft['id']}")
    assert status == 200 and [b["stored"] for b in state["blobs"]] == [0, 0]
    assert not BlobChunk.objects.exists()


def test_the_503_says_when_to_try_again(s3_nowhere, sender_transport):
    draft = create_draft(sender_transport, size=300)
    blob_id = draft["blobs"][0]["id"]
    response = sender_transport.client.generic(
        "PUT",
        f"/api/v1/messages/{draft['id']}/blobs/{blob_id}?offset=0",
        data=b"m" * 100,
        content_type="application/octet-stream",
    )
    assert response.status_code == 503 and response["Retry-After"] == "60"


def test_an_upload_while_s3_is_down_is_a_503_and_works_once_it_is_back(s3_switch, sender_transport):
    draft = create_draft(sender_transport, size=300)
    s3_switch.go_down()
    assert_unavailable(*put(sender_transport, draft, 0, b"m" * 100))
    s3_switch.come_back()
    assert put(sender_transport, draft, 0, b"m" * 100)[0] == 200
    assert len(keys(s3_switch.s3)) == 1


def test_finalise_while_s3_is_down_is_a_503_and_sends_nothing(s3_switch, sender_transport):
    draft = create_draft(sender_transport, size=300)
    assert put(sender_transport, draft, 0, b"m" * 100)[0] == 200
    assert put(sender_transport, draft, 1, b"f" * 300)[0] == 200
    s3_switch.go_down()
    status, data = sender_transport.request(
        "POST", f"/api/v1/messages/{draft['id']}/finalise", json_body={}
    )
    assert_unavailable(status, data)
    assert Message.objects.get().state == MessageState.DRAFT
    assert not Event.objects.filter(action="message.sent").exists()


def test_a_download_while_s3_is_down_is_a_503_and_is_not_recorded(
    s3_switch, send, recipient_transport
):
    sent = send(attachments=[client.Attachment("a.pdf", data=b"a" * 5000)])
    token = links.parse_link(sent.links["client@example.org"]).grant_token
    status, unlocked = recipient_transport.request(
        "POST",
        f"/api/v1/open/{token}/unlock",
        json_body={"code": sent.opening_codes["client@example.org"]},
    )
    assert status == 200
    download = next(d for d in unlocked["downloads"] if d["kind"] == "file")
    s3_switch.go_down()
    response = recipient_transport.client.get(download["url"])
    assert response.status_code == 503
    assert response.json()["message"] == MESSAGE
    assert not Event.objects.filter(action="file.downloaded").exists()
    s3_switch.come_back()
    response = recipient_transport.client.get(download["url"])
    assert response.status_code == 200
    assert len(b"".join(response.streaming_content)) == download["size"]
    assert Event.objects.filter(action="file.downloaded").count() == 1


def test_local_storage_that_fails_is_a_503_for_uploads_and_downloads(
    broken_local_storage, send, sender_transport, recipient_transport
):
    sent = send(attachments=[client.Attachment("a.pdf", data=b"a" * 5000)])
    token = links.parse_link(sent.links["client@example.org"]).grant_token
    status, unlocked = recipient_transport.request(
        "POST",
        f"/api/v1/open/{token}/unlock",
        json_body={"code": sent.opening_codes["client@example.org"]},
    )
    draft = create_draft(sender_transport, size=300)
    broken_local_storage()
    assert_unavailable(*put(sender_transport, draft, 0, b"m" * 100))
    download = next(d for d in unlocked["downloads"] if d["kind"] == "file")
    response = recipient_transport.client.get(download["url"])
    assert response.status_code == 503 and response.json()["error"] == "storage_unavailable"


# --- Pages ------------------------------------------------------------------------------


def test_a_page_that_needs_storage_is_the_503_page(broken_local_storage, user):
    broken_local_storage()  # a reset email is sealed with a key kept in storage
    response = Client().post("/password-reset/", {"email": user.email})
    assert response.status_code == 503
    assert response["Retry-After"] == "60"
    page = response.content.decode()
    assert "<h1>Storage unavailable</h1>" in page and MESSAGE in page
    assert not OutboxMessage.objects.exists() and not mail.outbox


def test_the_503_page_speaks_french(broken_local_storage, user):
    broken_local_storage()
    browser = Client(HTTP_ACCEPT_LANGUAGE="fr")
    response = browser.post("/password-reset/", {"email": user.email})
    assert response.status_code == 503
    page = response.content.decode()
    assert "Stockage indisponible" in page and MESSAGE_FR in page


def test_the_envelope_form_keeps_its_input_when_storage_is_down(
    broken_local_storage, logged_in_client
):
    broken_local_storage()  # the invitation email needs it
    data = {
        "subject": "Payslips",
        "audience": "recipients",
        "instructions": "Send your last three payslips.",
        "files_mode": "optional",
        "allowed_extensions": "",
        "max_total_mb": "",
        "expires": "7",
        "reply_expiry_hours": "24",
        "reply_max_opens": "3",
        "language": "en",
        "per_ip_hourly": "5",
        "max_submissions": "100",
        "form-TOTAL_FORMS": "1",
        "form-INITIAL_FORMS": "0",
        "form-0-email": "client@example.org",
        "form-0-phone": "",
        "form-0-verification": "none",
        "form-0-password": "",
        "delivery": "email",
    }
    response = logged_in_client.post("/envelopes/new/", data)
    assert response.status_code == 503
    page = response.content.decode()
    assert MESSAGE in page and "Send your last three payslips." in page
    from sealbox.envelopes.models import Envelope

    assert not Envelope.objects.exists()  # rolled back with its invitation


# --- CLI ------------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_the_cli_says_so_in_one_line(
    server,  # noqa: F811
    settings,
    tmp_path,
    capsys,
    monkeypatch,
):
    use_storage(settings, tmp_path, s3_url(f"http://127.0.0.1:{free_port()}"))
    monkeypatch.setattr(client, "UPLOAD_RETRY_DELAYS_SECONDS", (0.05,))
    document = tmp_path / "report.pdf"
    document.write_bytes(b"%PDF" * 1000)
    code, out, err = run(
        capsys, monkeypatch, "send", str(document), "--to", "a@example.org", "--subject", "x"
    )
    assert code == 1
    assert cli_lines(err) == [f"sealbox: {MESSAGE}"]


@pytest.mark.django_db(transaction=True)
def test_sealbox_purge_says_so_in_one_line_and_does_the_rest(
    s3_switch, send, clock, capsys, monkeypatch
):
    send(days=1, attachments=[client.Attachment("a.pdf", data=b"a" * 5000)])
    clock.advance(days=2)
    s3_switch.go_down()
    code, out, err = run(capsys, monkeypatch, "purge")
    assert code == 1
    assert cli_lines(err) == [f"sealbox: {MESSAGE} The purge did the rest; run it again later."]
    assert Event.objects.filter(action="grant.expired").count() == 1
    assert Event.objects.filter(action="message.expired").count() == 1


# --- Purge -------------------------------------------------------------------------------


def test_a_deletion_the_store_interrupts_is_finished_later_and_recorded_once(
    s3_switch, send, clock
):
    sent = send(days=1, attachments=[client.Attachment("a.pdf", data=b"a" * 5000)])
    message = Message.objects.get(public_id=sent.id)
    assert len(keys(s3_switch.s3)) == 2
    clock.advance(days=2)
    s3_switch.go_down()

    report = exchange.purge()  # does not raise: the store is the only thing missing
    assert (report.grants_wiped, report.messages_expired, report.blobs_deleted) == (1, 1, 1)
    assert report.deletions_waiting == 1
    message.refresh_from_db()
    assert message.blobs_deleted_at is not None  # no download can start any more
    assert BlobChunk.objects.filter(blob__message=message).count() == 2  # still to delete
    clock.advance(minutes=5)
    assert exchange.purge().deletions_finished == 0  # not yet: its claimer may be at it

    s3_switch.come_back()
    clock.advance(minutes=6)
    report = exchange.purge()
    assert (report.deletions_finished, report.deletions_waiting) == (1, 0)
    assert keys(s3_switch.s3) == []
    assert not BlobChunk.objects.exists()
    assert Event.objects.filter(action="message.expired").count() == 1
    assert Event.objects.filter(action="grant.expired").count() == 1
    assert exchange.purge().deletions_finished == 0


def test_deleting_a_message_while_s3_is_down_revokes_at_once(
    s3_switch, send, sender_transport, recipient_transport, clock
):
    sent = send(attachments=[client.Attachment("a.pdf", data=b"a" * 5000)])
    s3_switch.go_down()
    status, _ = sender_transport.request("DELETE", f"/api/v1/messages/{sent.id}")
    assert status == 204  # revoked and recorded; the objects wait for the store
    message = Message.objects.get()
    assert message.state == MessageState.DELETED and message.blobs_deleted_at
    token = links.parse_link(sent.links["client@example.org"]).grant_token
    status, _ = recipient_transport.request(
        "POST",
        f"/api/v1/open/{token}/unlock",
        json_body={"code": sent.opening_codes["client@example.org"]},
    )
    assert status == 410
    s3_switch.come_back()
    clock.advance(minutes=11)
    assert exchange.purge().deletions_finished == 1
    assert keys(s3_switch.s3) == []


def test_the_read_stream_reports_a_missing_recorded_chunk_as_unavailable(settings, tmp_path):
    use_storage(settings, tmp_path, f"file://{tmp_path / 'blobs'}")
    with pytest.raises(StorageUnavailable):
        storage.read_chunks(["messages/none/none/000000.abc"])
