"""Retention: old events leave the chain only after a signed checkpoint; verify still passes."""

from __future__ import annotations

from datetime import timedelta
from zoneinfo import ZoneInfo

import pytest

from sealbox.accounts import services as accounts
from sealbox.audit import retention
from sealbox.audit import services as audit
from sealbox.audit.models import Checkpoint, Event
from sealbox.cli import run_purge
from tests.audit.test_exports import append_events

pytestmark = pytest.mark.django_db

DAY = timedelta(days=1)


def organisation_created(clock, name: str, days_ago: int, plan_name: str = "Advanced"):
    """An organisation whose chain starts `days_ago` (its organisation.created event)."""
    now = clock.current
    clock.current = now - days_ago * DAY
    organisation, _ = accounts.get_or_create_organisation(name, plan_name=plan_name)
    clock.current = now
    return organisation


@pytest.fixture
def old_and_new(clock, plans):
    """A chain begun 9 years ago: 10 events 8 years old, then 5 recent ones."""
    organisation = organisation_created(clock, "Tremblay Avocats", 9 * 365)
    now = clock.current
    append_events(organisation, 10, start=now - 8 * 365 * DAY, step=DAY)
    append_events(organisation, 5, start=now - 10 * DAY, step=DAY)
    return organisation


def chain_of(organisation) -> str:
    return audit.chain_name(organisation.pk)


def test_organisations_keep_events_seven_years_by_default(organisation):
    assert organisation.audit_retention_days == 2557


def test_expired_events_are_removed_after_a_signed_checkpoint(clock, old_and_new):
    chain = chain_of(old_and_new)
    old = list(Event.objects.filter(chain=chain).order_by("seq")[:11])  # created + 10 old
    removed = retention.purge_expired_events()
    assert removed == 11
    assert not Event.objects.filter(pk__in=[event.pk for event in old]).exists()

    checkpoint = Checkpoint.objects.get(chain=chain)
    assert (checkpoint.seq, checkpoint.hash) == (old[-1].seq, old[-1].hash)
    assert checkpoint.created_at == clock.current
    assert retention.checkpoint_is_authentic(checkpoint)

    recorded = Event.objects.get(chain=chain, action="audit.retention_checkpoint")
    assert recorded.details == {"seq": old[-1].seq, "hash": old[-1].hash, "removed": 11}
    report = audit.verify_chain(chain)
    assert report.intact, audit.describe(report)


def test_verify_still_passes_and_counts_only_the_remaining_events(clock, old_and_new):
    chain = chain_of(old_and_new)
    retention.purge_expired_events()
    remaining = Event.objects.filter(chain=chain).count()
    report = audit.verify_chain(chain)
    assert report.intact
    assert report.checked == remaining


def test_nothing_expired_means_no_checkpoint_and_no_event(clock, organisation):
    append_events(organisation, 5, start=clock.current - 30 * DAY, step=DAY)
    before = Event.objects.count()
    assert retention.purge_expired_events() == 0
    assert not Checkpoint.objects.exists()
    assert Event.objects.count() == before


def test_each_organisation_has_its_own_retention(clock, plans):
    organisation = organisation_created(clock, "Tremblay Avocats", 200)
    other_organisation = organisation_created(clock, "Other Firm", 200, "Pro")
    other_organisation.audit_retention_days = 30
    other_organisation.save()
    for org in (organisation, other_organisation):
        append_events(org, 3, start=clock.current - 100 * DAY, step=DAY)
    retention.purge_expired_events()
    assert not Checkpoint.objects.filter(chain=chain_of(organisation)).exists()
    assert Checkpoint.objects.filter(chain=chain_of(other_organisation)).exists()
    assert Event.objects.filter(chain=chain_of(organisation), action="message.opened").count() == 3
    assert not Event.objects.filter(chain=chain_of(other_organisation), action="message.opened")
    for org in (organisation, other_organisation):
        assert audit.verify_chain(chain_of(org)).intact


def test_a_second_purge_starts_from_the_latest_checkpoint(clock, old_and_new):
    chain = chain_of(old_and_new)
    retention.purge_expired_events()
    clock.advance(days=2558)  # everything so far is now expired
    append_events(old_and_new, 2, start=clock.current - DAY, step=timedelta(hours=1))
    retention.purge_expired_events()
    assert Checkpoint.objects.filter(chain=chain).count() == 2
    assert audit.verify_chain(chain).intact
    assert set(Event.objects.filter(chain=chain).values_list("action", flat=True)) == {
        "message.opened",
        "audit.retention_checkpoint",
    }


def test_only_a_prefix_of_the_chain_is_removed(clock, plans):
    """An old event after a newer one (clock stepped back) waits; verify still passes."""
    organisation = organisation_created(clock, "Tremblay Avocats", 10 * 365)
    now = clock.current
    append_events(organisation, 3, start=now - 9 * 365 * DAY, step=DAY)
    append_events(organisation, 1, start=now - DAY)
    append_events(organisation, 2, start=now - 9 * 365 * DAY, step=DAY)  # stepped back
    retention.purge_expired_events(now)
    seqs = list(Event.objects.filter(chain=chain_of(organisation)).values_list("seq", flat=True))
    assert min(seqs) == 5  # created + 3 old removed; the out-of-order old ones stay
    assert audit.verify_chain(chain_of(organisation)).intact


def test_the_purge_task_runs_retention(clock, old_and_new):
    run_purge()
    assert Checkpoint.objects.filter(chain=chain_of(old_and_new)).exists()
    assert audit.verify_chain(chain_of(old_and_new)).intact


def test_a_checkpoint_made_with_a_local_time_still_verifies(old_and_new, clock):
    local_now = clock.current.astimezone(ZoneInfo("America/Toronto"))
    retention.purge_expired_events(local_now)
    assert audit.verify_chain(chain_of(old_and_new)).intact


# --- tampering after retention ----------------------------------------------------------


def test_editing_one_row_names_that_event(clock, old_and_new):
    chain = chain_of(old_and_new)
    retention.purge_expired_events()
    victim = Event.objects.filter(chain=chain, action="message.opened").order_by("seq")[2]
    Event.objects.filter(pk=victim.pk).update(ip="198.51.100.66")
    report = audit.verify_chain(chain)
    assert not report.intact
    assert report.broken_event.pk == victim.pk
    assert f"event {victim.pk} (seq {victim.seq}" in audit.describe(report)


def test_a_forged_checkpoint_fails_verification(clock, old_and_new):
    chain = chain_of(old_and_new)
    retention.purge_expired_events()
    # Remove more events and move the checkpoint past them, keeping the old signature.
    checkpoint = Checkpoint.objects.get(chain=chain)
    next_event = Event.objects.filter(chain=chain).order_by("seq").first()
    next_event.delete()
    Checkpoint.objects.filter(pk=checkpoint.pk).update(seq=next_event.seq, hash=next_event.hash)
    report = audit.verify_chain(chain)
    assert not report.intact
    assert "checkpoint" in report.reason and "signature" in report.reason


def test_a_checkpoint_with_a_made_up_signature_fails(clock, old_and_new):
    chain = chain_of(old_and_new)
    first = Event.objects.filter(chain=chain).order_by("seq")[:3]
    last_removed = list(first)[-1]
    Checkpoint.objects.create(
        chain=chain,
        seq=last_removed.seq,
        hash=last_removed.hash,
        created_at=clock.current,
        signature="bm90IGEgc2lnbmF0dXJl",
    )
    Event.objects.filter(chain=chain, seq__lte=last_removed.seq).delete()
    report = audit.verify_chain(chain)
    assert not report.intact
    assert "invalid signature" in audit.describe(report)


def test_removing_events_without_a_checkpoint_is_detected(clock, old_and_new):
    chain = chain_of(old_and_new)
    retention.purge_expired_events()
    doomed = list(Event.objects.filter(chain=chain).order_by("seq")[:2])
    Event.objects.filter(pk__in=[event.pk for event in doomed]).delete()
    report = audit.verify_chain(chain)
    assert not report.intact
    assert "sequence gap" in report.reason


def test_an_event_put_back_before_the_checkpoint_is_detected(clock, old_and_new):
    chain = chain_of(old_and_new)
    kept = Event.objects.filter(chain=chain).order_by("seq").first()
    retention.purge_expired_events()
    kept.pk = None
    kept.save()
    report = audit.verify_chain(chain)
    assert not report.intact
    assert report.broken_event.seq == kept.seq
    assert "before the checkpoint" in report.reason
