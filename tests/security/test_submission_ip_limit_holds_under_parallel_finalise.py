"""Issue 11, items 4 and 8: parallel submissions from one address to a public envelope
cannot go past the envelope's hourly limit for that address, nor past the drafts one
address may have under way.

Before the fix each finalise read the count, then counted: every draft uploaded in
parallel was accepted. The count now happens when a draft is created, under a lock on
the envelope; finalising in parallel sends each counted draft exactly once.
"""

import pytest
from django.test import Client

from sealbox.crypto import links
from sealbox.envelopes.models import EnvelopeLink, Submission
from sealbox.envelopes.services import OPEN_DRAFTS_PER_IP
from tests.envelopes.conftest import (  # noqa: F401 - fixtures
    SUBMITTER_IP,
    api,
    make_envelope,
    seal_for_owner,
    sender,
)
from tests.security.in_parallel import in_parallel

pytestmark = pytest.mark.django_db(transaction=True)

PER_IP_HOURLY = 5


def start_drafts(link, count: int) -> list:
    def create(n: int):
        status, started = api(Client(), "POST", f"/api/v1/envelope-links/{link.token}/start", {})
        assert status == 200
        return seal_for_owner(
            Client(),
            "/api/v1/envelope-submissions",
            {"submit_token": started["submit_token"], "name": f"S{n}", "email": "s@example.org"},
            "/api/v1/envelope-submissions/{id}/finalise",
            finalise=False,
        )

    drafts = in_parallel(count, create)
    assert {d.status for d in drafts} <= {201, 429}, [d.data for d in drafts]
    return [d for d in drafts if d.status == 201]


def finalise_all(drafts) -> list[int]:
    def finalise(n: int) -> int:
        draft = drafts[n]
        grant_token = links.parse_link(draft.link).grant_token
        body = {"links": [{"grant_token": grant_token, "link": draft.link}]}
        status, _data = api(
            Client(),
            "POST",
            f"/api/v1/envelope-submissions/{draft.data['id']}/finalise",
            body,
            ip=SUBMITTER_IP,
            token=draft.data["upload_token"],
        )
        return status

    return in_parallel(len(drafts), finalise)


def test_parallel_submissions_from_one_address_count_five(make_envelope):  # noqa: F811
    envelope = make_envelope(public=True, per_ip_hourly=PER_IP_HOURLY, max_submissions=100)
    link = envelope.links.get()

    # Eight at once: only as many drafts as one address may have under way.
    first = start_drafts(link, 8)
    assert len(first) == OPEN_DRAFTS_PER_IP
    assert finalise_all(first) == [200] * OPEN_DRAFTS_PER_IP

    # Eight more at once: the hour's limit for the address leaves room for two.
    second = start_drafts(link, 8)
    assert len(second) == PER_IP_HOURLY - OPEN_DRAFTS_PER_IP
    assert finalise_all(second) == [200] * len(second)

    assert EnvelopeLink.objects.get(pk=link.pk).submissions == PER_IP_HOURLY
    assert Submission.objects.filter(submitted_at__isnull=False).count() == PER_IP_HOURLY
    assert start_drafts(link, 3) == []
