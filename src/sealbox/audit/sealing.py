"""The organisation's sealing certificate: seals PDF exports and signs chain checkpoints.

Each organisation gets one self-signed certificate ("Sealbox seal — <name>", EC P-256,
10 years) the first time something is sealed. Auditors download the certificate and use
it as the trust root to check a sealed PDF. The private key is stored encrypted with a
password derived from the server's secret key: a copy of the database alone can neither
seal a document nor forge a checkpoint.
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any, BinaryIO, TypeVar

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.x509.oid import NameOID
from django.db import IntegrityError, transaction

from sealbox import keys
from sealbox.audit import services as audit
from sealbox.audit.actions import Action
from sealbox.audit.models import SealingKey
from sealbox.lib import clock

T = TypeVar("T")

KEY_PASSWORD_INFO = b"sealbox sealing key v1"
VALIDITY = timedelta(days=3652)  # 10 years
SEAL_FIELD_NAME = "Sealbox seal"
SEAL_REASON = "Sealbox activity log export"


# --- the key and its certificate ------------------------------------------------------


def _key_password(key: bytes | None = None) -> bytes:
    """The password that encrypts stored private keys (from the current secret key
    unless `key` is given); never stored, never logged."""
    return base64.urlsafe_b64encode(key or keys.derive(KEY_PASSWORD_INFO))


def _former_key_passwords() -> list[bytes]:
    """Passwords a stored key may still be encrypted under: the fallbacks' (a rotation
    under way), and each accepted key's through HKDF (how releases before
    sealbox.keys derived it). A key opened with one is encrypted again under the current
    password on its next use (`_key_for_signing`) or by `sealbox manage rotate_sealing_keys`.
    """
    _current, *fallbacks = keys.derive_all(KEY_PASSWORD_INFO)
    hkdf = [
        HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=KEY_PASSWORD_INFO).derive(
            secret.encode()
        )
        for secret in keys.secret_keys()
    ]
    return [_key_password(key) for key in [*fallbacks, *hkdf]]


def _new_certificate(organisation: Any) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    # EC P-256: as strong as RSA 3072 for a seal, and generated in a millisecond.
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.COMMON_NAME, f"Sealbox seal — {organisation.name}"[:64]),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, organisation.name[:64]),
        ]
    )
    # PDF readers check the seal against the real clock, not the application's clock;
    # starting a day early tolerates a validating machine whose clock is a little behind.
    not_before = datetime.now(UTC) - timedelta(days=1)
    public_key = key.public_key()
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_before + VALIDITY)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=True,  # nonRepudiation
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
        .sign(key, hashes.SHA256())
    )
    return key, certificate


def fingerprint(certificate: x509.Certificate) -> str:
    return certificate.fingerprint(hashes.SHA256()).hex()


def sealing_key(organisation: Any) -> SealingKey:
    """The organisation's sealing key, created (and its creation audited) on first use."""
    existing = SealingKey.objects.filter(organisation=organisation).first()
    if existing is not None:
        return existing
    key, certificate = _new_certificate(organisation)
    try:
        with transaction.atomic():
            stored = SealingKey.objects.create(
                organisation=organisation,
                certificate_pem=certificate.public_bytes(serialization.Encoding.PEM).decode(),
                private_key_pem=key.private_bytes(
                    serialization.Encoding.PEM,
                    serialization.PrivateFormat.PKCS8,
                    serialization.BestAvailableEncryption(_key_password()),
                ).decode(),
                created_at=clock.now(),
            )
            audit.record(
                Action.AUDIT_SEALING_KEY_CREATED,
                organisation=organisation,
                target=stored,
                details={
                    "subject": certificate.subject.rfc4514_string(),
                    "sha256_fingerprint": fingerprint(certificate),
                    "not_after": certificate.not_valid_after_utc.isoformat(),
                },
            )
    except IntegrityError:
        # Two first uses at once: the other one won; use its key.
        return SealingKey.objects.get(organisation=organisation)
    return stored


def load_certificate(stored: SealingKey) -> x509.Certificate:
    return x509.load_pem_x509_certificate(stored.certificate_pem.encode())


class SealingKeyUnavailable(ValueError):
    """The stored key decrypts under no accepted secret key: SEALBOX_SECRET_KEY changed
    since it was made, and the key it was made under is not in the fallbacks."""


def _decrypt(stored: SealingKey) -> tuple[ec.EllipticCurvePrivateKey, bool]:
    """The private key, and whether it is encrypted under the current secret key."""
    pem = stored.private_key_pem.encode()
    for password in [_key_password(), *_former_key_passwords()]:
        try:
            key = serialization.load_pem_private_key(pem, password=password)
        except ValueError:
            continue
        if not isinstance(key, ec.EllipticCurvePrivateKey):
            raise ValueError("unexpected sealing key type")
        return key, password == _key_password()
    raise SealingKeyUnavailable(
        f"the sealing key of organisation {stored.organisation_id} does not decrypt: "
        "SEALBOX_SECRET_KEY is not the one it was created under, and that one is not in "
        "SEALBOX_SECRET_KEY_FALLBACKS"
    )


def load_private_key(stored: SealingKey) -> ec.EllipticCurvePrivateKey:
    """The private key, under whichever accepted secret key it is encrypted (no write:
    verification reads it, and must not change what it checks)."""
    return _decrypt(stored)[0]


def reencrypt(stored: SealingKey) -> bool:
    """Encrypt the stored key under the current secret key if it is not already; True if
    this call did it (a conditional update: of parallel calls one does, and records)."""
    key, current = _decrypt(stored)
    if current:
        return False
    old_pem = stored.private_key_pem
    new_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(_key_password()),
    ).decode()
    with transaction.atomic():
        changed = SealingKey.objects.filter(pk=stored.pk, private_key_pem=old_pem).update(
            private_key_pem=new_pem
        )
        if changed:
            audit.record(
                Action.AUDIT_SEALING_KEY_REENCRYPTED,
                organisation=stored.organisation,
                target=stored,
                details={"sha256_fingerprint": fingerprint(load_certificate(stored))},
            )
    stored.refresh_from_db(fields=["private_key_pem"])
    return bool(changed)


def check_usable(organisation: Any) -> None:
    """Raise SealingKeyUnavailable now, before work that ends in a seal or a signature
    (an export) is started: its key decrypts under no accepted secret key."""
    reencrypt(sealing_key(organisation))


def is_readable(organisation_id: int) -> bool:
    """Whether the organisation's stored key (if any) decrypts under an accepted key."""
    stored = SealingKey.objects.filter(organisation_id=organisation_id).first()
    if stored is None:
        return True
    try:
        _decrypt(stored)
    except SealingKeyUnavailable:
        return False
    return True


def _key_for_signing(stored: SealingKey) -> ec.EllipticCurvePrivateKey:
    """The private key, first moved under the current secret key if a rotation left it
    under a former one: signing is a write already, and this way the fallback can go."""
    reencrypt(stored)
    return load_private_key(stored)


def certificate_pem(organisation: Any) -> bytes:
    """The certificate an auditor downloads to check seals (created on first use)."""
    return sealing_key(organisation).certificate_pem.encode()


# --- detached signatures (checkpoints, export end lines) ------------------------------


def sign(organisation: Any, data: bytes) -> str:
    """An ECDSA-SHA256 signature of `data` with the organisation's key, base64."""
    key = _key_for_signing(sealing_key(organisation))
    return base64.b64encode(key.sign(data, ec.ECDSA(hashes.SHA256()))).decode()


def verify_with_certificate(certificate: x509.Certificate, data: bytes, signature: str) -> bool:
    public_key = certificate.public_key()
    if not isinstance(public_key, ec.EllipticCurvePublicKey):
        return False
    try:
        public_key.verify(base64.b64decode(signature), data, ec.ECDSA(hashes.SHA256()))
    except (InvalidSignature, ValueError):
        return False
    return True


def verify(organisation_id: int, data: bytes, signature: str) -> bool:
    """Check a signature made by `sign` for this organisation.

    Someone who can write to the database could swap the stored certificate for one of
    their own; the private key, however, only decrypts with this server's secret key. So
    the stored key must decrypt and match the certificate before the certificate counts.
    """
    stored = SealingKey.objects.filter(organisation_id=organisation_id).first()
    if stored is None:
        return False
    certificate = load_certificate(stored)
    try:
        private_key = load_private_key(stored)
    except (ValueError, TypeError):
        return False
    own = private_key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    claimed = certificate.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    if own != claimed:
        return False
    return verify_with_certificate(certificate, data, signature)


# --- PDF seal -----------------------------------------------------------------------


def _signer(stored: SealingKey):
    from asn1crypto import keys as asn1_keys
    from asn1crypto import x509 as asn1_x509
    from pyhanko.sign import signers
    from pyhanko_certvalidator.registry import SimpleCertificateStore

    certificate = asn1_x509.Certificate.load(
        load_certificate(stored).public_bytes(serialization.Encoding.DER)
    )
    key = asn1_keys.PrivateKeyInfo.load(
        _key_for_signing(stored).private_bytes(
            serialization.Encoding.DER,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return signers.SimpleSigner(
        signing_cert=certificate,
        signing_key=key,
        cert_registry=SimpleCertificateStore.from_certs([certificate]),
    )


def seal_pdf(organisation: Any, pdf_in: BinaryIO, pdf_out: BinaryIO) -> None:
    """Add a PAdES baseline B-B seal with the organisation's certificate (incremental update)."""
    from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
    from pyhanko.sign import fields, signers

    metadata = signers.PdfSignatureMetadata(
        field_name=SEAL_FIELD_NAME,
        reason=SEAL_REASON,
        md_algorithm="sha256",
        subfilter=fields.SigSeedSubFilter.PADES,
    )
    writer = IncrementalPdfFileWriter(pdf_in, strict=False)
    signer = signers.PdfSigner(metadata, signer=_signer(sealing_key(organisation)))
    outside_event_loop(signer.sign_pdf, writer, output=pdf_out)


def outside_event_loop(function: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Call one of pyHanko's synchronous functions, which start their own event loop
    (asyncio.run): in a thread that already runs a loop (an ASGI server's, a test
    browser's) that is refused, so the call then runs in a thread of its own."""
    import asyncio
    from concurrent.futures import ThreadPoolExecutor

    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return function(*args, **kwargs)
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="sealbox-seal") as pool:
        return pool.submit(function, *args, **kwargs).result()


def certificate_fingerprint(organisation: Any) -> str:
    """SHA-256 of the DER certificate, hex: what an auditor compares after downloading it."""
    return fingerprint(load_certificate(sealing_key(organisation)))
