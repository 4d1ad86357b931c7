"""Tabular exports of the activity log: cell values, streamed CSV and Excel.

The exporters are generic over rows (the History page passes its own) and stream: they
hold a bounded number of rows at a time, whatever the range.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable, Iterator, Sequence
from datetime import date, datetime, tzinfo
from decimal import Decimal
from itertools import chain, islice
from typing import Any, BinaryIO

from django.utils import timezone
from django.utils.translation import gettext as _

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
    for row in chain(sample, rows):
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
