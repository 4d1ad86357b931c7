"""Check every signature of a signed PDF (`sealbox signing verify`, and the tests).

pyHanko validates each signature against the given trust roots (the organisation's
sealing certificate; a timestamp authority's root for the timestamps) and runs its
difference analysis on what every later revision changed. A document holds when it has
signatures and every one is intact, valid, trusted, and what changed after it is within
what its DocMDP/FieldMDP allow.
"""

from __future__ import annotations

import io
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import BinaryIO

from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from sealbox.audit.sealing import outside_event_loop


@dataclass(frozen=True)
class SignatureCheck:
    field: str
    signer: str | None
    time: datetime | None  # the timestamp authority's if timestamped, else the claimed /M
    timestamped: bool
    intact: bool
    valid: bool
    trusted: bool
    # What the revisions after this signature changed (pyHanko's ModificationLevel name:
    # NONE, LTA_UPDATES, FORM_FILLING, ANNOTATIONS, OTHER), and whether that is allowed.
    modification_level: str | None
    docmdp_ok: bool
    certification: bool
    holds: bool  # pyHanko's bottom line
    error: str | None = None


@dataclass(frozen=True)
class Verification:
    signatures: list[SignatureCheck]

    @property
    def holds(self) -> bool:
        return bool(self.signatures) and all(check.holds for check in self.signatures)


def _asn1(certificate: x509.Certificate | bytes) -> asn1_x509.Certificate:
    if isinstance(certificate, x509.Certificate):
        certificate = certificate.public_bytes(serialization.Encoding.DER)
    elif certificate.lstrip().startswith(b"-----BEGIN"):
        certificate = x509.load_pem_x509_certificate(certificate).public_bytes(
            serialization.Encoding.DER
        )
    return asn1_x509.Certificate.load(certificate)


def _common_name(certificate: asn1_x509.Certificate) -> str:
    subject = certificate.subject
    return subject.native.get("common_name") or subject.human_friendly


def _failed(field: str, error: Exception) -> SignatureCheck:
    return SignatureCheck(
        field=field,
        signer=None,
        time=None,
        timestamped=False,
        intact=False,
        valid=False,
        trusted=False,
        modification_level=None,
        docmdp_ok=False,
        certification=False,
        holds=False,
        error=f"{type(error).__name__}: {error}",
    )


def _verify(stream: BinaryIO, roots: list[asn1_x509.Certificate]) -> Verification:
    from pyhanko.pdf_utils.reader import PdfFileReader
    from pyhanko.sign.fields import enumerate_sig_fields
    from pyhanko.sign.validation import validate_pdf_signature
    from pyhanko.sign.validation.pdf_embedded import EmbeddedPdfSignature
    from pyhanko_certvalidator import ValidationContext

    reader = PdfFileReader(stream, strict=False)
    checks = []  # unreadable ones first (no revision to sort by), then in signing order
    embedded_signatures = []
    # pyHanko's reader.embedded_signatures gives up on the whole file when one CMS does
    # not parse: read each field on its own, so that one is reported as failed.
    for name, _value, field_ref in enumerate_sig_fields(reader, filled_status=True):
        try:
            embedded_signatures.append(EmbeddedPdfSignature(reader, field_ref, name))
        except Exception as error:
            checks.append(_failed(name, error))
    embedded_signatures.sort(key=lambda embedded: embedded.signed_revision)
    for embedded in embedded_signatures:
        field = embedded.field_name
        # A fresh context per signature: certvalidator caches paths it has built.
        context = ValidationContext(trust_roots=roots, allow_fetching=False)
        try:
            status = validate_pdf_signature(embedded, context, ts_validation_context=context)
        except Exception as error:  # a CMS that does not parse, a broken byte range...
            checks.append(_failed(field, error))
            continue
        stamp = status.timestamp_validity
        level = status.modification_level
        checks.append(
            SignatureCheck(
                field=field,
                signer=_common_name(status.signing_cert),
                time=stamp.timestamp if stamp is not None else status.signer_reported_dt,
                timestamped=stamp is not None,
                intact=status.intact,
                valid=status.valid,
                trusted=status.trusted,
                modification_level=level.name if level is not None else None,
                docmdp_ok=bool(status.docmdp_ok),
                certification=embedded.docmdp_level is not None,
                holds=status.bottom_line,
            )
        )
    return Verification(checks)


def verify_pdf(
    pdf: bytes | BinaryIO, trust_roots: Iterable[x509.Certificate | bytes]
) -> Verification:
    """Every signature of `pdf` checked against `trust_roots` (cryptography certificates,
    or DER/PEM bytes: the organisation's sealing certificate, a TSA's root)."""
    stream = io.BytesIO(pdf) if isinstance(pdf, bytes | bytearray) else pdf
    roots = [_asn1(root) for root in trust_roots]
    # pyHanko's validation runs its own event loop (asyncio.run).
    return outside_event_loop(_verify, stream, roots)
