from datetime import timedelta

import pytest

from sealbox.ratelimit import services as ratelimit
from sealbox.ratelimit.models import Hit

pytestmark = pytest.mark.django_db

RULE = ratelimit.Rule("test", 3, timedelta(minutes=10))


def test_allows_up_to_the_limit_then_reports_the_wait(clock):
    for _ in range(3):
        assert ratelimit.check(RULE, "k").allowed
        ratelimit.hit(RULE, "k")
        clock.advance(minutes=1)
    decision = ratelimit.check(RULE, "k")
    assert not decision.allowed
    assert decision.retry_after == 7 * 60  # the first hit leaves the window in 7 minutes
    clock.advance(minutes=7)
    assert ratelimit.check(RULE, "k").allowed


def test_keys_and_scopes_are_separate(clock):
    for _ in range(3):
        ratelimit.hit(RULE, "a")
    assert not ratelimit.check(RULE, "a").allowed
    assert ratelimit.check(RULE, "b").allowed
    assert ratelimit.check(ratelimit.Rule("other", 3, timedelta(minutes=10)), "a").allowed


def test_keys_are_stored_as_digests(clock):
    ratelimit.hit(RULE, "alice@example.com")
    assert "alice" not in Hit.objects.get().key


def test_clear_and_purge(clock):
    ratelimit.hit(RULE, "a")
    ratelimit.clear(RULE, "a")
    assert ratelimit.count(RULE, "a") == 0
    ratelimit.hit(RULE, "b")
    clock.advance(days=2)
    assert ratelimit.purge_older_than(timedelta(days=1)) == 1


# --- Reservations: the check that counts ----------------------------------------------

OTHER = ratelimit.Rule("other", 2, timedelta(minutes=10))


def test_reserve_counts_up_to_the_limit_then_reports_the_wait(clock):
    for _ in range(3):
        assert ratelimit.reserve([(RULE, "k")]).allowed
        clock.advance(minutes=1)
    decision = ratelimit.reserve([(RULE, "k")])
    assert not decision.allowed and decision.refused_by == RULE
    assert decision.retry_after == 7 * 60
    assert ratelimit.count(RULE, "k") == 3  # a refusal counts nothing


def test_reserve_takes_every_slot_or_none(clock):
    ratelimit.hit(OTHER, "b")
    ratelimit.hit(OTHER, "b")
    decision = ratelimit.reserve([(RULE, "a"), (OTHER, "b")])
    assert not decision.allowed and decision.refused_by == OTHER
    assert ratelimit.count(RULE, "a") == 0
    decision = ratelimit.reserve([(RULE, "a"), (OTHER, "c")])
    assert decision.allowed and len(decision.reserved) == 2
    assert ratelimit.count(RULE, "a") == ratelimit.count(OTHER, "c") == 1


def test_the_first_refusing_rule_is_named_with_the_longest_wait(clock):
    for _ in range(3):
        ratelimit.hit(RULE, "k")
    clock.advance(minutes=5)
    for _ in range(2):
        ratelimit.hit(OTHER, "k")
    decision = ratelimit.reserve([(OTHER, "k"), (RULE, "k")])
    assert decision.refused_by == OTHER
    assert decision.retry_after == 10 * 60  # OTHER's hits leave last


def test_release_gives_the_slots_back(clock):
    decision = ratelimit.reserve([(RULE, "k"), (OTHER, "k")])
    ratelimit.hit(RULE, "k")
    decision.release()
    assert ratelimit.count(RULE, "k") == 1  # only the reserved slot went
    assert ratelimit.count(OTHER, "k") == 0
    ratelimit.check(RULE, "k").release()  # a plain check holds nothing to release


def test_a_wait_of_its_own_refuses_like_a_full_window(clock):
    seen = []

    def wait(rule, times):
        seen.append((rule, len(times)))
        return 30 if len(times) >= 1 else 0

    assert ratelimit.reserve([(RULE, "k")], wait=wait).allowed
    decision = ratelimit.reserve([(RULE, "k")], wait=wait)
    assert (decision.allowed, decision.retry_after) == (False, 30)
    assert seen == [(RULE, 0), (RULE, 1)]


def test_a_reservation_inside_a_transaction_goes_with_it(clock):
    from django.db import transaction

    with pytest.raises(RuntimeError), transaction.atomic():
        assert ratelimit.reserve([(RULE, "k")]).allowed
        raise RuntimeError("the work failed")
    assert ratelimit.count(RULE, "k") == 0


@pytest.mark.django_db(transaction=True)
def test_lock_needs_a_transaction(clock):
    from django.db import transaction

    with pytest.raises(RuntimeError):
        ratelimit.lock("quota", "org:1")
    with transaction.atomic():
        ratelimit.lock("quota", "org:1")
        ratelimit.lock("quota", "org:1")  # again in the same transaction: no deadlock


def test_take_and_give_back_a_counted_try(user):
    from sealbox.twofactor.models import FactorLock

    FactorLock.objects.create(user=user, factor="totp", failures=1)
    rows = FactorLock.objects.filter(user=user, factor="totp")
    assert ratelimit.take(rows, "failures", 2)
    assert not ratelimit.take(rows, "failures", 2)
    assert rows.get().failures == 2
    ratelimit.give_back(rows, "failures")
    ratelimit.give_back(rows, "failures")
    ratelimit.give_back(rows, "failures")  # never below zero
    assert rows.get().failures == 0


def test_purge_drops_idle_locks(clock):
    from sealbox.ratelimit.models import KeyLock

    ratelimit.reserve([(RULE, "k")])
    assert KeyLock.objects.count() == 1
    clock.advance(days=3)
    ratelimit.purge_older_than(timedelta(days=2))
    assert KeyLock.objects.count() == 0
    assert ratelimit.reserve([(RULE, "k")]).allowed  # the lock row comes back when needed


@pytest.mark.django_db(transaction=True)
def test_parallel_reservations_never_exceed_the_limit(clock):
    from tests.security.in_parallel import in_parallel

    rule = ratelimit.Rule("parallel", 5, timedelta(minutes=10))
    decisions = in_parallel(20, lambda n: ratelimit.reserve([(rule, "k"), (RULE, f"k{n}")]))
    assert sum(d.allowed for d in decisions) == 5
    assert ratelimit.count(rule, "k") == 5
