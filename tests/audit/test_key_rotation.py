"""The organisation's sealing key survives a rotation of the secret key: it decrypts under
a fallback, is encrypted again under the new key on its next use (or by
`sealbox manage rotate_sealing_keys`), once; without the fallback, exports and
verification say what is wrong instead of failing with a server error."""

from __future__ import annotations

import base64

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from django.core.management import call_command
from django.db import connections

from sealbox.accounts import services as accounts
from sealbox.audit import retention, sealing
from sealbox.audit import services as audit
from sealbox.audit.models import Checkpoint, Event, SealingKey
from tests.audit.test_exports import append_events
from tests.audit.test_retention import organisation_created
from tests.security.in_parallel import in_parallel

pytestmark = pytest.mark.django_db

DATA = b"checkpoint payload"


def reencrypted_events(organisation) -> int:
    return Event.objects.filter(
        organisation=organisation, action="audit.sealing_key_reencrypted"
    ).count()


def test_a_signature_made_before_the_rotation_verifies_and_the_key_moves_on_use(
    organisation, secret_key
):
    signature = sealing.sign(organisation, DATA)
    before = SealingKey.objects.get(organisation=organisation).private_key_pem
    secret_key.rotate()
    assert sealing.verify(organisation.pk, DATA, signature)
    # Verifying reads only: the key is still under the former secret key.
    assert SealingKey.objects.get(organisation=organisation).private_key_pem == before
    assert reencrypted_events(organisation) == 0
    second = sealing.sign(organisation, DATA)  # a use: encrypted again, under the new key
    assert SealingKey.objects.get(organisation=organisation).private_key_pem != before
    assert reencrypted_events(organisation) == 1
    secret_key.drop_fallback()
    assert sealing.verify(organisation.pk, DATA, signature)
    assert sealing.verify(organisation.pk, DATA, second)
    sealing.sign(organisation, DATA)
    assert reencrypted_events(organisation) == 1


def test_the_command_moves_every_key_before_the_fallback_goes(
    organisation, other_organisation, secret_key, capsys
):
    for org in (organisation, other_organisation):
        sealing.certificate_pem(org)
    secret_key.rotate()
    call_command("rotate_sealing_keys")
    assert "2 encrypted under the current secret key, 0 already were" in capsys.readouterr().out
    call_command("rotate_sealing_keys")
    assert "0 encrypted under the current secret key, 2 already were" in capsys.readouterr().out
    secret_key.drop_fallback()
    for org in (organisation, other_organisation):
        assert sealing.verify(org.pk, DATA, sealing.sign(org, DATA))
        assert reencrypted_events(org) == 1


def test_the_command_names_keys_that_no_accepted_key_opens(organisation, secret_key):
    from django.core.management.base import CommandError

    sealing.certificate_pem(organisation)
    secret_key.drop_fallback()
    with pytest.raises(CommandError) as refused:
        call_command("rotate_sealing_keys")
    assert "Tremblay Avocats" in str(refused.value)
    assert "SEALBOX_SECRET_KEY_FALLBACKS" in str(refused.value)


def test_a_key_from_before_sealbox_keys_opens_and_moves(organisation):
    """Earlier releases derived the password with HKDF: such keys still open."""
    stored = sealing.sealing_key(organisation)
    key = sealing.load_private_key(stored)
    legacy = HKDF(
        algorithm=hashes.SHA256(), length=32, salt=None, info=sealing.KEY_PASSWORD_INFO
    ).derive(secret_key_value().encode())
    stored.private_key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(base64.urlsafe_b64encode(legacy)),
    ).decode()
    stored.save()
    signature = sealing.sign(organisation, DATA)
    assert sealing.verify(organisation.pk, DATA, signature)
    assert reencrypted_events(organisation) == 1
    assert sealing.reencrypt(SealingKey.objects.get(pk=stored.pk)) is False


def secret_key_value() -> str:
    from django.conf import settings

    return settings.SECRET_KEY


@pytest.mark.django_db(transaction=True)
def test_parallel_uses_move_the_key_once(plans, secret_key):
    organisation, _ = accounts.get_or_create_organisation("Tremblay Avocats")
    sealing.certificate_pem(organisation)
    secret_key.rotate()

    def use(_n: int) -> bool:
        try:
            return sealing.verify(organisation.pk, DATA, sealing.sign(organisation, DATA))
        finally:
            connections.close_all()

    assert in_parallel(4, use) == [True] * 4
    assert reencrypted_events(organisation) == 1
    assert audit.verify_chain(audit.chain_name(organisation.pk)).intact


# --- without the fallback ------------------------------------------------------------------


def test_without_the_fallback_exports_that_seal_say_what_is_wrong(
    organisation, admin_user, client, secret_key
):
    from tests.conftest import PASSWORD

    sealing.certificate_pem(organisation)
    secret_key.drop_fallback()
    assert (
        client.post("/login/", {"email": admin_user.email, "password": PASSWORD}).status_code == 302
    )
    for kind in ("pdf", "jsonl"):
        response = client.get(f"/history/export.{kind}")
        assert response.status_code == 503
        assert "SEALBOX_SECRET_KEY_FALLBACKS" in response.content.decode()
    assert client.get("/history/export.csv").status_code == 200  # no seal, no key needed


def test_without_the_fallback_verification_says_the_checkpoint_cannot_be_checked(
    clock, plans, secret_key
):
    old = organisation_created(clock, "Old Firm", 9 * 365)
    append_events(old, 5, start=clock.current - 8 * 365 * retention.timedelta(days=1))
    retention.purge_expired_events()
    assert Checkpoint.objects.filter(chain=audit.chain_name(old.pk)).exists()
    secret_key.rotate()
    assert audit.verify_chain(audit.chain_name(old.pk)).intact  # under the fallback
    secret_key.drop_fallback()
    report = audit.verify_chain(audit.chain_name(old.pk))
    assert not report.intact
    assert "cannot be checked" in report.reason and "fallbacks" in report.reason
    assert "invalid signature" not in audit.describe(report)


def test_without_the_fallback_retention_skips_that_organisation_only(
    clock, plans, secret_key, capsys, monkeypatch
):
    from sealbox import cli

    locked = organisation_created(clock, "Locked Firm", 9 * 365)
    sealing.certificate_pem(locked)
    secret_key.drop_fallback()
    fine = organisation_created(clock, "Fine Firm", 9 * 365)
    for org in (locked, fine):
        append_events(org, 3, start=clock.current - 8 * 365 * retention.timedelta(days=1))
    code = cli.main(["purge"])
    err = capsys.readouterr().err
    assert code == 1
    assert [line for line in err.splitlines() if line.startswith("sealbox:")] == [
        f"sealbox: audit retention skipped: the sealing key of organisation {locked.pk} does "
        "not decrypt: SEALBOX_SECRET_KEY is not the one it was created under, and that one is "
        "not in SEALBOX_SECRET_KEY_FALLBACKS. The purge did the rest."
    ]
    assert Checkpoint.objects.filter(chain=audit.chain_name(fine.pk)).exists()
    assert not Checkpoint.objects.filter(chain=audit.chain_name(locked.pk)).exists()
    assert Event.objects.filter(organisation=locked, action="message.opened").count() == 3
