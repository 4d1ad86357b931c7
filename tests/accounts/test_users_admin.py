"""User administration: permissions, invitations, CSV import, edit, 2FA, disable, delete."""

from __future__ import annotations

import re

import pytest
from django.core import mail
from django.test import Client

from sealbox.accounts import services as accounts
from sealbox.accounts.models import Invitation, Role, User
from sealbox.audit.models import Event
from sealbox.twofactor import services as twofactor
from sealbox.users import services
from tests.conftest import PASSWORD
from tests.twofactor.conftest import SMSOutbox, enable_sms

pytestmark = pytest.mark.django_db


@pytest.fixture
def sms_outbox(tmp_path, settings, monkeypatch) -> SMSOutbox:
    from sealbox.notify import sms_tasks

    path = tmp_path / "sms.jsonl"
    settings.SEALBOX_SMS_URL = f"file://{path}"
    monkeypatch.setattr(sms_tasks, "RETRY_DELAYS_SECONDS", (0.0, 0.0))
    return SMSOutbox(path)


INVITE = re.compile(r"http://\S+/invitation/([A-Za-z0-9_-]+)/")


def login(user) -> Client:
    client = Client()
    response = client.post("/login/", {"email": user.email, "password": PASSWORD})
    assert response.status_code == 302, response.content
    return client


def admin_urls(pk: int) -> list[tuple[str, str]]:
    return [
        ("get", "/users/"),
        ("get", "/users/add/"),
        ("post", "/users/add/"),
        ("get", "/users/import/"),
        ("post", "/users/import/"),
        ("get", "/users/import/template.csv"),
        ("get", "/users/organisation/"),
        ("post", "/users/organisation/"),
        *user_urls(pk),
    ]


def user_urls(pk: int) -> list[tuple[str, str]]:
    return [
        ("get", f"/users/{pk}/"),
        ("post", f"/users/{pk}/"),
        ("post", f"/users/{pk}/disable/"),
        ("post", f"/users/{pk}/enable/"),
        ("post", f"/users/{pk}/invite/"),
        ("get", f"/users/{pk}/delete/"),
        ("post", f"/users/{pk}/delete/"),
    ]


def api_calls(pk: int) -> list[tuple[str, str, dict | None]]:
    return [
        ("get", "/api/v1/users", None),
        ("post", "/api/v1/users", {"email": "new@example.com"}),
        ("get", f"/api/v1/users/{pk}", None),
        ("patch", f"/api/v1/users/{pk}", {"first_name": "X"}),
        ("post", f"/api/v1/users/{pk}/disable", None),
        ("post", f"/api/v1/users/{pk}/enable", None),
        ("delete", f"/api/v1/users/{pk}", None),
    ]


def call_api(client: Client, method: str, path: str, body: dict | None):
    import json

    return client.generic(
        method.upper(), path, json.dumps(body or {}), content_type="application/json"
    )


# --- Who may do what ---------------------------------------------------------------


def test_standard_user_gets_403_on_every_administration_page_and_api(user, admin_user):
    client = login(user)
    for method, url in admin_urls(admin_user.pk):
        assert getattr(client, method)(url).status_code == 403, (method, url)
    for method, path, body in api_calls(admin_user.pk):
        assert call_api(client, method, path, body).status_code == 403, (method, path)
    admin_user.refresh_from_db()
    assert admin_user.is_active and admin_user.first_name == "Ada"
    assert "Users" not in [i for i in client.get("/account/").content.decode().split('"')]
    assert 'href="/users/"' not in client.get("/account/").content.decode()


def test_another_organisations_administrator_gets_404_on_every_user_url(
    user, admin_user, make_user, other_organisation
):
    stranger = make_user("boss@other.example", org=other_organisation, role=Role.ADMIN)
    client = login(stranger)
    for method, url in user_urls(user.pk):
        assert getattr(client, method)(url).status_code == 404, (method, url)
    for method, path, body in api_calls(user.pk)[2:]:
        assert call_api(client, method, path, body).status_code == 404, (method, path)
    user.refresh_from_db()
    assert user.is_active and user.first_name == "Alice"
    listing = client.get("/users/").content.decode()
    assert user.email not in listing
    listed = call_api(client, "get", "/api/v1/users", None).json()
    assert [u["email"] for u in listed] == [stranger.email]


def test_administrator_sees_users_link_list_search_and_seats(admin_user, user, make_user):
    enable_sms(user)
    make_user("bob@example.com", first_name="Bob")
    client = login(admin_user)
    page = client.get("/account/").content.decode()
    assert '<a href="/users/">Users</a>' in page
    page = client.get("/users/").content.decode()
    assert "Seats used: 3 of 5" in page
    assert user.email in page and "bob@example.com" in page
    page = client.get("/users/", {"q": "bob"}).content.decode()
    assert "bob@example.com" in page and user.email not in page
    row = client.get("/users/", {"q": "alice"}).content.decode()
    assert "<td>On</td>" in row  # 2FA state
    assert "<td>Standard user</td>" in row


# --- Adding users ---------------------------------------------------------------


def test_add_user_sends_an_invitation_valid_72_hours_single_use(clock, admin_user):
    client = login(admin_user)
    response = client.post(
        "/users/add/",
        {
            "email": "New.Person@Example.com",
            "first_name": "New",
            "last_name": "Person",
            "role": "member",
            "mobile_phone": "514 555 0199",
        },
    )
    assert response.status_code == 302, response.content.decode()
    new = User.objects.get(email="new.person@example.com")
    assert not new.has_usable_password()
    assert str(new.mobile_phone) == "+15145550199"
    event = Event.objects.get(action="user.invited")
    assert event.actor_id == str(admin_user.pk) and event.target_id == str(new.pk)
    body = mail.outbox[-1].body
    token = INVITE.search(body).group(1)
    assert token not in str(list(Invitation.objects.values_list()))  # stored hashed
    assert Client().get(f"/invitation/{token}/").status_code == 200
    clock.advance(hours=71)
    visitor = Client()
    response = visitor.post(
        f"/invitation/{token}/",
        {"new_password1": "a long enough passphrase", "new_password2": "a long enough passphrase"},
    )
    assert response.status_code == 302
    assert (
        Client()
        .post("/login/", {"email": new.email, "password": "a long enough passphrase"})
        .status_code
        == 302
    )
    # Single use.
    assert Client().get(f"/invitation/{token}/").status_code == 404


def test_invitation_expires_after_72_hours(clock, admin_user):
    services.invite_user(None, admin_user, services.NewUser(email="late@example.com"))
    token = INVITE.search(mail.outbox[-1].body).group(1)
    clock.advance(hours=72, seconds=1)
    assert Client().get(f"/invitation/{token}/").status_code == 404
    with pytest.raises(accounts.AccountError):
        services.accept_invitation(None, token, "a long enough passphrase")


def test_add_user_refused_without_a_free_seat(admin_user, make_user, organisation):
    organisation.seats = 2
    organisation.save()
    make_user("bob@example.com")
    client = login(admin_user)
    data = {"email": "third@example.com", "role": "member"}
    response = client.post("/users/add/", data)
    assert response.status_code == 200
    assert "has no free seat" in response.content.decode()
    assert 'value="third@example.com"' in response.content.decode()  # input kept
    assert not User.objects.filter(email="third@example.com").exists()


def test_add_user_refused_outside_approved_domains(admin_user, organisation):
    services.update_organisation(None, admin_user, approved_email_domains="example.com\n@Firm.ca")
    organisation.refresh_from_db()
    assert organisation.approved_domains == ["example.com", "firm.ca"]
    with pytest.raises(accounts.AccountError, match="outside the approved email domains"):
        services.invite_user(None, admin_user, services.NewUser(email="x@gmail.com"))
    services.invite_user(None, admin_user, services.NewUser(email="x@firm.ca"))


def test_add_user_over_the_api(admin_user):
    client = login(admin_user)
    response = call_api(client, "post", "/api/v1/users", {"email": "api@example.com"})
    assert response.status_code == 201, response.content
    assert response.json()["email"] == "api@example.com"
    again = call_api(client, "post", "/api/v1/users", {"email": "api@example.com"})
    assert again.status_code == 409


# --- CSV import -------------------------------------------------------------------


GOOD_CSV = (
    "email,first_name,last_name,role,mobile_phone,sms_country,time_zone,language\n"
    "one@example.com,One,Person,member,514 555 0101,CA,America/Toronto,en\n"
    "two@example.com,Two,Person,admin,,FR,Europe/Paris,fr\n"
)


def upload(client, text: str):
    from django.core.files.uploadedfile import SimpleUploadedFile

    return client.post(
        "/users/import/",
        {"file": SimpleUploadedFile("users.csv", text.encode(), content_type="text/csv")},
    )


def test_csv_with_one_bad_row_creates_nobody_and_names_the_row(admin_user):
    client = login(admin_user)
    bad = GOOD_CSV + "three@example.com,Three,Person,boss,,CA,,\n"
    response = upload(client, bad)
    page = response.content.decode()
    assert response.status_code == 200
    assert "Nobody was added" in page
    assert "Line 4: The role “boss” is unknown" in page
    assert not User.objects.filter(email__in=["one@example.com", "two@example.com"]).exists()
    assert not mail.outbox


def test_csv_lists_every_faulty_row_with_its_reason(admin_user, user):
    text = (
        "email,mobile_phone,time_zone\n"
        "not-an-email,,\n"
        f"{user.email},,\n"
        "ok@example.com,12,\n"
        "tz@example.com,,Mars/Base\n"
        "ok2@example.com,,\n"
        "ok2@example.com,,\n"
    )
    report = services.import_users(None, admin_user, text.encode())
    lines = {line: reason for line, reason in report.errors}
    assert set(lines) == {2, 3, 4, 5, 7}
    assert "not a valid email" in lines[2]
    assert "already exists" in lines[3]
    assert "area code" in lines[4] or "not a valid phone" in lines[4]
    assert "Mars/Base" in lines[5]
    assert "already on line 6" in lines[7]
    assert User.objects.count() == 2


def test_csv_good_file_creates_and_invites_everyone(admin_user):
    client = login(admin_user)
    response = upload(client, GOOD_CSV)
    assert response.status_code == 302
    one = User.objects.get(email="one@example.com")
    two = User.objects.get(email="two@example.com")
    assert (one.role, str(one.mobile_phone), one.time_zone) == (
        "member",
        "+15145550101",
        "America/Toronto",
    )
    assert (two.role, two.sms_country, two.language) == ("admin", "FR", "fr")
    assert sorted(m.to[0] for m in mail.outbox) == ["one@example.com", "two@example.com"]
    assert Event.objects.filter(action="user.invited").count() == 2


def test_csv_over_the_seats_creates_nobody(admin_user, organisation):
    organisation.seats = 2
    organisation.save()
    report = services.import_users(None, admin_user, GOOD_CSV.encode())
    assert report.errors and "free seats" in report.errors[0][1]
    assert User.objects.count() == 1


def test_csv_template_downloads_and_imports(admin_user):
    client = login(admin_user)
    response = client.get("/users/import/template.csv")
    assert response["Content-Type"].startswith("text/csv")
    assert response.content.decode().startswith(",".join(services.CSV_COLUMNS))
    report = services.read_csv(admin_user.organisation, response.content)
    assert not report.errors and report.rows[0].email == "jane.doe@example.com"


def test_csv_semicolons_and_bom(admin_user):
    text = "\ufeffemail;role\nsemi@example.com;Administrator\n"
    report = services.read_csv(admin_user.organisation, text.encode())
    assert not report.errors and report.rows[0].role == Role.ADMIN


# --- Editing users --------------------------------------------------------------


def edit_data(user, **values):
    data = {
        "first_name": user.first_name,
        "last_name": user.last_name,
        "mobile_phone": str(user.mobile_phone or ""),
        "sms_country": user.sms_country,
        "time_zone": user.time_zone,
        "language": user.language,
        "role": user.role,
    }
    data.update(values)
    return {k: v for k, v in data.items() if v is not False}


def test_edit_names_phone_country_time_zone_language_role(admin_user, user):
    client = login(admin_user)
    response = client.post(
        f"/users/{user.pk}/",
        edit_data(
            user,
            first_name="Alicia",
            mobile_phone="06 12 34 56 78",
            sms_country="FR",
            time_zone="Europe/Paris",
            language="fr",
            role="admin",
        ),
    )
    assert response.status_code == 302, response.content.decode()
    user.refresh_from_db()
    assert (user.first_name, str(user.mobile_phone), user.time_zone, user.language, user.role) == (
        "Alicia",
        "+33612345678",
        "Europe/Paris",
        "fr",
        "admin",
    )
    actions = set(Event.objects.filter(target_id=str(user.pk)).values_list("action", flat=True))
    assert {"user.updated", "user.role_changed", "twofactor.phone_changed"} <= actions
    assert all(
        e.actor_id == str(admin_user.pk)
        for e in Event.objects.filter(action__in=["user.updated", "user.role_changed"])
    )
    assert any(m.to == [user.email] for m in mail.outbox)  # security changes email the user


def test_bad_phone_keeps_what_was_typed(admin_user, user):
    client = login(admin_user)
    response = client.post(f"/users/{user.pk}/", edit_data(user, first_name="Z", mobile_phone="55"))
    assert response.status_code == 200
    assert 'value="55"' in response.content.decode() and 'value="Z"' in response.content.decode()
    user.refresh_from_db()
    assert user.first_name == "Alice"


def test_admin_enables_2fa_then_the_users_next_login_asks_for_an_sms_code(
    admin_user, user, sms_outbox
):
    client = login(admin_user)
    response = client.post(
        f"/users/{user.pk}/", edit_data(user, mobile_phone="514 555 0123", enable_2fa="on")
    )
    assert response.status_code == 302, response.content.decode()
    device = twofactor.sms_device(user)
    assert device is not None and str(device.number) == "+15145550123"
    assert Event.objects.filter(action="twofactor.enabled", actor_id=str(admin_user.pk)).exists()
    assert "code sent by SMS" in mail.outbox[-1].body
    response = Client().post("/login/", {"email": user.email, "password": PASSWORD})
    assert response["Location"] == "/login/verify/"
    assert sms_outbox.last()["to"] == "+15145550123"
    # Unticking turns it off again.
    response = client.post(f"/users/{user.pk}/", edit_data(user, mobile_phone="514 555 0123"))
    assert response.status_code == 302
    assert twofactor.sms_device(user) is None


def test_enable_2fa_needs_a_phone(admin_user, user):
    client = login(admin_user)
    response = client.post(f"/users/{user.pk}/", edit_data(user, enable_2fa="on"))
    assert response.status_code == 200
    assert "mobile phone number to enable 2FA" in response.content.decode()
    assert twofactor.sms_device(user) is None


def test_changing_the_phone_of_a_user_with_sms_moves_the_factor(admin_user, user):
    enable_sms(user)
    services.update_user(None, admin_user, user, mobile_phone="+15145550177", enable_2fa=True)
    assert str(twofactor.sms_device(user).number) == "+15145550177"


def test_reset_second_factors_link_reuses_the_twofactor_reset(admin_user, user):
    enable_sms(user)
    client = login(admin_user)
    page = client.get(f"/users/{user.pk}/").content.decode()
    assert f'href="/account/security/users/{user.pk}/reset/"' in page
    client.post(f"/account/security/users/{user.pk}/reset/")
    assert twofactor.sms_device(user) is None


# --- The last administrator -------------------------------------------------------


def test_last_administrator_cannot_be_demoted_disabled_or_deleted(admin_user, user):
    for attempt in (
        lambda: services.update_user(None, admin_user, admin_user, role=Role.MEMBER),
        lambda: services.set_active(None, admin_user, admin_user, False),
        lambda: services.delete_user(None, admin_user, admin_user),
    ):
        with pytest.raises(accounts.AccountError, match="last active administrator"):
            attempt()
    client = login(admin_user)
    response = client.post(f"/users/{admin_user.pk}/", edit_data(admin_user, role="member"))
    assert "last active administrator" in response.content.decode()
    page = client.get(f"/users/{admin_user.pk}/").content.decode()
    assert ">Disable</button>" not in page and ">Delete</a>" not in page
    client.post(f"/users/{admin_user.pk}/disable/")
    client.post(f"/users/{admin_user.pk}/delete/")
    for method, path, body in [
        ("patch", f"/api/v1/users/{admin_user.pk}", {"role": "member"}),
        ("post", f"/api/v1/users/{admin_user.pk}/disable", None),
        ("delete", f"/api/v1/users/{admin_user.pk}", None),
    ]:
        response = call_api(client, method, path, body)
        assert response.status_code == 409, (method, path)
        assert "last active administrator" in response.json()["message"]
    admin_user.refresh_from_db()
    assert admin_user.role == Role.ADMIN and admin_user.is_active
    assert admin_user.deleted_at is None


def test_a_second_administrator_can_be_demoted_and_then_the_first_is_the_last(
    admin_user, make_user
):
    second = make_user("second@example.com", role=Role.ADMIN)
    services.update_user(None, admin_user, second, role=Role.MEMBER)
    second.refresh_from_db()
    assert second.role == Role.MEMBER
    # A disabled administrator does not count: the active one stays the last.
    third = make_user("third@example.com", role=Role.ADMIN)
    services.set_active(None, admin_user, third, False)
    with pytest.raises(accounts.AccountError, match="last active administrator"):
        services.update_user(None, admin_user, admin_user, role=Role.MEMBER)


def test_administrators_cannot_disable_or_delete_themselves(admin_user, make_user):
    make_user("other-admin@example.com", role=Role.ADMIN)
    with pytest.raises(accounts.AccountError):
        services.set_active(None, admin_user, admin_user, False)
    with pytest.raises(accounts.AccountError):
        services.delete_user(None, admin_user, admin_user)


# --- Disable and delete ------------------------------------------------------------


def test_disabled_users_open_session_ends_on_the_next_request(admin_user, user):
    member = login(user)
    assert member.get("/account/").status_code == 200
    client = login(admin_user)
    response = client.post(f"/users/{user.pk}/disable/")
    assert response.status_code == 302
    user.refresh_from_db()
    assert not user.is_active
    response = member.get("/account/")
    assert response.status_code == 302 and response["Location"].startswith("/login/")
    assert Client().post("/login/", {"email": user.email, "password": PASSWORD}).status_code == 200
    assert Event.objects.filter(action="user.disabled", actor_id=str(admin_user.pk)).exists()
    assert accounts.seats_used(admin_user.organisation) == 1
    # Enabling needs a free seat and works again.
    client.post(f"/users/{user.pk}/enable/")
    user.refresh_from_db()
    assert user.is_active


@pytest.mark.parametrize("how", ["page", "api"])
def test_disabling_deletes_the_users_sessions_and_their_records(admin_user, user, make_user, how):
    from django.contrib.sessions.models import Session

    from sealbox.accounts.models import SessionRecord

    bystander = make_user("bob@example.com")
    devices = [login(user), login(user)]
    kept = login(bystander)
    keys = [c.session.session_key for c in devices]
    assert SessionRecord.objects.filter(user=user).count() == 2
    assert Session.objects.filter(session_key__in=keys).count() == 2
    admin = login(admin_user)
    if how == "page":
        assert admin.post(f"/users/{user.pk}/disable/").status_code == 302
    else:
        response = admin.post(f"/api/v1/users/{user.pk}/disable", content_type="application/json")
        assert response.status_code == 200, response.content
    assert not Session.objects.filter(session_key__in=keys).exists()
    assert not SessionRecord.objects.filter(user=user).exists()
    # Nobody else's session ends.
    assert Session.objects.filter(session_key=kept.session.session_key).exists()
    assert SessionRecord.objects.filter(user=bystander).count() == 1
    assert kept.get("/account/").status_code == 200


def test_enable_refused_without_a_free_seat(admin_user, user, make_user, organisation):
    services.set_active(None, admin_user, user, False)
    organisation.seats = 2
    organisation.save()
    make_user("bob@example.com")
    with pytest.raises(accounts.AccountError, match="no free seat"):
        services.set_active(None, admin_user, user, True)


def test_delete_revokes_messages_scrubs_the_user_and_keeps_audit_events(admin_user, user, clock):
    from sealbox.exchange.models import Message, MessageState
    from tests.accounts.test_api_tokens import send_with
    from tests.exchange.conftest import DjangoTransport

    sent = send_with(DjangoTransport(login(user)))
    _, secret = accounts.create_api_token(None, user, "CLI", 30)
    email = user.email
    client = login(admin_user)
    assert "1 message still readable" in client.get(f"/users/{user.pk}/delete/").content.decode()
    response = client.post(f"/users/{user.pk}/delete/")
    assert response.status_code == 302
    message = Message.objects.get(public_id=sent.id)
    assert message.state == MessageState.DELETED and message.blobs_deleted_at is not None
    assert not message.grants.filter(wiped_at__isnull=True).exists()
    user.refresh_from_db()
    assert user.deleted_at is not None and not user.is_active
    assert (user.first_name, user.last_name, str(user.mobile_phone)) == ("", "", "")
    assert user.email != email and not user.has_usable_password()
    assert not user.api_tokens.exists()
    assert accounts.seats_used(admin_user.organisation) == 1
    deleted = Event.objects.get(action="user.deleted")
    assert deleted.details["email"] == email and deleted.actor_id == str(admin_user.pk)
    # Earlier events keep the address they were recorded with.
    assert Event.objects.filter(action="message.sent", actor_label=email).exists() or (
        Event.objects.filter(actor_label=email).exists()
    )
    client.get("/users/")  # the confirmation message
    assert f">{email}</a>" not in client.get("/users/").content.decode()
    assert client.get(f"/users/{user.pk}/").status_code == 404
    # The address is free again.
    services.invite_user(None, admin_user, services.NewUser(email=email))


# --- Organisation settings ----------------------------------------------------------


PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 100


def test_organisation_settings(admin_user, organisation):
    from django.core.files.uploadedfile import SimpleUploadedFile

    client = login(admin_user)
    data = {
        "name": "Tremblay & Associés",
        "default_sms_country": "FR",
        "default_expiry_days": "30",
        "opening_code_in_separate_email": "False",
        "approved_email_domains": "example.com, tremblay.ca",
        "accent_colour": "#1d4ed8",
        "audit_retention_days": "400",
        "require_2fa": "on",
        "logo": SimpleUploadedFile("logo.png", PNG, content_type="image/png"),
    }
    response = client.post("/users/organisation/", data)
    assert response.status_code == 302, response.content.decode()
    organisation.refresh_from_db()
    assert organisation.name == "Tremblay & Associés"
    assert organisation.default_sms_country == "FR"
    assert organisation.default_expiry_days == 30
    assert organisation.opening_code_in_separate_email is False
    assert organisation.approved_domains == ["example.com", "tremblay.ca"]
    assert organisation.accent_colour == "#1d4ed8"
    assert organisation.require_2fa is True
    if hasattr(organisation, "audit_retention_days"):
        assert organisation.audit_retention_days == 400
    logo = Client().get(f"/organisation-logo/{organisation.pk}/")
    assert logo.status_code == 200 and logo["Content-Type"] == "image/png"
    assert logo.content == PNG
    event = Event.objects.get(action="organisation.updated")
    assert event.actor_id == str(admin_user.pk)
    assert Event.objects.filter(action="twofactor.policy_changed").exists()


def test_logo_must_be_a_small_png_or_jpeg(admin_user):
    with pytest.raises(accounts.AccountError, match="PNG or JPEG"):
        services.update_organisation(None, admin_user, logo=b"GIF89a....")
    with pytest.raises(accounts.AccountError, match="500 KB"):
        services.update_organisation(None, admin_user, logo=PNG + b"\x00" * 500 * 1024)


def test_bad_domain_and_colour_are_refused(admin_user):
    with pytest.raises(accounts.AccountError):
        services.update_organisation(None, admin_user, approved_email_domains="not a domain!")
    with pytest.raises(accounts.AccountError):
        services.update_organisation(None, admin_user, accent_colour="blue")


def test_organisation_address_and_phone_for_the_emails(admin_user, organisation):
    client = login(admin_user)
    data = {
        "name": organisation.name,
        "default_sms_country": "CA",
        "default_expiry_days": "7",
        "opening_code_in_separate_email": "True",
        "audit_retention_days": "400",
        "postal_address": "12 rue de la Paix\r\n75002 Paris",
        "phone": "+33 1 23 45 67 89",
    }
    assert client.post("/users/organisation/", data).status_code == 302
    organisation.refresh_from_db()
    assert organisation.postal_address == "12 rue de la Paix\r\n75002 Paris"
    assert organisation.phone == "+33 1 23 45 67 89"
    event = Event.objects.filter(action="organisation.updated").latest("id")
    assert {"postal_address", "phone"} <= set(event.details["fields"])
    # Printed in emails: a phone field takes a phone number, nothing else.
    page = client.post("/users/organisation/", data | {"phone": "call +33 1 23\nBcc: x@y.z"})
    assert page.status_code == 200 and "Write the phone number with digits" in page.content.decode()
    organisation.refresh_from_db()
    assert organisation.phone == "+33 1 23 45 67 89"


# --- French -------------------------------------------------------------------------


def test_pages_and_refusals_in_french(admin_user, user, organisation):
    admin_user.language = "fr"
    admin_user.save()
    client = login(admin_user)
    page = client.get("/users/").content.decode()
    assert "Ajouter un utilisateur" in page and "Sièges utilisés : 2 sur 5" in page
    assert "Sessions actives" in client.get("/account/").content.decode()
    organisation.seats = 2
    organisation.save()
    response = client.post("/users/add/", {"email": "x@example.com", "role": "member"})
    assert "n’a pas de siège libre" in response.content.decode()
    # Emails go out in the user's language.
    user.language = "fr"
    user.save()
    services.set_active(None, admin_user, user, False)
    assert "Votre compte a été désactivé" in mail.outbox[-1].body
