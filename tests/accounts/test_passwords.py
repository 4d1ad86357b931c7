"""Password rules, hashing, change and reset by email."""

import re

import pytest
from django.conf import settings
from django.contrib.auth.hashers import make_password
from django.core import mail
from django.test import override_settings

from sealbox.accounts import services
from sealbox.accounts.models import User
from sealbox.audit.models import Event
from tests.conftest import PASSWORD

pytestmark = pytest.mark.django_db


def test_argon2id_is_the_first_hasher():
    from tests import settings as test_settings

    first = test_settings.PRODUCTION_PASSWORD_HASHERS[0]
    assert first == "django.contrib.auth.hashers.Argon2PasswordHasher"
    with override_settings(PASSWORD_HASHERS=test_settings.PRODUCTION_PASSWORD_HASHERS):
        encoded = make_password("a long enough passphrase")
    assert encoded.startswith("argon2$argon2id$")


def test_stored_password_is_a_hash(user):
    user.refresh_from_db()
    assert PASSWORD not in user.password
    assert user.password.startswith("argon2$argon2id$")


@pytest.mark.parametrize(
    "password, accepted",
    [
        ("elevenchars", False),  # 11 characters
        ("twelve chars", True),  # 12 characters, no composition rule
        ("x" * 63 + "y", True),  # 64 characters are allowed
        ("password1234", False),  # common
        ("alice.martin@exa", False),  # too similar to the email address
        ("all lowercase words here", True),
    ],
)
def test_password_rules(organisation, password, accepted):
    try:
        services.create_user(
            "alice.martin@example.com",
            password,
            organisation,
            first_name="Alice",
            last_name="Martin",
        )
    except services.AccountError:
        assert not accepted
    else:
        assert accepted


def test_change_password_requires_the_current_one(logged_in_client, user):
    response = logged_in_client.post(
        "/account/password/",
        {"current_password": "wrong one entirely", "new_password": "a brand new passphrase 7"},
    )
    assert "Your current password is not correct." in response.content.decode()
    user.refresh_from_db()
    assert user.check_password(PASSWORD)


def test_change_password_refuses_a_weak_one(logged_in_client, user):
    response = logged_in_client.post(
        "/account/password/", {"current_password": PASSWORD, "new_password": "short"}
    )
    assert "This password is too short" in response.content.decode()


def test_change_password_is_recorded(logged_in_client, user):
    response = logged_in_client.post(
        "/account/password/",
        {"current_password": PASSWORD, "new_password": "a brand new passphrase 7"},
    )
    assert response.status_code == 302
    user.refresh_from_db()
    assert user.check_password("a brand new passphrase 7")
    assert Event.objects.filter(action="password.changed", actor_id=str(user.pk)).exists()


def reset_link(email_message) -> str:
    return re.search(r"http://\S+/password-reset/\S+/\S+/", email_message.body).group(0)


def request_reset(client, email):
    return client.post("/password-reset/", {"email": email})


def test_reset_by_email_single_use(client, user):
    response = request_reset(client, "Alice@Example.com")
    assert response["Location"] == "/password-reset/sent/"
    assert len(mail.outbox) == 1
    message = mail.outbox[0]
    assert message.to == ["alice@example.com"]
    link = reset_link(message)
    assert link.startswith(settings.SEALBOX_BASE_URL)
    path = link.removeprefix(settings.SEALBOX_BASE_URL)
    form_page = client.get(path, follow=True)
    assert "Choose a new password" in form_page.content.decode()
    set_url = form_page.redirect_chain[-1][0]
    done = client.post(
        set_url,
        {"new_password1": "reset passphrase 2026", "new_password2": "reset passphrase 2026"},
    )
    assert done.status_code == 302
    user.refresh_from_db()
    assert user.check_password("reset passphrase 2026")
    assert Event.objects.filter(action="password.reset", actor_id=str(user.pk)).exists()
    assert Event.objects.filter(action="password.reset_requested", actor_id=str(user.pk)).exists()
    # The same link a second time: refused.
    again = client.get(path, follow=True).content.decode()
    assert "This link is no longer valid" in again


def test_reset_link_expires_after_one_hour(client, user, clock):
    request_reset(client, user.email)
    path = reset_link(mail.outbox[0]).removeprefix(settings.SEALBOX_BASE_URL)
    clock.advance(minutes=59)
    assert "new_password1" in client.get(path, follow=True).content.decode()
    clock.advance(minutes=2)
    assert "This link is no longer valid" in client.get(path, follow=True).content.decode()
    # Not even from the form page the first visit led to (the session still knows it).
    assert (
        "This link is no longer valid"
        in client.get(path.rsplit("/", 2)[0] + "/set-password/").content.decode()
    )


def test_reset_for_unknown_address_looks_the_same(client, user):
    known = request_reset(client, user.email)
    unknown = request_reset(client, "nobody@example.com")
    assert known.status_code == unknown.status_code == 302
    assert known["Location"] == unknown["Location"]
    assert len(mail.outbox) == 1


def test_reset_requests_are_rate_limited(client, user):
    for _ in range(7):
        request_reset(client, user.email)
    assert len(mail.outbox) == 5


def test_reset_email_is_queued_sealed(client, user, monkeypatch):
    """The queued task and its outbox row must not carry the reset link in clear."""
    from sealbox.notify import services as notify

    captured = {}
    task = notify.deliver_email

    class Spy:
        def enqueue(self, **kwargs):
            from sealbox.notify.models import OutboxMessage

            row = OutboxMessage.objects.get(pk=kwargs["outbox_id"])
            captured.update(kwargs, recipients=row.recipients, sealed=bytes(row.sealed))
            return task.enqueue(**kwargs)

    monkeypatch.setattr(notify, "deliver_email", Spy())
    request_reset(client, user.email)
    link = reset_link(mail.outbox[0])
    assert captured["sealed"]
    assert link not in repr(captured)
    token = link.rstrip("/").rsplit("/", 1)[-1]
    assert token not in repr(captured)


def test_reset_link_is_random_and_only_its_hash_is_stored(client, user):
    from sealbox.accounts.models import PasswordReset
    from sealbox.accounts.services import token_hash

    request_reset(client, user.email)
    token = reset_link(mail.outbox[0]).rstrip("/").rsplit("/", 1)[-1]
    [row] = PasswordReset.objects.filter(user=user)
    assert row.token_hash == token_hash(token)
    assert len(token) >= 43  # 32 random bytes
    # Visiting the link keeps the hash in the session, never the token.
    form_page = client.get(reset_link(mail.outbox[0]).removeprefix(settings.SEALBOX_BASE_URL))
    assert form_page.status_code == 302
    assert token not in repr(dict(client.session))


def test_reset_link_ends_when_the_password_changes_or_the_user_logs_in(client, user):
    request_reset(client, user.email)
    first = reset_link(mail.outbox[0]).removeprefix(settings.SEALBOX_BASE_URL)
    assert client.post("/login/", {"email": user.email, "password": PASSWORD}).status_code == 302
    assert "This link is no longer valid" in client.get(first, follow=True).content.decode()
    request_reset(client, user.email)
    second = reset_link(mail.outbox[1]).removeprefix(settings.SEALBOX_BASE_URL)
    user.set_password("another passphrase 2027")
    user.save()
    assert "This link is no longer valid" in client.get(second, follow=True).content.decode()


def test_user_email_is_unique_case_insensitively(organisation, user):
    with pytest.raises(services.AccountError):
        services.create_user("ALICE@example.com", "another long passphrase", organisation)
    assert User.objects.count() == 1
