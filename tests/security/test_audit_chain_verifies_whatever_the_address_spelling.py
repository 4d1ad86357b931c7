"""Issue 11, item 6: audit verification reported a false break for IPv4-mapped IPv6 client
addresses (`serve --host ::`): the hash used ::ffff:7f00:1, the row stored ::ffff:127.0.0.1.

Now an address is normalised once (an IPv4-mapped address is its IPv4 client) and stored
as it is hashed; the hash covers the address, not a backend's spelling of it (PostgreSQL
writes ::102:304 as ::1.2.3.4); events of the earlier release verify; and a verification
that finds a break goes on past it, reporting every break and how many events verify after
each, so one false break cannot hide a real one (`audit verify` and `audit verify-export`).
"""

import ipaddress
import json
from datetime import timedelta

import pytest
from django.db import connection
from django.test import Client

from sealbox import cli
from sealbox.audit import exports
from sealbox.audit import services as audit
from sealbox.audit.models import ChainHead, Event
from sealbox.client import messages as client
from tests.conftest import PASSWORD
from tests.exchange.conftest import DjangoTransport

pytestmark = pytest.mark.django_db

MAPPED = "::ffff:127.0.0.1"


def stored(event: Event) -> Event:
    """The event as the database gives it back (each backend spells addresses its way)."""
    return Event.objects.get(pk=event.pk)


def test_a_real_request_from_an_ipv4_mapped_address_verifies(client, user, capsys):
    response = client.post(
        "/login/", {"email": user.email, "password": PASSWORD}, REMOTE_ADDR=MAPPED
    )
    assert response.status_code == 302
    event = Event.objects.get(action="login.succeeded")
    assert stored(event).ip == "127.0.0.1"  # stored as it was hashed
    report = audit.verify_chain(event.chain)
    assert report.intact, audit.describe(report)
    assert cli.main(["audit", "verify"]) == 0
    assert capsys.readouterr().out.startswith("Audit log intact:")


def test_a_recipient_opening_from_an_ipv4_mapped_address_verifies(send, capsys):
    sent = send()
    transport = DjangoTransport(Client(), ip="::ffff:203.0.113.50")
    client.open_message(
        transport,
        sent.links["client@example.org"],
        code=sent.opening_codes["client@example.org"],
    )
    opened = Event.objects.get(action="message.opened")
    assert stored(opened).ip == "203.0.113.50"
    assert audit.verify_chain(opened.chain).intact
    assert cli.main(["audit", "verify"]) == 0


@pytest.mark.parametrize(
    "given, kept",
    [
        (MAPPED, "127.0.0.1"),
        ("::ffff:7f00:1", "127.0.0.1"),
        ("::1.2.3.4", "::102:304"),  # PostgreSQL's inet gives it back as ::1.2.3.4
        ("2001:DB8::1", "2001:db8::1"),
        ("fe80::1%eth0", "fe80::1"),  # a zone names the server's interface; inet refuses it
        ("198.51.100.7", "198.51.100.7"),
        (None, None),
    ],
)
def test_a_stored_row_verifies_on_this_backend(organisation, given, kept):
    event = audit.record("test.address", organisation=organisation, ip=given)
    again = stored(event)
    if kept is None:
        assert again.ip is None
    else:  # the address kept, in this backend's spelling
        assert ipaddress.ip_address(again.ip) == ipaddress.ip_address(kept)
    assert audit.compute_hash(again.prev_hash, again) == again.hash
    report = audit.verify_chain(event.chain)
    assert report.intact, (connection.vendor, again.ip, audit.describe(report))


def append_as_the_earlier_release_did(organisation, ip: str) -> Event:
    """An event hashed over Python 3.11's spelling of a mapped address, stored by Django."""
    chain = audit.chain_name(organisation.pk)
    head = ChainHead.objects.get(chain=chain)
    event = Event(
        chain=chain,
        seq=head.seq + 1,
        organisation_id=organisation.pk,
        created_at=Event.objects.filter(chain=chain).latest("seq").created_at
        + timedelta(seconds=1),
        actor_type="anonymous",
        action="login.failed",
        ip=ip,
        details={},
        prev_hash=head.last_hash,
    )
    event.hash = audit.hashlib.sha256(
        (head.last_hash + audit.canonical(event, ip="::ffff:7f00:1")).encode()
    ).hexdigest()
    event.save()
    ChainHead.objects.filter(pk=head.pk).update(seq=event.seq, last_hash=event.hash)
    return event


def test_events_of_the_earlier_release_verify_and_export(clock, organisation):
    old = append_as_the_earlier_release_did(organisation, MAPPED)
    audit.record("test.after", organisation=organisation, ip=MAPPED)
    report = audit.verify_chain(old.chain)
    assert report.intact, audit.describe(report)
    lines = b"".join(
        exports.stream_events_jsonl(
            organisation, clock.current - timedelta(days=1), clock.current + timedelta(days=1)
        )
    ).splitlines()
    result = exports.verify_jsonl(lines)
    assert result.ok, result.message
    assert result.count == audit.verify_chain(old.chain).checked  # the old event included


# --- one break does not hide another ------------------------------------------------------


def chain_of(organisation, count: int) -> list[Event]:
    return [
        audit.record("test.event", organisation=organisation, details={"n": n})
        for n in range(count)
    ]


def test_verification_reports_every_break_and_what_verifies_after_each(organisation):
    events = chain_of(organisation, 10)
    first, second = events[2], events[6]
    Event.objects.filter(pk=first.pk).update(ip="198.51.100.66")  # a false break, say
    Event.objects.filter(pk=second.pk).update(actor_label="mallory@example.com")  # a real one
    report = audit.verify_chain(first.chain)
    assert not report.intact
    assert [b.event.pk for b in report.breaks] == [first.pk, second.pk]
    assert report.broken_event.pk == first.pk
    assert [b.verified_after for b in report.breaks] == [3, 3]
    assert report.checked == 11 and report.verified == 9  # organisation.created + 10
    text = audit.describe(report)
    assert f"event {first.pk} (seq {first.seq}, test.event)" in text
    assert f"event {second.pk} (seq {second.seq}, test.event)" in text
    assert "(3 later events verify from the next one)" in text
    assert "2 breaks; 9 of 11 events verify" in text


def test_audit_verify_goes_on_past_a_break_and_through_every_chain(
    organisation, other_organisation, capsys
):
    ours = chain_of(organisation, 4)
    theirs = chain_of(other_organisation, 4)
    Event.objects.filter(pk=ours[1].pk).update(details={"n": 99})
    Event.objects.filter(pk=ours[3].pk).update(details={"n": 98})
    Event.objects.filter(pk=theirs[2].pk).update(details={"n": 97})
    assert cli.main(["audit", "verify"]) == 1
    out = capsys.readouterr().out
    for event in (ours[1], ours[3], theirs[2]):
        assert f"event {event.pk} (seq {event.seq}" in out
    assert "Audit log broken: 3 breaks in 2 chains" in out


def test_verify_export_goes_on_past_a_bad_line(clock, organisation, tmp_path, capsys):
    chain_of(organisation, 8)
    data = b"".join(
        exports.stream_events_jsonl(
            organisation, clock.current - timedelta(days=1), clock.current + timedelta(days=1)
        )
    )
    lines = data.splitlines(keepends=True)

    def edit(number: int, **changes) -> None:
        item = json.loads(lines[number - 1])
        item.update(changes)
        lines[number - 1] = (json.dumps(item, ensure_ascii=False) + "\n").encode()

    edit(3, ip="198.51.100.66")
    edit(7, actor_label="mallory@example.com")
    result = exports.verify_jsonl(lines)
    assert not result.ok
    assert result.line == 3
    # organisation.created, 8 events, the sealing key's creation: 10 lines of events.
    assert [(line, after) for line, _, after in result.problems] == [(3, 3), (7, 4)]
    assert result.count == 8

    path = tmp_path / "export.jsonl"
    path.write_bytes(b"".join(lines))
    assert cli.main(["audit", "verify-export", str(path)]) == 1
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("line 3: the event with seq 2 was modified")
    assert out[0].endswith("(3 later events verify from the next one)")
    assert out[1].startswith("line 7: the event with seq 6 was modified")
    assert out[2] == "2 problems; 8 events verify."
