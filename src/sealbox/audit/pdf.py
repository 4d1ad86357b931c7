"""The sealed PDF export: a landscape A4 report of the rows, laid out a page at a time
(memory stays bounded whatever the range), then sealed with the organisation's seal."""

from __future__ import annotations

import tempfile
from collections.abc import Iterable, Iterator, Sequence
from itertools import chain, islice
from typing import Any, BinaryIO

from django.utils import timezone
from django.utils.translation import gettext as _

from sealbox.audit import sealing
from sealbox.audit.tables import text_cell
from sealbox.lib import clock

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

    for chunk in _chunks(chain(sample, rows), PDF_CHUNK_ROWS):
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
