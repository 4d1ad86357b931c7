"""Exports of the History: CSV, Excel, sealed PDF for everyone; JSON Lines for admins."""

import csv
import io

import pytest
from django.test import Client
from openpyxl import load_workbook

from sealbox.accounts.models import Role
from sealbox.audit import exports, sealing
from sealbox.audit.models import Event
from sealbox.client import messages as client
from tests.audit.test_sealing import validate
from tests.conftest import PASSWORD

pytestmark = pytest.mark.django_db


def browser_for(user) -> Client:
    c = Client()
    assert c.post("/login/", {"email": user.email, "password": PASSWORD}).status_code == 302
    return c


def body(response) -> bytes:
    if response.streaming:
        return b"".join(response.streaming_content)
    return response.content


@pytest.fixture
def history(send, recipient_transport):
    opened = send(subject="=HYPERLINK(evil)", recipients=[client.Recipient("a@example.org")])
    client.open_message(
        recipient_transport,
        opened.links["a@example.org"],
        code=opened.opening_codes["a@example.org"],
    )
    send(subject="Lease renewal", recipients=[client.Recipient("b@example.org")])


def test_csv_export(history, sender):
    response = browser_for(sender).get("/history/export.csv")
    assert response["Content-Type"].startswith("text/csv")
    assert "attachment" in response["Content-Disposition"]
    text = body(response).decode("utf-8-sig")
    rows = list(csv.reader(io.StringIO(text)))
    assert rows[0][:5] == ["Reference", "Date", "Latest activity", "Expires", "Status"]
    by_recipient = {row[7]: row for row in rows[1:]}
    assert by_recipient["a@example.org"][4] == "Opened"
    assert by_recipient["a@example.org"][10] == "1"
    assert by_recipient["a@example.org"][5] == "'=HYPERLINK(evil)"  # never a formula
    assert by_recipient["b@example.org"][4] == "Not opened"
    event = Event.objects.get(action="history.exported")
    assert event.details["format"] == "csv"


def test_csv_export_follows_the_filters(history, sender):
    text = body(browser_for(sender).get("/history/export.csv?q=Lease")).decode("utf-8-sig")
    assert "b@example.org" in text and "a@example.org" not in text


def test_excel_export(history, sender):
    response = browser_for(sender).get("/history/export.xlsx")
    book = load_workbook(io.BytesIO(body(response)), read_only=True)
    sheet = book.active
    rows = list(sheet.iter_rows(values_only=True))
    assert rows[0][0] == "Reference"
    assert {row[7] for row in rows[1:]} == {"a@example.org", "b@example.org"}


def test_pdf_export_is_sealed_with_the_organisations_certificate(history, sender):
    browser = browser_for(sender)
    pdf = body(browser.get("/history/export.pdf"))
    assert pdf.startswith(b"%PDF")
    certificate = body(browser.get("/history/seal-certificate.pem"))
    assert certificate == sealing.certificate_pem(sender.organisation)
    _, status = validate(pdf, certificate)
    assert status.intact and status.valid and status.trusted
    tampered = bytearray(pdf)
    position = pdf.index(b"Lease") if b"Lease" in pdf else len(pdf) // 3
    tampered[position] ^= 0x01
    _, broken = validate(bytes(tampered), certificate)
    assert not (broken.intact and broken.valid)


def test_jsonl_export_for_administrators_verifies(history, sender, make_user):
    admin = make_user("boss@example.com", role=Role.ADMIN)
    assert browser_for(sender).get("/history/export.jsonl").status_code == 403
    lines = body(browser_for(admin).get("/history/export.jsonl")).splitlines()
    result = exports.verify_jsonl(lines)
    assert result.ok, result.message
    assert result.count >= 8
    # One changed byte in an event line is caught.
    index = next(i for i, line in enumerate(lines) if b"a@example.org" in line)
    lines[index] = lines[index].replace(b"a@example.org", b"x@example.org")
    broken = exports.verify_jsonl(lines)
    assert not broken.ok and broken.line == index + 1


def test_exports_from_another_organisation_contain_nothing_of_ours(
    history, make_user, other_organisation
):
    outsider = make_user("admin@other.example", org=other_organisation, role=Role.ADMIN)
    browser = browser_for(outsider)
    text = body(browser.get("/history/export.csv")).decode("utf-8-sig")
    assert "a@example.org" not in text and "Lease" not in text
    lines = body(browser.get("/history/export.jsonl"))
    assert b"a@example.org" not in lines and b"Lease" not in lines


def test_unknown_format_and_bad_filters(sender):
    browser = browser_for(sender)
    assert browser.get("/history/export.doc").status_code == 404
    response = browser.get("/history/export.csv?start=2026-12-10&end=2026-12-01")
    assert response.status_code == 400
    assert "end date" in response.content.decode()
