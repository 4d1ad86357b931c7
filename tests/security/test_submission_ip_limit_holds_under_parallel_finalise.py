"""Issue 11, item 4: parallel submissions from one address to a public envelope cannot
go past the envelope's hourly limit for that address.

Before the fix each finalise read the count, then counted: every draft uploaded in
parallel was accepted.
"""

import pytest
from django.test import Client

from sealbox.crypto import links
from sealbox.envelopes.models import EnvelopeLink, Submission
from tests.envelopes.conftest import (  # noqa: F401 - fixtures
    SUBMITTER_IP,
    api,
    make_envelope,
    seal_for_owner,
    sender,
)
from tests.security.in_parallel import in_parallel

pytestmark = pytest.mark.django_db(transaction=True)


def test_eight_parallel_submissions_from_one_address_count_five(make_envelope):  # noqa: F811
    envelope = make_envelope(public=True, per_ip_hourly=5, max_submissions=100)
    link = envelope.links.get()
    drafts = []
    for n in range(8):
        status, started = api(Client(), "POST", f"/api/v1/envelope-links/{link.token}/start", {})
        assert status == 200
        draft = seal_for_owner(
            Client(),
            "/api/v1/envelope-submissions",
            {"submit_token": started["submit_token"], "name": f"S{n}", "email": "s@example.org"},
            "/api/v1/envelope-submissions/{id}/finalise",
            finalise=False,
        )
        assert draft.status in (201, 429), draft.data  # a limit at creation may refuse some
        if draft.status == 201:
            drafts.append(draft)

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

    statuses = in_parallel(len(drafts), finalise)
    assert statuses.count(200) == 5
    assert set(statuses) <= {200, 429}
    assert EnvelopeLink.objects.get(pk=link.pk).submissions == 5
    assert Submission.objects.filter(submitted_at__isnull=False).count() == 5
