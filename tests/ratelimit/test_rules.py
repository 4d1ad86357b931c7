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
