"""Exports of the activity log: CSV, Excel, sealed PDF, and JSON Lines with chain hashes.

One module per format (`tables` for CSV and Excel, `pdf`, `jsonl`), and `verify_export`
for the offline check of a JSON Lines file; the names callers use are gathered here.
"""

from sealbox.audit.jsonl import (
    EVENT_FIELDS,
    EXPORT_VERSION,
    LINE_FIELDS,
    EventRecord,
    end_line_payload,
    stream_events_jsonl,
)
from sealbox.audit.pdf import PDF_CHUNK_ROWS, write_pdf
from sealbox.audit.tables import (
    CSV_BATCH_ROWS,
    XLSX_DATE_FORMAT,
    csv_cell,
    stream_csv,
    text_cell,
    write_xlsx,
)
from sealbox.audit.verify_export import VerifyResult, verify_jsonl

__all__ = [
    "CSV_BATCH_ROWS",
    "EVENT_FIELDS",
    "EXPORT_VERSION",
    "LINE_FIELDS",
    "PDF_CHUNK_ROWS",
    "XLSX_DATE_FORMAT",
    "EventRecord",
    "VerifyResult",
    "csv_cell",
    "end_line_payload",
    "stream_csv",
    "stream_events_jsonl",
    "text_cell",
    "verify_jsonl",
    "write_pdf",
    "write_xlsx",
]
