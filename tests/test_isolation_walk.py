"""Every URL that names an object (an id or a token), found by walking the URL resolver
(the pages, the REST API and the operator area), visited as a user of another
organisation.

TABLE maps each such URL pattern to how to build a real object of organisation A for it,
and to what a user of organisation B gets: 404 (NOT_FOUND), except for a few token URLs
that are public by design (PUBLIC: B gets exactly what someone without an account gets;
the table says why), the operator area (OPERATOR: only the server's operators, who see
every organisation, get in) and parameters that name no object (OWN). A new URL pattern
that is not in the table fails the first test: say what it answers before it ships.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta

import pytest
from django.contrib.auth.models import Group
from django.core import mail
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver
from django.utils import timezone
from django_otp_webauthn.models import WebAuthnCredential

from sealbox.accounts import services as accounts
from sealbox.accounts.models import ApiToken, Role
from sealbox.audit.models import Event
from sealbox.client import messages as client
from sealbox.envelopes import services as envelopes
from sealbox.envelopes.models import EnvelopeState
from sealbox.exchange.models import Message, MessageKind, MessageState
from sealbox.lib import clock
from sealbox.twofactor.models import Factor, FactorLock, PendingLogin, RecoveryCodeDevice
from sealbox.users import services as users
from tests.conftest import PASSWORD
from tests.envelopes.conftest import api, seal_for_owner, submit
from tests.exchange.conftest import DjangoTransport
from tests.twofactor.conftest import enable_sms, enable_totp

pytestmark = pytest.mark.django_db

# What organisation B's user gets.
NOT_FOUND = "404"
PUBLIC = "public"  # the same answer as someone with no account
OPERATOR = "operator"  # sent to the operator login, which refuses a non-operator
OWN = "own"  # the parameter names no object: B gets their own organisation's data

CONFIRM = re.compile(r"/account/email/confirm/([A-Za-z0-9_-]+)/")
RESET = re.compile(r"/password-reset/([^/\s]+)/([^/\s]+)/")
INVITATION = re.compile(r"/invitation/([A-Za-z0-9_-]+)/")
OWNER_LINK = re.compile(r"http://\S+/o/([A-Za-z0-9_-]+)#[A-Za-z0-9_-]+")
PARAMETER = re.compile(r"<(?:\w+:)?(\w+)>")


# --- Organisation A's objects ---------------------------------------------------------------


@dataclass
class World:
    """One of each object a URL can name, all of organisation A."""

    member: object
    admin: object
    message: object
    grant: object
    file_blob: object
    download: str
    envelope: object
    link: object
    submission: object
    submission_token: str
    upload: dict  # an envelope submission being uploaded: id, blobs, upload_token
    reply_upload: dict  # a reply being uploaded
    api_token: object
    passkey: object
    email_change: str
    reset: tuple[str, str]
    invitation: str
    extra: dict = field(default_factory=dict)


def build_world(make_user, organisation) -> World:
    member = make_user("sender@example.com", first_name="Sam", last_name="Sender")
    admin_a = make_user("boss@example.com", role=Role.ADMIN)
    sender = Client()
    assert sender.post("/login/", {"email": member.email, "password": PASSWORD}).status_code == 302
    sent = client.send_message(
        DjangoTransport(sender),
        base_url="http://testserver",
        subject="Organisation A's secret subject",
        body="body",
        recipients=[client.Recipient("client@example.org")],
        expires_at=clock.now() + timedelta(days=7),
        attachments=[client.Attachment("a.pdf", data=b"%PDF of A")],
        delivery="links",
        reply_mode="files",
        max_opens=50,
    )
    message = Message.objects.get(public_id=sent.id)
    grant = message.grants.get()
    status, unlocked = api(
        Client(),
        "POST",
        f"/api/v1/open/{grant.token}/unlock",
        {"code": sent.opening_codes["client@example.org"]},
    )
    assert status == 200, unlocked
    file_download = next(d for d in unlocked["downloads"] if d["kind"] == "file")
    reply = seal_for_owner(
        Client(),
        "/api/v1/replies",
        {"authorisation": unlocked["reply"]["authorisation"]},
        "/api/v1/replies/{id}/finalise",
        finalise=False,
    )
    assert reply.status == 201, reply.data

    envelope = envelopes.create_envelope(
        member,
        envelopes.EnvelopeSpec(
            subject="Organisation A's envelope",
            expires_at=clock.now() + timedelta(days=7),
            recipients=[envelopes.EnvelopeRecipient("client@example.org")],
            delivery="links",
        ),
    )
    link = envelope.links.get()
    assert submit(envelope).status == 200
    submission = Message.objects.get(kind=MessageKind.ENVELOPE)
    owner_email = [m for m in mail.outbox if member.email in m.to and OWNER_LINK.search(m.body)]
    submission_token = OWNER_LINK.search(owner_email[-1].body).group(1)
    public = envelopes.create_envelope(
        member,
        envelopes.EnvelopeSpec(
            subject="Organisation A's public envelope",
            expires_at=clock.now() + timedelta(days=7),
            public=True,
            delivery="links",
        ),
    )
    upload = submit(public, finalise=False, files={"a.pdf": b"%PDF"})
    assert upload.status == 201, upload.data

    api_token, _secret = accounts.create_api_token(None, member, "walk", 30)
    credential_id = b"credential of A " * 2
    passkey = WebAuthnCredential.objects.create(
        user=member,
        name="A's key",
        confirmed=True,
        credential_id=credential_id,
        credential_id_sha256=hashlib.sha256(credential_id).hexdigest(),
        public_key=b"public key of A",
        sign_count=0,
        aaguid="00000000-0000-0000-0000-000000000000",
    )
    accounts.request_email_change(None, member, "sam@new.example", PASSWORD)
    email_change = CONFIRM.search(mail.outbox[-1].body).group(1)
    Client().post("/password-reset/", {"email": member.email})
    reset = RESET.search(mail.outbox[-1].body).groups()
    users.invite_user(None, admin_a, users.NewUser("newcomer@example.com"))
    invitation = INVITATION.search(mail.outbox[-1].body).group(1)
    organisation.logo = b"\x89PNG logo of A"
    organisation.logo_type = "image/png"
    organisation.accent_colour = "#336699"
    organisation.save()
    return World(
        member=member,
        admin=admin_a,
        message=message,
        grant=grant,
        file_blob=message.blobs.get(kind="file"),
        download=file_download["url"].rsplit("/", 1)[1],
        envelope=envelope,
        link=link,
        submission=submission,
        submission_token=submission_token,
        upload=upload.data,
        reply_upload=reply.data,
        api_token=api_token,
        passkey=passkey,
        email_change=email_change,
        reset=reset,
        invitation=invitation,
    )


# --- The table --------------------------------------------------------------------------------


@dataclass
class Case:
    kwargs: dict
    expect: str
    methods: tuple[str, ...] | None = None  # default: the route's (GET and POST for pages)
    query: str = ""
    body: dict | bytes | None = None
    path: str | None = None  # for a regular-expression route


@dataclass
class Row:
    cases: Callable[[World], list[Case]]
    why: str = ""


def one(expect: str, **build: Callable[[World], object]) -> Callable[[World], list[Case]]:
    return lambda w: [Case({name: make(w) for name, make in build.items()}, expect)]


def public(why: str, methods: tuple[str, ...] | None = None, **build) -> Row:
    def cases(w: World) -> list[Case]:
        return [Case({name: make(w) for name, make in build.items()}, PUBLIC, methods)]

    return Row(cases, why)


def hidden(**build) -> Row:
    return Row(one(NOT_FOUND, **build))


def grant_cases(w: World, methods: tuple[str, ...] | None = None, **request) -> list[Case]:
    """A recipient's link (public by design) and the owner's link to a submission (only
    the owner, logged in, may use it: any other logged-in user gets 404)."""
    return [
        Case({"token": w.grant.token}, PUBLIC, methods, **request),
        Case({"token": w.submission_token}, NOT_FOUND, methods, **request),
    ]


RECIPIENT_LINK = (
    "a recipient has no account: the link's token is their way in; the page and this "
    "call reveal no content, and unlocking needs the link's secret and the proof"
)
ENVELOPE_LINK = (
    "whoever the owner gave the link to submits without an account (a public envelope "
    "is meant for anyone); the token lets one submit, never read"
)

TABLE: dict[str, Row] = {
    # Accounts
    "account/email/confirm/<str:token>/": public(
        "the link sent to the new address is the proof of owning it; whoever follows it "
        "(with or without a session) confirms that address for that account, no other; "
        "visited with GET only, which changes nothing (mail scanners follow links)",
        ("GET",),
        token=lambda w: w.email_change,
    ),
    "account/tokens/<int:pk>/revoke/": hidden(pk=lambda w: w.api_token.pk),
    "password-reset/<uidb64>/<token>/": Row(
        lambda w: [Case({"uidb64": w.reset[0], "token": w.reset[1]}, PUBLIC, ("GET",))],
        "the reset email's link is the proof: the person following it has no session",
    ),
    # Two factors
    "account/security/passkeys/<int:pk>/rename/": hidden(pk=lambda w: w.passkey.pk),
    "account/security/passkeys/<int:pk>/remove/": hidden(pk=lambda w: w.passkey.pk),
    "account/security/users/<int:pk>/reset/": hidden(pk=lambda w: w.member.pk),
    # Messages
    "messages/<uuid:public_id>/delete/": hidden(public_id=lambda w: w.message.public_id),
    "messages/<uuid:public_id>/recipients/<int:grant_id>/unlock/": hidden(
        public_id=lambda w: w.message.public_id, grant_id=lambda w: w.grant.pk
    ),
    "o/<str:token>": Row(lambda w: grant_cases(w, ("GET",)), RECIPIENT_LINK),
    "messages/<uuid:public_id>/": hidden(public_id=lambda w: w.message.public_id),
    "history/export.<str:kind>": Row(
        lambda w: [Case({"kind": kind}, OWN, ("GET",)) for kind in ("csv", "xlsx", "pdf")],
        "the kind of export, not an object: B exports B's organisation",
    ),
    # Envelopes
    "envelopes/<uuid:public_id>/": hidden(public_id=lambda w: w.envelope.public_id),
    "envelopes/<uuid:public_id>/close/": hidden(public_id=lambda w: w.envelope.public_id),
    "envelopes/<uuid:public_id>/links/<int:link_id>/unlock/": hidden(
        public_id=lambda w: w.envelope.public_id, link_id=lambda w: w.link.pk
    ),
    "e/<str:token>": public(ENVELOPE_LINK, token=lambda w: w.link.token),
    "e/<str:token>/sent": public(ENVELOPE_LINK, token=lambda w: w.link.token),
    # User administration
    "users/<int:pk>/": hidden(pk=lambda w: w.member.pk),
    "users/<int:pk>/disable/": hidden(pk=lambda w: w.member.pk),
    "users/<int:pk>/enable/": hidden(pk=lambda w: w.member.pk),
    "users/<int:pk>/invite/": hidden(pk=lambda w: w.member.pk),
    "users/<int:pk>/delete/": hidden(pk=lambda w: w.member.pk),
    "organisation-logo/<int:pk>/": public(
        "branding: the recipients' and submitters' pages (no account) and emails show it",
        pk=lambda w: w.member.organisation_id,
    ),
    "organisation-theme/<int:pk>.css": public(
        "branding: the recipients' and submitters' pages (no account) use it",
        pk=lambda w: w.member.organisation_id,
    ),
    "invitation/<str:token>/": public(
        "the invited person has no account yet: the emailed link is how they set a password",
        token=lambda w: w.invitation,
    ),
    # REST API: the sender's messages
    "api/v1/messages/<message_id>": hidden(message_id=lambda w: w.message.public_id),
    "api/v1/messages/<message_id>/blobs/<blob_id>/parts": Row(
        lambda w: [
            Case({"message_id": w.message.public_id, "blob_id": w.file_blob.public_id}, NOT_FOUND)
        ]
    ),
    "api/v1/messages/<message_id>/blobs/<blob_id>": Row(
        lambda w: [
            Case(
                {"message_id": w.message.public_id, "blob_id": w.file_blob.public_id},
                NOT_FOUND,
                query="?offset=0",
                body=b"x",
            )
        ]
    ),
    "api/v1/messages/<message_id>/finalise": Row(
        lambda w: [Case({"message_id": w.message.public_id}, NOT_FOUND, body={"links": None})]
    ),
    # REST API: recipients (no account)
    "api/v1/open/<token>": Row(grant_cases, RECIPIENT_LINK),
    "api/v1/open/<token>/code": Row(
        lambda w: [Case({"token": w.grant.token}, PUBLIC)],
        RECIPIENT_LINK + " (and codes are rate-limited per link and per address)",
    ),
    "api/v1/open/<token>/unlock": Row(grant_cases, RECIPIENT_LINK),
    "api/v1/downloads/<authorisation>": public(
        "a short-lived signed authorisation that unlocking gave (with the proof); it "
        "names one blob of ciphertext, useless without the link's secret",
        authorisation=lambda w: w.download,
    ),
    # REST API: uploads without a session (they need the uploader's upload token)
    "api/v1/uploads/<message_id>": hidden(message_id=lambda w: w.upload["id"]),
    "api/v1/uploads/<message_id>/blobs/<blob_id>/parts": Row(
        lambda w: [
            Case({"message_id": w.upload["id"], "blob_id": w.upload["blobs"][0]["id"]}, NOT_FOUND)
        ]
    ),
    "api/v1/uploads/<message_id>/blobs/<blob_id>": Row(
        lambda w: [
            Case(
                {"message_id": w.upload["id"], "blob_id": w.upload["blobs"][0]["id"]},
                NOT_FOUND,
                query="?offset=0",
                body=b"x",
            )
        ]
    ),
    "api/v1/replies/<message_id>/finalise": Row(
        lambda w: [Case({"message_id": w.reply_upload["id"]}, NOT_FOUND, body={"links": []})]
    ),
    "api/v1/envelope-submissions/<message_id>/finalise": Row(
        lambda w: [Case({"message_id": w.upload["id"]}, NOT_FOUND, body={"links": []})]
    ),
    # REST API: users and envelopes
    "api/v1/users/<user_id>": hidden(user_id=lambda w: w.member.pk),
    "api/v1/users/<user_id>/disable": hidden(user_id=lambda w: w.member.pk),
    "api/v1/users/<user_id>/enable": hidden(user_id=lambda w: w.member.pk),
    "api/v1/envelopes/<envelope_id>": hidden(envelope_id=lambda w: w.envelope.public_id),
    "api/v1/envelopes/<envelope_id>/close": hidden(envelope_id=lambda w: w.envelope.public_id),
    "api/v1/envelope-links/<token>": public(ENVELOPE_LINK, token=lambda w: w.link.token),
    "api/v1/envelope-links/<token>/code": public(ENVELOPE_LINK, token=lambda w: w.link.token),
    "api/v1/envelope-links/<token>/start": public(ENVELOPE_LINK, token=lambda w: w.link.token),
    # The operator area (Django's admin): the server's operators see every organisation by
    # design; anyone else is sent to its login, which refuses them. The model routes
    # (operator/<app>/<model>/…) are checked for every registered model, with an object of
    # organisation A from ADMIN_OBJECTS.
    "operator/r/<path:content_type_id>/<path:object_id>/": Row(
        lambda w: [
            Case(
                {
                    "content_type_id": w.extra["user_content_type"],
                    "object_id": w.member.pk,
                },
                OPERATOR,
            )
        ],
        "the operator area's 'view on site' link, for every organisation by design",
    ),
    "operator/^(?P<app_label>{apps})/$": Row(
        lambda w: [Case({}, OPERATOR, path="/operator/accounts/")],
        "an application's index: no object",
    ),
    "operator/(?P<url>.*)$": Row(
        lambda w: [Case({}, OPERATOR, path="/operator/no/such/page/")],
        "anything else under /operator/: no object",
    ),
}

# How to find or make an object of organisation A for each model the operator area lists.
ADMIN_OBJECTS: dict[str, Callable[[World], object]] = {
    "accounts.user": lambda w: w.member.pk,
    "accounts.organisation": lambda w: w.member.organisation_id,
    "accounts.plan": lambda w: w.member.organisation.plan_id,  # A's plan (shared catalogue)
    "audit.event": lambda w: Event.objects.filter(organisation=w.member.organisation).first().pk,
    "auth.group": lambda w: Group.objects.get_or_create(name="Group of A")[0].pk,
    "django_tasks_database.dbtaskresult": lambda w: w.extra["task"],
    "otp_totp.totpdevice": lambda w: enable_totp(w.admin).pk,
    "twofactor.smsdevice": lambda w: enable_sms(w.admin).pk,
    "twofactor.recoverycodedevice": lambda w: (
        RecoveryCodeDevice.objects.create(user=w.admin, name="Recovery codes").pk
    ),
    "twofactor.factorlock": lambda w: (
        FactorLock.objects.get_or_create(user=w.admin, factor=Factor.TOTP)[0].pk
    ),
    "twofactor.pendinglogin": lambda w: (
        PendingLogin.objects.create(
            id="pending-login-of-a",
            user=w.admin,
            created_at=clock.now(),
            expires_at=clock.now() + timedelta(minutes=10),
            method=Factor.TOTP,
        ).pk
    ),
}

MODEL_ROUTE = re.compile(r"operator/(?P<app>\w+)/(?P<model>\w+)/(?P<rest>.*<.+)")


def admin_row(route: str) -> Row | None:
    """operator/<app>/<model>/… routes, for the model's object of organisation A."""
    match = MODEL_ROUTE.fullmatch(route)
    if match is None:
        return None
    label = f"{match['app']}.{match['model']}"
    if label not in ADMIN_OBJECTS:
        return None

    def cases(w: World) -> list[Case]:
        if label not in w.extra:  # one object per model, for all of its routes
            w.extra[label] = ADMIN_OBJECTS[label](w)
        pk = w.extra[label]
        return [Case({name: pk for name in PARAMETER.findall(route)}, OPERATOR)]

    return Row(cases, "the operator area, for every organisation by design")


# --- Walking the URLs ---------------------------------------------------------------------


def walk(resolver: URLResolver, prefix: str = ""):
    for pattern in resolver.url_patterns:
        route = prefix + str(pattern.pattern)
        if isinstance(pattern, URLResolver):
            yield from walk(pattern, route)
        elif isinstance(pattern, URLPattern):
            yield route


def named_routes() -> list[str]:
    """Every URL pattern with a parameter, once (the API lists a path per operation)."""
    found: list[str] = []
    for route in walk(get_resolver()):
        if ("<" in route or "(?P" in route) and route not in found:
            found.append(route)
    return found


def table_key(route: str) -> str:
    # The admin's app index lists the installed apps: one row whatever they are.
    return re.sub(r"\(\?P<app_label>[^)]*\)", "(?P<app_label>{apps})", route)


def row_for(route: str) -> Row | None:
    return TABLE.get(table_key(route)) or admin_row(route)


def test_every_url_with_an_id_or_a_token_is_in_the_table():
    routes = named_routes()
    assert len(routes) > 40  # the walk saw the pages, the API and the operator area
    assert any(r.startswith("api/v1/") for r in routes)
    assert any(r.startswith("operator/") for r in routes)
    missing = [route for route in routes if row_for(route) is None]
    assert not missing, f"say what another organisation gets for: {missing}"
    keys = {table_key(route) for route in routes}
    stale = [key for key in TABLE if key not in keys]
    assert not stale, f"these URLs are gone: {stale}"


# --- Visiting them as organisation B -------------------------------------------------------


def fill(route: str, kwargs: dict) -> str:
    return "/" + PARAMETER.sub(lambda m: str(kwargs[m.group(1)]), route)


def api_methods() -> dict[str, list[str]]:
    schema = Client().get("/api/v1/openapi.json").json()
    return {path: [m.upper() for m in item] for path, item in schema["paths"].items()}


def methods_of(route: str, case: Case, from_api: dict[str, list[str]]) -> tuple[str, ...]:
    if case.methods is not None:
        return case.methods
    if route.startswith("api/v1/"):
        return tuple(from_api["/" + PARAMETER.sub(r"{\1}", route)])
    return ("GET", "POST")


def call(who: Client, method: str, path: str, body):
    if isinstance(body, bytes):
        data, kind = body, "application/octet-stream"
    else:
        data, kind = json.dumps(body or {}), "application/json"
    return who.generic(method, path, data=data, content_type=kind, REMOTE_ADDR="198.51.100.9")


@pytest.fixture
def world(make_user, organisation, clock):
    w = build_world(make_user, organisation)
    from django.contrib.contenttypes.models import ContentType
    from django_tasks_db.models import DBTaskResult

    w.extra["user_content_type"] = ContentType.objects.get_for_model(w.member).pk
    w.extra["task"] = DBTaskResult.objects.create(
        args_kwargs={"args": [], "kwargs": {}},
        task_path="sealbox.notify.tasks.deliver",
        backend_name="default",
        run_after=timezone.now(),
        exception_class_path="",
        traceback="",
    ).pk
    return w


@pytest.fixture
def outsider(make_user, other_organisation) -> Client:
    """An administrator of organisation B: the most an organisation's user can be."""
    b = make_user("admin@other.example", org=other_organisation, role=Role.ADMIN)
    c = Client()
    assert c.post("/login/", {"email": b.email, "password": PASSWORD}).status_code == 302
    return c


def check(route: str, case: Case, method: str, outsider: Client) -> str | None:
    """What is wrong with B's answer ("" or None when it is right)."""
    path = (case.path or fill(route, case.kwargs)) + case.query
    answer = call(outsider, method, path, case.body)
    where = f"{method} {path} ({route})"
    if answer.status_code >= 500:
        return f"{where}: {answer.status_code}"
    if case.expect == NOT_FOUND:
        if answer.status_code == 405 and not route.startswith("api/"):
            return None  # this page does not take this method, whatever the id
        if answer.status_code != 404:
            return f"{where}: {answer.status_code}, not 404"
        if route.startswith("api/") and answer.json().get("error") != "not_found":
            return f"{where}: {answer.content!r}"
    elif case.expect == PUBLIC:
        anonymous = call(Client(), method, path, case.body)
        if answer.status_code != anonymous.status_code:
            return f"{where}: {answer.status_code}, someone without an account gets " + str(
                anonymous.status_code
            )
    elif case.expect == OPERATOR:
        if answer.status_code not in (301, 302):
            return f"{where}: {answer.status_code}, not a redirect"
        final = outsider.get(path, follow=True)
        hops = [url for url, _status in final.redirect_chain]
        if final.status_code != 403 or not any("/operator/login/" in hop for hop in hops):
            return f"{where}: ended with {final.status_code} after {hops}"
    elif case.expect == OWN:
        content = b"".join(answer.streaming_content) if answer.streaming else answer.content
        if answer.status_code != 200 or b"secret subject" in content:
            return f"{where}: {answer.status_code}, or it shows organisation A's data"
    return None


def test_another_organisation_gets_404_on_every_object_url(world, outsider, mailoutbox):
    from_api = api_methods()
    problems = []
    visited = 0
    for route in named_routes():
        row = row_for(route)
        for case in row.cases(world):
            if case.expect != NOT_FOUND and not row.why:
                problems.append(f"{route}: say in the table why it is not 404")
            for method in methods_of(route, case, from_api):
                visited += 1
                problem = check(route, case, method, outsider)
                if problem:
                    problems.append(problem)
    assert not problems, "\n".join(problems)
    assert visited > 100
    # Nothing of organisation A changed.
    world.message.refresh_from_db()
    assert world.message.state == MessageState.SENT and not world.message.grants.filter(
        revoked_at__isnull=False
    )
    world.envelope.refresh_from_db()
    assert world.envelope.state == EnvelopeState.OPEN
    world.member.refresh_from_db()
    assert world.member.is_active and world.member.email == "sender@example.com"
    assert world.member.first_name == "Sam"
    assert ApiToken.objects.get(pk=world.api_token.pk).revoked_at is None
    assert WebAuthnCredential.objects.filter(pk=world.passkey.pk, name="A's key").exists()
    assert Message.objects.get(public_id=world.upload["id"]).state == MessageState.DRAFT
