"""Issue 11, finding 8: one address cannot fill the disk through a public envelope.

Drafts are counted when they are created, not only when they are sent: the envelope's
submissions per address and hour, and the drafts under way (and their declared bytes)
per address and per envelope, under a lock on the envelope's row so parallel requests are
counted one after the other (real threads, SQLite and PostgreSQL). A draft that received
nothing for an hour is purged with its ciphertext. Refusals are 429 JSON with a message
and Retry-After.
"""

from __future__ import annotations

import threading

import pytest
from django.core.files.storage import default_storage
from django.db import connections
from django.test import Client

from sealbox.audit.models import Event
from sealbox.crypto import grants, links
from sealbox.crypto._b64 import b64url_encode
from sealbox.envelopes import services as envelopes
from sealbox.envelopes.models import Submission
from sealbox.exchange import services as exchange
from sealbox.exchange import storage
from sealbox.exchange.models import BlobChunk, Message, MessageKind
from tests.envelopes.conftest import api

IP = "198.51.100.66"


def start(envelope) -> str:
    token = envelope.links.get().token
    status, data = api(Client(), "POST", f"/api/v1/envelope-links/{token}/start", {}, ip=IP)
    assert status == 200, data
    return data["submit_token"]


def create_draft(submit_token: str, *, ip: str = IP, file_size: int = 0, client=None):
    """Start a submission (nothing uploaded yet): what each of the attacker's drafts is."""
    token = links.new_grant_token()
    grant = grants.create_grant(grants.new_content_key(), token)
    blobs = [{"kind": "manifest", "size": 200}]
    if file_size:
        blobs.append({"kind": "file", "size": file_size, "file_ref": "f1", "extension": "pdf"})
    payload = {
        "submit_token": submit_token,
        "name": "Mallory",
        "email": "mallory@example.org",
        "grant": {
            "grant_token": token,
            "server_secret": b64url_encode(grant.server_secret),
            "wrapped_key": b64url_encode(grant.wrapped_key),
        },
        "blobs": blobs,
    }
    return api(client or Client(), "POST", "/api/v1/envelope-submissions", payload, ip=ip)


def drafts() -> int:
    return Message.objects.filter(kind=MessageKind.ENVELOPE).count()


# --- One address, one after the other -----------------------------------------------------


@pytest.mark.django_db
def test_the_hourly_limit_counts_drafts_not_only_sent_submissions(make_envelope, monkeypatch):
    monkeypatch.setattr(envelopes, "OPEN_DRAFTS_PER_IP", 100)  # only the hourly limit binds
    envelope = make_envelope(public=True, per_ip_hourly=5)
    submit_token = start(envelope)
    statuses = [create_draft(submit_token)[0] for _ in range(30)]
    assert statuses == [201] * 5 + [429] * 25
    assert drafts() == 5
    status, data = create_draft(submit_token)
    assert data["error"] == "throttled"
    assert "Too many attempts." in data["message"]
    assert create_draft(submit_token, ip="198.51.100.67")[0] == 201  # another address


@pytest.mark.django_db
def test_one_address_has_few_drafts_under_way(make_envelope):
    envelope = make_envelope(public=True, per_ip_hourly=50)
    submit_token = start(envelope)
    statuses = [create_draft(submit_token)[0] for _ in range(envelopes.OPEN_DRAFTS_PER_IP + 2)]
    assert statuses == [201] * envelopes.OPEN_DRAFTS_PER_IP + [429] * 2
    status, data = create_draft(submit_token)
    assert status == 429 and "unfinished submissions from your network" in data["message"]
    assert create_draft(submit_token, ip="198.51.100.67")[0] == 201  # another address


@pytest.mark.django_db
def test_declared_bytes_under_way_are_capped_per_address(make_envelope, monkeypatch):
    monkeypatch.setattr(envelopes, "OPEN_DRAFT_BYTES_PER_IP", 250_000)
    envelope = make_envelope(public=True, per_ip_hourly=50)
    submit_token = start(envelope)
    statuses = [create_draft(submit_token, file_size=100_000)[0] for _ in range(3)]
    assert statuses == [201, 201, 429]
    assert create_draft(submit_token, file_size=100_000, ip="198.51.100.67")[0] == 201


@pytest.mark.django_db
def test_a_refusal_says_when_to_come_back(make_envelope, clock):
    envelope = make_envelope(public=True, per_ip_hourly=1)
    submit_token = start(envelope)
    assert create_draft(submit_token)[0] == 201
    clock.advance(minutes=20)
    client = Client()
    status, data = create_draft(submit_token, client=client)
    assert status == 429
    assert data["message"].endswith("Try again in 40 minutes.")
    assert data["retry_after"] == 2400


# --- Many at once (real threads, each with its own database connection) -------------------


def in_parallel(count: int, work) -> list[int]:
    barrier = threading.Barrier(count)
    statuses: list[int] = []

    def run(n: int) -> None:
        try:
            barrier.wait()
            statuses.append(work(n))
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run, args=(n,)) for n in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return sorted(statuses)


@pytest.mark.django_db(transaction=True)
def test_parallel_drafts_from_one_address_stop_at_the_hourly_limit(
    plans, make_envelope, monkeypatch
):
    monkeypatch.setattr(envelopes, "OPEN_DRAFTS_PER_IP", 100)
    envelope = make_envelope(public=True, per_ip_hourly=5)
    submit_token = start(envelope)
    statuses = in_parallel(12, lambda n: create_draft(submit_token)[0])
    assert statuses == [201] * 5 + [429] * 7
    assert Submission.objects.count() == 5


@pytest.mark.django_db(transaction=True)
def test_parallel_drafts_from_many_addresses_stop_at_the_envelopes_cap(
    plans, make_envelope, monkeypatch
):
    monkeypatch.setattr(envelopes, "OPEN_DRAFTS_PER_ENVELOPE", 4)
    envelope = make_envelope(public=True)
    submit_token = start(envelope)
    statuses = in_parallel(12, lambda n: create_draft(submit_token, ip=f"203.0.113.{n}")[0])
    assert statuses == [201] * 4 + [429] * 8
    assert drafts() == 4


@pytest.mark.django_db(transaction=True)
def test_parallel_drafts_stop_at_the_envelopes_bytes_cap(plans, make_envelope, monkeypatch):
    monkeypatch.setattr(envelopes, "OPEN_DRAFT_BYTES_PER_ENVELOPE", 3 * 100_200 + 50)
    envelope = make_envelope(public=True)
    submit_token = start(envelope)
    statuses = in_parallel(
        10, lambda n: create_draft(submit_token, ip=f"203.0.113.{n}", file_size=100_000)[0]
    )
    assert statuses == [201] * 3 + [429] * 7


# --- Abandoned drafts are purged after an hour without a chunk ----------------------------


@pytest.mark.django_db
def test_an_abandoned_draft_is_purged_with_its_ciphertext_after_an_hour(make_envelope, clock):
    envelope = make_envelope(public=True, per_ip_hourly=50)
    submit_token = start(envelope)
    abandoned = [create_draft(submit_token, file_size=1000)[1] for _ in range(2)]
    active = create_draft(submit_token, file_size=1000)[1]
    assert create_draft(submit_token)[0] == 429  # three under way from this address

    def put(draft, offset: int, size: int):
        blob = next(b for b in draft["blobs"] if b["kind"] == "file")
        path = f"/api/v1/uploads/{draft['id']}/blobs/{blob['id']}?offset={offset}"
        status, data = api(Client(), "PUT", path, b"s" * size, ip=IP, token=draft["upload_token"])
        assert status == 200, data

    for draft in (*abandoned, active):
        put(draft, 0, 300)
    names = set(BlobChunk.objects.values_list("storage_name", flat=True))
    clock.advance(minutes=50)
    put(active, 300, 300)  # still uploading
    clock.advance(minutes=10, seconds=1)
    events = Event.objects.count()
    assert exchange.purge().drafts_removed == 2
    assert [m.public_id for m in Message.objects.all()] == [_uuid(active["id"])]
    for draft in abandoned:
        assert storage.names_under(storage.message_folder(draft["id"])) == []
    assert all(not default_storage.exists(name) for name in names if active["id"] not in name)
    assert Event.objects.count() == events  # drafts are not audited, as for senders' drafts
    assert not Submission.objects.exclude(message__public_id=active["id"]).exists()
    later = create_draft(submit_token)  # the address may start again
    assert later[0] == 201
    clock.advance(minutes=51)  # the active draft is now idle for 61 minutes, the new one 51
    assert exchange.purge().drafts_removed == 1
    assert [str(m.public_id) for m in Message.objects.all()] == [later[1]["id"]]
    clock.advance(minutes=10)
    assert exchange.purge().drafts_removed == 1
    assert not Message.objects.exists()


def _uuid(text: str):
    import uuid

    return uuid.UUID(text)
