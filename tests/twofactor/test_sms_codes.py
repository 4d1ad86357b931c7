"""The SMS code rules, at the service level (the login and phone pages use these)."""

import re

import pytest

from sealbox.audit.models import Event
from sealbox.twofactor import services
from sealbox.twofactor.models import CodeDelivery, SMSCode
from sealbox.twofactor.services import CodeResult, TwoFactorError

PHONE = "+15145550100"


def send(binding="login:a", *, account="user:1", ip="198.51.100.7", language="en"):
    return services.send_code(
        binding=binding,
        phone=PHONE,
        language=language,
        account_key=account,
        ip=ip,
        purpose="login",
    )


@pytest.fixture
def outbox(sms_outbox, clock, db):
    return sms_outbox


def test_codes_have_six_digits_drawn_from_secrets(outbox, monkeypatch):
    calls = []

    def randbelow(n):
        calls.append(n)
        return 42

    monkeypatch.setattr(services.secrets, "randbelow", randbelow)
    send()
    assert calls == [1_000_000]
    assert outbox.last_code() == "000042"
    assert outbox.last()["to"] == PHONE
    monkeypatch.undo()
    assert all(re.fullmatch(r"\d{6}", services.new_code()) for _ in range(200))


def test_the_sms_says_the_code_and_its_lifetime_in_english(outbox, monkeypatch):
    monkeypatch.setattr(services.secrets, "randbelow", lambda n: 123456)
    send()
    assert outbox.last()["body"] == "Your Sealbox code is 123456. It expires in 10 minutes."


def test_the_sms_is_in_the_users_language(outbox, monkeypatch):
    monkeypatch.setattr(services.secrets, "randbelow", lambda n: 123456)
    send(language="fr")
    assert outbox.last()["body"] == "Votre code Sealbox est 123456. Il expire dans 10 minutes."


def test_codes_are_stored_as_keyed_hashes_only(outbox):
    row = send()
    code = outbox.last_code()
    row.refresh_from_db()
    values = [str(getattr(row, field.attname)) for field in SMSCode._meta.fields]
    assert not any(code in value for value in values if value != row.binding)
    assert row.code_hash == services.hash_code("login:a", code)
    assert len(row.code_hash) == 64


def test_a_code_is_valid_for_ten_minutes(outbox, clock):
    send("login:a")
    code = outbox.last_code()
    clock.advance(minutes=9, seconds=59)
    assert services.check_code("login:a", code) is CodeResult.OK

    clock.advance(minutes=1)  # an hour-long cooldown is not in the way: new binding
    send("login:b")
    code = outbox.last_code()
    clock.advance(minutes=10)
    assert services.check_code("login:b", code) is CodeResult.EXPIRED


def test_a_code_works_once(outbox):
    send()
    code = outbox.last_code()
    assert services.check_code("login:a", code) is CodeResult.OK
    assert services.check_code("login:a", code) is CodeResult.USED


def test_a_code_only_works_for_what_it_was_sent_for(outbox, monkeypatch):
    codes = iter([111111, 222222])
    monkeypatch.setattr(services.secrets, "randbelow", lambda n: next(codes))
    send("login:a")
    send("login:b")
    assert services.check_code("login:b", "111111") is CodeResult.WRONG
    assert services.check_code("phone:1", "111111") is CodeResult.NO_CODE
    assert services.check_code("login:a", "111111") is CodeResult.OK


def test_a_code_dies_after_five_wrong_tries(outbox):
    send()
    code = outbox.last_code()
    wrong = "000000" if code != "000000" else "111111"
    for _ in range(4):
        assert services.check_code("login:a", wrong) is CodeResult.WRONG
    assert services.check_code("login:a", wrong) is CodeResult.WRONG_LAST_TRY
    assert services.check_code("login:a", code) is CodeResult.EXHAUSTED


def test_a_new_code_does_not_reset_the_failure_count(outbox, clock, monkeypatch):
    codes = iter([111111, 222222])
    monkeypatch.setattr(services.secrets, "randbelow", lambda n: next(codes))
    send()
    for _ in range(4):
        assert services.check_code("login:a", "999999") is CodeResult.WRONG
    clock.advance(seconds=60)
    send()  # the second code, still allowed: four wrong tries so far
    assert SMSCode.objects.filter(binding="login:a").first().failures == 4
    assert services.check_code("login:a", "999999") is CodeResult.WRONG_LAST_TRY
    assert services.check_code("login:a", "222222") is CodeResult.EXHAUSTED
    clock.advance(seconds=60)
    with pytest.raises(TwoFactorError) as error:
        send()
    assert error.value.code == "exhausted"


def test_a_new_code_replaces_the_previous_one(outbox, clock, monkeypatch):
    codes = iter([111111, 222222])
    monkeypatch.setattr(services.secrets, "randbelow", lambda n: next(codes))
    send()
    clock.advance(seconds=60)
    send()
    assert services.check_code("login:a", "111111") is CodeResult.WRONG
    assert services.check_code("login:a", "222222") is CodeResult.OK


def test_a_new_code_waits_sixty_seconds(outbox, clock):
    send()
    with pytest.raises(TwoFactorError) as error:
        send()
    assert error.value.code == "cooldown"
    assert error.value.retry_after == 60
    assert "60 seconds" in error.value.message
    clock.advance(seconds=59)
    with pytest.raises(TwoFactorError) as error:
        send()
    assert error.value.retry_after == 1
    clock.advance(seconds=1)
    send()
    assert len(outbox) == 2


def test_at_most_five_sms_per_account_per_hour(outbox, clock):
    for index in range(5):
        send(f"login:{index}", ip=f"198.51.100.{index}")
        clock.advance(minutes=1)
    with pytest.raises(TwoFactorError) as error:
        send("login:other", ip="203.0.113.9")
    assert error.value.code == "sms_limit"
    assert len(outbox) == 5
    send("login:other", account="user:2", ip="203.0.113.9")  # another account is not held
    clock.advance(minutes=56)  # the first SMS leaves the one-hour window
    send("login:later", ip="203.0.113.9")
    assert len(outbox) == 7


def test_at_most_twenty_sms_per_ip_address_per_hour(outbox, clock):
    for index in range(20):
        send(f"login:{index}", account=f"user:{index}")
    with pytest.raises(TwoFactorError) as error:
        send("login:x", account="user:99")
    assert error.value.code == "sms_limit"
    send("login:x", account="user:99", ip="203.0.113.1")
    assert len(outbox) == 21
    clock.advance(hours=1)
    send("login:y", account="user:98")
    assert len(outbox) == 22


def test_each_code_sent_is_audited_without_the_code(outbox, user):
    services.send_code(
        binding="login:a",
        phone=PHONE,
        language="en",
        account_key="user:1",
        ip="198.51.100.7",
        purpose="login",
        user=user,
    )
    event = Event.objects.get(action="twofactor.code_queued")
    assert event.details == {"purpose": "login", "to": "•••• 0100", "channel": "sms"}
    assert outbox.last_code() not in str(event.details)


def test_a_gateway_failure_is_recorded_and_does_not_start_the_cooldown(
    db, clock, settings, monkeypatch
):
    from sealbox.notify import sms_tasks

    monkeypatch.setattr(sms_tasks, "RETRY_DELAYS_SECONDS", (0.0, 0.0))
    settings.SEALBOX_SMS_URL = "http://127.0.0.1:9/unreachable"
    row = send()
    assert row.delivery == CodeDelivery.FAILED
    assert Event.objects.filter(action="twofactor.sms_failed").count() == 1
    assert services.resend_wait("login:a") == 0
    # A code that was never delivered cannot be used.
    assert services.check_code("login:a", "123456") is CodeResult.NO_CODE
