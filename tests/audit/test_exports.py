"""Tabular exports of the activity log: CSV, Excel and PDF, generic over rows."""

from __future__ import annotations

import csv
import io
from datetime import UTC, date, datetime, timedelta

import pytest
from django.utils import timezone
from openpyxl import load_workbook

from sealbox.audit import exports, pdf
from sealbox.audit import services as audit
from sealbox.audit.models import ChainHead, Event

HEADERS = ["Reference", "Date", "Subject", "Openings"]
WHEN = datetime(2026, 11, 2, 14, 30, 5, tzinfo=UTC)


def append_events(organisation, count, *, start, step=timedelta(seconds=1), batch=2000):
    """Append `count` valid events to the organisation's chain in bulk (fast test data)."""
    chain = audit.chain_name(organisation.pk)
    head, _ = ChainHead.objects.get_or_create(chain=chain)
    seq, prev_hash = head.seq, head.last_hash
    pending = []
    for n in range(count):
        seq += 1
        event = Event(
            chain=chain,
            seq=seq,
            organisation_id=organisation.pk,
            created_at=start + n * step,
            actor_type="recipient",
            actor_id=str(n % 97),
            actor_label=f"client{n % 97}@example.com",
            action="message.opened",
            target_type="message",
            target_id=str(n),
            ip="192.0.2.10",
            user_agent="Mozilla/5.0 (X11; Linux x86_64) Firefox/130.0",
            details={"n": n, "note": "réunion"},
            prev_hash=prev_hash,
        )
        event.hash = audit.compute_hash(prev_hash, event)
        prev_hash = event.hash
        pending.append(event)
        if len(pending) >= batch:
            Event.objects.bulk_create(pending)
            pending = []
    Event.objects.bulk_create(pending)
    head.seq, head.last_hash = seq, prev_hash
    head.save(update_fields=["seq", "last_hash"])


# --- CSV ------------------------------------------------------------------------------


def read_csv(chunks) -> list[list[str]]:
    data = b"".join(chunks)
    assert data.startswith(b"\xef\xbb\xbf"), "Excel needs the byte-order mark for accents"
    return list(csv.reader(io.StringIO(data.decode("utf-8-sig"), newline="")))


def test_csv_has_a_bom_the_headers_and_the_rows():
    rows = [("M-1", "2026-11-02", "Contrat signé, « final »", 1), ("M-2", None, 'a "b"', 0)]
    assert read_csv(exports.stream_csv(HEADERS, rows)) == [
        HEADERS,
        ["M-1", "2026-11-02", "Contrat signé, « final »", "1"],
        ["M-2", "", 'a "b"', "0"],
    ]


@pytest.mark.parametrize(
    "dangerous",
    ['=HYPERLINK("http://evil")', "+1+cmd|' /C calc'!A0", "-2+3", "@SUM(A1)", "\tx", "\rx"],
)
def test_csv_cells_that_start_a_formula_are_quoted(dangerous):
    [header, row] = read_csv(exports.stream_csv([dangerous], [(dangerous, "safe")]))
    assert header == ["'" + dangerous]
    assert row == ["'" + dangerous, "safe"]


def test_csv_numbers_stay_numbers():
    # Only text is escaped: a negative count is data, not a formula.
    [_, row] = read_csv(exports.stream_csv(["n", "x"], [(-3, 1.5)]))
    assert row == ["-3", "1.5"]


def test_csv_dates_are_in_the_active_time_zone():
    with timezone.override("America/Toronto"):
        [_, row] = read_csv(exports.stream_csv(["when", "day"], [(WHEN, date(2026, 11, 2))]))
    assert row == ["2026-11-02 09:30:05", "2026-11-02"]


def test_csv_streams_without_reading_every_row_first():
    consumed = 0

    def rows():
        nonlocal consumed
        for n in range(10_000):
            consumed += 1
            yield (f"M-{n}", WHEN, "subject", n)

    stream = exports.stream_csv(HEADERS, rows())
    first = next(stream)
    assert first.startswith(b"\xef\xbb\xbf")
    assert consumed <= exports.CSV_BATCH_ROWS + 1
    assert len(read_csv([first, *stream])) == 10_001


# --- Excel ----------------------------------------------------------------------------


def xlsx_rows(headers, rows):
    buffer = io.BytesIO()
    exports.write_xlsx(headers, rows, buffer)
    buffer.seek(0)
    return load_workbook(buffer).active


def test_xlsx_opens_and_has_the_rows():
    rows = [(f"M-{n}", WHEN + timedelta(days=n), f"Sujet {n} é", n) for n in range(300)]
    sheet = xlsx_rows(HEADERS, rows)
    values = list(sheet.iter_rows(values_only=True))
    assert values[0] == tuple(HEADERS)
    assert len(values) == 301
    assert values[1] == ("M-0", datetime(2026, 11, 2, 14, 30, 5), "Sujet 0 é", 0)
    assert values[300][0] == "M-299"


def test_xlsx_header_is_bold_dates_are_dates_and_columns_have_widths():
    sheet = xlsx_rows(HEADERS, [("M-1", WHEN, "A rather long subject for a message", 2)])
    assert all(cell.font.bold for cell in sheet[1])
    assert not sheet["A2"].font.bold
    date_cell = sheet["B2"]
    assert date_cell.is_date
    assert date_cell.number_format == exports.XLSX_DATE_FORMAT
    assert sheet.column_dimensions["C"].width > sheet.column_dimensions["A"].width
    assert sheet.freeze_panes == "A2"


def test_xlsx_dates_are_in_the_active_time_zone():
    with timezone.override("Europe/Paris"):
        sheet = xlsx_rows(["when"], [(WHEN,)])
    assert sheet["A2"].value == datetime(2026, 11, 2, 15, 30, 5)


def test_xlsx_text_that_looks_like_a_formula_stays_text():
    sheet = xlsx_rows(["subject"], [('=HYPERLINK("http://evil","x")',), ("+1",)])
    assert sheet["A2"].data_type == "s"
    assert sheet["A2"].value == '=HYPERLINK("http://evil","x")'
    assert sheet["A3"].data_type == "s"


def test_xlsx_drops_characters_the_format_cannot_hold():
    sheet = xlsx_rows(["subject"], [("bell\x07 and null\x00", None)])
    assert sheet["A2"].value == "bell and null"


# --- PDF (sealing itself is tested in test_sealing.py) -----------------------------------


def pdf_pages(data: bytes) -> list[str]:
    """Each page's drawing commands as text (Helvetica strings stay readable)."""
    from pyhanko.pdf_utils.reader import PdfFileReader

    reader = PdfFileReader(io.BytesIO(data))
    pages = []
    for number in range(int(reader.root["/Pages"]["/Count"])):
        page = reader.find_page_for_modification(number)[0].get_object()
        contents = page["/Contents"]
        streams = contents if isinstance(contents, list) else [contents]
        pages.append("".join(s.get_object().data.decode("latin-1") for s in streams))
    return pages


@pytest.fixture
def helvetica(monkeypatch):
    monkeypatch.setattr(pdf, "_fonts", lambda: ("Helvetica", "Helvetica-Bold"))


@pytest.mark.django_db
def test_pdf_table_splits_across_pages_with_the_header_repeated(helvetica, organisation, clock):
    rows = [(f"M-{n:04d}", WHEN, f"Subject {n}", n) for n in range(250)]
    buffer = io.BytesIO()
    exports.write_pdf(
        "Activity log", "1 to 30 November", HEADERS, iter(rows), buffer, organisation=organisation
    )
    pages = pdf_pages(buffer.getvalue())
    assert len(pages) >= 3
    for number, page in enumerate(pages, 1):
        assert "(Reference)" in page, f"no header row on page {number}"
        assert f"(Page {number})" in page
        assert "generated on 2026-11-02" in page
    text = "".join(pages)
    assert all(f"(M-{n:04d})" in text for n in range(250))
    assert "(Activity log)" in pages[0]
    assert "Sealed with the Sealbox seal of Tremblay Avocats" in pages[0]


@pytest.mark.django_db
def test_pdf_wraps_long_cells_and_handles_no_rows(helvetica, organisation):
    long_subject = "word " * 300
    buffer = io.BytesIO()
    exports.write_pdf(
        "Activity log",
        "",
        HEADERS,
        [("M-1", WHEN, long_subject, 1)],
        buffer,
        organisation=organisation,
    )
    assert len(pdf_pages(buffer.getvalue())) >= 1
    empty = io.BytesIO()
    exports.write_pdf("Activity log", "", HEADERS, [], empty, organisation=organisation)
    assert "No activity in this period." in pdf_pages(empty.getvalue())[0]


@pytest.mark.django_db
def test_pdf_lays_out_a_page_at_a_time(helvetica, organisation, monkeypatch):
    """Rows are read as pages are drawn, not all at once (bounded memory)."""
    from reportlab.pdfgen.canvas import Canvas

    consumed = 0
    consumed_at_page = []
    show_page = Canvas.showPage

    def counting_show_page(self):
        consumed_at_page.append(consumed)
        show_page(self)

    monkeypatch.setattr(Canvas, "showPage", counting_show_page)

    def rows():
        nonlocal consumed
        for n in range(1000):
            consumed += 1
            yield (f"M-{n}", WHEN, "subject", n)

    exports.write_pdf("Log", "", HEADERS, rows(), io.BytesIO(), organisation=organisation)
    assert len(consumed_at_page) > 10
    assert consumed_at_page[0] <= 3 * exports.PDF_CHUNK_ROWS
    assert consumed_at_page[-1] == 1000
