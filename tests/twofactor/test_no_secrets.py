"""Codes never appear in logs, audit events, emails or queued task rows: only the SMS body
(here, the file:// gateway's output, which is the SMS itself) carries them."""

import json
import logging

import pytest
from django.core import serializers
from django.test import Client, override_settings

from sealbox.audit.models import Event
from sealbox.twofactor import services
from sealbox.twofactor.models import PendingLogin, SMSCode
from tests.twofactor.conftest import password_step

pytestmark = pytest.mark.django_db

CODE = 482913


@pytest.fixture
def fixed_code(monkeypatch):
    monkeypatch.setattr(services.secrets, "randbelow", lambda n: CODE)
    return f"{CODE}"


def everything_stored() -> str:
    from django.apps import apps

    rows = []
    for model in apps.get_models():
        rows.extend(model.objects.all())
    return serializers.serialize("json", rows)


def test_a_login_code_only_exists_in_the_sms(
    sms_user, sms_outbox, fixed_code, clock, caplog, capsys, mailoutbox
):
    caplog.set_level(logging.DEBUG)
    client = Client()
    password_step(client, sms_user)
    wrong = client.post("/login/verify/", {"code": "000000"})
    assert wrong.status_code == 200
    client.post("/login/verify/", {"code": fixed_code})
    assert client.session["_auth_user_id"] == str(sms_user.pk)

    assert fixed_code in sms_outbox.last()["body"]
    assert fixed_code not in caplog.text
    captured = capsys.readouterr()
    assert fixed_code not in captured.out + captured.err
    for event in Event.objects.all():
        assert fixed_code not in json.dumps(event.details)
    assert all(fixed_code not in mail.body + mail.subject for mail in mailoutbox)
    assert fixed_code not in everything_stored()


def test_queued_sms_tasks_hold_the_code_sealed(sms_user, sms_outbox, fixed_code, clock):
    from django_tasks_db.models import DBTaskResult

    from sealbox.notify.sms_tasks import deliver_sms

    with override_settings(TASKS={"default": {"BACKEND": "django_tasks_db.DatabaseBackend"}}):
        client = Client()
        password_step(client, sms_user)
        rows = list(DBTaskResult.objects.all())
        assert [row.task_path for row in rows] == ["sealbox.notify.sms_tasks.deliver_sms"]
        assert len(sms_outbox) == 0  # not sent until a worker runs it
        assert fixed_code not in json.dumps(rows[0].args_kwargs)
        assert fixed_code not in everything_stored()
        # The worker's run delivers it, and only the SMS carries the code.
        deliver_sms.call(*rows[0].args_kwargs["args"], **rows[0].args_kwargs["kwargs"])
    assert fixed_code in sms_outbox.last()["body"]
    assert SMSCode.objects.get().delivery == "sent"
    assert client.post("/login/verify/", {"code": fixed_code}).status_code == 302


def test_phone_confirmation_codes_stay_out_of_logs_and_audit(
    clock, logged_in_client, sms_outbox, fixed_code, caplog
):
    caplog.set_level(logging.DEBUG)
    logged_in_client.post(
        "/account/",
        {
            "twofactor-enabled": "on",
            "twofactor-mobile_phone": "514 555 0100",
            "twofactor_action": "save",
        },
    )
    logged_in_client.post("/account/", {"twofactor-code": "000000", "twofactor_action": "verify"})
    logged_in_client.post("/account/", {"twofactor-code": fixed_code, "twofactor_action": "verify"})
    assert fixed_code in sms_outbox.last()["body"]
    assert fixed_code not in caplog.text
    assert fixed_code not in everything_stored()


def test_the_gateway_error_never_quotes_the_sms(
    sms_user, fixed_code, clock, settings, monkeypatch, caplog
):
    from sealbox.notify import sms_tasks

    caplog.set_level(logging.DEBUG)
    monkeypatch.setattr(sms_tasks, "RETRY_DELAYS_SECONDS", (0.0, 0.0))
    settings.SEALBOX_SMS_URL = "http://127.0.0.1:9/send"
    client = Client()
    password_step(client, sms_user)
    assert (
        "We could not send the SMS. Please try again."
        in client.get("/login/verify/").content.decode()
    )
    assert "SMS delivery attempt 3 of 3 failed" in caplog.text
    assert fixed_code not in caplog.text
    assert fixed_code not in everything_stored()
    assert PendingLogin.objects.count() == 1
