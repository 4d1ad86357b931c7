"""Exports of the activity log: CSV, Excel, sealed PDF, and JSON Lines with chain hashes.

The tabular exporters are generic over rows (the History page passes its own), and
stream: they hold a bounded number of rows at a time, whatever the range. The JSON Lines
export carries every event's canonical fields and chain hashes, so `verify_jsonl` (and
`sealbox audit verify-export`) can check it offline, without the database.
"""

from __future__ import annotations

import csv
import io
import json
import re
import tempfile
from collections import namedtuple
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, tzinfo
from decimal import Decimal
from itertools import islice
from typing import Any, BinaryIO

from django.db.models import Max, Min
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from sealbox.audit import sealing
from sealbox.audit import services as audit
from sealbox.audit.models import GENESIS_HASH, ChainHead, Checkpoint, Event
from sealbox.lib import clock

# --- cell values --------------------------------------------------------------------

# A spreadsheet runs a cell starting with one of these as a formula (OWASP, CSV injection).
FORMULA_PREFIXES = frozenset("=+-@\t\r")


def _local(value: datetime, zone: tzinfo | None = None) -> datetime:
    """Aware datetimes in the active time zone (the viewer's), without tzinfo."""
    if value.tzinfo is not None:
        value = value.astimezone(zone or timezone.get_current_timezone())
    return value.replace(tzinfo=None)


def text_cell(value: object, zone: tzinfo | None = None) -> str:
    """How a value reads in a CSV file or a PDF table."""
    if isinstance(value, str):
        return value
    if value is None:
        return ""
    if isinstance(value, datetime):
        return _local(value, zone).isoformat(sep=" ", timespec="seconds")
    if isinstance(value, date):
        return value.isoformat()
    return str(value)


def csv_cell(value: object, zone: tzinfo | None = None) -> str:
    if isinstance(value, int | float | Decimal) and not isinstance(value, bool):
        return str(value)  # a negative number is data, not a formula
    # Anything else that reads as text (including lazy translations) is checked.
    text = text_cell(value, zone)
    if text and text[0] in FORMULA_PREFIXES:
        return "'" + text  # shown as text by spreadsheets, never evaluated
    return text


# --- CSV ------------------------------------------------------------------------------

CSV_BATCH_ROWS = 500


def stream_csv(headers: list[str], rows: Iterable[Sequence[object]]) -> Iterator[bytes]:
    """UTF-8 CSV with a byte-order mark (so Excel reads accents right), in chunks."""
    zone = timezone.get_current_timezone()  # looked up once, not per date
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    buffer.write("\ufeff")
    writer.writerow([csv_cell(header, zone) for header in headers])
    for number, row in enumerate(rows, 1):
        writer.writerow([csv_cell(value, zone) for value in row])
        if number % CSV_BATCH_ROWS == 0:
            yield buffer.getvalue().encode()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue().encode()


# --- Excel ----------------------------------------------------------------------------

XLSX_DATE_FORMAT = "yyyy-mm-dd hh:mm:ss"
XLSX_MAX_TEXT = 32767  # Excel's limit for one cell
WIDTH_SAMPLE_ROWS = 200  # write-only sheets need column widths before the first row


def _sample_widths(headers: Sequence[str], sample: list[Sequence[object]]) -> list[float]:
    widths = [len(str(header)) for header in headers]
    for row in sample:
        for index, value in enumerate(row[: len(widths)]):
            widths[index] = max(widths[index], len(text_cell(value)))
    return [min(max(width, 6), 60) + 2 for width in widths]


def write_xlsx(
    headers: list[str],
    rows: Iterable[Sequence[object]],
    file: BinaryIO,
    *,
    sheet_title: str | None = None,
) -> None:
    """An .xlsx workbook written in openpyxl's write-only mode (constant memory)."""
    from openpyxl import Workbook
    from openpyxl.cell import WriteOnlyCell
    from openpyxl.styles import Font
    from openpyxl.utils import get_column_letter

    workbook = Workbook(write_only=True)
    sheet = workbook.create_sheet(title=(sheet_title or _("Activity"))[:31])
    rows = iter(rows)
    sample = list(islice(rows, WIDTH_SAMPLE_ROWS))
    for index, width in enumerate(_sample_widths(headers, sample), 1):
        sheet.column_dimensions[get_column_letter(index)].width = width
    sheet.freeze_panes = "A2"
    bold = Font(bold=True)
    header_cells = []
    for header in headers:
        cell = WriteOnlyCell(sheet, value=_xlsx_text(str(header)))
        cell.font = bold
        header_cells.append(cell)
    sheet.append(header_cells)
    zone = timezone.get_current_timezone()
    for row in _chain(sample, rows):
        sheet.append([_xlsx_value(sheet, value, zone) for value in row])
    workbook.save(file)


_ILLEGAL_XML = re.compile(r"[\000-\010]|[\013-\014]|[\016-\037]")


def _xlsx_text(text: str) -> str:
    # Control characters are not allowed in the file format; Excel caps a cell's length.
    return _ILLEGAL_XML.sub("", text)[:XLSX_MAX_TEXT]


def _xlsx_value(sheet: Any, value: object, zone: tzinfo) -> object:
    from openpyxl.cell import WriteOnlyCell

    if isinstance(value, datetime):
        cell = WriteOnlyCell(sheet, value=_local(value, zone))  # Excel has no time zones
        cell.number_format = XLSX_DATE_FORMAT
        return cell
    if isinstance(value, str):
        text = _xlsx_text(value)
        if text.startswith("="):
            # openpyxl would store it as a formula; keep it a plain string.
            cell = WriteOnlyCell(sheet, value=text)
            cell.data_type = "s"
            return cell
        return text
    if value is None or isinstance(value, int | float | Decimal | date):
        return value
    return _xlsx_text(str(value))  # lazy translations and other objects: as text


def _chain(first: list, rest: Iterator) -> Iterator:
    yield from first
    yield from rest


# --- PDF ------------------------------------------------------------------------------

PDF_CHUNK_ROWS = 100  # rows turned into table cells at a time
PDF_MAX_CELL_CHARS = 600  # one row must always fit on a page
SPOOL_BYTES = 32 * 1024 * 1024
SHORT_CELL_CHARS = 12  # references, statuses, counts: never broken across lines
MAX_WORD_WIDTH = 80.0  # points; a longer word (an email address) breaks
MAX_NATURAL_WIDTH = 220.0  # points; longer text wraps


def write_pdf(
    title: str,
    subtitle: str,
    headers: list[str],
    rows: Iterable[Sequence[object]],
    file: BinaryIO,
    *,
    organisation: Any,
) -> None:
    """A landscape A4 report with the rows in a table, sealed with the organisation's seal."""
    with tempfile.SpooledTemporaryFile(max_size=SPOOL_BYTES) as unsealed:
        fingerprint = sealing.certificate_fingerprint(organisation)
        _render_pdf(title, subtitle, headers, rows, unsealed, organisation, fingerprint)
        unsealed.seek(0)
        sealing.seal_pdf(organisation, unsealed, file)


class _PdfLayout:
    """Fonts, styles and column widths of one report."""

    def __init__(self, headers: Sequence[str], sample: list[Sequence[object]], width: float):
        from reportlab.lib.styles import ParagraphStyle

        self.font, self.bold_font = _fonts()
        self.size = 7.5
        self.cell_style = ParagraphStyle(
            "cell", fontName=self.font, fontSize=self.size, leading=self.size * 1.2
        )
        self.header_style = ParagraphStyle("head", parent=self.cell_style, fontName=self.bold_font)
        self.title_style = ParagraphStyle(
            "title", fontName=self.bold_font, fontSize=15, leading=19, spaceAfter=4
        )
        self.text_style = ParagraphStyle(
            "text", fontName=self.font, fontSize=9, leading=12, spaceAfter=2
        )
        self.col_widths = self._widths(headers, sample, width)

    def _widths(self, headers: Sequence[str], sample: list, width: float) -> list[float]:
        """Column widths in points, from the header and a sample of rows.

        Every column gets at least its header's longest word, its short values
        (references, statuses) and the words of its longer values unbroken; the rest
        of the page goes to the columns whose typical text is long, in proportion.
        """
        from reportlab.pdfbase.pdfmetrics import stringWidth

        padding = 7

        def measure(text: str, font: str) -> float:
            return stringWidth(text, font, self.size) + padding

        minimums, naturals = [], []
        for index, header in enumerate(headers):
            words = str(header).split() or [""]
            minimum = max(measure(word, self.bold_font) for word in words)
            texts = [text_cell(row[index]) for row in sample if index < len(row)]
            for text in texts:
                if len(text) <= SHORT_CELL_CHARS:
                    minimum = max(minimum, measure(text, self.font))
                else:  # longer text wraps between words; very long words break
                    longest = max(text.split() or [""], key=len)
                    minimum = max(minimum, min(measure(longest, self.font), MAX_WORD_WIDTH))
            lengths = sorted(measure(text, self.font) for text in texts) or [minimum]
            typical = lengths[int(len(lengths) * 0.9)]
            minimums.append(minimum)
            naturals.append(min(max(typical, minimum), MAX_NATURAL_WIDTH))
        if sum(minimums) >= width:  # too many columns: everything shrinks alike
            return [width * minimum / sum(minimums) for minimum in minimums]
        if sum(naturals) <= width:  # everything fits: share the spare room alike
            return [width * natural / sum(naturals) for natural in naturals]
        spare = width - sum(minimums)
        wants = [natural - minimum for natural, minimum in zip(naturals, minimums, strict=True)]
        return [
            minimum + spare * want / sum(wants)
            for minimum, want in zip(minimums, wants, strict=True)
        ]

    def cell(self, value: object, index: int, *, header: bool = False) -> object:
        from reportlab.pdfbase.pdfmetrics import stringWidth
        from reportlab.platypus import Paragraph

        text = text_cell(value)
        if len(text) > PDF_MAX_CELL_CHARS:
            text = text[:PDF_MAX_CELL_CHARS] + "…"
        padding = 6
        font = self.bold_font if header else self.font
        if "\n" not in text and stringWidth(text, font, self.size) <= (
            self.col_widths[index] - padding
        ):
            return text  # a plain string draws far faster than a paragraph
        style = self.header_style if header else self.cell_style
        return Paragraph(_escape(text).replace("\n", "<br/>"), style)


def _escape(text: str) -> str:
    from xml.sax.saxutils import escape

    return escape(text)


def _fonts() -> tuple[str, str]:
    """DejaVu Sans when the system has it (wide Unicode coverage), Helvetica otherwise."""
    from reportlab.pdfbase import pdfmetrics
    from reportlab.pdfbase.ttfonts import TTFont

    if "SealboxSans" in pdfmetrics.getRegisteredFontNames():
        return "SealboxSans", "SealboxSans-Bold"
    try:
        pdfmetrics.registerFont(
            TTFont("SealboxSans", "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf")
        )
        pdfmetrics.registerFont(
            TTFont("SealboxSans-Bold", "/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf")
        )
    except Exception:  # reportlab raises TTFError or OSError: no such font here
        return "Helvetica", "Helvetica-Bold"
    return "SealboxSans", "SealboxSans-Bold"


def _render_pdf(
    title: str,
    subtitle: str,
    headers: Sequence[str],
    rows: Iterable[Sequence[object]],
    file: BinaryIO,
    organisation: Any,
    fingerprint: str,
) -> None:
    from reportlab.lib.pagesizes import A4, landscape
    from reportlab.lib.units import mm
    from reportlab.pdfgen.canvas import Canvas
    from reportlab.platypus import Frame, Paragraph, Spacer

    page_width, page_height = landscape(A4)
    margin = 12 * mm
    footer_height = 8 * mm
    generated = timezone.localtime(clock.now()).strftime("%Y-%m-%d %H:%M %Z")
    rows = iter(rows)
    sample = list(islice(rows, PDF_CHUNK_ROWS))
    layout = _PdfLayout(headers, sample, page_width - 2 * margin)

    canvas = Canvas(file, pagesize=(page_width, page_height), pageCompression=1)
    canvas.setTitle(title)
    canvas.setSubject(subtitle)
    canvas.setAuthor(organisation.name)
    canvas.setCreator("Sealbox")
    seal_note = _(
        "Sealed with the Sealbox seal of %(organisation)s (certificate SHA-256 %(fingerprint)s)."
    ) % {"organisation": organisation.name, "fingerprint": fingerprint}
    pending: list = [
        Paragraph(_escape(title), layout.title_style),
        Paragraph(_escape(subtitle), layout.text_style),
        Paragraph(_escape(_("Generated on %(time)s") % {"time": generated}), layout.text_style),
        Paragraph(_escape(seal_note), layout.text_style),
        Spacer(1, 3 * mm),
    ]
    footer = _("%(organisation)s — %(title)s — generated on %(time)s") % {
        "organisation": organisation.name,
        "title": title,
        "time": generated,
    }
    page = 0

    def draw_pages(final: bool) -> None:
        # Lay out only when a full page is waiting (or at the end): memory stays bounded.
        nonlocal page
        while pending and (final or _pending_rows(pending) >= PDF_CHUNK_ROWS):
            page += 1
            frame = Frame(
                margin,
                margin + footer_height,
                page_width - 2 * margin,
                page_height - 2 * margin - footer_height,
                leftPadding=0,
                rightPadding=0,
                topPadding=0,
                bottomPadding=0,
            )
            if not _fill_frame(frame, pending, canvas):
                raise ValueError("a table row does not fit on a page")
            canvas.setFont(layout.font, 7)
            canvas.drawString(margin, margin, footer)
            canvas.drawRightString(
                page_width - margin, margin, _("Page %(number)s") % {"number": page}
            )
            canvas.showPage()

    for chunk in _chunks(_chain(sample, rows), PDF_CHUNK_ROWS):
        pending.append(_table(layout, headers, chunk))
        draw_pages(final=False)
    if not sample:
        pending.append(Paragraph(_escape(_("No activity in this period.")), layout.text_style))
    draw_pages(final=True)
    canvas.save()


def _chunks(rows: Iterator, size: int) -> Iterator[list]:
    while chunk := list(islice(rows, size)):
        yield chunk


def _table(layout: _PdfLayout, headers: Sequence[str], chunk: list) -> Any:
    from reportlab.lib import colors
    from reportlab.platypus import Table, TableStyle

    data = [[layout.cell(header, i, header=True) for i, header in enumerate(headers)]]
    data.extend([layout.cell(value, i) for i, value in enumerate(row)] for row in chunk)
    table = Table(data, colWidths=layout.col_widths, repeatRows=1)
    table.setStyle(
        TableStyle(
            [
                ("FONT", (0, 0), (-1, -1), layout.font, layout.size),
                ("FONT", (0, 0), (-1, 0), layout.bold_font, layout.size),
                ("BACKGROUND", (0, 0), (-1, 0), colors.HexColor("#e8eaed")),
                ("GRID", (0, 0), (-1, -1), 0.25, colors.HexColor("#9aa0a6")),
                ("VALIGN", (0, 0), (-1, -1), "TOP"),
                ("LEFTPADDING", (0, 0), (-1, -1), 3),
                ("RIGHTPADDING", (0, 0), (-1, -1), 3),
                ("TOPPADDING", (0, 0), (-1, -1), 1.5),
                ("BOTTOMPADDING", (0, 0), (-1, -1), 1.5),
            ]
        )
    )
    return table


def _pending_rows(pending: list) -> int:
    return sum(len(getattr(flowable, "_cellvalues", ())) for flowable in pending)


def _fill_frame(frame: Any, pending: list, canvas: Any) -> bool:
    """Draw flowables into the frame, splitting the one that overflows; False if none fit."""
    drawn = False
    while pending:
        if frame.add(pending[0], canvas, trySplit=0):
            pending.pop(0)
            drawn = True
            continue
        parts = frame.split(pending[0], canvas)
        if not parts or not frame.add(parts[0], canvas, trySplit=0):
            break  # the page is full
        pending[0:1] = parts[1:]
        drawn = True
    return drawn


# --- JSON Lines with chain hashes -----------------------------------------------------

EXPORT_VERSION = 1
JSONL_CHUNK_EVENTS = 2000
JSONL_BATCH_BYTES = 64 * 1024
EVENT_FIELDS = (
    "chain",
    "seq",
    "organisation_id",
    "created_at",
    "actor_type",
    "actor_id",
    "actor_label",
    "action",
    "target_type",
    "target_id",
    "ip",
    "user_agent",
    "details",
)
LINE_FIELDS = frozenset((*EVENT_FIELDS, "prev_hash", "hash"))
# `canonical` reads attributes only: a light record of the same fields gives the same bytes
# as an Event instance, without building a model object per line (a million of them).
EventRecord = namedtuple("EventRecord", (*EVENT_FIELDS, "prev_hash", "hash"))


def _json_text(value: str) -> str:
    # Hashes are hex: quoting them is enough. Anything else (a damaged row) is escaped.
    return f'"{value}"' if value.isalnum() else json.dumps(value)


def _dumps(value: dict) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def _iso(value: datetime) -> str:
    return value.astimezone(UTC).isoformat(timespec="microseconds")


def _hash_at(chain: str, seq: int) -> str | None:
    """The hash a chain had after `seq`: genesis, a stored event, or a checkpoint."""
    if seq == 0:
        return GENESIS_HASH
    found = Event.objects.filter(chain=chain, seq=seq).values_list("hash", flat=True).first()
    if found is None:
        found = (
            Checkpoint.objects.filter(chain=chain, seq=seq).values_list("hash", flat=True).first()
        )
    return found


def _range_bounds(chain: str, organisation: Any, start: datetime, end: datetime):
    """(seq_before, first_seq, last_seq) of the run of the chain created in [start, end)."""
    in_range = Event.objects.filter(
        organisation=organisation, chain=chain, created_at__gte=start, created_at__lt=end
    ).aggregate(first=Min("seq"), last=Max("seq"))
    if in_range["first"] is not None:
        return in_range["first"] - 1, in_range["first"], in_range["last"]
    # Nothing in range: anchor on where the chain stood at `start`.
    before = (
        Event.objects.filter(chain=chain, created_at__lt=start)
        .order_by("-seq")
        .values_list("seq", flat=True)
        .first()
    )
    if before is None:
        oldest = Event.objects.filter(chain=chain).order_by("seq").values_list("seq", flat=True)
        first = oldest.first()
        if first is not None:
            before = first - 1
        else:
            head = ChainHead.objects.filter(chain=chain).values_list("seq", flat=True).first()
            before = head or 0
    return before, None, None


def end_line_payload(header: dict, count: int, last_hash: str) -> bytes:
    """The bytes the end line's signature covers: the header's claims and the result."""
    payload = {
        key: header[key]
        for key in ("chain", "organisation", "start", "end", "seq_before", "hash_before")
    }
    payload.update(count=count, last_hash=last_hash)
    return json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def stream_events_jsonl(organisation: Any, start: datetime, end: datetime) -> Iterator[bytes]:
    """The organisation's events created in [start, end), in chain order, one per line.

    The first line anchors the run on the hash before it; the last line counts the
    events, repeats the last hash and is signed with the organisation's sealing key, so
    a removed, added, edited or reordered line, or a cut file, shows in verification.
    The run is contiguous in the chain (from the first to the last event in the range).
    """
    chain = audit.chain_name(organisation.pk)
    signing_key = sealing.sealing_key(organisation)  # first use creates it, before the range
    seq_before, first_seq, last_seq = _range_bounds(chain, organisation, start, end)
    hash_before = _hash_at(chain, seq_before)
    events = Event.objects.none()
    if first_seq is not None:
        events = Event.objects.filter(chain=chain, seq__gte=first_seq, seq__lte=last_seq)
        if hash_before is None:  # the event before was removed without a checkpoint
            hash_before = events.order_by("seq").values_list("prev_hash", flat=True).first()
    records = events.order_by("seq").values_list(*EventRecord._fields)
    header = {
        "sealbox_export": EXPORT_VERSION,
        "chain": chain,
        "organisation": organisation.name,
        "start": _iso(start),
        "end": _iso(end),
        "seq_before": seq_before,
        "hash_before": hash_before or GENESIS_HASH,
        "generated_at": _iso(clock.now()),
    }
    yield (_dumps(header) + "\n").encode()

    count = 0
    last_hash = header["hash_before"]
    batch: list[str] = []
    size = 0
    for values in records.iterator(chunk_size=JSONL_CHUNK_EVENTS):
        event = EventRecord._make(values)
        # The canonical JSON is exactly what was hashed; add the two hashes to it. An event
        # of an older release may have hashed another spelling of its address: export that.
        text = audit.canonical(event)
        if audit.legacy_ip_spellings(event.ip):
            text = audit.matching_canonical(event.prev_hash, event, event.hash) or text
        hashes = f'"prev_hash":{_json_text(event.prev_hash)},"hash":{_json_text(event.hash)}'
        line = f"{text[:-1]},{hashes}}}\n"
        batch.append(line)
        size += len(line)
        count += 1
        last_hash = event.hash
        if size >= JSONL_BATCH_BYTES:
            yield "".join(batch).encode()
            batch, size = [], 0
    if batch:
        yield "".join(batch).encode()

    signature = sealing.sign(organisation, end_line_payload(header, count, last_hash))
    end_line = {
        "sealbox_export_end": True,
        "count": count,
        "last_hash": last_hash,
        "certificate_sha256": sealing.fingerprint(sealing.load_certificate(signing_key)),
        "signature": signature,
    }
    yield (_dumps(end_line) + "\n").encode()


# --- verifying a JSON Lines export ----------------------------------------------------


@dataclass(frozen=True)
class VerifyResult:
    ok: bool
    count: int  # events that verify
    message: str
    line: int | None = None  # the first bad line, when there is one
    chain: str = ""
    first_seq: int | None = None
    last_seq: int | None = None
    signature_checked: bool = False
    # Every bad line: (line number, what is wrong, events that verify after it).
    problems: tuple[tuple[int, str, int], ...] = field(default=())


class _Problem(Exception):
    def __init__(self, line: int, message: str):
        super().__init__(message)
        self.line = line
        self.message = message


def verify_jsonl(lines: Iterable[bytes | str], *, certificate: bytes | None = None) -> VerifyResult:
    """Check an export line by line: every hash, every link, the sequence and the end line.

    A bad line does not stop the check: it goes on from the next line, so one damaged or
    differently spelled line cannot hide a later one, and each problem says how many
    events after it verify. With `certificate` (the organisation's PEM), the end line's
    signature is checked too; without it, a file whose tail was cut and whose end line was
    rewritten to match cannot be told from an intact one.
    """
    checker = _ExportChecker(certificate)
    try:
        for number, raw in enumerate(lines, 1):
            checker.feed(number, raw)
        checker.finish()
    except _Problem as problem:  # nothing to check after it (no header, or no end line)
        checker._note(problem, final=True)
    if checker.problems:
        text = []
        for line, problem, after in checker.problems:
            where = _("line %(line)s: %(problem)s") % {"line": line, "problem": problem}
            if after is not None:
                verified = ngettext(
                    "%(n)s later event verifies from the next one",
                    "%(n)s later events verify from the next one",
                    after,
                ) % {"n": after}
                where += f" ({verified})"
            text.append(where)
        total = len(checker.problems) + checker.more_problems
        if checker.more_problems:
            text.append(_("and %(n)s more problems") % {"n": checker.more_problems})
        if total > 1:
            text.append(
                ngettext(
                    "%(problems)s problems; %(verified)s event verifies.",
                    "%(problems)s problems; %(verified)s events verify.",
                    checker.count,
                )
                % {"problems": total, "verified": checker.count}
            )
        return VerifyResult(
            False,
            checker.count,
            "\n".join(text),
            line=checker.problems[0][0],
            chain=checker.chain,
            problems=tuple(tuple(item) for item in checker.problems),
        )
    message = _(
        "Export intact: %(count)s events, chain %(chain)s, from seq %(first)s to %(last)s."
    ) % {
        "count": checker.count,
        "chain": checker.chain,
        "first": checker.seq_before + 1,
        "last": checker.seq_before + checker.count,
    }
    if certificate is not None:
        message += " " + _("The signature matches the certificate.")
    return VerifyResult(
        True,
        checker.count,
        message,
        chain=checker.chain,
        first_seq=checker.seq_before + 1,
        last_seq=checker.seq_before + checker.count,
        signature_checked=certificate is not None,
    )


class _ExportChecker:
    """Feeds on the lines in order and notes every one that does not fit.

    After a bad event line, the walk goes on from that line: its seq and hash become what
    the next line must follow (a line that cannot be read leaves the next one as the new
    start), so one problem is reported once, not at every line after it.
    """

    def __init__(self, certificate: bytes | None):
        self.certificate = certificate
        self.header: dict | None = None
        self.ended_at: int | None = None
        self.last_number = 0
        self.chain = ""
        self.seq_before = 0
        self.running_hash = ""
        self.next_seq = 1
        self.count = 0
        self.lost_track = False  # the line before could not be read: follow the next one
        self.noted_after_end = False
        self.more_problems = 0  # beyond MAX_REPORTED_BREAKS: counted, not named
        # [line, message, events verified after it (None: nothing is checked after it)]
        self.problems: list[list] = []

    def _note(self, problem: _Problem, *, final: bool = False) -> None:
        if final or len(self.problems) < audit.MAX_REPORTED_BREAKS:  # the end always shows
            self.problems.append([problem.line, problem.message, None if final else 0])
        else:
            self.more_problems += 1

    def feed(self, number: int, raw: bytes | str) -> None:
        self.last_number = number
        text = raw.decode("utf-8", errors="replace") if isinstance(raw, bytes) else raw
        text = text.rstrip("\r\n")
        if self.ended_at is not None:
            if text.strip() and not self.noted_after_end:
                self._note(_Problem(number, _("there are lines after the end line")), final=True)
                self.noted_after_end = True
            return
        try:
            if not text.strip():
                raise _Problem(number, _("empty line"))
            try:
                item = json.loads(text, object_pairs_hook=_no_duplicate_keys)
            except ValueError:
                raise _Problem(number, _("not valid JSON (the line is damaged or cut)")) from None
            if not isinstance(item, dict):
                raise _Problem(number, _("not a JSON object"))
        except _Problem as problem:
            if self.header is None:
                raise
            self._note(problem)
            self.lost_track = True
            return
        if self.header is None:
            self._header(number, item)
        elif "sealbox_export_end" in item:
            self._end(number, item)
        else:
            self._event(number, item)

    def finish(self) -> None:
        if self.header is None:
            raise _Problem(1, _("the file is empty"))
        if self.ended_at is None:
            raise _Problem(
                self.last_number,
                _("the file stops here without its end line: it is truncated"),
            )

    def _header(self, number: int, item: dict) -> None:
        if item.get("sealbox_export") != EXPORT_VERSION:
            raise _Problem(number, _("not a Sealbox export (no header line)"))
        chain, seq_before, hash_before = (
            item.get("chain"),
            item.get("seq_before"),
            item.get("hash_before"),
        )
        if not (
            isinstance(chain, str)
            and _is_count(seq_before)
            and isinstance(hash_before, str)
            and isinstance(item.get("organisation"), str)
            and isinstance(item.get("start"), str)
            and isinstance(item.get("end"), str)
        ):
            raise _Problem(number, _("the header line is incomplete"))
        self.header = item
        self.chain = chain
        self.seq_before = seq_before
        self.next_seq = seq_before + 1
        self.running_hash = hash_before

    def _event(self, number: int, item: dict) -> None:
        fields = set(item)
        if fields != LINE_FIELDS:
            wrong = sorted(fields ^ LINE_FIELDS)
            self._note(
                _Problem(
                    number,
                    _("unexpected or missing fields: %(fields)s") % {"fields": ", ".join(wrong)},
                )
            )
            self.lost_track = True
            return
        seq = item["seq"]
        problem = None
        if not _is_count(seq) or (seq != self.next_seq and not self.lost_track):
            problem = _(
                "expected the event with seq %(expected)s, found seq %(found)s: a line is "
                "missing, added or out of order"
            ) % {"expected": self.next_seq, "found": seq}
        elif item["chain"] != self.chain or audit.chain_name(item["organisation_id"]) != self.chain:
            problem = _("the event belongs to another chain")
        elif item["prev_hash"] != self.running_hash and not self.lost_track:
            problem = _("the event with seq %(seq)s does not link to the line before it") % {
                "seq": seq
            }
        else:
            try:
                event = _event_from_line(number, item)
            except _Problem as bad_date:
                problem = bad_date.message
            else:
                if not isinstance(item["prev_hash"], str) or not audit.hash_matches(
                    item["prev_hash"], event, item["hash"]
                ):
                    problem = _(
                        "the event with seq %(seq)s was modified: its content does not match "
                        "its hash"
                    ) % {"seq": seq}
        self.lost_track = False
        if problem:
            self._note(_Problem(number, problem))
        else:
            self.count += 1
            if self.problems and self.problems[-1][2] is not None and not self.more_problems:
                self.problems[-1][2] += 1
        # The next line follows this one, whatever was wrong with it.
        if _is_count(seq):
            self.next_seq = seq + 1
        self.running_hash = item["hash"] if isinstance(item["hash"], str) else ""

    def _end(self, number: int, item: dict) -> None:
        # Lines lost in the middle are already reported; the end line's claims are about
        # the run from the header's seq to the last event's.
        span = self.next_seq - 1 - self.seq_before
        if item.get("count") != span:
            self._note(
                _Problem(
                    number,
                    _("the end line counts %(claimed)s events but the file has %(count)s")
                    % {"claimed": item.get("count"), "count": span},
                ),
                final=True,
            )
        elif item.get("last_hash") != self.running_hash:
            self._note(
                _Problem(number, _("the end line's last hash is not the last event's hash")),
                final=True,
            )
        elif self.certificate is not None:
            try:
                self._check_signature(number, item, span)
            except _Problem as problem:
                self._note(problem, final=True)
        self.ended_at = number

    def _check_signature(self, number: int, item: dict, count: int) -> None:
        from cryptography import x509

        try:
            certificate = x509.load_pem_x509_certificate(self.certificate)
        except ValueError:
            raise _Problem(number, _("the certificate file is not a PEM certificate")) from None
        payload = end_line_payload(self.header, count, self.running_hash)
        signature = item.get("signature")
        if not isinstance(signature, str) or not sealing.verify_with_certificate(
            certificate, payload, signature
        ):
            raise _Problem(number, _("the end line's signature does not match the certificate"))


def _no_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict:
    # A repeated key would let a reader show a value other than the one that was hashed.
    item = dict(pairs)
    if len(item) != len(pairs):
        raise ValueError("duplicate key")
    return item


def _is_count(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _event_from_line(number: int, item: dict) -> EventRecord:
    """The line's fields as a record, so `canonical` rebuilds the bytes that were hashed."""
    try:
        created_at = datetime.fromisoformat(item["created_at"])
    except (TypeError, ValueError):
        raise _Problem(number, _("the event's date is not valid")) from None
    if created_at.tzinfo is None:
        raise _Problem(number, _("the event's date is not valid"))
    return EventRecord(**{**item, "created_at": created_at})
