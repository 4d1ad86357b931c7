"""Shared helpers for the two-factor tests: an SMS outbox read from the file:// gateway,
second factors set up directly, TOTP codes computed like an authenticator app would."""

from __future__ import annotations

import json
import re
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import pytest
from django_otp.oath import TOTP
from django_otp.plugins.otp_totp.models import TOTPDevice

from sealbox.notify import sms_tasks
from sealbox.twofactor import services
from sealbox.twofactor.models import SMSDevice
from tests.conftest import PASSWORD

CODE = re.compile(r"\b(\d{6})\b")


class SMSOutbox:
    """The SMS sent through the file:// gateway, one JSON object per line."""

    def __init__(self, path: Path):
        self.path = path

    def messages(self) -> list[dict]:
        if not self.path.exists():
            return []
        return [json.loads(line) for line in self.path.read_text().splitlines() if line]

    def __len__(self) -> int:
        return len(self.messages())

    def last(self) -> dict:
        messages = self.messages()
        assert messages, "no SMS was sent"
        return messages[-1]

    def last_code(self) -> str:
        match = CODE.search(self.last()["body"])
        assert match, self.last()["body"]
        return match.group(1)


@pytest.fixture
def sms_outbox(tmp_path, settings, monkeypatch) -> SMSOutbox:
    path = tmp_path / "sms.jsonl"
    settings.SEALBOX_SMS_URL = f"file://{path}"
    monkeypatch.setattr(sms_tasks, "RETRY_DELAYS_SECONDS", (0.0, 0.0))
    return SMSOutbox(path)


@pytest.fixture(params=["as shipped", "changed"])
def resend_cooldown(request, monkeypatch) -> int:
    """The resend cooldown in seconds: the shipped constant, and a changed one (so a
    caller that hard-codes the shipped value is caught)."""
    if request.param == "changed":
        changed = services.RESEND_COOLDOWN + timedelta(seconds=30)
        monkeypatch.setattr(services, "RESEND_COOLDOWN", changed)
        monkeypatch.setattr(
            services, "SMS_PER_BINDING", replace(services.SMS_PER_BINDING, window=changed)
        )
    return int(services.RESEND_COOLDOWN.total_seconds())


def enable_sms(user, number: str = "+15145550100") -> SMSDevice:
    user.mobile_phone = number
    user.save(update_fields=["mobile_phone"])
    return SMSDevice.objects.create(user=user, name="Mobile phone", number=number, confirmed=True)


def enable_totp(user) -> TOTPDevice:
    """An authenticator app as the real set-up makes it (secret, step, digits, tolerance:
    nothing chosen here), confirmed as if its first code had been typed."""
    device = services.start_totp_setup(user)
    device.confirmed = True
    device.save(update_fields=["confirmed"])
    return device


def totp_code(device: TOTPDevice, moment, steps: int = 0) -> str:
    totp = TOTP(device.bin_key, device.step, device.t0, device.digits, 0)
    totp.time = moment.timestamp() + steps * device.step
    return f"{totp.token():06d}"


def password_step(client, user, **extra):
    return client.post("/login/", {"email": user.email, "password": PASSWORD, **extra})


def audit_actions(user=None) -> list[str]:
    from sealbox.audit.models import Event

    events = Event.objects.order_by("chain", "seq")
    if user is not None:
        events = events.filter(target_id=str(user.pk), target_type="user")
    return list(events.values_list("action", flat=True))


@pytest.fixture
def sms_user(user, sms_outbox):
    enable_sms(user)
    return user


def logged_in(client, user, sms_outbox) -> None:
    """Log in through both steps with the SMS code."""
    response = password_step(client, user)
    assert response.status_code == 302
    assert response["Location"] == "/login/verify/"
    response = client.post("/login/verify/", {"code": sms_outbox.last_code()})
    assert response.status_code == 302, response.content
    assert services.SESSION_PENDING not in client.session
