"""Issue 11, finding 10: the envelopes of a disabled or deleted user no longer accept
documents that nobody could open (a submission opens only for its owner, logged in).

Disabling or deleting a user (users.services) closes their open envelopes in the same
transaction, each with an `envelope.closed` event giving the reason; the submitter's page
says the envelope is closed. An owner made inactive any other way gets nothing either.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.test import Client

from sealbox.accounts.models import User
from sealbox.audit.models import Event
from sealbox.envelopes.models import Envelope, EnvelopeState, Submission
from sealbox.lib import clock
from sealbox.users import services as users
from tests.envelopes.conftest import api, submit

pytestmark = pytest.mark.django_db


@pytest.fixture
def envelopes(make_envelope):
    return [make_envelope(), make_envelope(public=True, subject="Open call")]


def assert_closed_for_submitters(envelope: Envelope) -> None:
    envelope.refresh_from_db()
    assert envelope.state == EnvelopeState.CLOSED and envelope.closed_at is not None
    token = envelope.links.order_by("id").first().token
    page = Client().get(f"/e/{token}")
    assert page.status_code == 410
    assert "This envelope is closed: it no longer accepts documents." in page.content.decode()
    status, info = api(Client(), "GET", f"/api/v1/envelope-links/{token}")
    assert status == 200 and info["state"] == "closed"
    assert submit(envelope).status == 410


@pytest.mark.parametrize(
    "act, reason",
    [
        (lambda admin, user: users.set_active(None, admin, user, False), "owner_disabled"),
        (lambda admin, user: users.delete_user(None, admin, user), "owner_deleted"),
    ],
    ids=["disabled", "deleted"],
)
def test_the_owners_envelopes_close_with_an_event_giving_the_reason(
    envelopes, sender, admin_user, act, reason
):
    act(admin_user, sender)
    for envelope in envelopes:
        assert_closed_for_submitters(envelope)
    events = Event.objects.filter(action="envelope.closed").order_by("id")
    assert [(e.target_id, e.details["reason"]) for e in events] == [
        (str(envelope.pk), reason) for envelope in envelopes
    ]
    assert all(e.actor_id == str(admin_user.pk) for e in events)
    assert not Submission.objects.exists()


def test_enabling_the_owner_again_does_not_reopen_them(envelopes, sender, admin_user):
    users.set_active(None, admin_user, sender, False)
    users.set_active(None, admin_user, sender, True)
    for envelope in envelopes:
        assert_closed_for_submitters(envelope)
    assert Event.objects.filter(action="envelope.closed").count() == 2


def test_other_members_envelopes_stay_open(make_user, sender, admin_user):
    from sealbox.envelopes import services as envelope_services

    colleague = make_user("colleague@example.com")
    theirs = envelope_services.create_envelope(
        colleague,
        envelope_services.EnvelopeSpec(
            subject="Still open",
            expires_at=clock.now() + timedelta(days=7),
            recipients=[envelope_services.EnvelopeRecipient("client@example.org")],
        ),
    )
    users.set_active(None, admin_user, sender, False)
    theirs.refresh_from_db()
    assert theirs.state == EnvelopeState.OPEN
    assert submit(theirs).status == 200


def test_a_submission_under_way_is_refused_once_the_owner_is_disabled(
    make_envelope, sender, admin_user
):
    envelope = make_envelope(public=True)
    sealed = submit(envelope, finalise=False)
    assert sealed.status == 201
    users.set_active(None, admin_user, sender, False)
    token = sealed.link.split("/o/")[1].split("#")[0]
    status, answer = api(
        Client(),
        "POST",
        f"/api/v1/envelope-submissions/{sealed.data['id']}/finalise",
        {"links": [{"grant_token": token, "link": sealed.link}]},
        token=sealed.data["upload_token"],
    )
    assert status == 410, answer
    assert not Submission.objects.filter(submitted_at__isnull=False).exists()


def test_an_owner_made_inactive_outside_user_administration_gets_nothing(envelopes, sender):
    User.objects.filter(pk=sender.pk).update(is_active=False)  # the Django admin, a shell…
    for envelope in envelopes:
        token = envelope.links.order_by("id").first().token
        page = Client().get(f"/e/{token}")
        assert page.status_code == 410
        assert "This envelope is closed" in page.content.decode()
        assert submit(envelope).status == 410
