"""Issue 11, finding 3: a chunk sent twice at once, or retried after a dropped connection,
keeps its ciphertext — the message decrypts after it is sent.

Each upload attempt writes under a name of its own; only the attempt that wins the locked
check is recorded, and a loser deletes only what it wrote itself. Finalise refuses a message
whose recorded chunks are not all in storage with their size.

Real HTTP (live_server, one connection per attempt), on local files and on S3 (a moto
server), on SQLite and PostgreSQL (SEALBOX_TEST_DATABASE_URL).
"""

from __future__ import annotations

import json
import os
import socket
import threading
import time
from datetime import timedelta
from urllib.parse import urlsplit

import pytest
from django.core.files.storage import default_storage

from sealbox.accounts import services as accounts
from sealbox.client import messages as client
from sealbox.client.http import HttpTransport
from sealbox.exchange import storage
from sealbox.exchange.models import BlobChunk, Message, MessageState
from sealbox.lib import clock

COPIES = 6  # identical PUTs of each chunk at once
CHUNK = 64 * 1024


@pytest.fixture(params=["local", "s3"])
def blob_store(request, settings, tmp_path):
    if request.param == "s3":
        request.getfixturevalue("s3_storage")
    else:
        settings.STORAGES = {
            **settings.STORAGES,
            "default": {
                "BACKEND": "django.core.files.storage.FileSystemStorage",
                "OPTIONS": {"location": str(tmp_path / "blobs")},
            },
        }
    return request.param


@pytest.fixture
def server(live_server, settings, blob_store, user, monkeypatch):
    settings.SEALBOX_BASE_URL = live_server.url
    monkeypatch.setattr(client, "CHUNK_BYTES", CHUNK)  # several chunks per file
    _token, secret = accounts.create_api_token(None, user, "tests", 30)
    return live_server.url, secret


def stored_names(prefix: str) -> set[str]:
    """Every object in storage under `prefix` (recursively)."""
    try:
        folders, files = default_storage.listdir(prefix)
    except FileNotFoundError:
        return set()
    found = {f"{prefix}/{name}" for name in files}
    for folder in folders:
        found |= stored_names(f"{prefix}/{folder}")
    return found


def recorded_names(message: Message) -> set[str]:
    return set(
        BlobChunk.objects.filter(blob__message=message).values_list("storage_name", flat=True)
    )


def send_and_open(transport, url: str, data: bytes):
    sent = client.send_message(
        transport,
        base_url=url,
        subject="Payslips",
        body="Here they are.",
        recipients=[client.Recipient("client@example.org")],
        expires_at=clock.now() + timedelta(days=2),
        attachments=[client.Attachment("payslips.pdf", data=data)],
        delivery="links",
    )
    message = Message.objects.get(public_id=sent.id)
    assert message.state == MessageState.SENT
    opened = client.open_message(
        HttpTransport(url),
        sent.links["client@example.org"],
        code=sent.opening_codes["client@example.org"],
    )
    return message, opened


class RacingTransport(HttpTransport):
    """Sends every chunk as COPIES identical PUTs at the same moment, each on its own
    connection (a page and its retry, or two tabs, doing the same upload)."""

    def __init__(self, url: str, token: str):
        super().__init__(url, token=token)
        self.url, self.secret = url, token
        self.races: list[list[tuple[int, dict | None]]] = []

    def request(self, method, path, *, json_body=None, body=None):
        if method != "PUT":
            return super().request(method, path, json_body=json_body, body=body)
        copies = [HttpTransport(self.url, token=self.secret) for _ in range(COPIES)]
        for copy in copies:
            copy._conn().connect()  # connected before the start, so they arrive together
        barrier = threading.Barrier(COPIES)
        results: list[tuple[int, dict | None]] = []

        def put(copy: HttpTransport) -> None:
            barrier.wait()
            results.append(copy.request("PUT", path, body=body))
            copy.close()

        threads = [threading.Thread(target=put, args=(copy,)) for copy in copies]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        self.races.append(results)
        won = [r for r in results if r[0] == 200]
        return won[0] if won else results[0]


@pytest.mark.django_db(transaction=True)
def test_identical_parallel_puts_store_the_chunk_once_and_it_decrypts(server):
    url, secret = server
    transport = RacingTransport(url, secret)
    data = os.urandom(3 * CHUNK + 1234)
    message, opened = send_and_open(transport, url, data)
    assert opened.files["payslips.pdf"] == data
    assert len(transport.races) == 1 + 4  # the manifest, and the file's four chunks
    for results in transport.races:
        statuses = sorted(status for status, _ in results)
        assert statuses == [200] + [409] * (COPIES - 1), results
        assert all(body["error"] == "offset" for status, body in results if status == 409)
    # Nothing lost, nothing left behind: storage holds exactly the recorded chunks.
    assert stored_names(f"messages/{message.public_id}") == recorded_names(message)
    assert len(recorded_names(message)) == 5


class DroppingTransport(HttpTransport):
    """Each chunk's first attempt loses its connection half-way through the body, after
    the retry (on a new connection) has gone through — as when a page or the CLI gives up
    on a stalled request and sends it again."""

    def __init__(self, url: str, token: str, entered: threading.Event):
        super().__init__(url, token=token)
        self.secret = token
        self.entered = entered
        self.first_attempts: list[tuple[int, dict]] = []

    def request(self, method, path, *, json_body=None, body=None):
        if method != "PUT":
            return super().request(method, path, json_body=json_body, body=body)
        parts = urlsplit(self.base_url)
        stalled = socket.create_connection((parts.hostname, parts.port), timeout=30)
        head = (
            f"PUT {path} HTTP/1.1\r\nHost: {parts.netloc}\r\n"
            f"Authorization: Bearer {self.secret}\r\n"
            "Content-Type: application/octet-stream\r\n"
            f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
        )
        self.entered.clear()
        stalled.sendall(head.encode() + body[: len(body) // 2])
        assert self.entered.wait(10), "the first attempt never reached storage"
        time.sleep(0.1)  # it streams the half body to storage and waits for more
        retried = super().request(method, path, body=body)
        stalled.shutdown(socket.SHUT_WR)  # the first attempt's body ends short
        answer = b""
        while piece := stalled.recv(65536):
            answer += piece
        stalled.close()
        status = int(answer.split(b" ", 2)[1])
        self.first_attempts.append((status, json.loads(answer.split(b"\r\n\r\n", 1)[1])))
        return retried


@pytest.mark.django_db(transaction=True)
def test_a_chunk_retried_after_a_dropped_connection_survives_the_first_attempt(server, monkeypatch):
    url, secret = server
    entered = threading.Event()
    write = storage.write_chunk

    def spy(name, source, length):
        entered.set()  # past the offset check: this attempt streams its body to storage
        return write(name, source, length)

    monkeypatch.setattr(storage, "write_chunk", spy)
    transport = DroppingTransport(url, secret, entered)
    data = os.urandom(2 * CHUNK + 99)
    message, opened = send_and_open(transport, url, data)
    assert opened.files["payslips.pdf"] == data
    assert len(transport.first_attempts) == 1 + 3
    for status, body in transport.first_attempts:
        assert (status, body["error"]) == (400, "short_body")
    assert stored_names(f"messages/{message.public_id}") == recorded_names(message)


# --- Finalise checks what storage holds ----------------------------------------------------


def uploaded_draft(transport, size: int = 300) -> dict:
    from tests.exchange.test_send import create_draft

    created = create_draft(transport, size=size)
    for blob in created["blobs"]:
        path = f"/api/v1/messages/{created['id']}/blobs/{blob['id']}?offset=0"
        status, answer = transport.request("PUT", path, body=b"c" * blob["size"])
        assert status == 200, answer
    return created


def finalise(transport, created: dict):
    return transport.request(
        "POST", f"/api/v1/messages/{created['id']}/finalise", json_body={"links": None}
    )


@pytest.mark.django_db
@pytest.mark.parametrize("damage", ["missing", "truncated"])
def test_finalise_refuses_a_message_whose_chunk_storage_lost(blob_store, sender_transport, damage):
    from django.core.files.base import ContentFile

    created = uploaded_draft(sender_transport)
    chunk = BlobChunk.objects.get(blob__public_id=created["blobs"][1]["id"])
    default_storage.delete(chunk.storage_name)
    if damage == "truncated":
        default_storage.save(chunk.storage_name, ContentFile(b"c" * (chunk.size - 1)))
    status, answer = finalise(sender_transport, created)
    assert status == 409, answer
    assert answer["error"] == "chunk_missing"
    assert "upload" in answer["message"].lower()
    assert Message.objects.get(public_id=created["id"]).state == MessageState.DRAFT


@pytest.mark.django_db
def test_finalise_accepts_a_message_whose_chunks_are_all_stored(blob_store, sender_transport):
    created = uploaded_draft(sender_transport)
    status, answer = finalise(sender_transport, created)
    assert status == 200, answer
    assert answer["state"] == "sent"
