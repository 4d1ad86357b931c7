"""Seal a digest: the CMS (PAdES, CAdES detached) that goes into a PDF's /Contents.

The signer's browser builds the PDF revision, computes SHA-256 over its /ByteRange and
sends only those 32 bytes; this module signs them with the organisation's sealing key
(the audit app's certificate, or any pyHanko signer) and returns the DER to embed. It
never sees the PDF: pyHanko's "interrupted signing" API would need it, so this uses the
digest-only `SimpleSigner.async_sign` path.

With a timestamp authority (RFC 3161) the CMS carries a signature timestamp: PAdES B-T,
else B-B. If no authority answers the seal fails (`TimestampUnavailable`): a made-up time
is never embedded.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

from asn1crypto import cms
from pyhanko.sign import signers
from pyhanko.sign.ades.api import CAdESSignedAttrSpec
from pyhanko.sign.ades.cades_asn1 import CommitmentTypeIdentifier, CommitmentTypeIndication
from pyhanko.sign.signers.pdf_cms import PdfCMSSignedAttributes
from pyhanko.sign.timestamps import HTTPTimeStamper
from pyhanko.sign.timestamps.api import TimeStamper
from pyhanko.sign.timestamps.common_utils import TimestampRequestError

from sealbox.audit import sealing as audit_sealing

DIGEST_ALGORITHM = "sha256"
DIGEST_LENGTH = 32
TIMESTAMP_TIMEOUT = 10  # seconds per authority

# CAdES commitment types (ETSI TS 119 122): the organisation certifies the prepared
# document as its origin; each signer's seal records that signer's approval.
CERTIFICATION_COMMITMENT = "proof_of_origin"
SIGNATURE_COMMITMENT = "proof_of_approval"


class TimestampUnavailable(RuntimeError):
    """No configured timestamp authority answered: the signer should retry later."""


def organisation_signer(organisation: Any) -> signers.SimpleSigner:
    """A pyHanko signer with the organisation's sealing key and certificate (created on
    first use, as for sealed exports)."""
    return audit_sealing._signer(audit_sealing.sealing_key(organisation))


class _FirstAnswering(TimeStamper):
    """Ask each authority in turn (a configured one, then its fallback)."""

    def __init__(self, urls: Sequence[str], timeout: float):
        super().__init__()
        self.stampers = [HTTPTimeStamper(url, timeout=timeout) for url in urls]

    async def async_request_tsa_response(self, req):
        errors = []
        for stamper in self.stampers:
            try:
                return await stamper.async_request_tsa_response(req)
            except (TimestampRequestError, OSError) as error:
                errors.append(f"{stamper.url}: {error}")
        raise TimestampUnavailable("no timestamp authority answered: " + "; ".join(errors))


def timestamper(urls: str | Sequence[str] | None, timeout: float = TIMESTAMP_TIMEOUT):
    """An RFC 3161 client over HTTP for the given URL(s), tried in order; None for none."""
    if not urls:
        return None
    if isinstance(urls, str):
        urls = [urls]
    return _FirstAnswering(list(urls), timeout)


def _check_digest(digest: bytes) -> bytes:
    if not isinstance(digest, bytes | bytearray) or len(digest) != DIGEST_LENGTH:
        raise ValueError(f"a SHA-256 digest is {DIGEST_LENGTH} bytes")
    return bytes(digest)


async def async_seal_digest(
    digest: bytes,
    signer: signers.Signer,
    *,
    timestamp_urls: str | Sequence[str] | None = None,
    certification: bool = False,
) -> bytes:
    """The CMS (DER) over a 32-byte SHA-256 of a PDF's byte ranges.

    `certification` marks the organisation's certification of revision 0 (commitment
    type proof of origin); the DocMDP permission itself is in the PDF's signature
    dictionary, written by the browser. Raises TimestampUnavailable when timestamp URLs
    are given and none answers.
    """
    digest = _check_digest(digest)
    commitment = CERTIFICATION_COMMITMENT if certification else SIGNATURE_COMMITMENT
    attributes = PdfCMSSignedAttributes(
        cades_signed_attrs=CAdESSignedAttrSpec(
            commitment_type=CommitmentTypeIndication(
                {"commitment_type_id": CommitmentTypeIdentifier(commitment)}
            )
        )
    )
    try:
        content: cms.ContentInfo = await signer.async_sign(
            digest,
            DIGEST_ALGORITHM,
            use_pades=True,
            timestamper=timestamper(timestamp_urls),
            signed_attr_settings=attributes,
        )
    except TimestampRequestError as error:  # raised by pyHanko's own checks on the reply
        raise TimestampUnavailable(str(error)) from error
    return content.dump()


def seal_digest(
    digest: bytes,
    signer: signers.Signer,
    *,
    timestamp_urls: str | Sequence[str] | None = None,
    certification: bool = False,
) -> bytes:
    """`async_seal_digest` for synchronous callers (a thread of its own if this one
    already runs an event loop: asyncio.run is refused there)."""
    return audit_sealing.outside_event_loop(
        asyncio.run,
        async_seal_digest(
            digest, signer, timestamp_urls=timestamp_urls, certification=certification
        ),
    )


def certify_digest(
    digest: bytes, signer: signers.Signer, *, timestamp_urls: str | Sequence[str] | None = None
) -> bytes:
    """The organisation's certification of a prepared document (revision 0)."""
    return seal_digest(digest, signer, timestamp_urls=timestamp_urls, certification=True)
