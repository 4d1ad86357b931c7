"""The organisation's sealing certificate and the PAdES seal of PDF exports."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta

import pytest
from asn1crypto import pem
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from django.test import override_settings
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign.validation import validate_pdf_signature
from pyhanko_certvalidator import ValidationContext

from sealbox.audit import exports, sealing
from sealbox.audit.models import Event, SealingKey

pytestmark = pytest.mark.django_db

HEADERS = ["Reference", "Date", "Subject"]
ROWS = [(f"M-{n}", datetime(2026, 11, 2, 9, n, tzinfo=UTC), f"Dossier {n}") for n in range(30)]


def sealed_pdf(organisation) -> bytes:
    buffer = io.BytesIO()
    exports.write_pdf(
        "Activity log", "November 2026", HEADERS, ROWS, buffer, organisation=organisation
    )
    return buffer.getvalue()


def validate(data: bytes, trusted_pem: bytes):
    _, _, der = pem.unarmor(trusted_pem)
    context = ValidationContext(trust_roots=[asn1_x509.Certificate.load(der)])
    reader = PdfFileReader(io.BytesIO(data))
    [signature] = reader.embedded_signatures
    # pyHanko starts its own event loop: the browser tests' one may be running here.
    return signature, sealing.outside_event_loop(validate_pdf_signature, signature, context)


# --- the certificate --------------------------------------------------------------------


def test_the_certificate_is_made_on_first_use_and_then_kept(organisation):
    assert not SealingKey.objects.filter(organisation=organisation).exists()
    first = sealing.certificate_pem(organisation)
    assert first.startswith(b"-----BEGIN CERTIFICATE-----")
    assert sealing.certificate_pem(organisation) == first
    assert SealingKey.objects.filter(organisation=organisation).count() == 1


def test_the_certificate_names_the_organisation_and_is_for_seals(organisation):
    certificate = x509.load_pem_x509_certificate(sealing.certificate_pem(organisation))
    [common_name] = certificate.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    assert common_name.value == "Sealbox seal — Tremblay Avocats"
    assert certificate.issuer == certificate.subject  # self-signed
    certificate.verify_directly_issued_by(certificate)
    key = certificate.public_key()
    assert isinstance(key, ec.EllipticCurvePublicKey) and key.curve.name == "secp256r1"
    lifetime = certificate.not_valid_after_utc - certificate.not_valid_before_utc
    assert lifetime >= timedelta(days=3650)
    usage = certificate.extensions.get_extension_for_class(x509.KeyUsage).value
    assert usage.digital_signature and usage.content_commitment
    assert not usage.key_cert_sign and not usage.key_encipherment


def test_creating_the_key_is_audited_without_the_key(organisation):
    pem_bytes = sealing.certificate_pem(organisation)
    event = Event.objects.get(action="audit.sealing_key_created")
    assert event.organisation_id == organisation.pk
    assert event.details["sha256_fingerprint"] == sealing.certificate_fingerprint(organisation)
    stored = SealingKey.objects.get(organisation=organisation)
    assert stored.private_key_pem not in str(event.details)
    assert pem_bytes.decode() not in str(event.details)


def test_the_private_key_is_stored_encrypted_under_the_secret_key(organisation):
    sealing.certificate_pem(organisation)
    stored = SealingKey.objects.get(organisation=organisation)
    assert stored.private_key_pem.startswith("-----BEGIN ENCRYPTED PRIVATE KEY-----")
    with pytest.raises(TypeError):  # a password is needed
        serialization.load_pem_private_key(stored.private_key_pem.encode(), password=None)
    assert sealing.load_private_key(stored) is not None
    with (
        override_settings(SECRET_KEY="another-server-secret-key-0123456789-abcdefghij"),
        pytest.raises(sealing.SealingKeyUnavailable),
    ):
        sealing.load_private_key(stored)


def test_each_organisation_has_its_own_certificate(organisation, other_organisation):
    assert sealing.certificate_pem(organisation) != sealing.certificate_pem(other_organisation)


# --- the PDF seal -------------------------------------------------------------------------


def test_a_sealed_pdf_validates_against_the_organisations_certificate(organisation):
    data = sealed_pdf(organisation)
    signature, status = validate(data, sealing.certificate_pem(organisation))
    assert signature.field_name == "Sealbox seal"
    assert signature.sig_object["/Reason"] == "Sealbox activity log export"
    assert signature.sig_object["/SubFilter"] == "/ETSI.CAdES.detached"  # PAdES
    assert status.intact and status.valid and status.trusted
    assert status.bottom_line
    assert status.coverage.name == "ENTIRE_FILE"


def test_changing_one_byte_breaks_the_seal(organisation):
    data = sealed_pdf(organisation)
    assert data.count(b"(Activity log)") >= 1  # the document's title, inside the sealed range
    tampered = data.replace(b"(Activity log)", b"(Activity lag)", 1)
    _, status = validate(tampered, sealing.certificate_pem(organisation))
    assert not status.intact
    assert not status.bottom_line


def test_another_organisations_certificate_does_not_vouch_for_the_seal(
    organisation, other_organisation
):
    data = sealed_pdf(organisation)
    _, status = validate(data, sealing.certificate_pem(other_organisation))
    assert status.intact  # the bytes are untouched…
    assert not status.trusted  # …but the seal is not this organisation's
    assert not status.bottom_line


def test_seal_pdf_seals_any_pdf(organisation):
    from reportlab.pdfgen.canvas import Canvas

    plain = io.BytesIO()
    canvas = Canvas(plain)
    canvas.drawString(72, 720, "Completion certificate")
    canvas.showPage()
    canvas.save()
    plain.seek(0)
    out = io.BytesIO()
    sealing.seal_pdf(organisation, plain, out)
    _, status = validate(out.getvalue(), sealing.certificate_pem(organisation))
    assert status.bottom_line


# --- detached signatures (checkpoints, export end lines) ------------------------------


def test_signatures_verify_only_for_the_same_data_and_organisation(
    organisation, other_organisation
):
    signature = sealing.sign(organisation, b"chain org:1 seq 10")
    assert sealing.verify(organisation.pk, b"chain org:1 seq 10", signature)
    assert not sealing.verify(organisation.pk, b"chain org:1 seq 11", signature)
    sealing.certificate_pem(other_organisation)
    assert not sealing.verify(other_organisation.pk, b"chain org:1 seq 10", signature)
    assert not sealing.verify(organisation.pk, b"chain org:1 seq 10", "bm90IGEgc2lnbmF0dXJl")


def test_a_certificate_swapped_in_the_database_is_not_trusted(organisation):
    """Someone with write access to the database signs with a key of their own."""
    sealing.certificate_pem(organisation)
    forger_key, forger_certificate = sealing._new_certificate(organisation)
    SealingKey.objects.filter(organisation=organisation).update(
        certificate_pem=forger_certificate.public_bytes(serialization.Encoding.PEM).decode()
    )
    import base64

    from cryptography.hazmat.primitives import hashes

    data = b"forged checkpoint"
    forged = base64.b64encode(forger_key.sign(data, ec.ECDSA(hashes.SHA256()))).decode()
    assert sealing.verify_with_certificate(forger_certificate, data, forged)
    assert not sealing.verify(organisation.pk, data, forged)
