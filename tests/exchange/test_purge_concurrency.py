"""Purges running at once (two workers, a `sealbox purge` from cron beside them) destroy
each object once and record each event once, on SQLite and PostgreSQL alike.

Every step of `cli.run_purge` runs here, in real threads with a database connection each,
over one data set that gives each step something to do."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta

import pytest
from django.conf import settings

from sealbox import cli
from sealbox.audit import services as audit
from sealbox.audit.models import Checkpoint, Event
from sealbox.client import messages as client
from sealbox.envelopes.models import Envelope
from sealbox.exchange import services as exchange
from sealbox.exchange import storage
from sealbox.exchange.models import BlobChunk, Grant, Message, MessageState
from sealbox.notify.models import OutboxMessage
from tests.audit.test_exports import append_events
from tests.audit.test_retention import organisation_created
from tests.envelopes.conftest import make_envelope, submit  # noqa: F401 - fixture
from tests.notify.conftest import database_tasks  # noqa: F401 - fixture
from tests.security.drafts import HoldFinalise
from tests.security.in_parallel import in_parallel

pytestmark = pytest.mark.django_db(transaction=True)


class World:
    """What the purge must destroy, and the events it must write, once each."""

    def __init__(self):
        self.messages: list[Message] = []
        self.drafts: list[Message] = []
        self.envelopes: list[Envelope] = []
        self.outbox_queued: list[str] = []
        self.old_chain = ""

    @property
    def grants(self) -> list[Grant]:
        return list(Grant.objects.filter(message__in=self.messages))


@pytest.fixture
def expired_world(clock, database_tasks, send, sender_transport, make_envelope):  # noqa: F811
    world = World()
    # Sent messages: one, two recipients, an attachment; all expire in a day.
    for recipients, files in (
        (["a@example.org"], []),
        (["b@example.org", "c@example.org"], [client.Attachment("b.bin", data=b"b" * 3000)]),
        (["d@example.org"], [client.Attachment("d.bin", data=b"d" * 70_000)]),
    ):
        sent = send(days=1, recipients=[client.Recipient(r) for r in recipients], attachments=files)
        world.messages.append(Message.objects.get(public_id=sent.id))
    # Drafts a sender never finalised (stale after a day).
    for n in range(2):
        held = HoldFinalise(sender_transport)
        client.send_message(
            held,
            base_url=settings.SEALBOX_BASE_URL,
            subject=f"Draft {n}",
            body="never sent",
            recipients=[client.Recipient("e@example.org")],
            expires_at=clock.current + timedelta(days=3),
            attachments=[client.Attachment("e.bin", data=b"e" * 2000)],
            delivery="links",
        )
        world.drafts.append(Message.objects.get(subject=f"Draft {n}"))
    # Envelopes that expire in a day, each with a submission abandoned half-way.
    for n in range(2):
        envelope = make_envelope(public=True, days=1, subject=f"Envelope {n}")
        sealed = submit(envelope, finalise=False, files={"tax.pdf": b"t" * 1000})
        assert sealed.status == 201, sealed.data
        world.envelopes.append(envelope)
        world.drafts.append(Message.objects.get(public_id=sealed.data["id"]))
    # Emails a dead worker left queued (the database task backend keeps them queued).
    world.outbox_queued = [
        str(pk) for pk in OutboxMessage.objects.filter(status="queued").values_list("pk", flat=True)
    ]
    assert world.outbox_queued  # the envelopes' invitations at least
    # An organisation whose chain began nine years ago: its oldest events expire.
    old = organisation_created(clock, "Old Firm", 9 * 365)
    append_events(old, 10, start=clock.current - timedelta(days=8 * 365), step=timedelta(days=1))
    world.old_chain = audit.chain_name(old.pk)

    clock.advance(days=4)  # past every expiry, the drafts' lifetime and the outbox's
    return world


def actors_of(action: str) -> Counter:
    return Counter(Event.objects.filter(action=action).values_list("actor_id", flat=True))


def outboxes_of(action: str) -> Counter:
    details = Event.objects.filter(action=action).values_list("details", flat=True)
    return Counter(entry["outbox"] for entry in details)


def targets_of(action: str) -> Counter:
    return Counter(Event.objects.filter(action=action).values_list("target_id", flat=True))


@pytest.mark.parametrize("purges", [2, 4])
def test_parallel_purges_destroy_each_object_once_and_record_each_event_once(expired_world, purges):
    world = expired_world
    grants = world.grants
    assert len(grants) == 4 and all(g.wiped_at is None for g in grants)
    events_before = Event.objects.count()

    reports = in_parallel(purges, lambda _n: cli.run_purge())

    # Every grant wiped once, with one grant.expired each.
    assert actors_of("grant.expired") == Counter({str(g.pk): 1 for g in grants})
    assert sum(r.grants_wiped for r in reports) == len(grants)
    for grant in Grant.objects.filter(message__in=world.messages):
        assert grant.server_secret is None and grant.wrapped_key is None and grant.wiped_at
    # Every message's content deleted once, with one message.expired each.
    assert targets_of("message.expired") == Counter({str(m.pk): 1 for m in world.messages})
    assert sum(r.messages_expired for r in reports) == len(world.messages)
    assert sum(r.blobs_deleted for r in reports) == len(world.messages)
    assert not BlobChunk.objects.exists()
    for message in Message.objects.filter(pk__in=[m.pk for m in world.messages]):
        assert message.blobs_deleted_at is not None
        assert storage.names_under(storage.message_folder(message.public_id)) == []
    # Every draft removed once (drafts are never audited: nothing was sent).
    assert sum(r.drafts_removed for r in reports) == len(world.drafts)
    assert not Message.objects.filter(state=MessageState.DRAFT).exists()
    for draft in world.drafts:
        assert storage.names_under(storage.message_folder(draft.public_id)) == []
    # Every envelope's expiry recorded once.
    assert targets_of("envelope.expired") == Counter({str(e.pk): 1 for e in world.envelopes})
    # Every abandoned email erased once, with one email.failed each.
    # (Outcome events are on the caller's object; the outbox row is named in the details.)
    assert outboxes_of("email.failed") == Counter({pk: 1 for pk in world.outbox_queued})
    assert not OutboxMessage.objects.filter(status="queued").exists()
    # One retention checkpoint for the old chain, recorded once.
    assert Checkpoint.objects.filter(chain=world.old_chain).count() == 1
    assert (
        Event.objects.filter(chain=world.old_chain, action="audit.retention_checkpoint").count()
        == 1
    )
    # No chain forked or broke on the way.
    for chain in set(Event.objects.values_list("chain", flat=True)):
        report = audit.verify_chain(chain)
        assert report.intact, audit.describe(report)
    assert Event.objects.count() > events_before

    # And a purge afterwards finds nothing left to do.
    again = exchange.purge()
    assert (again.grants_wiped, again.blobs_deleted, again.drafts_removed) == (0, 0, 0)


def test_parallel_deletions_of_a_message_record_one_deletion(send, sender_transport):
    """A double click, or the sender and an administrator at once: one deletion."""
    from tests.security.drafts import browser_with_cookies, cookies_of

    sent = send(attachments=[client.Attachment("a.bin", data=b"a" * 3000)])
    cookies = cookies_of(sender_transport.client)

    def delete(_n: int) -> int:
        return browser_with_cookies(cookies).delete(f"/api/v1/messages/{sent.id}").status_code

    assert in_parallel(4, delete) == [204] * 4
    message = Message.objects.get(public_id=sent.id)
    assert message.state == MessageState.DELETED and message.blobs_deleted_at
    assert targets_of("message.deleted") == Counter({str(message.pk): 1})
    assert not BlobChunk.objects.exists()
    assert storage.names_under(storage.message_folder(message.public_id)) == []
