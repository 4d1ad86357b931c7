"""Recovery codes: 10 codes of at least 64 bits, shown once, downloadable, hashed, single use."""

import math
import re

import pytest
from django.core import serializers
from django.test import Client

from sealbox.audit.models import Event
from sealbox.twofactor import services
from sealbox.twofactor.models import RecoveryCode, RecoveryCodeDevice
from tests.twofactor.conftest import enable_totp, password_step, totp_code

pytestmark = pytest.mark.django_db

CODE_PATTERN = re.compile(r"[0-9a-hjkmnp-tv-z]{4}(-[0-9a-hjkmnp-tv-z]{4}){3}")


@pytest.fixture
def totp_client(client, user, clock):
    device = enable_totp(user)
    password_step(client, user)
    client.post("/login/verify/", {"code": totp_code(device, clock.current)})
    client.totp = device
    return client


def generate(client) -> list[str]:
    page = client.post("/account/security/recovery-codes/").content.decode()
    return re.findall(r"<li><code>([^<]+)</code></li>", page)


def test_ten_codes_of_at_least_64_bits_each(totp_client):
    codes = generate(totp_client)
    assert len(codes) == 10 == len(set(codes))
    bits = services.RECOVERY_CODE_LENGTH * math.log2(len(set(services.RECOVERY_ALPHABET)))
    assert bits >= 64
    assert all(CODE_PATTERN.fullmatch(code) for code in codes)


def test_codes_come_from_secrets(monkeypatch):
    picks = []

    def choice(alphabet):
        picks.append(alphabet)
        return alphabet[0]

    monkeypatch.setattr(services.secrets, "choice", choice)
    assert services.new_recovery_code() == "0000-0000-0000-0000"
    assert picks == [services.RECOVERY_ALPHABET] * 16


def test_codes_are_stored_hashed_only(totp_client, user):
    codes = generate(totp_client)
    dump = serializers.serialize(
        "json", [*RecoveryCode.objects.all(), *RecoveryCodeDevice.objects.all()]
    )
    for code in codes:
        assert code not in dump and code.replace("-", "") not in dump
    assert RecoveryCode.objects.filter(device__user=user).count() == 10


def test_codes_are_shown_once(totp_client):
    codes = generate(totp_client)
    page = totp_client.get("/account/security/").content.decode()
    assert "10 unused recovery codes left." in page
    assert not any(code in page for code in codes)


def test_the_codes_download_as_a_text_file(totp_client, user):
    codes = generate(totp_client)
    response = totp_client.post("/account/security/recovery-codes/download/", {"code": codes})
    assert response["Content-Type"] == "text/plain; charset=utf-8"
    assert response["Content-Disposition"] == 'attachment; filename="sealbox-recovery-codes.txt"'
    assert response["Cache-Control"] == "no-store"
    text = response.content.decode()
    assert user.email in text
    assert all(code in text for code in codes)


def test_the_download_only_echoes_the_users_own_unused_codes(totp_client):
    generate(totp_client)
    response = totp_client.post(
        "/account/security/recovery-codes/download/", {"code": ["aaaa-bbbb-cccc-dddd"]}
    )
    assert response.status_code == 302


def test_new_codes_replace_the_old_ones(totp_client, user):
    old = generate(totp_client)
    new = generate(totp_client)
    assert not set(old) & set(new)
    assert services.unused_recovery_codes_among(user, old) == []
    assert services.unused_recovery_codes_among(user, new) == new


def test_a_recovery_code_logs_in_once_and_emails_the_user(totp_client, user, mailoutbox):
    codes = generate(totp_client)
    totp_client.post("/logout/")
    mailoutbox.clear()
    other = Client()
    password_step(other, user)
    other.post("/login/verify/methods/", {"method": "recovery"})
    assert "Recovery code" in other.get("/login/verify/").content.decode()
    response = other.post("/login/verify/", {"code": codes[3].upper()})
    assert response.status_code == 302 and response["Location"] == "/account/"
    assert [mail.subject for mail in mailoutbox] == ["Sealbox: a recovery code was used"]
    assert "9 unused codes are left" in mailoutbox[0].body
    assert Event.objects.filter(action="twofactor.recovery_code_used").get().details == {
        "remaining": 9
    }
    # The same code never works again.
    again = Client()
    password_step(again, user)
    again.post("/login/verify/methods/", {"method": "recovery"})
    response = again.post("/login/verify/", {"code": codes[3]})
    assert "This recovery code is not correct or was already used." in response.content.decode()
    assert "_auth_user_id" not in again.session


def test_recovery_codes_need_a_second_factor_first(logged_in_client):
    response = logged_in_client.post("/account/security/recovery-codes/", follow=True)
    assert "Turn on a second factor first" in response.content.decode()
    assert not RecoveryCodeDevice.objects.exists()


def test_removing_the_last_factor_removes_the_recovery_codes(totp_client, user):
    generate(totp_client)
    totp_client.post("/account/security/authenticator/remove/")
    assert not RecoveryCodeDevice.objects.filter(user=user).exists()
    assert not services.needs_second_step(user)
