"""Logging: one line per record, JSON (`log_format=json`, the default) or text.

A JSON line is `{"ts", "level", "logger", "msg", "request_id", ...extra}`:
`ts` in UTC with milliseconds, `request_id` the id of the request being
served (kit.requests) or null, then the record's `extra` fields. An
exception adds its type and stack frames, never its message (database
errors quote row values). What is logged carries ids and codes only; the
formatter cannot tell PII from other text, so callers must not pass any."""

from __future__ import annotations

import logging
import sys
import time
import traceback
from typing import Any, TextIO

import orjson

from carepoints.kit.requests import REQUEST_ID

# Attributes every LogRecord has: anything else on a record came from `extra`.
_STANDARD = frozenset(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {"message", "asctime", "request_id"}
_OURS = "_carepoints_handler"


def _request_id(record: logging.LogRecord) -> str | None:
    given = record.__dict__.get("request_id")
    return given if isinstance(given, str) else REQUEST_ID.get()


_second: tuple[int, str] = (0, "1970-01-01T00:00:00")


def _timestamp(created: float) -> str:
    """`2026-12-02T10:00:00.123Z` (UTC); the part up to the second is computed once a second."""
    global _second  # a cache: one tuple, replaced whole (no lock needed)
    whole = int(created)
    cached = _second
    if cached[0] != whole:
        cached = _second = (whole, time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(whole)))
    return f"{cached[1]}.{int((created - whole) * 1000):03d}Z"


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        fields = record.__dict__
        doc: dict[str, Any] = {
            "ts": _timestamp(record.created),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
            "request_id": _request_id(record),
        }
        extra = fields.keys() - _STANDARD
        if extra:
            doc.update({k: fields[k] for k in sorted(extra) if not k.startswith("_")})
        if record.exc_info and record.exc_info[1] is not None:
            doc["exc_type"] = type(record.exc_info[1]).__name__
            doc["trace"] = "".join(traceback.format_tb(record.exc_info[2]))
        return orjson.dumps(doc, default=str, option=orjson.OPT_NON_STR_KEYS).decode()


class TextFormatter(logging.Formatter):
    """`2026-12-02 10:00:00,123 INFO carepoints.access [request id] POST /api/v1/events 201 0.8ms`."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        given = "request_id" in record.__dict__
        if not given:
            record.request_id = REQUEST_ID.get() or "-"
        try:
            return super().format(record)
        finally:
            if not given:
                del record.request_id  # type: ignore[attr-defined]  # the record goes on to other handlers as it came

    def formatException(self, ei: Any) -> str:  # noqa: N802 (logging's name)
        return f"{ei[0].__name__}\n{''.join(traceback.format_tb(ei[2]))}" if ei and ei[0] else ""


class _Stderr(logging.StreamHandler[TextIO]):
    """Writes to whatever `sys.stderr` is now (test runners swap it)."""

    def __init__(self) -> None:
        super().__init__(sys.stderr)

    @property
    def stream(self) -> TextIO:
        return sys.stderr

    @stream.setter
    def stream(self, _value: TextIO) -> None:
        pass


def configure(level: str, fmt: str) -> None:
    """One handler of ours on the root logger (replacing the one of an earlier call),
    writing to stderr in the given format; the root logger's level."""
    root = logging.getLogger()
    for handler in list(root.handlers):
        if getattr(handler, _OURS, False):
            root.removeHandler(handler)
    handler = _Stderr()
    setattr(handler, _OURS, True)
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    root.addHandler(handler)
    root.setLevel(level.upper())
    # Alembic says which dialect it found each time a migration context opens (/readyz does).
    logging.getLogger("alembic.runtime.migration").setLevel(max(logging.WARNING, root.level))
