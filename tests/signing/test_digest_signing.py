"""The signing pipeline end to end with real tools (SIGNING.md §1–2, §8).

The browser's part runs in Node (pdf_driver.mjs over sealbox/js/pdf-revision.js): it
prepares revision 0 with fields for two signers, builds each revision and its digest, and
embeds the CMS. The server's part is sealbox.signing.sealing over the 32-byte digest
only. pyHanko (sealbox.signing.verify), poppler's pdfsig and qpdf then check the file.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import subprocess
import threading
import time
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from io import BytesIO
from pathlib import Path

import pytest
from asn1crypto import keys as asn1_keys
from asn1crypto import tsp
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from reportlab.lib.pagesizes import A4
from reportlab.pdfgen import canvas

from sealbox.audit import sealing as audit_sealing
from sealbox.signing import sealing
from sealbox.signing.verify import verify_pdf

DRIVER = Path(__file__).with_name("pdf_driver.mjs")
MARKER = "SEALBOX-CONTRACT-MARKER-7f3a"


def zone(name: str, kind: str, signer: str, page: int, rect: list[int]) -> dict:
    return {"name": name, "type": kind, "signer": signer, "page": page, "rect": rect}


ZONES = [
    zone("s1_name", "text", "s1", 0, [72, 600, 272, 620]),
    zone("s1_date", "date", "s1", 0, [300, 600, 400, 620]),
    zone("s1_agree", "checkbox", "s1", 0, [72, 570, 84, 582]),
    zone("s1_signature", "signature", "s1", 0, [72, 480, 272, 540]),
    zone("s2_name", "text", "s2", 1, [72, 600, 272, 620]),
    zone("s2_initials", "initials", "s2", 0, [500, 40, 560, 70]),
    zone("s2_signature", "signature", "s2", 1, [72, 480, 272, 540]),
]
S1_VALUES = {"s1_name": "Alice Martin", "s1_date": "2026-11-02", "s1_agree": True}
S2_VALUES = {"s2_name": "Bérénice Dupont", "s2_initials": "BD"}

pytestmark = pytest.mark.skipif(shutil.which("node") is None, reason="needs Node")


def node(op: str, **request) -> dict:
    result = subprocess.run(
        ["node", str(DRIVER), json.dumps({"op": op, **request})],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    answer = json.loads(result.stdout)
    if not answer.pop("ok"):
        raise RuntimeError(f"{answer['error']}: {answer['message']}")
    return answer


def source_pdf(path: Path) -> Path:
    pdf = canvas.Canvas(str(path), pagesize=A4)
    for page in range(2):
        pdf.drawString(72, 750, f"{MARKER} page {page + 1}")
        pdf.drawString(72, 730, "The parties agree to the terms below.")
        pdf.showPage()
    pdf.save()
    return path


class Pipeline:
    """The browser (Node) and the server (sealing) taking turns, with files between."""

    def __init__(self, directory: Path, signer, timestamp_urls=None):
        self.directory = directory
        self.signer = signer
        self.timestamp_urls = timestamp_urls
        self.step = 0
        self.seal_seconds: list[float] = []

    def path(self, name: str) -> Path:
        self.step += 1
        return self.directory / f"{self.step:02d}-{name}"

    def seal(self, digest: bytes, *, certification: bool = False) -> bytes:
        started = time.perf_counter()
        cms = sealing.seal_digest(
            digest,
            self.signer,
            timestamp_urls=self.timestamp_urls,
            certification=certification,
        )
        self.seal_seconds.append(time.perf_counter() - started)
        return cms

    def embed(self, partial: Path, answer: dict, cms: bytes) -> Path:
        cms_path = self.path("cms.der")
        cms_path.write_bytes(cms)
        output = self.path("signed.pdf")
        node(
            "embed",
            input=str(partial),
            output=str(output),
            byteRange=answer["byteRange"],
            cms=str(cms_path),
        )
        return output

    def prepare(self, source: Path) -> Path:
        output = self.path("prepared.pdf")
        node("prepare", input=str(source), output=str(output), zones=ZONES)
        return output

    def certify(self, prepared: Path) -> Path:
        partial = self.path("certify.partial.pdf")
        answer = node("certify", input=str(prepared), output=str(partial))
        digest = bytes.fromhex(answer["digest"])
        assert digest == byte_range_digest(partial.read_bytes(), answer["byteRange"])
        return self.embed(partial, answer, self.seal(digest, certification=True))

    def sign(self, base: Path, field: str, values: dict, *, cms_for=None, **extra) -> Path:
        partial = self.path(f"{field}.partial.pdf")
        answer = node(
            "sign", input=str(base), output=str(partial), field=field, values=values, **extra
        )
        digest = bytes.fromhex(answer["digest"])
        assert digest == byte_range_digest(partial.read_bytes(), answer["byteRange"])
        cms = self.seal(cms_for(digest) if cms_for else digest)
        return self.embed(partial, answer, cms)

    def run(self, source: Path, **s1_extra) -> list[Path]:
        prepared = self.prepare(source)
        certified = self.certify(prepared)
        first = self.sign(
            certified, "s1_signature", S1_VALUES, appearance={"text": "Alice Martin"}, **s1_extra
        )
        second = self.sign(first, "s2_signature", S2_VALUES, appearance={"text": "B. Dupont"})
        return [prepared, certified, first, second]


def byte_range_digest(data: bytes, byte_range: list[int]) -> bytes:
    start1, length1, start2, length2 = byte_range
    return hashlib.sha256(
        data[start1 : start1 + length1] + data[start2 : start2 + length2]
    ).digest()


@pytest.fixture
def org_signer(organisation):
    return sealing.organisation_signer(organisation)


@pytest.fixture
def org_root(organisation):
    return audit_sealing.certificate_pem(organisation)


@pytest.fixture
def source(tmp_path) -> Path:
    return source_pdf(tmp_path / "contract.pdf")


@pytest.fixture
def signed(tmp_path, source, org_signer) -> tuple[list[Path], Pipeline]:
    pipeline = Pipeline(tmp_path, org_signer)
    return pipeline.run(source), pipeline


def pdfsig(path: Path) -> list[dict]:
    result = subprocess.run(
        ["pdfsig", "-nocert", str(path)], capture_output=True, text=True, timeout=60
    )
    blocks = re.split(r"^Signature #\d+:$", result.stdout, flags=re.M)[1:]
    return [
        {
            "field": re.search(r"Signature Field Name: (.*)", block).group(1).strip(),
            "validation": re.search(r"Signature Validation: (.*)", block).group(1).strip(),
            "whole": "Total document signed" in block,
        }
        for block in blocks
    ]


def checks_by_field(verification) -> dict:
    return {check.field: check for check in verification.signatures}


# --- the pipeline holds -----------------------------------------------------------------


def test_two_signers_and_a_certification_all_hold(signed, org_root, source):
    (prepared, certified, first, second), pipeline = signed
    final = second.read_bytes()

    # Each revision appends to the previous bytes, never rewriting them.
    assert certified.read_bytes().startswith(prepared.read_bytes())
    assert first.read_bytes().startswith(certified.read_bytes())
    assert final.startswith(first.read_bytes())
    delta = len(final) - len(first.read_bytes())
    assert delta < 24_000, delta  # 8 KiB placeholder as hex, appearances, xref

    verification = verify_pdf(final, [org_root])
    checks = checks_by_field(verification)
    assert list(checks) == ["sealbox_certification", "s1_signature", "s2_signature"]
    for check in checks.values():
        assert (check.intact, check.valid, check.trusted, check.docmdp_ok, check.holds) == (
            True,
            True,
            True,
            True,
            True,
        ), check
        assert check.signer == "Sealbox seal — Tremblay Avocats"
        assert not check.timestamped
    assert checks["sealbox_certification"].certification
    assert not checks["s1_signature"].certification
    assert checks["sealbox_certification"].modification_level == "FORM_FILLING"
    assert checks["s1_signature"].modification_level == "FORM_FILLING"
    assert checks["s2_signature"].modification_level == "NONE"
    assert verification.holds

    # The values are in the file, the server-side seal only ever saw 32-byte digests.
    fields = {field["name"]: field for field in node("fields", input=str(second))["fields"]}
    assert fields["s1_name"]["value"] == "Alice Martin"
    assert fields["s2_name"]["value"] == "Bérénice Dupont"
    assert fields["s1_agree"]["value"] == "/Yes"
    assert fields["s1_signature"]["lock"] == ["s1_name", "s1_date", "s1_agree"]
    assert fields["s2_signature"]["lock"] == ["s2_name", "s2_initials"]

    # A second opinion: poppler and qpdf.
    # (pdfsig lists them in the form's field order; -nocert: it knows no trust roots)
    assert sorted(pdfsig(second), key=lambda sig: sig["field"]) == [
        {"field": "s1_signature", "validation": "Signature is Valid.", "whole": False},
        {"field": "s2_signature", "validation": "Signature is Valid.", "whole": True},
        {"field": "sealbox_certification", "validation": "Signature is Valid.", "whole": False},
    ]
    qpdf = subprocess.run(["qpdf", "--check", str(second)], capture_output=True, text=True)
    assert qpdf.returncode == 0, qpdf.stdout + qpdf.stderr
    assert "No syntax or stream encoding errors" in qpdf.stdout

    # Without the organisation's root nothing is trusted.
    other = x509.load_pem_x509_certificate(other_root_pem())
    assert not verify_pdf(final, [other]).holds
    assert len(pipeline.seal_seconds) == 3


def other_root_pem() -> bytes:
    key, certificate = audit_sealing._new_certificate(type("Org", (), {"name": "Someone else"}))
    return certificate.public_bytes(serialization.Encoding.PEM)


def test_a_signer_cannot_fill_another_signers_fields_or_sign_twice(signed, tmp_path):
    (prepared, certified, first, second), _pipeline = signed
    with pytest.raises(RuntimeError, match="s1_name is not a field of this signer"):
        node(
            "sign",
            input=str(first),
            output=str(tmp_path / "x.pdf"),
            field="s2_signature",
            values={"s1_name": "Mallory"},
        )
    with pytest.raises(RuntimeError, match="s1_signature is signed already"):
        node("sign", input=str(second), output=str(tmp_path / "x.pdf"), field="s1_signature")
    with pytest.raises(RuntimeError, match="not certified"):
        node("sign", input=str(prepared), output=str(tmp_path / "x.pdf"), field="s1_signature")
    with pytest.raises(RuntimeError, match="first signature"):
        node("certify", input=str(first), output=str(tmp_path / "x.pdf"))


def test_prepare_refuses_signed_and_encrypted_pdfs(signed, tmp_path, source):
    (_prepared, certified, _first, _second), _pipeline = signed
    with pytest.raises(RuntimeError, match="already carries signatures"):
        node("prepare", input=str(certified), output=str(tmp_path / "x.pdf"), zones=ZONES)
    encrypted = tmp_path / "encrypted.pdf"
    subprocess.run(
        ["qpdf", "--encrypt", "user", "owner", "256", "--", str(source), str(encrypted)], check=True
    )
    with pytest.raises(RuntimeError, match="encrypted"):
        node("prepare", input=str(encrypted), output=str(tmp_path / "x.pdf"), zones=ZONES)


# --- tampering ------------------------------------------------------------------------------


def flip(data: bytes, index: int) -> bytes:
    out = bytearray(data)
    out[index] ^= 0x01
    return bytes(out)


def test_a_flipped_byte_in_revision_zero_breaks_every_signature(signed, org_root):
    (prepared, _certified, _first, second), _pipeline = signed
    final = second.read_bytes()
    # The page's drawn text sits in a compressed content stream: flip a byte inside it.
    stream_at = final.index(b"stream", final.index(b"/FlateDecode")) + 10
    assert stream_at < len(prepared.read_bytes())
    verification = verify_pdf(flip(final, stream_at), [org_root])
    assert [check.intact for check in verification.signatures] == [False, False, False]
    assert not any(check.holds for check in verification.signatures)
    assert not verification.holds
    assert all(
        sig["validation"] != "Signature is Valid." for sig in pdfsig_bytes(flip(final, stream_at))
    )


def pdfsig_bytes(data: bytes) -> list[dict]:
    import tempfile

    with tempfile.NamedTemporaryFile(suffix=".pdf") as handle:
        handle.write(data)
        handle.flush()
        return pdfsig(Path(handle.name))


def test_a_flipped_byte_in_signer_ones_revision_breaks_that_signature_and_later_ones(
    signed, org_root
):
    (_prepared, certified, first, second), _pipeline = signed
    final = second.read_bytes()
    # Signer 1's typed name in their signature appearance, inside their revision.
    at = final.index(b"Tj ET Q", len(certified.read_bytes())) - 3
    assert len(certified.read_bytes()) < at < len(first.read_bytes())
    checks = checks_by_field(verify_pdf(flip(final, at), [org_root]))
    assert checks["sealbox_certification"].intact
    assert not checks["s1_signature"].intact and not checks["s1_signature"].holds
    assert not checks["s2_signature"].intact and not checks["s2_signature"].holds


def change_field_value(data: bytes, name: str, value: str) -> bytes:
    """An incremental update by another tool (pyHanko's writer) that sets a field's /V."""
    from pyhanko.pdf_utils import generic
    from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter

    writer = IncrementalPdfFileWriter(BytesIO(data), strict=False)
    for field_ref in writer.root["/AcroForm"]["/Fields"]:
        if field_ref.get_object()["/T"] == name:
            field_ref.get_object()["/V"] = generic.pdf_string(value)
            writer.mark_update(field_ref)
    out = BytesIO()
    writer.write(out)
    return out.getvalue()


@pytest.mark.parametrize(
    ("field", "broken", "unaffected"),
    [("s1_name", "s1_signature", "s2_signature"), ("s2_name", "s2_signature", "s1_signature")],
)
def test_a_locked_field_changed_later_fails_the_signature_that_locked_it(
    signed, org_root, field, broken, unaffected
):
    (_prepared, _certified, _first, second), _pipeline = signed
    changed = change_field_value(second.read_bytes(), field, "Mallory")
    verification = verify_pdf(changed, [org_root])
    checks = checks_by_field(verification)
    assert checks[broken].intact and checks[broken].valid
    assert not checks[broken].docmdp_ok
    assert not checks[broken].holds
    # Form filling as such is what the certification (DocMDP P=2) allows, and the other
    # signer did not lock this field: the lock is what catches the change.
    assert checks["sealbox_certification"].holds
    assert checks[unaffected].holds
    assert not verification.holds


def test_a_cms_over_another_digest_fails_that_signature(tmp_path, source, org_signer, org_root):
    pipeline = Pipeline(tmp_path, org_signer)
    other = hashlib.sha256(b"some other revision").digest()
    *_, second = pipeline.run(source, cms_for=lambda digest: other)
    checks = checks_by_field(verify_pdf(second.read_bytes(), [org_root]))
    assert checks["sealbox_certification"].holds
    assert not checks["s1_signature"].intact
    assert not checks["s1_signature"].holds
    assert checks["s2_signature"].holds  # its own digest is right; the verdict is not
    assert not verify_pdf(second.read_bytes(), [org_root]).holds


# --- sealing ---------------------------------------------------------------------------------


def test_seal_digest_takes_32_bytes_only(org_signer):
    for wrong in (b"", b"x" * 31, b"x" * 33, "x" * 32):
        with pytest.raises(ValueError):
            sealing.seal_digest(wrong, org_signer)


def test_no_answering_timestamp_authority_fails_the_seal(org_signer, unused_port):
    with pytest.raises(sealing.TimestampUnavailable):
        sealing.seal_digest(
            b"\x00" * 32,
            org_signer,
            timestamp_urls=[
                f"http://127.0.0.1:{unused_port}/tsa",
                f"http://127.0.0.1:{unused_port}/fallback",
            ],
        )


@pytest.fixture
def unused_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


# --- a loopback RFC 3161 timestamp authority -----------------------------------------------


def _rsa_certificate(subject: str, key, issuer_key=None, issuer_name=None, *, tsa: bool):
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)])
    now = datetime.now(UTC) - timedelta(days=1)
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(issuer_name or name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=not tsa, path_length=None), critical=True)
    )
    if tsa:
        builder = builder.add_extension(
            x509.ExtendedKeyUsage([ExtendedKeyUsageOID.TIME_STAMPING]), critical=True
        )
    return builder.sign(issuer_key or key, hashes.SHA256())


@pytest.fixture(scope="module")
def tsa():
    """pyHanko's DummyTimeStamper (RSA) answering TimeStampReq bodies over HTTP."""
    from pyhanko.sign.timestamps.dummy_client import DummyTimeStamper

    root_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    root = _rsa_certificate("Sealbox test TSA root", root_key, tsa=False)
    tsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    tsa_cert = _rsa_certificate("Sealbox test TSA", tsa_key, root_key, root.subject, tsa=True)
    stamper = DummyTimeStamper(
        tsa_cert=asn1_x509.Certificate.load(tsa_cert.public_bytes(serialization.Encoding.DER)),
        tsa_key=asn1_keys.PrivateKeyInfo.load(
            tsa_key.private_bytes(
                serialization.Encoding.DER,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        ),
    )
    requests = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            body = self.rfile.read(int(self.headers["Content-Length"]))
            requests.append(self.headers["Content-Type"])
            answer = stamper.request_tsa_response(tsp.TimeStampReq.load(body)).dump()
            self.send_response(200)
            self.send_header("Content-Type", "application/timestamp-reply")
            self.send_header("Content-Length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield {"url": f"http://127.0.0.1:{server.server_port}/tsa", "root": root, "requests": requests}
    server.shutdown()
    server.server_close()


def test_with_a_timestamp_authority_every_signature_is_timestamped(
    tmp_path, source, org_signer, org_root, tsa, unused_port
):
    # The first URL does not answer: the fallback does.
    urls = [f"http://127.0.0.1:{unused_port}/down", tsa["url"]]
    pipeline = Pipeline(tmp_path, org_signer, timestamp_urls=urls)
    *_, second = pipeline.run(source)
    verification = verify_pdf(second.read_bytes(), [org_root, tsa["root"]])
    assert [check.timestamped for check in verification.signatures] == [True, True, True]
    assert verification.holds, verification
    now = datetime.now(UTC)
    for check in verification.signatures:
        assert abs(check.time - now) < timedelta(minutes=5)
    assert tsa["requests"] and set(tsa["requests"]) == {"application/timestamp-query"}
    # Without the TSA's root the timestamps, and so the signatures, are not trusted.
    assert not verify_pdf(second.read_bytes(), [org_root]).holds


def test_an_unreadable_cms_is_reported_as_a_failed_signature(signed, org_root):
    (_prepared, _certified, first, second), _pipeline = signed
    final = bytearray(second.read_bytes())
    contents = final.index(b"/Contents <", len(first.read_bytes())) + len(b"/Contents <")
    final[contents : contents + 8] = b"30ffffff"  # a DER sequence that cannot be
    checks = checks_by_field(verify_pdf(bytes(final), [org_root]))
    assert checks["s2_signature"].error
    assert not checks["s2_signature"].holds
    assert checks["s1_signature"].holds
