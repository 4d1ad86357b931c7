"""The Account page: licence details and the profile form."""

import pytest

from sealbox.accounts.models import User
from sealbox.audit.models import Event

pytestmark = pytest.mark.django_db


def profile(**values):
    data = {
        "profile-first_name": "Alice",
        "profile-last_name": "Martin",
        "profile-time_zone": "America/Toronto",
        "profile-language": "en",
        "profile-date_format": "Y-m-d",
    }
    data.update({f"profile-{k}": v for k, v in values.items()})
    return data


def test_account_requires_login(client):
    response = client.get("/account/")
    assert response.status_code == 302
    assert response["Location"] == "/login/?next=/account/"


def test_licence_details(logged_in_client, user, make_user):
    make_user("bob@example.com")
    page = logged_in_client.get("/account/").content.decode()
    assert "Details about your license" in page
    assert "<dd>Advanced</dd>" in page
    assert "2 of 5" in page  # seats used / total
    assert "<dt>Messages remaining this month</dt>\n    <dd>1000</dd>" in page
    assert user.organisation.renewal_date.isoformat() in page


def test_profile_save(logged_in_client, user):
    response = logged_in_client.post(
        "/account/", profile(first_name="Alicia", time_zone="Europe/Paris", date_format="d/m/Y")
    )
    assert response.status_code == 302
    user.refresh_from_db()
    assert (user.first_name, user.time_zone, user.date_format) == (
        "Alicia",
        "Europe/Paris",
        "d/m/Y",
    )
    event = Event.objects.get(action="profile.updated")
    assert event.details == {"fields": ["first_name", "time_zone", "date_format"]}
    page = logged_in_client.get("/account/").content.decode()
    renewal = user.organisation.renewal_date
    assert renewal.strftime("%d/%m/%Y") in page


def test_bad_profile_input_keeps_what_was_typed_and_changes_nothing(logged_in_client, user):
    response = logged_in_client.post(
        "/account/", profile(first_name="Alicia", time_zone="Mars/Base")
    )
    page = response.content.decode()
    assert response.status_code == 200
    assert "Please correct the fields marked below." in page
    assert 'value="Alicia"' in page
    user.refresh_from_db()
    assert user.first_name == "Alice"
    assert not Event.objects.filter(action="profile.updated").exists()


def test_language_applies_after_login(client, user):
    from tests.conftest import PASSWORD

    User.objects.filter(pk=user.pk).update(language="fr")
    client.post("/login/", {"email": user.email, "password": PASSWORD})
    page = client.get("/account/").content.decode()
    assert '<html lang="fr">' in page
    assert "Détails de votre licence" in page


def test_language_switch_saves_the_choice(logged_in_client, user):
    response = logged_in_client.post("/i18n/language/", {"language": "fr", "next": "/account/"})
    assert response["Location"] == "/account/"
    user.refresh_from_db()
    assert user.language == "fr"
    assert "Enregistrer" in logged_in_client.get("/account/").content.decode()


def test_language_switch_for_visitors_uses_a_cookie(client):
    client.post("/i18n/language/", {"language": "fr", "next": "/login/"})
    page = client.get("/login/").content.decode()
    assert "Se connecter" in page
    assert "Mot de passe oublié ?" in page


def test_language_switch_ignores_unknown_languages_and_foreign_next(client):
    response = client.post("/i18n/language/", {"language": "xx", "next": "https://evil.example/"})
    assert response["Location"] == "/"


def test_navigation_shows_name_and_log_out(logged_in_client):
    page = logged_in_client.get("/account/").content.decode()
    assert "Alice Martin" in page
    assert ">Log out</button>" in page
    assert 'aria-current="page">Account</a>' in page
