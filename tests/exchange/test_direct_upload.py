"""Direct mode: with S3 storage the clients PUT ciphertext parts to the store with
presigned multipart URLs, and GET it back by presigned URL; the app server signs and
checks, and never carries the bytes. The store is a real moto server over HTTP."""

from __future__ import annotations

from datetime import timedelta
from urllib.parse import parse_qs, urlsplit

import pytest
from django.conf import settings as django_settings
from django.test import Client

from sealbox import config
from sealbox.audit.models import Event
from sealbox.client import messages as client
from sealbox.client.http import StoreError, put_to_store
from sealbox.crypto import ece, links
from sealbox.exchange import direct, storage
from sealbox.exchange import services as exchange
from sealbox.exchange.models import AbortedUpload, Blob, BlobChunk, Message, MessageState
from sealbox.lib import clock
from sealbox.ops import metrics
from tests.envelopes.conftest import make_envelope  # noqa: F401 - fixture
from tests.exchange.test_storage_s3 import free_port, moto_endpoint  # noqa: F401 - fixture
from tests.exchange.test_storage_unavailable import MESSAGE
from tests.security.in_parallel import in_parallel

pytestmark = pytest.mark.django_db

BUCKET = "sealbox-blobs"
PART = 256 * 1024  # small parts for the tests (S3's own minimum is 5 MiB)


def storage_url(endpoint: str, extra: str = "") -> str:
    return f"s3://test:test@{BUCKET}/tenant1?endpoint_url={endpoint}&region=us-east-1{extra}"


def use(settings, tmp_path, url: str, public_url: str = "") -> None:
    """Storage exactly as an operator configures it (SEALBOX_STORAGE_URL and friends)."""
    env = {"SEALBOX_DATA_DIR": str(tmp_path), "SEALBOX_STORAGE_URL": url}
    if public_url:
        env["SEALBOX_STORAGE_PUBLIC_URL"] = public_url
    loaded = config.load(env)
    settings.STORAGES = {**settings.STORAGES, "default": loaded.storage}
    settings.SEALBOX_DIRECT_STORAGE = loaded.direct_storage


@pytest.fixture
def direct_s3(moto_endpoint, settings, tmp_path, monkeypatch):  # noqa: F811
    import boto3
    import moto.s3.models

    s3 = boto3.client(
        "s3",
        endpoint_url=moto_endpoint,
        aws_access_key_id="test",
        aws_secret_access_key="test",
        region_name="us-east-1",
    )
    s3.create_bucket(Bucket=BUCKET)
    # The moto server runs in this process: its minimum part size follows ours.
    monkeypatch.setattr(moto.s3.models, "S3_UPLOAD_PART_MIN_SIZE", 1024)
    # Patched where it is read (exchange.services only re-exports it).
    monkeypatch.setattr(direct, "DIRECT_PART_BYTES", PART)
    use(settings, tmp_path, storage_url(moto_endpoint))
    s3.endpoint = moto_endpoint
    yield s3
    for upload in s3.list_multipart_uploads(Bucket=BUCKET).get("Uploads", []):
        s3.abort_multipart_upload(Bucket=BUCKET, Key=upload["Key"], UploadId=upload["UploadId"])
    for item in s3.list_objects_v2(Bucket=BUCKET).get("Contents", []):
        s3.delete_object(Bucket=BUCKET, Key=item["Key"])
    s3.delete_bucket(Bucket=BUCKET)


def objects(s3) -> dict[str, int]:
    return {o["Key"]: o["Size"] for o in s3.list_objects_v2(Bucket=BUCKET).get("Contents", [])}


def open_uploads(s3) -> list[str]:
    return [u["UploadId"] for u in s3.list_multipart_uploads(Bucket=BUCKET).get("Uploads", [])]


def draft_payload(sizes: list[int], mode: str = "direct") -> dict:
    """A draft (Create links) with a manifest and files of these ciphertext sizes."""
    from sealbox.crypto import grants
    from sealbox.crypto._b64 import b64url_encode

    token = links.new_grant_token()
    grant = grants.create_grant(grants.new_content_key(), token)
    return {
        "subject": "Draft",
        "delivery": "links",
        "expires_at": (clock.now() + timedelta(days=1)).isoformat(),
        "recipients": [
            {
                "email": "client@example.org",
                "verification": "opening_code",
                "grant_token": token,
                "server_secret": b64url_encode(grant.server_secret),
                "wrapped_key": b64url_encode(grant.wrapped_key),
            }
        ],
        "blobs": [{"kind": "manifest", "size": 100}]
        + [{"kind": "file", "size": size, "file_ref": f"f{n}"} for n, size in enumerate(sizes)],
        "upload_mode": mode,
    }


def direct_draft(transport, sizes: list[int], *, mode: str = "direct") -> dict:
    status, data = transport.request(
        "POST", "/api/v1/messages", json_body=draft_payload(sizes, mode)
    )
    assert status == 201, data
    return data


def put_parts(blob: dict, body: bytes) -> None:
    upload = blob["upload"]
    for part in upload["parts"]:
        start = (part["number"] - 1) * upload["part_size"]
        put_to_store(part["url"], body[start : start + part["size"]])


def finalise(transport, draft: dict):
    return transport.request("POST", f"/api/v1/messages/{draft['id']}/finalise", json_body={})


def test_a_message_goes_to_the_store_and_back_without_the_app_server(
    direct_s3, send, recipient_transport
):
    chunks_before = metrics.UPLOADED_BYTES._value.get()
    data = bytes(range(256)) * 4000  # 1 MB: four parts of 256 KiB
    sent = send(attachments=[client.Attachment("big.bin", data=data)], max_opens=2)
    message = Message.objects.get(public_id=sent.id)
    assert message.state == MessageState.SENT
    # One object per blob, assembled by the store from its parts; nothing through the app.
    stored = objects(direct_s3)
    assert sorted(stored.values()) == sorted(b.size for b in message.blobs.all())
    assert all(k.startswith(f"tenant1/messages/{sent.id}/") for k in stored)
    assert metrics.UPLOADED_BYTES._value.get() == chunks_before
    assert open_uploads(direct_s3) == []
    assert [c.size for c in BlobChunk.objects.filter(blob__message=message).order_by("size")] == [
        sorted(stored.values())[0],
        sorted(stored.values())[1],
    ]
    opened = client.open_message(
        recipient_transport,
        sent.links["client@example.org"],
        code=sent.opening_codes["client@example.org"],
    )
    assert opened.files["big.bin"] == data


def test_the_api_offers_presigned_parts_that_sign_their_length(direct_s3, sender_transport):
    draft = direct_draft(sender_transport, [PART * 2 + 10])
    upload = draft["blobs"][1]["upload"]
    assert upload["mode"] == "direct" and upload["part_size"] == PART
    assert [(p["number"], p["size"], p["uploaded"]) for p in upload["parts"]] == [
        (1, PART, False),
        (2, PART, False),
        (3, 10, False),
    ]
    for part in upload["parts"]:
        url = urlsplit(part["url"])
        query = parse_qs(url.query)
        assert url.netloc == urlsplit(direct_s3.endpoint).netloc
        # The part's size is signed: a SigV4 store refuses a body of any other length.
        assert query["X-Amz-SignedHeaders"] == ["content-length;host"]
        assert query["partNumber"] == [str(part["number"])]
        assert int(query["X-Amz-Expires"][0]) == 30 * 60
    # A client that does not ask keeps the path through the app server.
    assert direct_draft(sender_transport, [100], mode="proxy")["blobs"][1]["upload"] == {
        "mode": "proxy",
        "part_size": 0,
        "expires_in": 0,
        "parts": [],
    }


def test_a_part_larger_than_announced_is_refused_at_finalise_and_can_be_sent_again(
    direct_s3, sender_transport
):
    # moto does not check presigned signatures (S3 refuses such a PUT with 403
    # SignatureDoesNotMatch); the finalise's ListParts check refuses it whatever the store.
    draft = direct_draft(sender_transport, [PART + 10])
    manifest, blob = draft["blobs"]
    put_parts(manifest, b"m" * 100)
    first, last = blob["upload"]["parts"]
    put_to_store(first["url"], b"a" * PART)
    put_to_store(last["url"], b"b" * 20)  # 10 bytes more than announced
    status, data = finalise(sender_transport, draft)
    assert status == 409 and data["error"] == "incomplete", data
    assert "1 part(s)" in data["message"]
    message = Message.objects.get(public_id=draft["id"])
    assert message.state == MessageState.DRAFT
    assert (
        not BlobChunk.objects.filter(blob__message=message).exclude(blob__kind="manifest").exists()
    )
    assert len(open_uploads(direct_s3)) == 1  # the file's upload is still open (resumable)
    # The state says which part to send again, with a fresh URL.
    status, state = sender_transport.request(
        "GET", f"/api/v1/messages/{draft['id']}/blobs/{blob['id']}/parts"
    )
    assert status == 200
    assert [(p["number"], p["uploaded"], bool(p["url"])) for p in state["parts"]] == [
        (1, True, False),
        (2, False, True),
    ]
    put_to_store(state["parts"][1]["url"], b"b" * 10)
    status, data = finalise(sender_transport, draft)
    assert status == 200, data
    assert data["state"] == "sent"
    assert sorted(objects(direct_s3).values()) == [100, PART + 10]


def test_finalise_with_a_missing_or_short_part_is_refused(direct_s3, sender_transport):
    draft = direct_draft(sender_transport, [PART * 2 + 5])
    manifest, blob = draft["blobs"]
    put_parts(manifest, b"m" * 100)
    parts = blob["upload"]["parts"]
    put_to_store(parts[0]["url"], b"a" * PART)
    put_to_store(parts[2]["url"], b"c" * 5)
    status, data = finalise(sender_transport, draft)  # part 2 missing
    assert status == 409 and data["error"] == "incomplete"
    put_to_store(parts[1]["url"], b"b" * (PART - 1))  # short by one byte
    status, data = finalise(sender_transport, draft)
    assert status == 409 and data["error"] == "incomplete"
    assert objects(direct_s3).keys() == {
        BlobChunk.objects.get(blob__kind="manifest").storage_name.join(["tenant1/", ""])
    }
    assert Message.objects.get(public_id=draft["id"]).state == MessageState.DRAFT
    put_to_store(parts[1]["url"], b"b" * PART)
    assert finalise(sender_transport, draft)[0] == 200


@pytest.mark.django_db(transaction=True)
def test_two_finalises_at_once_send_once(plans, direct_s3, sender_transport):
    draft = direct_draft(sender_transport, [PART + 1])
    put_parts(draft["blobs"][0], b"m" * 100)
    put_parts(draft["blobs"][1], b"f" * (PART + 1))
    cookies = sender_transport.client.cookies

    def go(_index: int):
        browser = Client()
        browser.cookies = cookies
        return browser.post(
            f"/api/v1/messages/{draft['id']}/finalise", data={}, content_type="application/json"
        )

    statuses = sorted(r.status_code for r in in_parallel(2, go))
    assert statuses == [200, 409]
    message = Message.objects.get(public_id=draft["id"])
    assert Event.objects.filter(action="message.sent", target_id=str(message.pk)).count() == 1
    assert BlobChunk.objects.filter(blob__message=message).count() == 2
    assert sorted(objects(direct_s3).values()) == [100, PART + 1]


def test_a_download_is_a_presigned_get_recorded_once(direct_s3, send, recipient_transport):
    sent = send(attachments=[client.Attachment("report.pdf", data=b"%PDF" * 500)])
    token = links.parse_link(sent.links["client@example.org"]).grant_token
    recipient_transport.client.get(f"/o/{token}")
    status, unlocked = recipient_transport.request(
        "POST",
        f"/api/v1/open/{token}/unlock",
        json_body={"code": sent.opening_codes["client@example.org"]},
    )
    assert status == 200
    file = next(d for d in unlocked["downloads"] if d["kind"] == "file")
    response = recipient_transport.client.get(file["url"])
    assert response.status_code == 302
    assert response["Cache-Control"] == "no-store"
    location = urlsplit(response["Location"])
    query = parse_qs(location.query)
    assert query["X-Amz-Expires"] == ["300"]
    assert query["response-content-disposition"] == ["attachment"]  # no file name
    assert "report" not in response["Location"]
    downloaded = Event.objects.filter(action="file.downloaded")
    assert downloaded.count() == 1
    assert downloaded.get().details["bytes"] == file["size"]
    # The store answers the presigned GET itself, with the ciphertext.
    import urllib.request

    with urllib.request.urlopen(response["Location"]) as answer:  # noqa: S310 - loopback
        assert answer.headers["Content-Disposition"] == "attachment"
        assert len(answer.read()) == file["size"]
    # Through the app server still when asked (an old client), and recorded again.
    streamed = recipient_transport.client.get(file["url"] + "?direct=false")
    assert streamed.status_code == 200
    assert len(b"".join(streamed.streaming_content)) == file["size"]
    assert downloaded.count() == 2


def test_a_presigned_url_names_the_public_address_when_one_is_set(
    direct_s3, settings, tmp_path, sender_transport
):
    from tests.processes import TcpProxy

    host, port = direct_s3.endpoint.removeprefix("http://").split(":")
    public = TcpProxy(host, int(port))  # the store as the outside reaches it
    try:
        use(
            settings,
            tmp_path,
            storage_url(direct_s3.endpoint),
            public_url=f"http://localhost:{public.port}",
        )
        draft = direct_draft(sender_transport, [50])
        part = draft["blobs"][1]["upload"]["parts"][0]
        assert urlsplit(part["url"]).netloc == f"localhost:{public.port}"
        put_parts(draft["blobs"][0], b"m" * 100)
        put_to_store(part["url"], b"p" * 50)
        assert finalise(sender_transport, draft)[0] == 200
    finally:
        public.close()


def test_the_csp_allows_the_store_origin(tmp_path):
    loaded = config.load(
        {"SEALBOX_DATA_DIR": str(tmp_path), "SEALBOX_STORAGE_URL": storage_url("http://s3:9000")}
    )
    assert loaded.direct_storage.origins == ("http://s3:9000",)
    public = config.load(
        {
            "SEALBOX_DATA_DIR": str(tmp_path),
            "SEALBOX_STORAGE_URL": storage_url("http://s3:9000"),
            "SEALBOX_STORAGE_PUBLIC_URL": "https://files.example.com/",
        }
    )
    assert public.direct_storage.origins == ("https://files.example.com",)
    aws = config.load(
        {"SEALBOX_DATA_DIR": str(tmp_path), "SEALBOX_STORAGE_URL": "s3://bkt?region=eu-west-3"}
    )
    assert aws.direct_storage.origins == (
        "https://bkt.s3.amazonaws.com",
        "https://bkt.s3.eu-west-3.amazonaws.com",
    )
    for url in (storage_url("http://s3:9000", "&direct=false"), "file:///srv/blobs"):
        loaded = config.load({"SEALBOX_DATA_DIR": str(tmp_path), "SEALBOX_STORAGE_URL": url})
        assert loaded.direct_storage is None
    with pytest.raises(config.ConfigError, match="SEALBOX_STORAGE_URL direct"):
        config.load(
            {
                "SEALBOX_DATA_DIR": str(tmp_path),
                "SEALBOX_STORAGE_URL": storage_url("http://s3:9000", "&direct=maybe"),
            }
        )


def test_direct_false_keeps_the_proxy_path(direct_s3, settings, tmp_path, sender_transport, send):
    use(settings, tmp_path, storage_url(direct_s3.endpoint, "&direct=false"))
    assert not storage.direct_mode()
    draft = direct_draft(sender_transport, [100])
    assert [b["upload"]["mode"] for b in draft["blobs"]] == ["proxy", "proxy"]
    assert open_uploads(direct_s3) == []
    data = b"x" * 5000
    sent = send(attachments=[client.Attachment("a.bin", data=data)])
    assert BlobChunk.objects.filter(blob__message__public_id=sent.id).count() == 2
    assert not Blob.objects.exclude(upload_name="").exists()


def test_local_storage_keeps_the_proxy_path(sender_transport):
    assert not storage.direct_mode()
    draft = direct_draft(sender_transport, [100])
    assert [b["upload"]["mode"] for b in draft["blobs"]] == ["proxy", "proxy"]


def test_the_store_down_is_a_503_that_says_so(direct_s3, settings, tmp_path, sender_transport):
    draft = direct_draft(sender_transport, [PART + 1])
    use(settings, tmp_path, storage_url(f"http://127.0.0.1:{free_port()}"))
    payload = draft_payload([100])
    status, data = sender_transport.request("POST", "/api/v1/messages", json_body=payload)
    assert status == 503 and data["message"] == MESSAGE
    assert Message.objects.count() == 1  # nothing created for the refused draft
    blob = draft["blobs"][1]
    status, data = sender_transport.request(
        "GET", f"/api/v1/messages/{draft['id']}/blobs/{blob['id']}/parts"
    )
    assert status == 503 and data["message"] == MESSAGE
    status, data = finalise(sender_transport, draft)
    assert status == 503 and data["message"] == MESSAGE
    assert Message.objects.get(public_id=draft["id"]).state == MessageState.DRAFT


def test_the_client_resumes_from_the_stores_state(direct_s3, sender_transport, monkeypatch):
    """A part whose answer was lost is found in the store (ListParts) and not sent again;
    a part refused for a while is sent again after a wait."""
    monkeypatch.setattr(client, "UPLOAD_RETRY_DELAYS_SECONDS", (0, 0, 0))
    sent_parts: list[int] = []
    real_put = put_to_store
    failures = {"lost": 0}

    def flaky(url: str, body: bytes, **kwargs) -> None:
        number = int(parse_qs(urlsplit(url).query)["partNumber"][0])
        sent_parts.append(number)
        real_put(url, body, **kwargs)
        if number == 2 and not failures["lost"]:
            failures["lost"] += 1
            raise ConnectionResetError("connection reset by peer")  # after the store had it

    monkeypatch.setattr(client, "put_to_store", flaky)
    data = b"z" * (PART * 3)
    sent = client.send_message(
        sender_transport,
        base_url=django_settings.SEALBOX_BASE_URL,
        subject="Resumed",
        body="",
        recipients=[client.Recipient("client@example.org")],
        expires_at=clock.now() + timedelta(days=1),
        attachments=[client.Attachment("z.bin", data=data)],
        delivery="links",
    )
    assert Message.objects.get(public_id=sent.id).state == MessageState.SENT
    encrypted_parts = -(-ece.encrypted_size(len(data)) // PART)
    # Part 2 sent once: after the lost answer the store's state said it was there.
    assert sent_parts.count(2) == 1
    assert sorted(set(sent_parts[1:])) == list(range(1, encrypted_parts + 1))


def test_a_store_refusal_is_one_line(direct_s3, sender_transport):
    draft = direct_draft(sender_transport, [50])
    part = draft["blobs"][1]["upload"]["parts"][0]
    bad = part["url"].replace(f"/{BUCKET}/", "/no-such-bucket/")
    with pytest.raises(StoreError) as refused:
        put_to_store(bad, b"p" * 50)
    assert refused.value.status == 404
    assert str(refused.value).startswith("the file store at 127.0.0.1:")
    assert "NoSuchBucket" in str(refused.value) and "\n" not in str(refused.value)


@pytest.mark.django_db(transaction=True)
def test_two_purges_abort_a_stale_upload_once(plans, direct_s3, sender_transport):
    direct_s3.sender_transport = sender_transport
    stale = direct_s3.create_multipart_upload(
        Bucket=BUCKET, Key="tenant1/messages/m/b/blob.0123456789abcdef"
    )["UploadId"]
    # moto lists every upload as started in 2010, so both are past the draft lifetime
    # here; the live draft's uploads are left alone all the same (its removal, once the
    # draft is stale, aborts them).
    live = direct_draft(direct_s3.sender_transport, [100])
    reports = in_parallel(2, lambda _i: exchange.purge(clock.now()))
    assert sorted(r.uploads_aborted for r in reports) == [0, 1]
    assert sorted(open_uploads(direct_s3)) == sorted(
        Blob.objects.filter(message__public_id=live["id"]).values_list("upload_id", flat=True)
    )
    assert list(AbortedUpload.objects.values_list("upload_id", flat=True)) == [stale]
    assert exchange.purge(clock.now()).uploads_aborted == 0


def test_removing_a_draft_aborts_its_uploads(direct_s3, sender_transport):
    draft = direct_draft(sender_transport, [PART + 1])
    put_parts(draft["blobs"][1], b"f" * (PART + 1))
    assert len(open_uploads(direct_s3)) == 2
    message = Message.objects.get(public_id=draft["id"])
    status, _ = sender_transport.request("DELETE", f"/api/v1/messages/{draft['id']}")
    assert status == 204
    assert open_uploads(direct_s3) == []
    assert not Blob.objects.filter(message=message).exclude(upload_id="").exists()
    # A stale draft: the purge removes it and aborts what it had started.
    other = direct_draft(sender_transport, [100])
    assert len(open_uploads(direct_s3)) == 2
    report = exchange.purge(clock.now() + exchange.DRAFT_LIFETIME + timedelta(minutes=1))
    assert report.drafts_removed == 1 and report.uploads_aborted == 0
    assert open_uploads(direct_s3) == []
    assert not Message.objects.filter(public_id=other["id"]).exists()


def test_envelope_submissions_and_replies_upload_direct(
    direct_s3,
    send,
    recipient_transport,
    sender_transport,
    make_envelope,  # noqa: F811
):
    from sealbox.client import envelopes as envelope_client
    from sealbox.envelopes.models import Submission

    envelope = make_envelope(public=True)
    link = f"{django_settings.SEALBOX_BASE_URL}/e/{envelope.links.get().token}"
    files = [client.Attachment("tax.pdf", data=b"t" * (PART + 100))]
    envelope_client.submit_to_envelope(
        recipient_transport,
        link,
        name="Carla",
        email="c@example.org",
        attachments=files,
    )
    submission = Submission.objects.get().message
    assert submission.state == MessageState.SENT
    assert all(b.direct and not b.upload_id for b in submission.blobs.all())
    # A reply with a file, sealed for the sender, the same way.
    sent = send(reply_mode="files")
    replied = envelope_client.reply_to_message(
        recipient_transport,
        sent.links["client@example.org"],
        code=sent.opening_codes["client@example.org"],
        body="Thanks, here it is.",
        attachments=[client.Attachment("signed.pdf", data=b"s" * 3000)],
    )
    reply = Message.objects.get(kind="reply")
    assert reply.reference == replied.reference and reply.state == MessageState.SENT
    assert all(b.direct and not b.upload_id for b in reply.blobs.all())
    assert open_uploads(direct_s3) == []
    assert len(objects(direct_s3)) == sum(
        m.blobs.count() for m in Message.objects.filter(state=MessageState.SENT)
    )


def test_a_store_out_of_reach_is_named_as_such(direct_s3):
    from sealbox.client.http import stream_from_store

    with pytest.raises(StoreError) as failed:
        list(stream_from_store(f"http://127.0.0.1:{free_port()}/{BUCKET}/k?X-Amz-Signature=s"))
    assert str(failed.value).startswith("cannot reach the file store at 127.0.0.1:")
