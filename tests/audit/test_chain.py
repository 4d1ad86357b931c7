"""The audit log's hash chains: append, verify, and detect every kind of tampering."""

import threading

import pytest
from django.db import connection, connections, transaction

from sealbox.accounts import services as accounts
from sealbox.audit import services as audit
from sealbox.audit.models import ChainHead, Event

pytestmark = pytest.mark.django_db


def make_events(organisation, count):
    return [
        audit.record("test.event", organisation=organisation, details={"n": n})
        for n in range(count)
    ]


def test_events_link_to_the_previous_one(organisation):
    events = make_events(organisation, 3)
    first_seq = events[0].seq
    for before, after in zip(events, events[1:], strict=False):
        assert after.prev_hash == before.hash
        assert after.seq == before.seq + 1
    assert events[0].chain == f"org:{organisation.pk}"
    report = audit.verify_chain(events[0].chain)
    assert report.intact
    assert report.checked == first_seq + 2


def test_each_organisation_has_its_own_chain(organisation, other_organisation):
    a = audit.record("test.event", organisation=organisation)
    b = audit.record("test.event", organisation=other_organisation)
    assert a.chain != b.chain
    assert audit.record("test.event").chain == "system"


def test_record_joins_the_callers_transaction(organisation):
    before = Event.objects.count()
    with pytest.raises(RuntimeError), transaction.atomic():
        audit.record("test.event", organisation=organisation)
        raise RuntimeError("the state change failed")
    assert Event.objects.count() == before
    assert audit.verify_chain(f"org:{organisation.pk}").intact


def test_request_details_are_recorded(rf, user):
    request = rf.get("/", REMOTE_ADDR="192.0.2.10", HTTP_USER_AGENT="Firefox/130")
    event = audit.record("test.event", actor=user, request=request, target=user)
    assert (event.ip, event.user_agent) == ("192.0.2.10", "Firefox/130")
    assert (event.actor_type, event.actor_id, event.actor_label) == (
        "user",
        str(user.pk),
        user.email,
    )
    assert (event.target_type, event.target_id) == ("user", str(user.pk))
    assert event.organisation_id == user.organisation_id


@pytest.mark.parametrize(
    "field, value",
    [
        ("actor_label", "mallory@example.com"),
        ("ip", "198.51.100.66"),
        ("action", "login.succeeded"),
        ("details", {"n": 99}),
    ],
)
def test_editing_a_row_breaks_verification_at_that_event(organisation, field, value):
    events = make_events(organisation, 5)
    victim = events[2]
    Event.objects.filter(pk=victim.pk).update(**{field: value})
    report = audit.verify_chain(victim.chain)
    assert not report.intact
    assert report.broken_event.pk == victim.pk
    assert f"event {victim.pk}" in audit.describe(report)


def test_deleting_a_row_is_detected(organisation):
    events = make_events(organisation, 5)
    Event.objects.filter(pk=events[2].pk).delete()
    report = audit.verify_chain(events[0].chain)
    assert not report.intact
    assert report.broken_event.pk == events[3].pk
    assert "sequence gap" in report.reason


def test_deleting_the_last_rows_is_detected(organisation):
    events = make_events(organisation, 5)
    Event.objects.filter(pk__in=[events[3].pk, events[4].pk]).delete()
    report = audit.verify_chain(events[0].chain)
    assert not report.intact
    assert "missing after" in report.reason


def test_rehashing_an_edited_row_still_breaks_the_next_link(organisation):
    events = make_events(organisation, 4)
    victim = Event.objects.get(pk=events[1].pk)
    victim.details = {"n": 42}
    victim.hash = audit.compute_hash(victim.prev_hash, victim)
    Event.objects.filter(pk=victim.pk).update(details=victim.details, hash=victim.hash)
    report = audit.verify_chain(victim.chain)
    assert report.broken_event.pk == events[2].pk
    assert "does not link" in report.reason


def test_login_events_are_recorded(client, user):
    from tests.conftest import PASSWORD

    client.post("/login/", {"email": user.email, "password": "wrong password!"})
    client.post("/login/", {"email": "ghost@example.com", "password": "wrong password!"})
    client.post("/login/", {"email": user.email, "password": PASSWORD})
    client.post("/logout/")
    actions = list(Event.objects.order_by("id").values_list("action", flat=True))
    assert actions[-4:] == ["login.failed", "login.failed", "login.succeeded", "logout"]
    ghost = Event.objects.filter(action="login.failed", chain="system").get()
    assert ghost.actor_label == "ghost@example.com"
    for event in Event.objects.all():
        assert "wrong password!" not in str(event.details)
        assert PASSWORD not in str(event.details)


@pytest.mark.django_db(transaction=True)
def test_concurrent_writers_never_fork_the_chain(plans):
    """8 threads append 200 events each to one chain: no fork, no gap (PostgreSQL)."""
    if connection.vendor != "postgresql":
        pytest.skip("needs PostgreSQL: set SEALBOX_TEST_DATABASE_URL")
    organisation, _ = accounts.get_or_create_organisation("Concurrent Org")
    errors = []

    def writer(worker: int) -> None:
        try:
            for n in range(200):
                audit.record(
                    "test.concurrent", organisation=organisation, details={"worker": worker, "n": n}
                )
        except Exception as error:  # pragma: no cover - reported below
            errors.append(error)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=writer, args=(w,)) for w in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    chain = audit.chain_name(organisation.pk)
    report = audit.verify_chain(chain)
    assert report.intact, audit.describe(report)
    assert report.checked == 1 + 8 * 200  # organisation.created + the writers' events
    assert ChainHead.objects.get(chain=chain).seq == report.checked
    seqs = list(Event.objects.filter(chain=chain).values_list("seq", flat=True))
    assert sorted(seqs) == list(range(1, report.checked + 1))


def test_a_chain_broken_everywhere_names_the_first_breaks_and_counts_the_rest(
    organisation, monkeypatch
):
    monkeypatch.setattr(audit, "MAX_REPORTED_BREAKS", 2)
    events = make_events(organisation, 6)
    Event.objects.filter(pk__in=[e.pk for e in events[1:5]]).update(details={"n": -1})
    report = audit.verify_chain(events[0].chain)
    assert [b.event.pk for b in report.breaks] == [events[1].pk, events[2].pk]
    assert report.more_breaks == 2 and report.break_count == 4
    assert [b.verified_after for b in report.breaks] == [0, 0]
    text = audit.describe(report)
    assert "and 2 more breaks" in text and "4 breaks; 3 of 7 events verify" in text
