"""Issue 11, finding 13: the administrators' API stored an SMS country the forms refuse
("ZZ"), and every number later read with it failed. Now one rule (accounts.models.
validate_sms_country) serves the forms, the CSV import, the API and the models' clean():
the API answers 422 with a JSON message naming the field, and nothing is stored.
"""

from __future__ import annotations

import json

import pytest
from django.test import Client

from sealbox.accounts import services as accounts
from sealbox.accounts.models import Role, sms_countries, validate_sms_country
from sealbox.users import services as users
from tests.conftest import PASSWORD

pytestmark = pytest.mark.django_db


def login(user) -> Client:
    client = Client()
    assert client.post("/login/", {"email": user.email, "password": PASSWORD}).status_code == 302
    return client


def patch(client: Client, pk: int, body: dict):
    return client.patch(f"/api/v1/users/{pk}", json.dumps(body), content_type="application/json")


@pytest.fixture
def admin(make_user):
    return make_user("admin@example.com", role=Role.ADMIN)


@pytest.mark.parametrize("country", ["ZZ", "XX", "00", "C1"])
def test_the_api_refuses_an_unknown_sms_country_naming_the_field(admin, user, country):
    client = login(admin)
    response = patch(client, user.pk, {"sms_country": country})
    assert response.status_code == 422, response.content
    body = response.json()
    assert body["error"] == "invalid"
    assert body["message"].startswith("sms_country: ")
    assert "is not a known country" in body["message"]
    assert body["details"][0]["field"] == "sms_country"
    user.refresh_from_db()
    assert user.sms_country == "CA"


def test_the_phone_is_not_read_with_a_refused_country(admin, user):
    client = login(admin)
    response = patch(client, user.pk, {"sms_country": "ZZ", "mobile_phone": "514 555 0100"})
    assert response.status_code == 422
    assert response.json()["message"].startswith("sms_country: ")
    user.refresh_from_db()
    assert (user.sms_country, str(user.mobile_phone)) == ("CA", "")


def test_a_known_country_is_saved_as_the_forms_would(admin, user):
    client = login(admin)
    response = patch(client, user.pk, {"sms_country": "fr", "mobile_phone": "06 12 34 56 78"})
    assert response.status_code == 200, response.content
    user.refresh_from_db()
    assert (user.sms_country, str(user.mobile_phone)) == ("FR", "+33612345678")


def test_the_form_and_the_api_share_one_rule(admin, user):
    from django.core.exceptions import ValidationError

    from sealbox.users.forms import EditUserForm

    with pytest.raises(ValidationError):
        validate_sms_country("ZZ")
    field = EditUserForm.base_fields["sms_country"]
    assert validate_sms_country in field.validators
    assert {value for value, _label in field.choices} == sms_countries()
    client = login(admin)
    response = client.post(
        f"/users/{user.pk}/",
        {
            "first_name": "",
            "last_name": "",
            "mobile_phone": "",
            "sms_country": "ZZ",
            "time_zone": "America/Toronto",
            "language": "en",
            "role": "member",
        },
    )
    assert response.status_code == 200
    assert "sms_country" in response.context["form"].errors
    user.refresh_from_db()
    assert user.sms_country == "CA"


def test_the_service_refuses_it_whoever_calls(admin, user):
    with pytest.raises(accounts.AccountError) as refused:
        users.update_user(None, admin, user, sms_country="ZZ")
    assert refused.value.field == "sms_country"
    user.refresh_from_db()
    assert user.sms_country == "CA"
    with pytest.raises(accounts.AccountError) as refused:
        users.update_organisation(None, admin, default_sms_country="ZZ")
    assert refused.value.field == "default_sms_country"


def test_the_csv_import_refuses_it_too(admin):
    report = users.import_users(None, admin, b"email,sms_country\nzed@example.com,ZZ\n")
    assert report.errors and "is not a known country" in report.errors[0][1]
    assert not admin.organisation.users.filter(email="zed@example.com").exists()
