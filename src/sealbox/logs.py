"""Structured logs: one JSON object per line, with the request each line belongs to.

`SEALBOX_LOG_FORMAT=json` selects the JSON formatter. A request's id, client address,
user id, route and status come from a context variable the request middleware sets, so
every line logged while handling a request carries them. Routes are URL patterns
(`o/<str:token>`), never paths: a path may hold a grant token; no secret, code, token or
link is ever put in a log line by Sealbox.
"""

from __future__ import annotations

import contextvars
import json
import logging
from datetime import UTC, datetime
from typing import Any

request_context: contextvars.ContextVar[dict[str, Any] | None] = contextvars.ContextVar(
    "sealbox_request_context", default=None
)

# Attributes every LogRecord has; anything else was passed with `extra=` and is kept.
_RECORD_FIELDS = set(vars(logging.makeLogRecord({}))) | {"message", "asctime"}


class RequestContextFilter(logging.Filter):
    """Copy the current request's context onto each record (request_id, ip, …)."""

    def filter(self, record: logging.LogRecord) -> bool:
        context = request_context.get()
        if context:
            for key, value in context.items():
                if not hasattr(record, key):
                    setattr(record, key, value)
        return True


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key not in _RECORD_FIELDS and not key.startswith("_"):
                entry[key] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str, ensure_ascii=False)


class PlainFormatter(logging.Formatter):
    """The human format, with the request id when there is one."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        request_id = getattr(record, "request_id", None)
        return f"{line} [request {request_id}]" if request_id else line


def logging_config(log_format: str) -> dict[str, Any]:
    formatter = JsonFormatter if log_format == "json" else PlainFormatter
    formatter_path = f"{__name__}.{formatter.__name__}"
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"request": {"()": "sealbox.logs.RequestContextFilter"}},
        "formatters": {"sealbox": {"()": formatter_path}},
        "handlers": {
            "console": {
                "class": "logging.StreamHandler",
                "formatter": "sealbox",
                "filters": ["request"],
            }
        },
        "root": {"handlers": ["console"], "level": "INFO"},
        "loggers": {
            "django.db.backends": {"level": "WARNING"},
            # Sealbox writes its own access line (sealbox.request) with the resolved
            # client address and the route; Django's duplicate for 4xx/5xx is dropped.
            "django.request": {"level": "ERROR"},
        },
    }
