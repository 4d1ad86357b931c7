from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.conf import settings
from django.utils import translation

from sealbox.accounts import services as accounts
from sealbox.accounts.models import Plan, Role
from sealbox.accounts.plans import ensure_default_plans

PASSWORD = "correct horse battery staple"


class MovableClock:
    def __init__(self, start: datetime):
        self.current = start

    def __call__(self) -> datetime:
        return self.current

    def advance(self, **delta) -> datetime:
        self.current += timedelta(**delta)
        return self.current


@pytest.fixture(autouse=True)
def default_language():
    """Each test starts in the default language: the test client runs requests in the test's
    own thread, so a French user's request leaves French active for whatever runs next."""
    translation.activate(settings.LANGUAGE_CODE)
    yield
    translation.activate(settings.LANGUAGE_CODE)


@pytest.fixture
def clock(monkeypatch) -> MovableClock:
    """A frozen clock the test moves by hand (sealbox.lib.clock.now)."""
    frozen = MovableClock(datetime(2026, 11, 2, 9, 0, tzinfo=UTC))
    monkeypatch.setattr("sealbox.lib.clock.now", frozen)
    return frozen


@pytest.fixture
def plans(db):
    # Transactional tests (live_server) flush the data migrations' rows afterwards.
    ensure_default_plans(Plan)


@pytest.fixture
def organisation(plans):
    org, _ = accounts.get_or_create_organisation("Tremblay Avocats", plan_name="Advanced")
    return org


@pytest.fixture
def other_organisation(plans):
    org, _ = accounts.get_or_create_organisation("Other Firm", plan_name="Pro")
    return org


@pytest.fixture
def make_user(db, organisation):
    def make(email: str = "alice@example.com", *, org=None, role=Role.MEMBER, **fields):
        return accounts.create_user(email, PASSWORD, org or organisation, role=role, **fields)

    return make


@pytest.fixture
def user(make_user):
    return make_user("alice@example.com", first_name="Alice", last_name="Martin")


@pytest.fixture
def admin_user(make_user):
    return make_user("admin@example.com", role=Role.ADMIN, first_name="Ada", last_name="Admin")


@pytest.fixture
def logged_in_client(client, user):
    response = client.post("/login/", {"email": user.email, "password": PASSWORD})
    assert response.status_code == 302, response.content
    return client


ROTATED_SECRET_KEY = "sealbox-test-rotated-secret-key-not-for-production-9876543210"


class SecretKeyRotation:
    """Rotate SEALBOX_SECRET_KEY as an operator does: the new key becomes the secret key
    and the old one a fallback; then the fallback can be dropped."""

    def __init__(self, settings):
        self.settings = settings
        self.old = settings.SECRET_KEY

    def rotate(self) -> None:
        self.settings.SECRET_KEY = ROTATED_SECRET_KEY
        self.settings.SECRET_KEY_FALLBACKS = [self.old]

    def drop_fallback(self) -> None:
        self.settings.SECRET_KEY = ROTATED_SECRET_KEY
        self.settings.SECRET_KEY_FALLBACKS = []


@pytest.fixture
def secret_key(settings) -> SecretKeyRotation:
    return SecretKeyRotation(settings)
