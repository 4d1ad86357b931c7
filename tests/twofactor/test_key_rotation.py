"""SMS codes survive a rotation of the secret key: a code sent under the former key works
for its ten minutes while that key is a fallback; new codes use the new key."""

import pytest

from sealbox import keys
from sealbox.twofactor import services
from sealbox.twofactor.models import SMSCode
from tests.twofactor.conftest import password_step

pytestmark = pytest.mark.django_db


def test_a_code_sent_before_the_rotation_logs_in_while_the_old_key_is_a_fallback(
    client, sms_user, sms_outbox, clock, secret_key
):
    password_step(client, sms_user)
    code = sms_outbox.last_code()
    secret_key.rotate()
    response = client.post("/login/verify/", {"code": code})
    assert response.status_code == 302 and response["Location"] == "/account/"
    assert client.session["_auth_user_id"] == str(sms_user.pk)


def test_new_codes_are_hashed_under_the_new_key(client, sms_user, sms_outbox, clock, secret_key):
    secret_key.rotate()
    password_step(client, sms_user)
    code = sms_outbox.last_code()
    row = SMSCode.objects.order_by("-pk").first()
    index = keys.matching(
        row.code_hash, lambda key: services.hash_code(row.binding, code, key), services.CODE_INFO
    )
    assert index == keys.CURRENT
    old_key = keys.derive(services.CODE_INFO, secret_key.old)
    assert row.code_hash != services.hash_code(row.binding, code, old_key)


def test_without_the_fallback_the_login_starts_again_and_old_codes_are_wrong(
    client, sms_user, sms_outbox, clock, secret_key
):
    password_step(client, sms_user)
    code = sms_outbox.last_code()
    binding = SMSCode.objects.order_by("-pk").first().binding
    secret_key.drop_fallback()
    # The session (signed with the old key) is gone: back to the login page, no error.
    response = client.post("/login/verify/", {"code": code})
    assert response.status_code == 302 and response["Location"] == "/login/"
    assert "_auth_user_id" not in client.session
    # And the code itself no longer matches (a code bound to a grant has no session).
    assert services.check_code(binding, code) == services.CodeResult.WRONG
