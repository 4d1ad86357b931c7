"""Issue 11, finding 1: /operator/ was Django's stock admin login, so an operator's
password alone opened a session valid on the whole portal and API, counted as freshly
re-authenticated, with no throttle and no login.failed event.

Now the operator area is entered through the portal's login only, every admin page needs
a session verified by a second factor, re-authentication freshness comes only from a
password or factor actually entered, and an operator without a second factor is held on
the set-up pages until they have one.
"""

from __future__ import annotations

import io
import re
import sys

import pytest
from django.contrib import admin
from django.contrib.admin.models import LogEntry
from django.contrib.contenttypes.models import ContentType
from django.test import Client
from django.urls import URLPattern, URLResolver
from django_otp import DEVICE_ID_SESSION_KEY

from sealbox import cli
from sealbox.accounts import reauth
from sealbox.accounts import services as accounts
from sealbox.accounts.models import ApiToken, Organisation, Plan, User
from sealbox.audit.models import Event
from sealbox.twofactor import services as twofactor
from sealbox.twofactor.models import FactorLock, PendingLogin, RecoveryCodeDevice
from tests.conftest import PASSWORD
from tests.twofactor.conftest import (  # noqa: F401 (sms_outbox is a fixture)
    enable_sms,
    enable_totp,
    sms_outbox,
    totp_code,
)

pytestmark = pytest.mark.django_db

OPERATOR = "ops@example.com"


@pytest.fixture
def operator(make_user):
    """What `sealbox createuser --operator` makes: staff and superuser."""
    return make_user(OPERATOR, is_staff=True)


def password_step(client: Client, user: User, path: str = "/login/", **extra):
    return client.post(path, {"email": user.email, "password": PASSWORD, **extra})


def verified_client(user: User, clock) -> Client:
    """An operator logged in with password and authenticator code."""
    device = twofactor.totp_device(user) or enable_totp(user)
    client = Client()
    assert password_step(client, user)["Location"] == "/login/verify/"
    response = client.post("/login/verify/", {"code": totp_code(device, clock.current)})
    assert response.status_code == 302, response.content
    assert DEVICE_ID_SESSION_KEY in client.session
    return client


# --- Every URL of the operator area ---------------------------------------------------


def _concrete(route: str, values: dict[str, str]) -> str:
    def value(match: re.Match) -> str:
        name = match.group(1)
        assert name in values, f"no sample value for <{name}> in {route!r}"
        return values[name]

    return re.sub(r"<(?:\w+:)?(\w+)>", value, route)


def operator_urls() -> list[str]:
    """Every page of the operator area, built from the admin's own URL patterns (so a
    model or view registered later is walked too): each model's changelist, add,
    change, delete, history and extra views, with a real object where one exists."""
    site = admin.site
    labels = sorted({model._meta.app_label for model in site._registry})
    some_user = User.objects.order_by("pk").first()
    urls = []
    for pattern in site.get_urls():
        if isinstance(pattern, URLResolver):  # a model's URLs
            model = next(
                m
                for m in site._registry
                if str(pattern.pattern) == f"{m._meta.app_label}/{m._meta.model_name}/"
            )
            obj = model._default_manager.order_by("pk").first()
            pk = str(obj.pk) if obj is not None else "1"
            for inner in pattern.url_patterns:
                route = str(pattern.pattern) + str(inner.pattern)
                urls.append("/operator/" + _concrete(route, {"object_id": pk, "id": pk, "pk": pk}))
            continue
        assert isinstance(pattern, URLPattern)
        regex = pattern.pattern.regex
        if "app_label" in regex.groupindex:
            urls += [f"/operator/{label}/" for label in labels]
        elif "url" in regex.groupindex:  # the admin's catch-all
            urls.append("/operator/no-such-page/")
        else:
            urls.append(
                "/operator/"
                + _concrete(
                    str(pattern.pattern),
                    {
                        "content_type_id": str(ContentType.objects.get_for_model(User).pk),
                        "object_id": str(some_user.pk),
                    },
                )
            )
    return urls


@pytest.fixture
def every_model_has_a_row(operator, make_user, organisation, clock):
    """Real rows behind the object URLs (change, delete, history, password…)."""
    from django.contrib.auth.models import Group

    other = make_user("someone@example.com")
    enable_sms(other)
    enable_totp(other)
    RecoveryCodeDevice.objects.create(
        user=other, name="Recovery codes", confirmed=True, created_at=clock.current
    )
    FactorLock.objects.create(user=other, factor="sms", failures=3)
    Group.objects.create(name="operators")
    PendingLogin.objects.create(
        id="p" * 43,
        user=other,
        created_at=clock.current,
        expires_at=clock.current,
        method="sms",
    )


def snapshot() -> tuple:
    return (
        User.objects.count(),
        Organisation.objects.count(),
        Plan.objects.count(),
        LogEntry.objects.count(),
        list(User.objects.order_by("pk").values_list("email", "is_active", "is_staff")),
    )


PORTAL_PAGES = ("/login/", "/login/verify/", "/account/security/", "/account/")


def assert_never_served(client: Client, urls: list[str]) -> None:
    """GET and POST each URL, following redirects while they stay in the operator area:
    the answer must leave it for a portal page (login, second step, factor set-up,
    account), or refuse. No admin template may render, nothing may change."""
    before = snapshot()
    for url in urls:
        for method in ("get", "post"):
            where = f"{method.upper()} {url}"
            response = getattr(client, method)(url)
            for _hop in range(5):
                if response.status_code != 302 or not response["Location"].startswith("/operator/"):
                    break
                response = client.get(response["Location"])
            templates = [t.name for t in response.templates if t.name]
            assert not [t for t in templates if t.startswith(("admin/", "registration/"))], (
                where,
                templates,
            )
            if response.status_code == 302:
                target = response["Location"].split("?")[0]
                assert target in PORTAL_PAGES, (where, response["Location"])
            elif response.status_code == 200:
                # Only the portal's login form, answering a post made to /operator/login/.
                assert method == "post" and url == "/operator/login/", where
                assert templates[0] == "accounts/login.html", (where, templates)
            else:
                assert response.status_code in (403, 404, 405), (where, response.status_code)
    assert snapshot() == before, "a refused request changed something"
    assert DEVICE_ID_SESSION_KEY not in client.session


def test_the_walk_covers_every_model_and_view(every_model_has_a_row):
    urls = operator_urls()
    for model in admin.site._registry:
        base = f"/operator/{model._meta.app_label}/{model._meta.model_name}/"
        for tail in ("", "add/"):
            assert base + tail in urls
        obj = model._default_manager.order_by("pk").first()
        pk = obj.pk if obj is not None else 1
        for tail in ("change/", "delete/", "history/"):
            assert f"{base}{pk}/{tail}" in urls, (base, tail)
    for site_view in ("/operator/", "/operator/login/", "/operator/logout/", "/operator/jsi18n/"):
        assert site_view in urls
    assert f"/operator/accounts/user/{User.objects.order_by('pk').first().pk}/password/" in urls


def test_a_verified_operator_is_served_every_changelist(every_model_has_a_row, operator, clock):
    """The control: the walk reaches real pages when the session is verified."""
    client = verified_client(operator, clock)
    assert client.get("/operator/").status_code == 200
    for model in admin.site._registry:
        url = f"/operator/{model._meta.app_label}/{model._meta.model_name}/"
        response = client.get(url)
        assert response.status_code == 200, url
        assert any(t.name and t.name.startswith("admin/") for t in response.templates)


@pytest.mark.usefixtures("sms_outbox")
def test_password_then_pending_second_factor_reaches_no_operator_page(
    every_model_has_a_row, operator, clock
):
    enable_sms(operator)
    client = Client()
    assert password_step(client, operator)["Location"] == "/login/verify/"
    assert "_auth_user_id" not in client.session
    assert_never_served(client, operator_urls())


def test_password_only_session_of_an_operator_without_factor_reaches_no_operator_page(
    every_model_has_a_row, operator, clock
):
    client = Client()
    assert password_step(client, operator).status_code == 302
    assert client.session["_auth_user_id"] == str(operator.pk)
    assert_never_served(client, operator_urls())


def test_password_only_session_whose_factor_came_later_reaches_no_operator_page(
    every_model_has_a_row, operator, clock
):
    """Logged in with the password before a factor existed (for example an
    administrator turned SMS on meanwhile): the session never proved the factor."""
    client = Client()
    password_step(client, operator)
    enable_sms(operator)
    assert_never_served(client, operator_urls())
    response = client.get("/operator/", follow=True)
    assert "The operator area needs a session opened with your second factor." in (
        response.content.decode()
    )


@pytest.mark.usefixtures("sms_outbox")
def test_a_session_opened_like_the_stock_admin_login_did_is_ended(
    every_model_has_a_row, operator, clock
):
    """Django's own login (what the stock form called) skips Sealbox's login: such a
    session has no login time and is ended on its first request."""
    enable_sms(operator)
    client = Client()
    client.force_login(operator)
    response = client.get("/account/")
    assert response.status_code == 302 and response["Location"].startswith("/login/")
    assert "_auth_user_id" not in client.session
    event = Event.objects.filter(action="logout").latest("pk")
    assert event.details == {"reason": "session not opened by the login page"}
    client.force_login(operator)
    assert_never_served(client, operator_urls())


# --- /operator/login/ is the portal's login ---------------------------------------------


def test_operator_login_is_the_portal_login_page(operator):
    client = Client()
    response = client.get("/operator/login/")
    assert response.status_code == 302
    assert response["Location"] == "/login/?next=%2Foperator%2F"
    response = client.get("/operator/login/?next=/operator/audit/event/", follow=True)
    assert response.redirect_chain[-1][0] == "/login/?next=%2Foperator%2Faudit%2Fevent%2F"
    page = response.content.decode()
    assert [t.name for t in response.templates][0] == "accounts/login.html"
    assert 'name="username"' not in page and 'name="email"' in page
    assert 'name="next" value="/operator/audit/event/"' in page


@pytest.mark.usefixtures("sms_outbox")
def test_the_stock_admin_form_no_longer_logs_in(operator):
    enable_sms(operator)
    client = Client()
    response = client.post(
        "/operator/login/",
        {"username": OPERATOR, "password": PASSWORD, "next": "/operator/"},
    )
    assert response.status_code == 200  # the portal's form, asking for the email
    assert "_auth_user_id" not in client.session
    assert client.get("/operator/").status_code == 302


@pytest.mark.usefixtures("sms_outbox")
def test_wrong_passwords_at_operator_login_are_throttled_and_recorded(operator, clock):
    enable_sms(operator)
    client = Client()
    answers = []
    for _attempt in range(25):
        response = client.post("/operator/login/", {"email": OPERATOR, "password": "wrong " * 3})
        assert response.status_code == 200
        page = response.content.decode()
        answers.append("Too many attempts" in page)
        assert "Too many attempts" in page or "The email or password is not correct." in page
        clock.advance(seconds=1)
    failed = Event.objects.filter(action="login.failed", actor_id=str(operator.pk))
    assert failed.count() == answers.count(False) >= 3
    assert all(e.details == {"reason": "password"} for e in failed)
    assert answers[-1], "the 25th wrong password must be throttled"
    # The right password now is throttled too: no session, no second step.
    response = password_step(client, operator, path="/operator/login/")
    assert response.status_code == 200 and "Too many attempts" in response.content.decode()
    assert "_auth_user_id" not in client.session
    assert twofactor.SESSION_PENDING not in client.session


def test_the_right_password_at_operator_login_leads_to_the_second_factor(operator, clock):
    device = enable_totp(operator)
    client = Client()
    response = password_step(client, operator, path="/operator/login/", next="/operator/")
    assert response["Location"] == "/login/verify/"
    assert "_auth_user_id" not in client.session  # the password alone opened nothing
    assert client.get("/operator/")["Location"].startswith("/operator/login/")
    response = client.post("/login/verify/", {"code": totp_code(device, clock.current)})
    assert response["Location"] == "/operator/"
    assert client.get("/operator/").status_code == 200
    assert list(
        Event.objects.filter(target_id=str(operator.pk))
        .order_by("pk")
        .values_list("action", flat=True)
    )[-3:] == ["twofactor.required", "twofactor.verified", "login.succeeded"]


def test_operator_logout_and_password_change_are_the_portal_pages(operator, clock):
    client = verified_client(operator, clock)
    assert client.get("/operator/password_change/")["Location"] == "/account/password/"
    response = client.post("/operator/logout/")
    assert response["Location"] == "/login/"
    assert "_auth_user_id" not in client.session
    assert Event.objects.filter(action="logout", actor_id=str(operator.pk)).exists()


def test_the_operator_area_never_shows_an_authenticator_secret(operator, make_user, clock):
    client = verified_client(operator, clock)
    device = enable_totp(make_user("someone@example.com"))
    for url in (
        f"/operator/otp_totp/totpdevice/{device.pk}/config/",
        f"/operator/otp_totp/totpdevice/{device.pk}/qrcode/",
    ):
        assert client.get(url).status_code == 403, url
    page = client.get(f"/operator/otp_totp/totpdevice/{device.pk}/change/").content.decode()
    assert device.key not in page


def test_members_are_refused_the_operator_area(logged_in_client):
    response = logged_in_client.get("/operator/", follow=True)
    assert response.status_code == 403


# --- Operators must have a second factor ---------------------------------------------


def test_an_operator_from_createuser_is_held_until_a_factor_is_set_up(
    plans, capsys, monkeypatch, clock
):
    monkeypatch.setattr(sys, "stdin", io.StringIO(PASSWORD + "\n"))
    code = cli.main(["createuser", OPERATOR, "--org", "Hosting", "--operator", "--password-stdin"])
    out = capsys.readouterr().out
    assert code == 0
    assert "set up a second factor" in out
    operator = User.objects.get(email=OPERATOR)
    assert operator.is_staff and operator.is_superuser

    client = Client()
    assert password_step(client, operator)["Location"] == "/account/"
    for url in ("/account/", "/", "/send/", "/users/", "/operator/", "/operator/audit/event/"):
        response = client.get(url)
        assert response.status_code == 302 and response["Location"] == "/account/security/", url
    page = client.get("/account/security/").content.decode()
    assert "Operators of this server must use two-factor authentication." in page
    for method, url in (("get", "/api/v1/users"), ("post", "/api/v1/messages")):
        response = getattr(client, method)(url, content_type="application/json")
        assert response.status_code == 403, url
        assert response.json()["error"] == "second_factor_required"
        assert "set up a second factor" in response.json()["message"]
    # An API token cannot be minted meanwhile.
    response = client.post("/account/tokens/", {"token-name": "ci", "token-days": "30"})
    assert response["Location"] == "/account/security/"
    assert not ApiToken.objects.exists()

    # Setting up the factor proves it in this session: the operator area opens.
    device = twofactor.start_totp_setup(operator)
    response = client.post(
        "/account/security/authenticator/", {"code": totp_code(device, clock.current)}
    )
    assert response["Location"] == "/account/security/"
    assert client.get("/operator/").status_code == 200
    assert client.get("/account/").status_code == 200


def test_an_operator_cannot_remove_their_last_factor(operator, clock):
    client = verified_client(operator, clock)
    response = client.post("/account/security/authenticator/remove/", follow=True)
    assert "Operators must keep a second factor" in response.content.decode()
    assert twofactor.totp_device(operator) is not None


def test_a_new_factor_does_not_verify_a_session_that_did_not_prove_the_old_one(operator, clock):
    """Password-only session, and a factor the session never proved: adding another
    factor there must not turn it into a verified (operator) session."""
    client = Client()
    password_step(client, operator)
    enable_sms(operator)
    device = twofactor.start_totp_setup(operator)
    response = client.post(
        "/account/security/authenticator/", {"code": totp_code(device, clock.current)}
    )
    assert response["Location"] == "/account/security/"
    assert DEVICE_ID_SESSION_KEY not in client.session
    assert client.get("/operator/")["Location"].startswith("/operator/login/")


# --- Half-logged-in states: no token, no API -------------------------------------------


@pytest.mark.usefixtures("sms_outbox")
def test_a_pending_second_step_cannot_mint_a_token_nor_call_the_api(user, clock):
    enable_sms(user)
    client = Client()
    assert password_step(client, user)["Location"] == "/login/verify/"
    response = client.post("/account/tokens/", {"token-name": "ci", "token-days": "30"})
    assert response.status_code == 302 and response["Location"].startswith("/login/")
    assert not ApiToken.objects.exists()
    for method, url in (("get", "/api/v1/users"), ("get", "/api/v1/envelopes")):
        response = getattr(client, method)(url)
        assert response.status_code == 401, url
    response = client.post("/api/v1/messages", {}, content_type="application/json")
    assert response.status_code in (401, 403)


# --- Re-authentication freshness comes from a proof only --------------------------------


def test_a_login_that_entered_no_password_grants_no_freshness(user, clock):
    """The finding's token was minted on the strength of a login time the timeout
    middleware invented for a session the portal never opened."""
    client = Client()
    client.force_login(user)
    response = client.post("/account/tokens/", {"token-name": "ci", "token-days": "30"})
    assert response.status_code == 302
    assert not ApiToken.objects.exists()
    assert "_auth_user_id" not in client.session


def test_freshness_is_the_proofs_own_clock_not_the_sessions(rf, user, clock):
    request = rf.get("/")
    request.session = {accounts.SESSION_LOGIN_AT: clock.current.timestamp()}
    assert not reauth.reauthenticated_recently(request)
    request.session[accounts.SESSION_AUTHENTICATED_AT] = clock.current.timestamp()
    assert reauth.reauthenticated_recently(request)


def test_the_password_login_starts_the_freshness_window(clock, logged_in_client):
    clock.advance(minutes=29)
    response = logged_in_client.post("/account/tokens/", {"token-name": "ci", "token-days": "30"})
    assert response.status_code == 200 and ApiToken.objects.count() == 1
    clock.advance(minutes=2)
    response = logged_in_client.post("/account/tokens/", {"token-name": "ci", "token-days": "30"})
    assert response["Location"].startswith("/account/security/confirm-password/")
    assert ApiToken.objects.count() == 1
