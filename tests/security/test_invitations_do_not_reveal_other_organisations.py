"""Issue 11, finding 14: "A user with the email … already exists" told an administrator
that an address had an account in some other organisation. Now an address taken
elsewhere (or reserved) gets the same answer whatever the reason — "… cannot be
invited" — on the form, in the CSV import and on the API, and the refusal is recorded
in the inviting organisation's log without naming the other one. Inside the
organisation the answer still says the user exists.
"""

from __future__ import annotations

import json

import pytest
from django.core import mail
from django.test import Client

from sealbox.accounts.models import Role, User
from sealbox.audit.models import Event
from sealbox.users import services as users
from tests.conftest import PASSWORD

pytestmark = pytest.mark.django_db

TAKEN = "carol@other.example"


def login(user) -> Client:
    client = Client()
    assert client.post("/login/", {"email": user.email, "password": PASSWORD}).status_code == 302
    return client


@pytest.fixture
def admin(make_user):
    return make_user("admin@example.com", role=Role.ADMIN)


@pytest.fixture
def elsewhere(make_user, other_organisation):
    return make_user(TAKEN, org=other_organisation)


def refusals(organisation) -> list[dict]:
    return list(
        Event.objects.filter(action="user.invitation_refused", organisation=organisation)
        .order_by("seq")
        .values_list("details", flat=True)
    )


def assert_recorded_without_naming(admin, other_organisation, email: str = TAKEN) -> None:
    [details] = refusals(admin.organisation)
    assert details == {"email": email, "reason": "address unavailable"}
    event = Event.objects.get(action="user.invitation_refused")
    assert event.actor_id == str(admin.pk)
    recorded = json.dumps([details, event.actor_label, event.target_id, event.target_type])
    assert other_organisation.name not in recorded
    assert not Event.objects.filter(
        action="user.invitation_refused", organisation=other_organisation
    ).exists()


def test_the_form_answers_cannot_be_invited(admin, elsewhere, other_organisation):
    client = login(admin)
    response = client.post("/users/add/", {"email": TAKEN.upper(), "role": "member"})
    page = response.content.decode()
    assert response.status_code == 200
    assert f"{TAKEN} cannot be invited." in page
    assert "already exists" not in page and other_organisation.name not in page
    assert User.objects.filter(email=TAKEN).count() == 1
    assert not mail.outbox
    assert_recorded_without_naming(admin, other_organisation)


def test_the_api_answers_the_same(admin, elsewhere, other_organisation):
    client = login(admin)
    response = client.post(
        "/api/v1/users", json.dumps({"email": TAKEN}), content_type="application/json"
    )
    assert response.status_code == 409
    assert response.json()["message"] == f"{TAKEN} cannot be invited."
    assert_recorded_without_naming(admin, other_organisation)


def test_the_csv_import_answers_the_same(admin, elsewhere, other_organisation):
    report = users.import_users(None, admin, f"email\nok@example.com\n{TAKEN}\n".encode())
    assert report.errors == [(3, f"{TAKEN} cannot be invited.")]
    assert not User.objects.filter(email="ok@example.com").exists()
    assert_recorded_without_naming(admin, other_organisation)


def test_the_answer_is_the_same_as_for_a_reserved_address(admin, elsewhere, make_user):
    """The same words for another reason: the answer alone tells nothing."""
    gone = make_user("gone@example.com")
    users.delete_user(None, admin, gone)
    gone.refresh_from_db()
    client = login(admin)
    for email in (TAKEN, gone.email, "someone@deleted.invalid"):
        response = client.post(
            "/api/v1/users", json.dumps({"email": email}), content_type="application/json"
        )
        assert (response.status_code, response.json()["message"]) == (
            409,
            f"{email} cannot be invited.",
        ), email


def test_inside_the_organisation_it_still_says_the_user_exists(admin, user):
    client = login(admin)
    response = client.post("/users/add/", {"email": user.email, "role": "member"})
    assert f"A user with the email {user.email} already exists." in response.content.decode()
    assert refusals(admin.organisation) == []


def test_approved_domains_are_checked_first(admin, elsewhere, organisation):
    """Outside the approved domains an address is refused for that, taken or not."""
    organisation.approved_email_domains = "example.com"
    organisation.save()
    client = login(admin)
    response = client.post("/users/add/", {"email": TAKEN, "role": "member"})
    page = response.content.decode()
    assert "outside the approved email domains" in page
    assert "cannot be invited" not in page
