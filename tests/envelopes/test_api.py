"""Envelopes over the REST API: create (the New envelope page's rules, checked by the same
service), list and close, with a personal API token or the portal's session; another
organisation's envelope (or a colleague's) is 404; bad input is a 4xx with a JSON message."""

import json
from datetime import UTC, datetime, timedelta

import pytest
from django.test import Client

from sealbox.accounts import services as accounts
from sealbox.accounts.models import Role
from sealbox.audit.models import Event
from sealbox.envelopes import services
from sealbox.envelopes.models import Envelope, EnvelopeLink, EnvelopeState
from sealbox.exchange.services import MAX_OPENS, MAX_RECIPIENTS
from sealbox.lib import clock
from tests.conftest import PASSWORD
from tests.envelopes.conftest import api, emails_to, submit

pytestmark = pytest.mark.django_db


class Bearer:
    """A personal API token's calls, as an integration (or the CLI) makes them."""

    def __init__(self, user):
        _token, self.secret = accounts.create_api_token(None, user, "tests", 30)
        self.client = Client()

    def call(self, method: str, path: str, body: dict | None = None):
        response = self.client.generic(
            method,
            path,
            data=json.dumps(body or {}),
            content_type="application/json",
            HTTP_AUTHORIZATION=f"Bearer {self.secret}",
            REMOTE_ADDR="198.51.100.8",
        )
        return response.status_code, response.json() if response.content else None


@pytest.fixture
def owner(sender):
    return Bearer(sender)


def in_days(days: float) -> str:
    return (clock.now() + timedelta(days=days)).isoformat()


def addressed(**fields) -> dict:
    return {"subject": "Your tax documents", "recipients": [{"email": "client@example.org"}]} | (
        fields
    )


def test_create_emails_each_recipient_and_lists_the_links(owner, sender):
    status, created = owner.call(
        "POST",
        "/api/v1/envelopes",
        addressed(
            recipients=[{"email": "Client@Example.org"}, {"email": "partner@example.org"}],
            instructions="Your last three payslips.",
            files_mode="mandatory",
            allowed_extensions=["PDF", ".jpg"],
            expires_at=in_days(3),
        ),
    )
    assert status == 201, created
    envelope = Envelope.objects.get()
    assert envelope.owner == sender and envelope.public_id.hex == created["id"].replace("-", "")
    assert created["reference"] == envelope.reference and created["state"] == "open"
    assert created["allowed_extensions"] == ["pdf", "jpg"]
    assert created["files_mode"] == "mandatory"
    assert created["max_total_bytes"] == sender.organisation.plan.max_send_bytes
    assert [r["email"] for r in created["recipients"]] == [
        "client@example.org",
        "partner@example.org",
    ]
    for entry in created["recipients"]:
        assert entry["opening_code"] is None and entry["state"] == "open"
        [email] = emails_to(entry["email"])
        assert entry["url"] in email.body
    assert created["links"] == [r["url"] for r in created["recipients"]]
    assert Event.objects.filter(action="envelope.created", actor_id=str(sender.pk)).count() == 1
    assert Event.objects.filter(action="envelope.link_queued").count() == 2

    status, listing = owner.call("GET", "/api/v1/envelopes")
    assert status == 200 and [e["id"] for e in listing] == [created["id"]]
    status, one = owner.call("GET", f"/api/v1/envelopes/{created['id']}")
    assert status == 200 and one["recipients"] == created["recipients"]


def test_create_links_returns_each_opening_code_once(owner):
    status, created = owner.call(
        "POST",
        "/api/v1/envelopes",
        addressed(
            delivery="links",
            # Two links for one address: each has its own code.
            recipients=[
                {"email": "client@example.org", "verification": "opening_code"},
                {"email": "client@example.org", "verification": "opening_code"},
                {"email": "other@example.org"},
            ],
        ),
    )
    assert status == 201, created
    assert not emails_to("client@example.org")
    first, second, plain = created["recipients"]
    assert first["opening_code"] and second["opening_code"]
    assert first["opening_code"] != second["opening_code"]
    assert plain["opening_code"] is None
    envelope = Envelope.objects.get()
    for entry in (first, second):
        link = EnvelopeLink.objects.get(pk=entry["id"])
        assert entry["opening_code"] not in link.opening_code_hash
        assert submit(envelope, link=link, code=entry["opening_code"]).status == 200
    # Shown only at creation.
    _status, again = owner.call("GET", f"/api/v1/envelopes/{created['id']}")
    assert [r["opening_code"] for r in again["recipients"]] == [None, None, None]


def test_the_page_shows_every_opening_code_even_for_one_address(sender):
    client = Client()
    client.post("/login/", {"email": sender.email, "password": PASSWORD})
    row = {"phone": "", "verification": "opening_code", "password": ""}
    response = client.post(
        "/envelopes/new/",
        {
            **page_fields(),
            "delivery": "links",
            "form-TOTAL_FORMS": "2",
            "form-INITIAL_FORMS": "0",
            **{f"form-{i}-{k}": v for i in (0, 1) for k, v in row.items()},
            "form-0-email": "client@example.org",
            "form-1-email": "client@example.org",
        },
        follow=True,
    )
    page = response.content.decode()
    assert page.count("Opening code for client@example.org:") == 2


def test_a_public_envelope_returns_its_one_link(owner):
    status, created = owner.call(
        "POST", "/api/v1/envelopes", {"subject": "CV", "public": True, "per_ip_hourly": 2}
    )
    assert status == 201, created
    [link] = created["recipients"]
    assert link["email"] == "" and link["url"].rsplit("/e/", 1)[1]
    assert Envelope.objects.get().per_ip_hourly == 2


def test_a_time_without_a_zone_is_read_as_utc(owner):
    naive = (datetime.now(UTC) + timedelta(days=2)).replace(tzinfo=None, microsecond=0)
    status, created = owner.call(
        "POST", "/api/v1/envelopes", addressed(expires_at=naive.isoformat())
    )
    assert status == 201, created
    assert Envelope.objects.get().expires_at == naive.replace(tzinfo=UTC)


def test_close_kills_the_links_and_is_recorded_once(owner, sender):
    _status, created = owner.call("POST", "/api/v1/envelopes", addressed())
    status, closed = owner.call("POST", f"/api/v1/envelopes/{created['id']}/close")
    assert status == 200 and closed["state"] == "closed"
    assert [r["state"] for r in closed["recipients"]] == ["closed"]
    status, _ = owner.call("POST", f"/api/v1/envelopes/{created['id']}/close")
    assert status == 200
    assert Event.objects.filter(action="envelope.closed").count() == 1
    assert submit(Envelope.objects.get()).status == 410


def page_fields() -> dict:
    return {
        "subject": "Payslips",
        "audience": "recipients",
        "instructions": "",
        "files_mode": "optional",
        "allowed_extensions": "",
        "max_total_mb": "",
        "expires": "7",
        "reply_expiry_hours": "24",
        "reply_max_opens": "3",
        "notify_on_use": "on",
        "language": "en",
        "per_ip_hourly": "5",
        "max_submissions": "100",
    }


def too_many_recipients() -> list[dict]:
    return [{"email": f"client{i}@example.org"} for i in range(MAX_RECIPIENTS + 1)]


# (what the API is sent, the field the refusal names, a word of its message)
REFUSED = [
    ({"subject": "  "}, "subject", "subject"),
    ({"subject": "x" * (services.MAX_SUBJECT_LENGTH + 1)}, "subject", "too long"),
    ({"instructions": "x" * (services.MAX_INSTRUCTIONS_LENGTH + 1)}, "instructions", "too long"),
    ({"recipients": []}, "recipients", "recipient"),
    ({"recipients": too_many_recipients()}, "recipients", "at most 50"),
    ({"public": True}, "recipients", "public link has no recipients"),
    ({"expires_at": in_days(-1)}, "expires_at", "future"),
    ({"expires_at": in_days(31)}, "expires_at", "at most 30 days"),
    ({"reply_max_opens": 0}, "reply_max_opens", "between 1 and 99"),
    ({"reply_max_opens": MAX_OPENS + 1}, "reply_max_opens", "between 1 and 99"),
    ({"reply_expiry_hours": 0}, "reply_expiry_hours", "reply expiry"),
    ({"reply_expiry_hours": 24 * 31}, "reply_expiry_hours", "reply expiry"),
    ({"per_ip_hourly": 0}, "per_ip_hourly", "between 1 and 1000"),
    ({"per_ip_hourly": services.MAX_PER_IP_HOURLY + 1}, "per_ip_hourly", "between 1 and 1000"),
    ({"max_submissions": 0}, "max_submissions", "between 1 and 100000"),
    ({"max_submissions": services.MAX_SUBMISSIONS + 1}, "max_submissions", "between 1"),
    ({"allowed_extensions": ["pdf", "../etc"]}, "allowed_extensions", "not a file extension"),
    ({"allowed_extensions": [f"e{i:05d}" for i in range(100)]}, "allowed_extensions", "long"),
    ({"max_total_bytes": 0}, "max_total_bytes", "positive"),
    # Past what a database column holds: refused, never a server error.
    ({"max_total_bytes": 10**30}, "max_total_bytes", "Your plan allows"),
    ({"per_ip_hourly": 10**30}, "per_ip_hourly", "between 1"),
    ({"reply_expiry_hours": -(10**30)}, "reply_expiry_hours", "reply expiry"),
    ({"expires_at": "9999-12-31T23:59:59Z"}, "expires_at", "at most 30 days"),
    ({"max_total_bytes": 101 * 1000 * 1000}, "max_total_bytes", "Your plan allows 100"),
    ({"language": "de"}, "language", "English or French"),
    ({"delivery": "email", "public": True, "recipients": []}, "delivery", "nobody to email"),
    ({"recipients": [{"email": "not an address"}]}, "recipients[0].email", "valid email"),
    (
        {"recipients": [{"email": "a@b.example", "verification": "sms_code"}]},
        "recipients[0].phone",
        "phone",
    ),
    (
        {"recipients": [{"email": "a@b.example", "verification": "sms_code", "phone": "12"}]},
        "recipients[0].phone",
        "",
    ),
    (
        {"recipients": [{"email": "a@b.example", "verification": "password", "password": "short"}]},
        "recipients[0].password",
        "at least 8",
    ),
    (
        {
            "recipients": [
                {"email": "a@b.example", "verification": "password", "password": "x" * 201}
            ]
        },
        "recipients[0].password",
        "too long",
    ),
]


@pytest.mark.parametrize(("fields", "field", "words"), REFUSED)
def test_bad_input_is_a_400_naming_the_field_and_creates_nothing(owner, fields, field, words):
    status, answer = owner.call("POST", "/api/v1/envelopes", addressed(**fields))
    assert status == 400, answer
    assert answer["error"] == "invalid" and answer["field"] == field
    assert words in answer["message"]
    assert not Envelope.objects.exists()
    assert not Event.objects.filter(action__startswith="envelope.").exists()


@pytest.mark.parametrize(
    "fields",
    [
        {"subject": None},
        {"files_mode": "sometimes"},
        {"delivery": "pigeon"},
        {"recipients": [{"email": "a@b.example", "verification": "telepathy"}]},
        {"reply_max_opens": "many"},
    ],
)
def test_input_of_the_wrong_type_is_a_422_with_a_message(owner, fields):
    status, answer = owner.call("POST", "/api/v1/envelopes", addressed(**fields))
    assert status == 422, answer
    assert answer["error"] == "invalid" and answer["message"]
    assert not Envelope.objects.exists()


@pytest.mark.parametrize(
    ("field", "value", "shown"),
    [
        ("per_ip_hourly", "0", "between 1 and 1000"),
        ("max_submissions", "100001", "between 1 and 100000"),
        ("reply_max_opens", "100", "between 1 and 99"),
        ("max_total_mb", "0", "positive"),
    ],
)
def test_the_page_applies_the_same_rules_on_its_fields(sender, field, value, shown):
    """The rules live in the service: the page shows its refusal next to the field."""
    client = Client()
    client.post("/login/", {"email": sender.email, "password": PASSWORD})
    response = client.post(
        "/envelopes/new/",
        {
            **page_fields(),
            field: value,
            "delivery": "links",
            "form-TOTAL_FORMS": "1",
            "form-INITIAL_FORMS": "0",
            "form-0-email": "client@example.org",
            "form-0-phone": "",
            "form-0-verification": "none",
            "form-0-password": "",
        },
    )
    assert response.status_code == 200
    assert not Envelope.objects.exists()
    form = response.context["form"]
    assert any(shown in error for error in form.errors[field]), form.errors


def test_a_recipient_refusal_is_shown_on_its_row(sender):
    client = Client()
    client.post("/login/", {"email": sender.email, "password": PASSWORD})
    response = client.post(
        "/envelopes/new/",
        {
            **page_fields(),
            "delivery": "links",
            "form-TOTAL_FORMS": "3",
            "form-INITIAL_FORMS": "0",
            **{f"form-{i}-{k}": "" for i in range(3) for k in ("email", "phone", "password")},
            **{f"form-{i}-verification": "none" for i in range(3)},
            "form-0-email": "first@example.org",
            # Row 2 is left empty: the third row is the second recipient.
            "form-2-email": "second@example.org",
            "form-2-verification": "sms_code",
        },
    )
    rows = response.context["formset"].forms
    assert not rows[0].errors and not rows[1].errors
    assert "mobile phone" in rows[2].errors["phone"][0]


def test_a_standard_user_and_an_administrator_each_see_only_their_own(owner, make_user, sender):
    """As on the pages: anyone may create envelopes; nobody else (even an administrator
    of the organisation) lists, reads or closes them."""
    admin = Bearer(make_user("boss@example.com", role=Role.ADMIN))
    member_status, mine = owner.call("POST", "/api/v1/envelopes", addressed(subject="Mine"))
    admin_status, theirs = admin.call("POST", "/api/v1/envelopes", addressed(subject="Theirs"))
    assert member_status == admin_status == 201
    assert [e["subject"] for e in owner.call("GET", "/api/v1/envelopes")[1]] == ["Mine"]
    assert [e["subject"] for e in admin.call("GET", "/api/v1/envelopes")[1]] == ["Theirs"]
    for who, envelope in ((admin, mine), (owner, theirs)):
        status, answer = who.call("GET", f"/api/v1/envelopes/{envelope['id']}")
        assert status == 404 and answer["error"] == "not_found"
        status, _ = who.call("POST", f"/api/v1/envelopes/{envelope['id']}/close")
        assert status == 404
    assert set(Envelope.objects.values_list("state", flat=True)) == {EnvelopeState.OPEN}


def test_another_organisations_envelope_is_404(owner, make_user, other_organisation):
    _status, created = owner.call("POST", "/api/v1/envelopes", addressed())
    outsider = Bearer(make_user("admin@other.example", org=other_organisation, role=Role.ADMIN))
    for method, path in (
        ("GET", f"/api/v1/envelopes/{created['id']}"),
        ("POST", f"/api/v1/envelopes/{created['id']}/close"),
    ):
        status, answer = outsider.call(method, path)
        assert status == 404 and answer == {"error": "not_found", "message": "No such envelope."}
    assert outsider.call("GET", "/api/v1/envelopes") == (200, [])
    assert Envelope.objects.get().state == EnvelopeState.OPEN


def test_the_session_needs_the_csrf_token_and_nobody_else_gets_in(sender):
    browser = Client(enforce_csrf_checks=True)
    browser.get("/login/")
    csrf = browser.cookies["csrftoken"].value
    login = {"email": sender.email, "password": PASSWORD, "csrfmiddlewaretoken": csrf}
    assert browser.post("/login/", login).status_code == 302
    csrf = browser.cookies["csrftoken"].value  # rotated at login
    status, answer = api(browser, "POST", "/api/v1/envelopes", addressed())
    assert status == 403 and "CSRF" in answer["message"]
    response = browser.post(
        "/api/v1/envelopes",
        data=json.dumps(addressed()),
        content_type="application/json",
        HTTP_X_CSRFTOKEN=csrf,
    )
    assert response.status_code == 201, response.content
    status, answer = api(Client(), "POST", "/api/v1/envelopes", addressed())
    assert status == 401 and answer["error"] == "unauthenticated"
    assert Envelope.objects.count() == 1


def test_a_plan_without_a_size_limit_still_bounds_the_total(owner, sender):
    plan = sender.organisation.plan
    plan.max_send_bytes = None
    plan.save()
    status, answer = owner.call("POST", "/api/v1/envelopes", addressed(max_total_bytes=10**30))
    assert status == 400 and answer["field"] == "max_total_bytes", answer
    assert "at most 10" in answer["message"]
    status, created = owner.call("POST", "/api/v1/envelopes", addressed(max_total_bytes=10**12))
    assert status == 201 and created["max_total_bytes"] == 10**12
